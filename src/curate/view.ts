/**
 * What the curation panel shows, as one object per open workspace: grid pages with thumbnails,
 * nearest neighbours and free-text search through the HNSW index, the 2-D map, score histograms and
 * manual review. The VS Code extension only forwards its webview's requests here, so the panel's
 * behaviour is testable without VS Code (test/curate/view.test.ts, test/ui/).
 *
 * The view holds the workspace's catalog only while an operation runs (catalogLease.ts), so the CLI
 * can use the same workspace while the panel is open; per-connection state (the selection browser's
 * temporary table) is rebuilt whenever the catalog was reopened.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Encoder } from '../embed/encoders/types.js';
import { SelectionBrowser, type BrowseItem, type BrowseQuery, type ScoreHistogram } from './browse.js';
import type { Catalog } from './catalog.js';
import { CatalogLease } from './catalogLease.js';
import { embeddingMap, workspaceMapSource, type EmbeddingMap } from './embeddingMap.js';
import type { FilterField } from './fieldFilters.js';
import { setReview, type ReviewDecision } from './reviews.js';
import { WorkspaceIndex } from './searchIndex.js';
import { keysOf, listSelections, loadSelection } from './selections.js';
import { changeTags, SampleTags, type TagCount } from './tags.js';
import { thumbnailsFor } from './thumbnails.js';

export interface ViewItem extends BrowseItem {
  /** `data:image/webp;base64,…`, or null when the image could not be read (see `problem`). */
  thumbnail: string | null;
  problem: string | null;
  /** Cosine similarity to the query (neighbours, search). */
  similarity?: number;
}

export interface ViewPage {
  total: number;
  offset: number;
  items: ViewItem[];
}

export interface ViewSummary {
  workspace: string;
  samples: number;
  selections: string[];
  selection: string | null;
  method: string | null;
  budget: number | null;
  captionKinds: string[];
  embedded: boolean;
  indexed: boolean;
  reviews: { accept: number; reject: number };
}

export interface ViewMap extends EmbeddingMap {
  /** Per mapped sample: 0 not picked, 1 picked, 2 accepted by hand, 3 rejected by hand. */
  state: number[];
  captionKind: Array<string | null>;
}

export interface CurationViewOptions {
  /** Encoder spec used for free-text search (the one the workspace was embedded with). */
  encoder?: string;
  /** Samples on the 2-D map at most. */
  mapPoints?: number;
  /** Close the catalog after this long without a request (default 500 ms), so other processes can use it. */
  idleMs?: number;
  /** How long a request waits while another process (the CLI) holds the catalog (default 10 s). */
  lockWaitMs?: number;
}

export class CurationView {
  private index: WorkspaceIndex | undefined;
  private encoder: Encoder | undefined;
  private selectionName: string | null = null;
  /** The selection browser on the catalog connection it was built on (rebuilt after a reopen). */
  private browsing:
    { catalog: Catalog; selection: string | null; browser: Promise<SelectionBrowser> } | undefined;
  private readonly lease: CatalogLease;
  /** The hits of the last `searchPage` text, reused while paging through them. */
  private lastSearch:
    | { text: string; k: number; index: WorkspaceIndex; hits: Array<{ id: number; similarity: number }> }
    | undefined;

  private constructor(
    readonly workspace: string,
    private readonly options: CurationViewOptions,
  ) {
    this.lease = new CatalogLease(workspace, {
      ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
      ...(options.lockWaitMs !== undefined ? { lockWaitMs: options.lockWaitMs } : {}),
    });
  }

  /** Open a workspace folder (creating its catalog when new); shows the newest selection when there is one. */
  static async open(workspace: string, options: CurationViewOptions = {}): Promise<CurationView> {
    const view = new CurationView(path.resolve(workspace), options);
    const names = await listSelections(view.workspace);
    await view.useSelection(names.length ? names[names.length - 1]! : null);
    return view;
  }

  get selection(): string | null {
    return this.selectionName;
  }

  /** Whether the view has the catalog open right now (between operations it does not). */
  get holdsCatalog(): boolean {
    return this.lease.held;
  }

  /**
   * Run `work` with the workspace's catalog open (waiting while another process holds it). Keep
   * `work` short: other processes cannot open the workspace until the view has been idle a moment.
   */
  withCatalog<T>(work: (catalog: Catalog) => Promise<T>): Promise<T> {
    return this.lease.use(work);
  }

  /** Show the picks and scores of a stored selection (null: the bare catalog). */
  async useSelection(name: string | null): Promise<void> {
    await this.withCatalog((catalog) => this.browserOn(catalog, name));
    this.selectionName = name;
  }

  /**
   * Forget what was read from the workspace's files (another process may have changed them): the
   * selection is read again, and the view falls back to the newest one when its own was removed.
   */
  async refresh(): Promise<void> {
    this.browsing = undefined;
    this.index = undefined;
    const names = await listSelections(this.workspace);
    const keep = this.selectionName !== null && names.includes(this.selectionName);
    await this.useSelection(keep ? this.selectionName : (names[names.length - 1] ?? null));
  }

