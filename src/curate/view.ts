/**
 * What the curation panel shows, as one object per open workspace: grid pages with thumbnails,
 * nearest neighbours and free-text search through the HNSW index, the 2-D map, score histograms and
 * manual review. The VS Code extension only forwards its webview's requests here, so the panel's
 * behaviour is testable without VS Code (test/curate/view.test.ts, test/ui/).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Encoder } from '../embed/encoders/types.js';
import { SelectionBrowser, type BrowseItem, type BrowseQuery, type ScoreHistogram } from './browse.js';
import { Catalog } from './catalog.js';
import { embeddingMap, type EmbeddingMap } from './embeddingMap.js';
import { setReview, type ReviewDecision } from './reviews.js';
import { WorkspaceIndex } from './searchIndex.js';
import { keysOf, listSelections, loadSelection } from './selections.js';
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
}

export class CurationView {
  private index: WorkspaceIndex | undefined;
  private encoder: Encoder | undefined;
  private selectionName: string | null = null;

  private constructor(
    readonly workspace: string,
    readonly catalog: Catalog,
    private browser: SelectionBrowser,
    private readonly options: CurationViewOptions,
  ) {}

  /** Open a workspace folder; shows the newest selection when there is one. */
  static async open(workspace: string, options: CurationViewOptions = {}): Promise<CurationView> {
    const dir = path.resolve(workspace);
    const catalog = await Catalog.open(dir);
    const view = new CurationView(dir, catalog, await SelectionBrowser.open(catalog, dir), options);
    const names = await listSelections(dir);
    if (names.length) await view.useSelection(names[names.length - 1]!);
    return view;
  }

  get selection(): string | null {
    return this.selectionName;
  }

  /** Show the picks and scores of a stored selection (null: the bare catalog). */
  async useSelection(name: string | null): Promise<void> {
    const next = await SelectionBrowser.open(this.catalog, this.workspace, name ?? undefined);
    await this.browser.close();
    this.browser = next;
    this.selectionName = name;
  }

  async summary(): Promise<ViewSummary> {
    const [{ n }] = (await this.catalog.rows<{ n: number }>(
      'SELECT count(*)::INTEGER AS n FROM samples',
    )) as [{ n: number }];
    const kinds = await this.catalog.rows<{ kind: string }>(
      `SELECT DISTINCT metadata->>'caption_kind' AS kind FROM samples
       WHERE metadata->>'caption_kind' IS NOT NULL ORDER BY kind`,
    );
    const [embedded] = await this.catalog.rows<{ n: number }>(
      'SELECT count(*)::INTEGER AS n FROM embeddings',
    );
    const reviews = await this.catalog.rows<{ decision: ReviewDecision; n: number }>(
      'SELECT decision, count(*)::INTEGER AS n FROM reviews GROUP BY decision',
    );
    const stored = this.selectionName ? await loadSelection(this.workspace, this.selectionName) : null;
    return {
      workspace: this.workspace,
      samples: n,
      selections: await listSelections(this.workspace),
      selection: this.selectionName,
      method: stored?.method ?? null,
      budget: stored ? stored.sampleIds.length : null,
      captionKinds: kinds.map((k) => k.kind),
      embedded: (embedded?.n ?? 0) > 0,
      indexed: existsSync(path.join(WorkspaceIndex.dir(this.workspace), 'image.json')),
      reviews: {
        accept: reviews.find((r) => r.decision === 'accept')?.n ?? 0,
        reject: reviews.find((r) => r.decision === 'reject')?.n ?? 0,
      },
    };
  }

  async page(query: BrowseQuery): Promise<ViewPage> {
    const page = await this.browser.page(query);
    return { ...page, items: await this.withThumbnails(page.items) };
  }

  /** The k nearest samples to `id` in the image index (built on first use). */
  async neighbours(id: number, k = 12): Promise<ViewItem[]> {
    const index = await this.imageIndex();
    const hits = await index.neighboursOf(this.catalog, id, k);
    return this.hitsToItems(hits.map((h) => ({ id: Number(h.id), similarity: h.similarity })));
  }

  /** Images matching free text: the workspace encoder's text tower against the image index. */
  async search(text: string, k = 48): Promise<ViewItem[]> {
    const index = await this.imageIndex();
    this.encoder ??= await this.loadEncoder();
    const hits = await index.searchText(this.catalog, this.encoder, text, k);
    return this.hitsToItems(hits.map((h) => ({ id: Number(h.id), similarity: h.similarity })));
  }

  async map(options: { signal?: AbortSignal; onProgress?: (d: number, t: number) => void } = {}) {
    const map = await embeddingMap(this.catalog, this.workspace, {
      ...(this.options.mapPoints ? { maxPoints: this.options.mapPoints } : {}),
      ...options,
    });
    const marks = await this.browser.marks(map.ids);
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
    return this.browser.scoreHistogram(bins);
  }

  /** Accept, reject or clear samples by catalog id; kept in the catalog, honoured by export. */
  async review(ids: readonly number[], decision: ReviewDecision | null): Promise<number> {
    if (ids.length === 0) return 0;
    return setReview(this.catalog, await keysOf(this.catalog, ids), decision);
  }

  async close(): Promise<void> {
    await this.encoder?.dispose();
    await this.browser.close();
    this.catalog.close();
  }

  private async imageIndex(): Promise<WorkspaceIndex> {
    if (this.index) return this.index;
    const dir = WorkspaceIndex.dir(this.workspace);
    this.index = existsSync(path.join(dir, 'image.json'))
      ? await WorkspaceIndex.load(this.workspace, 'image')
      : await WorkspaceIndex.build(this.catalog, this.workspace, 'image');
    return this.index;
  }

  private async loadEncoder(): Promise<Encoder> {
    // Imported here so opening a view never loads ONNX runtime until a text search needs it.
    const { resolveEncoder } = await import('./api.js');
    return resolveEncoder(this.catalog, this.workspace, this.options.encoder ?? 'default');
  }

  private async hitsToItems(hits: Array<{ id: number; similarity: number }>): Promise<ViewItem[]> {
    const page = await this.browser.page({ ids: hits.map((h) => h.id), limit: hits.length });
    const byId = new Map(page.items.map((i) => [i.id, i]));
    const ordered = hits.flatMap((h) => {
      const item = byId.get(h.id);
      return item ? [{ ...item, similarity: h.similarity }] : [];
    });
    return this.withThumbnails(ordered);
  }

  private async withThumbnails<T extends BrowseItem>(
    items: T[],
  ): Promise<Array<T & Pick<ViewItem, 'thumbnail' | 'problem'>>> {
    const thumbs = await thumbnailsFor(
      this.catalog,
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
