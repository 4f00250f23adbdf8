/**
 * A 2-D map of the workspace's image embeddings for the panel: UMAP over a seeded sample of at most
 * `maxPoints` samples (mapLayout.ts), computed in a worker thread (mapWorker.ts) so the caller keeps
 * serving grid pages and thumbnails meanwhile. Cached per encoder fingerprint, sample size and seed
 * under `<workspace>/map/`.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { seededRandom } from '../compute/random.js';
import { rowsOf } from '../select/kernels/similarity.js';
import type { WorkspaceEmbeddings } from './embeddings.js';
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

/** The file a map of these embeddings with these options is cached in. */
export function embeddingMapFile(
  workspace: string,
  e: WorkspaceEmbeddings,
  options: EmbeddingMapOptions = {},
) {
  const size = Math.min(e.n, options.maxPoints ?? 10_000);
  return path.join(
    path.resolve(workspace),
    'map',
    `image-${e.encoder.fingerprint}-${e.n}-${size}-${options.seed ?? 0}.json`,
  );
}

/** The cached map, or null when it has not been computed yet. */
export async function cachedEmbeddingMap(
  workspace: string,
  e: WorkspaceEmbeddings,
  options: EmbeddingMapOptions = {},
): Promise<EmbeddingMap | null> {
  const file = embeddingMapFile(workspace, e, options);
  return existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as EmbeddingMap) : null;
}

export async function embeddingMap(
  workspace: string,
  e: WorkspaceEmbeddings,
  options: EmbeddingMapOptions = {},
): Promise<EmbeddingMap> {
  const cached = await cachedEmbeddingMap(workspace, e, options);
  if (cached) return cached;
  const seed = options.seed ?? 0;
  const size = Math.min(e.n, options.maxPoints ?? 10_000);
  if (size < 3) throw new Error(`a map needs at least 3 embedded samples, the workspace has ${e.n}`);
  const rows = sampleRows(e.n, size, seededRandom(seed));
  const layout = await layoutOffThread(
    {
      data: rowsOfList(e.image!, e.dim, rows),
      rows: size,
      dim: e.dim,
      neighbours: options.neighbours ?? 15,
      seed,
    },
    {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    },
  );
  const map: EmbeddingMap = {
    ids: rows.map((r) => Number(e.ids[r]!)),
    ...layout,
    total: e.n,
    fingerprint: e.encoder.fingerprint,
  };
  const file = embeddingMapFile(workspace, e, options);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(map));
  return map;
}

/** `size` distinct rows out of n, in increasing order (partial Fisher–Yates). */
function sampleRows(n: number, size: number, random: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < size; i++) {
    const j = i + Math.floor(random() * (n - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, size).sort((a, b) => a - b);
}

function rowsOfList(data: Float32Array, dim: number, rows: number[]): Float32Array<ArrayBuffer> {
  const out = new Float32Array(new ArrayBuffer(rows.length * dim * 4));
  rows.forEach((r, i) =>
    out.set(rowsOf({ rows: data.length / dim, cols: dim, data }, r, r + 1).data, i * dim),
  );
  return out;
}