  async summary(): Promise<ViewSummary> {
    const counts = await this.withCatalog(async (catalog) => {
      const [{ n }] = (await catalog.rows<{ n: number }>('SELECT count(*)::INTEGER AS n FROM samples')) as [
        { n: number },
      ];
      const kinds = await catalog.rows<{ kind: string }>(
        `SELECT DISTINCT metadata->>'caption_kind' AS kind FROM samples
         WHERE metadata->>'caption_kind' IS NOT NULL ORDER BY kind`,
      );
      const [embedded] = await catalog.rows<{ n: number }>('SELECT count(*)::INTEGER AS n FROM embeddings');
      const reviews = await catalog.rows<{ decision: ReviewDecision; n: number }>(
        'SELECT decision, count(*)::INTEGER AS n FROM reviews GROUP BY decision',
      );
      return { n, kinds, embedded, reviews };
    });
    const stored = this.selectionName ? await loadSelection(this.workspace, this.selectionName) : null;
    return {
      workspace: this.workspace,
      samples: counts.n,
      selections: await listSelections(this.workspace),
      selection: this.selectionName,
      method: stored?.method ?? null,
      budget: stored ? stored.sampleIds.length : null,
      captionKinds: counts.kinds.map((k) => k.kind),
      embedded: (counts.embedded?.n ?? 0) > 0,
      indexed: existsSync(path.join(WorkspaceIndex.dir(this.workspace), 'image.json')),
      reviews: {
        accept: counts.reviews.find((r) => r.decision === 'accept')?.n ?? 0,
        reject: counts.reviews.find((r) => r.decision === 'reject')?.n ?? 0,
      },
    };
  }

  page(query: BrowseQuery): Promise<ViewPage> {
    return this.withCatalog(async (catalog) => {
      const page = await (await this.browserOn(catalog)).page(query);
      return { ...page, items: await this.withThumbnails(catalog, page.items) };
    });
  }

  /** The k nearest samples to `id` in the image index (built on first use). */
  neighbours(id: number, k = 12): Promise<ViewItem[]> {
    return this.withCatalog(async (catalog) => {
      const index = await this.imageIndex(catalog);
      const hits = await index.neighboursOf(catalog, id, k);
      return this.hitsToItems(catalog, hits);
    });
  }

  /** Images matching free text: the workspace encoder's text tower against the image index. */
  search(text: string, k = 48): Promise<ViewItem[]> {
    return this.withCatalog(async (catalog) => {
      const index = await this.imageIndex(catalog);
      this.encoder ??= await this.loadEncoder(catalog);
      const hits = await index.searchText(catalog, this.encoder, text, k);
      return this.hitsToItems(catalog, hits);
    });
  }

  /**
   * The 2-D map. The layout is computed in a worker thread with the catalog closed, so grid pages
   * (and other processes) are served meanwhile; only reading the embeddings and the marks holds it.
   */
  async map(options: { signal?: AbortSignal; onProgress?: (d: number, t: number) => void } = {}) {
    const source = await workspaceMapSource(this.workspace, (use) => this.withCatalog(use));
    const map = await embeddingMap(this.workspace, source, {
      ...(this.options.mapPoints ? { maxPoints: this.options.mapPoints } : {}),
      ...options,
    });
    const marks = await this.withCatalog(async (catalog) => (await this.browserOn(catalog)).marks(map.ids));
    const result: ViewMap = {
      ...map,
      state: map.ids.map((id) => {
        const m = marks.get(id);
        if (m?.review === 'reject') return 3;
        if (m?.review === 'accept') return 2;
        return m?.selected ? 1 : 0;
      }),
      captionKind: map.ids.map((id) => marks.get(id)?.captionKind ?? null),
    };
    return result;
  }

  histogram(bins = 30): Promise<ScoreHistogram | null> {
    return this.withCatalog(async (catalog) => (await this.browserOn(catalog)).scoreHistogram(bins));
  }

  /** Accept, reject or clear samples by catalog id; kept in the catalog, honoured by export. */
  async review(ids: readonly number[], decision: ReviewDecision | null): Promise<number> {
    if (ids.length === 0) return 0;
    return this.withCatalog(async (catalog) => setReview(catalog, await keysOf(catalog, ids), decision));
  }

  /** The fields grid filters can name: sample columns, metadata keys, `score` (fieldFilters.ts). */
  fields(): Promise<FilterField[]> {
    return this.withCatalog(async (catalog) => (await this.browserOn(catalog)).fields());
  }

  /**
   * A free-text search shown as a grid filter: the page of `query` restricted to the search's `k`
   * hits, in search order under sort `relevance`, each with its similarity. The hits of the last
   * search are kept, so paging through them does not encode the text again.
   */
  searchPage(query: BrowseQuery, search: { text: string; k: number }): Promise<ViewPage> {
    return this.withCatalog(async (catalog) => {
      const hits = await this.searchHits(catalog, search);
      const similarity = new Map(hits.map((h) => [h.id, h.similarity]));
      const page = await (await this.browserOn(catalog)).page({ ...query, ranked: [...similarity.keys()] });
      const items = page.items.map((i) => ({ ...i, similarity: similarity.get(i.id)! }));
      return { ...page, items: await this.withThumbnails(catalog, items) };
    });
  }

