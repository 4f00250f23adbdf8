/**
 * A 2-D map of the workspace's image embeddings for the panel: UMAP over a seeded sample of at most
 * `maxPoints` samples (mapLayout.ts), computed in a worker thread (mapWorker.ts) so the caller keeps
 * serving grid pages and thumbnails meanwhile. Cached per encoder fingerprint, sample size and seed
 * under `<workspace>/map/`.
 *
 * Only the sampled rows are read (`MapSource`): the catalog picks their ids and the store is read shard
 * by shard keeping just those rows, so the map costs the same memory at 10M samples as at 10k, and a
 * cached map reads no embeddings at all.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sampleRows, seededRandom } from '../compute/random.js';
import type { Catalog } from './catalog.js';
import { embeddedCount, embeddedIdsAt, loadEmbeddings } from './embeddings.js';
import { layoutOffThread } from './mapWorker.js';

export { MAP_CLUSTERS } from './mapLayout.js';

export interface EmbeddingMap {
  /** Catalog ids of the mapped samples. */
  ids: number[];
  /** Coordinates scaled into [0, 1]. */
  x: number[];
  y: number[];
  /** k-means cluster of each mapped sample, computed on the embeddings (not on the 2-D layout). */
  cluster: number[];
  /** Samples in the workspace (the map shows `ids.length` of them). */
  total: number;
  fingerprint: string;
}

export interface EmbeddingMapOptions {
  maxPoints?: number;
  neighbours?: number;
  seed?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** The embedded samples a map is drawn from, read only where sampled. */
export interface MapSource {
  /** Embedded samples in the workspace. */
  n: number;
  fingerprint: string;
  /**
   * Catalog ids and image vectors of the rows at these positions (embedded samples in id order);
   * rows with non-finite values are left out.
   */
  rows(positions: number[]): Promise<{ ids: number[]; image: Float32Array<ArrayBuffer>; dim: number }>;
}

/** The workspace's embedded samples as a map source; `withCatalog` opens the catalog for each read. */
export async function workspaceMapSource(
  workspace: string,
  withCatalog: <T>(use: (catalog: Catalog) => Promise<T>) => Promise<T>,
): Promise<MapSource> {
  const { count, fingerprint } = await withCatalog((catalog) => embeddedCount(catalog, workspace));
  return {
    n: count,
    fingerprint,
    rows: (positions) =>
      withCatalog(async (catalog) => {
        const ids = await embeddedIdsAt(catalog, fingerprint, positions);
        const e = await loadEmbeddings(catalog, workspace, { only: { ids: new Set(ids) } });
        return { ids: Array.from(e.ids, Number), image: e.image! as Float32Array<ArrayBuffer>, dim: e.dim };
      }),
  };
}

/** The file a map of these embeddings with these options is cached in. */
export function embeddingMapFile(workspace: string, source: MapSource, options: EmbeddingMapOptions = {}) {
  const size = Math.min(source.n, options.maxPoints ?? 10_000);
  return path.join(
    path.resolve(workspace),
    'map',
    `image-${source.fingerprint}-${source.n}-${size}-${options.seed ?? 0}.json`,
  );
}

/** The cached map, or null when it has not been computed yet. */
export async function cachedEmbeddingMap(
  workspace: string,
  source: MapSource,
  options: EmbeddingMapOptions = {},
): Promise<EmbeddingMap | null> {
  const file = embeddingMapFile(workspace, source, options);
  return existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as EmbeddingMap) : null;
}

export async function embeddingMap(
  workspace: string,
  source: MapSource,
  options: EmbeddingMapOptions = {},
): Promise<EmbeddingMap> {
  const cached = await cachedEmbeddingMap(workspace, source, options);
  if (cached) return cached;
  const seed = options.seed ?? 0;
  const size = Math.min(source.n, options.maxPoints ?? 10_000);
  if (size < 3) throw new Error(`a map needs at least 3 embedded samples, the workspace has ${source.n}`);
  const sample = await source.rows(sampleRows(source.n, size, seededRandom(seed)));
  if (sample.ids.length < 3)
    throw new Error(
      `a map needs at least 3 samples with finite embeddings, the sample has ${sample.ids.length}`,
    );
  const layout = await layoutOffThread(
    {
      data: sample.image,
      rows: sample.ids.length,
      dim: sample.dim,
      neighbours: options.neighbours ?? 15,
      seed,
    },
    {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    },
  );
  const map: EmbeddingMap = {
    ids: sample.ids,
    ...layout,
    total: source.n,
    fingerprint: source.fingerprint,
  };
  const file = embeddingMapFile(workspace, source, options);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(map));
  return map;
}
