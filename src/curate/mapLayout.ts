/**
 * The heavy part of the panel's 2-D map, as a pure function of the sampled vectors: the kNN graph from
 * an HNSW index, UMAP (McInnes et al. 2018, the `umap-js` implementation) on that graph, and k-means
 * clusters on the vectors. It runs in a worker thread (mapWorker.ts), never on the extension host's.
 */
import { UMAP } from 'umap-js';
import { kmeans } from '../compute/kmeans.js';
import { seededRandom } from '../compute/random.js';
import { HnswIndex } from '../select/index/hnsw.js';

export const MAP_CLUSTERS = 10;

export interface LayoutInput {
  /** Row-major vectors, `rows × dim`. */
  data: Float32Array<ArrayBuffer>;
  rows: number;
  dim: number;
  neighbours: number;
  seed: number;
}

export interface Layout {
  /** Coordinates scaled into [0, 1], one per input row. */
  x: number[];
  y: number[];
  cluster: number[];
}

export async function computeLayout(
  input: LayoutInput,
  onProgress?: (done: number, total: number) => void,
): Promise<Layout> {
  const { rows: size, seed } = input;
  const vectors = { rows: size, cols: input.dim, data: input.data };
  const k = Math.min(input.neighbours, size - 1);
  if (k < 2) throw new Error(`a map needs at least 3 embedded samples, got ${size}`);
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
  const umap = new UMAP({ nComponents: 2, nNeighbors: k + 1, random: seededRandom(seed), minDist: 0.1 });
  umap.setPrecomputedKNN(knnIndices, knnDistances);
  // umap-js only reads X for its own kNN search (skipped) and its size.
  const epochs = umap.initializeFit(Array.from({ length: size }, (_, i) => [i]));
  for (let epoch = 0; epoch < epochs; epoch++) {
    umap.step();
    if (epoch % 10 === 0) onProgress?.(epoch, epochs);
  }
  onProgress?.(epochs, epochs);
  const clusters = await kmeans(vectors, Math.min(MAP_CLUSTERS, size), { seed });
  return { ...normalise(umap.getEmbedding()), cluster: Array.from(clusters.assignment) };
}

function normalise(coords: number[][]): { x: number[]; y: number[] } {
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
  return { x: scale(coords.map((c) => c[0]!)), y: scale(coords.map((c) => c[1]!)) };
}
