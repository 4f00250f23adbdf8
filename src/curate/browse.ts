/**
 * Pages of samples for a grid (the VS Code panel): the catalog joined with one selection's picks and
 * scores and the manual reviews, filtered and sorted in DuckDB so only the visible page crosses over.
 * A browser builds its selection table once; each page is one query.
 */
import { randomUUID } from 'node:crypto';
import { listValue, type DuckDBValue } from '@duckdb/node-api';
import type { Catalog } from './catalog.js';
import { filterSql, listFields, type FieldFilter, type FilterField } from './fieldFilters.js';
import type { ReviewDecision } from './reviews.js';
import { loadPoolIds, loadScores, loadSelection } from './selections.js';
import { SampleTags } from './tags.js';

/**
 * `selected` / `unselected`: the method's verdict; `accepted` / `rejected`: a person's (reviews.ts);
 * `errors`: samples with a recorded issue (e.g. an image that would not decode at embedding time).
 */
export const BROWSE_FILTERS = ['all', 'selected', 'unselected', 'accepted', 'rejected', 'errors'] as const;
export type BrowseFilter = (typeof BROWSE_FILTERS)[number];
/** `relevance`: the order of `BrowseQuery.ranked` (search hits, best first). */
export const BROWSE_SORTS = ['catalog', 'score-desc', 'score-asc', 'pick-order', 'relevance'] as const;
export type BrowseSort = (typeof BROWSE_SORTS)[number];

export interface BrowseQuery {
  filter?: BrowseFilter;
  /** Only samples whose metadata `caption_kind` is this (e.g. the CIFAR sample's clean / mismatched). */
  captionKind?: string;
  /** Only these catalog ids (a lasso on the map). */
  ids?: readonly number[];
  /** Field filters (fieldFilters.ts), all of which must hold. */
  where?: readonly FieldFilter[];
  /** Only samples carrying every one of these tags (tags.ts). */
  tags?: readonly string[];
  /** Only these ids, ranked best first (search hits); sort `relevance` keeps this order. */
  ranked?: readonly number[];
  sort?: BrowseSort;
  offset?: number;
  limit?: number;
}

export interface BrowseItem {
  id: number;
  key: string;
  caption: string;
  captionKind: string | null;
  /** The method's score, when it scores the pool and the sample is in it. */
  score: number | null;
  /** 0-based pick position, or null when the method did not pick it. */
  rank: number | null;
  review: ReviewDecision | null;
  /** The sample's class label: metadata `label`, else `cls`. */
  label: string | null;
  /** Free-form tags (tags.ts), sorted. */
  tags: string[];
}

export interface BrowsePage {
  /** Samples matching the query (all pages). */
  total: number;
  offset: number;
  items: BrowseItem[];
}

export interface SampleMark {
  selected: boolean;
  review: ReviewDecision | null;
  captionKind: string | null;
}

export interface ScoreHistogram {
  lo: number;
  hi: number;
  /** Counts per bin of picked samples and of the rest of the pool. */
  selected: number[];
  unselected: number[];
}

export class SelectionBrowser {
  private fieldList: Promise<FilterField[]> | undefined;

  private constructor(
    private readonly catalog: Catalog,
    private readonly workspace: string,
    /** Temporary table (id, rank, score) of the selection's pool; empty when browsing the bare catalog. */
    private readonly table: string,
  ) {}

  /** Browse the catalog, with `selection`'s picks and scores when one is named. */
  static async open(catalog: Catalog, workspace: string, selection?: string): Promise<SelectionBrowser> {
    const table = `_browse_${randomUUID().replaceAll('-', '')}`;
    await catalog.connection.run(
      `CREATE TEMP TABLE ${table} (id BIGINT PRIMARY KEY, rank INTEGER, score FLOAT)`,
    );
    const browser = new SelectionBrowser(catalog, workspace, table);
    if (selection !== undefined) await browser.load(workspace, selection);
    return browser;
  }

