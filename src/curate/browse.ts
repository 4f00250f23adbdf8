/**
 * Pages of samples for a grid (the VS Code panel): the catalog joined with one selection's picks and
 * scores and the manual reviews, filtered and sorted in DuckDB so only the visible page crosses over.
 * A browser builds its selection table once; each page is one query.
 */
import { randomUUID } from 'node:crypto';
import type { Catalog } from './catalog.js';
import type { ReviewDecision } from './reviews.js';
import { loadScores, loadSelection } from './selections.js';

/**
 * `selected` / `unselected`: the method's verdict; `accepted` / `rejected`: a person's (reviews.ts);
 * `errors`: samples with a recorded issue (e.g. an image that would not decode at embedding time).
 */
export const BROWSE_FILTERS = ['all', 'selected', 'unselected', 'accepted', 'rejected', 'errors'] as const;
export type BrowseFilter = (typeof BROWSE_FILTERS)[number];
export const BROWSE_SORTS = ['catalog', 'score-desc', 'score-asc', 'pick-order'] as const;
export type BrowseSort = (typeof BROWSE_SORTS)[number];

export interface BrowseQuery {
  filter?: BrowseFilter;
  /** Only samples whose metadata `caption_kind` is this (e.g. the CIFAR sample's clean / mismatched). */
  captionKind?: string;
  /** Only these catalog ids (a lasso on the map, search hits). */
  ids?: readonly number[];
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
  private constructor(
    private readonly catalog: Catalog,
    /** Temporary table (id, rank, score) of the selection's pool; empty when browsing the bare catalog. */
    private readonly table: string,
  ) {}

  /** Browse the catalog, with `selection`'s picks and scores when one is named. */
  static async open(catalog: Catalog, workspace: string, selection?: string): Promise<SelectionBrowser> {
    const table = `_browse_${randomUUID().replaceAll('-', '')}`;
    await catalog.connection.run(
      `CREATE TEMP TABLE ${table} (id BIGINT PRIMARY KEY, rank INTEGER, score FLOAT)`,
    );
    const browser = new SelectionBrowser(catalog, table);
    if (selection !== undefined) await browser.load(workspace, selection);
    return browser;
  }

  private async load(workspace: string, selection: string): Promise<void> {
    const stored = await loadSelection(workspace, selection);
    const scores = await loadScores(workspace, stored);
    const rankOf = new Map(stored.sampleIds.map((id, r) => [id, r] as const));
    const appender = await this.catalog.connection.createAppender(this.table, 'main', 'temp');
    stored.poolIds.forEach((id, i) => {
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

  async page(q: BrowseQuery = {}): Promise<BrowsePage> {
    const filter = q.filter ?? 'all';
    const where: string[] = [];
    if (filter === 'selected') where.push('b.rank IS NOT NULL');
    if (filter === 'unselected') where.push('b.rank IS NULL');
    if (filter === 'accepted' || filter === 'rejected')
      where.push(`r.decision = '${filter === 'accepted' ? 'accept' : 'reject'}'`);
    if (filter === 'errors')
      where.push('EXISTS (SELECT 1 FROM issues i WHERE i.dataset_id = s.dataset_id AND i.key = s.key)');
    if (q.captionKind !== undefined) where.push(`s.metadata->>'caption_kind' = $kind`);
    if (q.ids !== undefined) where.push(`s.id IN (SELECT unnest(string_split($ids, ','))::BIGINT)`);
    const order = {
      catalog: 's.id',
      'score-desc': 'b.score DESC NULLS LAST, s.id',
      'score-asc': 'b.score ASC NULLS LAST, s.id',
      'pick-order': 'b.rank ASC NULLS LAST, s.id',
    }[q.sort ?? 'catalog'];
    const from = `samples s LEFT JOIN temp.main.${this.table} b ON b.id = s.id LEFT JOIN reviews r ON r.key = s.key
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`;
    const params = {
      ...(q.captionKind !== undefined ? { kind: q.captionKind } : {}),
      ...(q.ids !== undefined ? { ids: q.ids.join(',') } : {}),
    };
    const bound = Object.keys(params).length ? params : undefined;
    const [{ n }] = (await this.catalog.rows<{ n: bigint }>(`SELECT count(*) AS n FROM ${from}`, bound)) as [
      { n: bigint },
    ];
    const offset = Math.max(0, Math.floor(q.offset ?? 0));
    const limit = Math.max(0, Math.floor(q.limit ?? 100));
    const rows = await this.catalog.rows<{
      id: bigint;
      key: string;
      caption: string;
      kind: string | null;
      score: number | null;
      rank: number | null;
      decision: ReviewDecision | null;
    }>(
      `SELECT s.id, s.key, s.caption, s.metadata->>'caption_kind' AS kind, b.score, b.rank, r.decision
       FROM ${from} ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}`,
      bound,
    );
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
      })),
    };
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
