/**
 * Pages of samples for a grid (the VS Code panel): the catalog joined with one selection's picks and
 * scores and the manual reviews, filtered and sorted in DuckDB so only the visible page crosses over.
 * A browser builds its selection table once; each page is one query.
 */
import { randomUUID } from 'node:crypto';
import type { Catalog } from './catalog.js';
import type { ReviewDecision } from './reviews.js';
import { loadScores, loadSelection } from './selections.js';

/** `selected` / `unselected`: the method's verdict; `accepted` / `rejected`: a person's (reviews.ts). */
export const BROWSE_FILTERS = ['all', 'selected', 'unselected', 'accepted', 'rejected'] as const;
export type BrowseFilter = (typeof BROWSE_FILTERS)[number];
export const BROWSE_SORTS = ['catalog', 'score-desc', 'score-asc', 'pick-order'] as const;
export type BrowseSort = (typeof BROWSE_SORTS)[number];

export interface BrowseQuery {
  filter?: BrowseFilter;
  /** Only samples whose metadata `caption_kind` is this (e.g. the CIFAR sample's clean / mismatched). */
  captionKind?: string;
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
    if (q.captionKind !== undefined) where.push(`s.metadata->>'caption_kind' = $kind`);
    const order = {
      catalog: 's.id',
      'score-desc': 'b.score DESC NULLS LAST, s.id',
      'score-asc': 'b.score ASC NULLS LAST, s.id',
      'pick-order': 'b.rank ASC NULLS LAST, s.id',
    }[q.sort ?? 'catalog'];
    const from = `samples s LEFT JOIN temp.main.${this.table} b ON b.id = s.id LEFT JOIN reviews r ON r.key = s.key
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`;
    const params = q.captionKind !== undefined ? { kind: q.captionKind } : undefined;
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
      score: number | null;
      rank: number | null;
      decision: ReviewDecision | null;
    }>(
      `SELECT s.id, s.key, s.caption, s.metadata->>'caption_kind' AS kind, b.score, b.rank, r.decision
       FROM ${from} ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}`,
      params,
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

  async close(): Promise<void> {
    await this.catalog.connection.run(`DROP TABLE IF EXISTS temp.main.${this.table}`);
  }
}