  private async load(workspace: string, selection: string): Promise<void> {
    const stored = await loadSelection(workspace, selection);
    const scores = await loadScores(workspace, stored);
    const poolIds = await loadPoolIds(workspace, stored);
    const rankOf = new Map(stored.sampleIds.map((id, r) => [id, r] as const));
    const appender = await this.catalog.connection.createAppender(this.table, 'main', 'temp');
    poolIds.forEach((id, i) => {
      appender.appendBigInt(BigInt(id));
      const rank = rankOf.get(id);
      if (rank === undefined) appender.appendNull();
      else appender.appendInteger(rank);
      if (scores) appender.appendFloat(scores[i]!);
      else appender.appendNull();
      appender.endRow();
    });
    appender.closeSync();
  }

  /** The fields `where` filters can name: sample columns, metadata keys, `score` (listed once). */
  fields(): Promise<FilterField[]> {
    this.fieldList ??= listFields(this.catalog);
    return this.fieldList;
  }

  async page(q: BrowseQuery = {}): Promise<BrowsePage> {
    const { from, params } = await this.scope(q);
    const order = {
      catalog: 's.id',
      'score-desc': 'b.score DESC NULLS LAST, s.id',
      'score-asc': 'b.score ASC NULLS LAST, s.id',
      'pick-order': 'b.rank ASC NULLS LAST, s.id',
      relevance: q.ranked?.length
        ? `list_position(string_split($ranked, ',')::BIGINT[], s.id), s.id`
        : 's.id',
    }[q.sort ?? 'catalog'];
    const [{ n }] = (await this.catalog.rows<{ n: bigint }>(`SELECT count(*) AS n FROM ${from}`, params)) as [
      { n: bigint },
    ];
    const offset = Math.max(0, Math.floor(q.offset ?? 0));
    const limit = Math.max(0, Math.floor(q.limit ?? 100));
    const rows = await this.catalog.rows<{
      id: bigint;
      key: string;
      caption: string;
      kind: string | null;
      label: string | null;
      score: number | null;
      rank: number | null;
      decision: ReviewDecision | null;
    }>(
      `SELECT s.id, s.key, s.caption, s.metadata->>'caption_kind' AS kind,
              coalesce(s.metadata->>'label', s.metadata->>'cls') AS label, b.score, b.rank, r.decision
       FROM ${from} ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}`,
      params,
    );
    const tags = await SampleTags.load(this.workspace);
    return {
      total: Number(n),
      offset,
      items: rows.map((r) => ({
        id: Number(r.id),
        key: r.key,
        caption: r.caption,
        captionKind: r.kind,
        score: r.score,
        rank: r.rank,
        review: r.decision,
        label: r.label,
        tags: [...tags.tagsOf(r.key)],
      })),
    };
  }

  /** Keys of every sample matching `q` (all pages), in catalog order: bulk tagging of a filter result. */
  async keys(q: BrowseQuery = {}): Promise<string[]> {
    const { from, params } = await this.scope(q);
    const rows = await this.catalog.rows<{ key: string }>(`SELECT s.key FROM ${from} ORDER BY s.id`, params);
    return rows.map((r) => r.key);
  }

