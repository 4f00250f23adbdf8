/**
 * A 2-D map of the workspace's image embeddings for the panel: UMAP (McInnes et al. 2018, the
 * `umap-js` implementation) over a seeded sample of at most `maxPoints` samples, with the kNN graph
 * taken from an HNSW index of that sample instead of umap-js's own exhaustive nearest-neighbour search.
 * Cached per encoder fingerprint, sample size and seed under `<workspace>/map/`.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UMAP } from 'umap-js';
import { kmeans } from '../embed/backends/kmeans.js';
import { HnswIndex } from '../select/index/hnsw.js';
import { rowsOf } from '../select/kernels/similarity.js';
import { seededRandom } from '../embed/backends/random.js';
import type { Catalog } from './catalog.js';
import { loadEmbeddings, type WorkspaceEmbeddings } from './embeddings.js';

export const MAP_CLUSTERS = 10;

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
  embeddings?: WorkspaceEmbeddings;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export async function embeddingMap(
  catalog: Catalog,
  workspace: string,
  options: EmbeddingMapOptions = {},
): Promise<EmbeddingMap> {
  const e = options.embeddings ?? (await loadEmbeddings(catalog, workspace));
  const maxPoints = options.maxPoints ?? 10_000;
  const seed = options.seed ?? 0;
  const size = Math.min(e.n, maxPoints);
  const file = path.join(
    path.resolve(workspace),
    'map',
    `image-${e.encoder.fingerprint}-${e.n}-${size}-${seed}.json`,
  );
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as EmbeddingMap;

  const random = seededRandom(seed);
  const rows = sampleRows(e.n, size, random);
  const vectors = rowsOfList(e.image!, e.dim, rows);
  const k = Math.min(options.neighbours ?? 15, size - 1);
  if (k < 2) throw new Error(`a map needs at least 3 embedded samples, the workspace has ${e.n}`);
  const index = HnswIndex.build(vectors, { seed });
  const graph = index.knnGraph(vectors, k);
  const knnIndices: number[][] = [];
  const knnDistances: number[][] = [];
  for (let i = 0; i < size; i++) {
    // umap-js expects each point to list itself first, at distance 0 (as its own kNN search does).
    const idx = [i];
    const dist = [0];
    for (let j = 0; j < k; j++) {
      const nb = graph.neighbors[i * k + j]!;
      if (nb < 0) continue;
      idx.push(nb);
      dist.push(Math.max(0, 1 - graph.similarities[i * k + j]!));
    }
    while (idx.length < k + 1) {
      idx.push(idx[idx.length - 1]!);
      dist.push(dist[dist.length - 1]!);
    }
    knnIndices.push(idx);
    knnDistances.push(dist);
  }
  const umap = new UMAP({ nComponents: 2, nNeighbors: k + 1, random, minDist: 0.1 });
  umap.setPrecomputedKNN(knnIndices, knnDistances);
  // umap-js only reads X for its own kNN search (skipped) and its size.
  const epochs = umap.initializeFit(Array.from({ length: size }, (_, i) => [i]));
  for (let epoch = 0; epoch < epochs; epoch++) {
    options.signal?.throwIfAborted();
    umap.step();
    if (epoch % 10 === 0) options.onProgress?.(epoch, epochs);
  }
  options.onProgress?.(epochs, epochs);
  const coords = umap.getEmbedding();
  const clusters = await kmeans(vectors, Math.min(MAP_CLUSTERS, size), { seed });
  const map: EmbeddingMap = {
    ids: rows.map((r) => Number(e.ids[r]!)),
    ...normalise(coords),
    cluster: Array.from(clusters.assignment),
    total: e.n,
    fingerprint: e.encoder.fingerprint,
  };
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

function rowsOfList(data: Float32Array, dim: number, rows: number[]) {
  const out = new Float32Array(new ArrayBuffer(rows.length * dim * 4));
  rows.forEach((r, i) =>
    out.set(rowsOf({ rows: data.length / dim, cols: dim, data }, r, r + 1).data, i * dim),
  );
  return { rows: rows.length, cols: dim, data: out };
}

function normalise(coords: number[][]): { x: number[]; y: number[] } {
  const xs = coords.map((c) => c[0]!);
  const ys = coords.map((c) => c[1]!);
  const scale = (v: number[]) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const a of v) {
      lo = Math.min(lo, a);
      hi = Math.max(hi, a);
    }
    const span = hi - lo || 1;
    return v.map((a) => Number(((a - lo) / span).toFixed(5)));
  };
  return { x: scale(xs), y: scale(ys) };
}