  /**
   * Add (or with `remove`, take off) free-form tags (tags.ts) on samples given by id, or on every
   * sample matching a grid query, optionally within a search's hits (bulk-tagging a filter result).
   * Returns how many samples changed.
   */
  async tag(
    target: { ids: readonly number[] } | { query: BrowseQuery; search?: { text: string; k: number } },
    tags: readonly string[],
    remove = false,
  ): Promise<number> {
    if ('ids' in target && target.ids.length === 0) return 0;
    const keys = await this.withCatalog(async (catalog) => {
      if ('ids' in target) return keysOf(catalog, target.ids);
      const ranked = target.search
        ? { ranked: (await this.searchHits(catalog, target.search)).map((h) => h.id) }
        : {};
      return (await this.browserOn(catalog)).keys({ ...target.query, ...ranked });
    });
    return changeTags(this.workspace, keys, tags, remove);
  }

  /** Hits of a free-text search (best first); the last search's are reused. */
  private async searchHits(
    catalog: Catalog,
    search: { text: string; k: number },
  ): Promise<Array<{ id: number; similarity: number }>> {
    const index = await this.imageIndex(catalog);
    const cached = this.lastSearch;
    // Reused only against the same index (`refresh` drops the index when the workspace changed).
    if (cached?.index === index && cached.text === search.text && cached.k === search.k) return cached.hits;
    this.encoder ??= await this.loadEncoder(catalog);
    const found = await index.searchText(catalog, this.encoder, search.text, search.k);
    const hits = found.map((h) => ({ id: Number(h.id), similarity: h.similarity }));
    this.lastSearch = { ...search, index, hits };
    return hits;
  }

  /** Every tag in use with its number of samples. */
  async tagCounts(): Promise<TagCount[]> {
    return (await SampleTags.load(this.workspace)).counts();
  }

  async close(): Promise<void> {
    this.browsing = undefined;
    await this.encoder?.dispose();
    this.encoder = undefined;
    await this.lease.dispose();
  }

  /** The selection browser for `selection` (default: the one shown) on this catalog connection. */
  private browserOn(
    catalog: Catalog,
    selection: string | null = this.selectionName,
  ): Promise<SelectionBrowser> {
    const b = this.browsing;
    if (b && b.catalog === catalog && b.selection === selection) return b.browser;
    const browser = SelectionBrowser.open(catalog, this.workspace, selection ?? undefined);
    const next = { catalog, selection, browser };
    this.browsing = next;
    browser.catch(() => {
      if (this.browsing === next) this.browsing = undefined;
    });
    // The one it replaces on the same connection drops its temporary table (another connection's
    // went with that connection).
    if (b && b.catalog === catalog) void b.browser.then((old) => old.close()).catch(() => undefined);
    return browser;
  }

  private async imageIndex(catalog: Catalog): Promise<WorkspaceIndex> {
    if (this.index) return this.index;
    const dir = WorkspaceIndex.dir(this.workspace);
    this.index = existsSync(path.join(dir, 'image.json'))
      ? await WorkspaceIndex.load(this.workspace, 'image')
      : await WorkspaceIndex.build(catalog, this.workspace, 'image');
    return this.index;
  }

  private async loadEncoder(catalog: Catalog): Promise<Encoder> {
    // Imported here so opening a view never loads ONNX runtime until a text search needs it.
    const { resolveEncoder } = await import('./api.js');
    return resolveEncoder(catalog, this.workspace, this.options.encoder ?? 'default');
  }

  private async hitsToItems(
    catalog: Catalog,
    hits: Array<{ id: number | bigint; similarity: number }>,
  ): Promise<ViewItem[]> {
    const ids = hits.map((h) => Number(h.id));
    const page = await (await this.browserOn(catalog)).page({ ids, limit: hits.length });
    const byId = new Map(page.items.map((i) => [i.id, i]));
    const ordered = hits.flatMap((h) => {
      const item = byId.get(Number(h.id));
      return item ? [{ ...item, similarity: h.similarity }] : [];
    });
    return this.withThumbnails(catalog, ordered);
  }

  private async withThumbnails<T extends BrowseItem>(
    catalog: Catalog,
    items: T[],
  ): Promise<Array<T & Pick<ViewItem, 'thumbnail' | 'problem'>>> {
    const thumbs = await thumbnailsFor(
      catalog,
      items.map((i) => i.id),
    );
    return items.map((item) => {
      const webp = thumbs.images.get(item.id);
      return {
        ...item,
        thumbnail: webp ? `data:image/webp;base64,${Buffer.from(webp).toString('base64')}` : null,
        problem: webp ? null : (thumbs.failed.get(item.id) ?? 'no image'),
      };
    });
  }
}