  /** The FROM … WHERE of a query and its bound parameters (user text only ever goes in as these). */
  private async scope(q: BrowseQuery): Promise<{ from: string; params?: Record<string, DuckDBValue> }> {
    const filter = q.filter ?? 'all';
    const where: string[] = [];
    const params: Record<string, DuckDBValue> = {};
    if (filter === 'selected') where.push('b.rank IS NOT NULL');
    if (filter === 'unselected') where.push('b.rank IS NULL');
    if (filter === 'accepted' || filter === 'rejected')
      where.push(`r.decision = '${filter === 'accepted' ? 'accept' : 'reject'}'`);
    if (filter === 'errors')
      where.push('EXISTS (SELECT 1 FROM issues i WHERE i.dataset_id = s.dataset_id AND i.key = s.key)');
    if (q.captionKind !== undefined) {
      where.push(`s.metadata->>'caption_kind' = $kind`);
      params.kind = q.captionKind;
    }
    // An empty id list matches nothing (string_split('') would yield one unparsable '').
    if (q.ids !== undefined) {
      where.push(q.ids.length ? `s.id IN (SELECT unnest(string_split($ids, ','))::BIGINT)` : 'false');
      if (q.ids.length) params.ids = q.ids.join(',');
    }
    if (q.ranked !== undefined) {
      where.push(q.ranked.length ? `s.id IN (SELECT unnest(string_split($ranked, ','))::BIGINT)` : 'false');
      if (q.ranked.length) params.ranked = q.ranked.join(',');
    }
    if (q.where?.length) {
      const sql = filterSql(q.where, await this.fields());
      where.push(...sql.conditions);
      Object.assign(params, sql.params);
    }
    if (q.tags?.length) {
      const tags = await SampleTags.load(this.workspace);
      q.tags.forEach((tag, i) => {
        const keys = tags.keysWith(tag);
        // An empty list has no item type to bind; no key carries the tag, so nothing matches.
        where.push(keys.length ? `s.key IN (SELECT unnest($tag${i}::VARCHAR[]))` : 'false');
        if (keys.length) params[`tag${i}`] = listValue(keys);
      });
    }
    const from = `samples s LEFT JOIN temp.main.${this.table} b ON b.id = s.id LEFT JOIN reviews r ON r.key = s.key
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`;
    return { from, ...(Object.keys(params).length ? { params } : {}) };
  }

  /** Per sample: picked by the method, the manual review, the caption kind (map colours). */
  async marks(ids: readonly number[]): Promise<Map<number, SampleMark>> {
    const rows = await this.catalog.rows<{
      id: bigint;
      rank: number | null;
      decision: ReviewDecision | null;
      kind: string | null;
    }>(
      `SELECT s.id, b.rank, r.decision, s.metadata->>'caption_kind' AS kind
       FROM samples s LEFT JOIN temp.main.${this.table} b ON b.id = s.id LEFT JOIN reviews r ON r.key = s.key
       WHERE s.id IN (SELECT unnest(string_split($ids, ','))::BIGINT)`,
      { ids: ids.join(',') },
    );
    return new Map(
      rows.map((r) => [Number(r.id), { selected: r.rank !== null, review: r.decision, captionKind: r.kind }]),
    );
  }

  /** Equal-width histogram of the method's scores, picked and not picked counted apart. */
  async scoreHistogram(bins = 30): Promise<ScoreHistogram | null> {
    const [range] = await this.catalog.rows<{ lo: number | null; hi: number | null }>(
      `SELECT min(score) AS lo, max(score) AS hi FROM temp.main.${this.table}`,
    );
    if (!range || range.lo === null || range.hi === null) return null;
    const { lo, hi } = range;
    const width = (hi - lo) / bins || 1;
    const rows = await this.catalog.rows<{ bin: number; picked: boolean; n: bigint }>(
      // Clamped both ways: the FLOAT scores and the DOUBLE bounds can round apart at the edges.
      `SELECT greatest(0, least(${bins - 1}, floor((score - ${lo}) / ${width})))::INTEGER AS bin,
              rank IS NOT NULL AS picked, count(*) AS n
       FROM temp.main.${this.table} WHERE score IS NOT NULL GROUP BY ALL`,
    );
    const selected = new Array<number>(bins).fill(0);
    const unselected = new Array<number>(bins).fill(0);
    for (const r of rows) (r.picked ? selected : unselected)[r.bin] = Number(r.n);
    return { lo, hi, selected, unselected };
  }

  async close(): Promise<void> {
    await this.catalog.connection.run(`DROP TABLE IF EXISTS temp.main.${this.table}`);
  }
}
