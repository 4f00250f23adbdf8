/**
 * The one nearest-neighbour index interface the workspace, the panel, text search and the kNN-graph
 * selectors use. Implementations: `ShardedHnswIndex` (hnswlib-node graphs built on one worker thread
 * each and searched together; the workspace default), `UsearchIndex` (usearch, one graph built on every
 * core, float16 storage) and `HnswIndex` (one hnswlib graph: a shard, and the map layout's small index).
 * Similarity is the inner product of unit vectors (cosine).
 */
import type { KnnGraph } from '../contract.js';
import type { Matrix } from '../kernels/similarity.js';

export interface Neighbour {
  index: number;
  similarity: number;
}

/** Which library wrote an index file. */
export type IndexKind = 'usearch' | 'hnswlib';

/** Storage of the vectors inside the index: full float32 or half precision (half the memory). */
export type IndexPrecision = 'f32' | 'f16';

export interface IndexOptions {
  /** Links per node (HNSW's M). */
  m?: number;
  efConstruction?: number;
  /** Search breadth at query time (raised to k when k is larger). */
  efSearch?: number;
  seed?: number;
  /** Build and batch-search threads (usearch only; default: every core; hnswlib uses shards instead). */
  threads?: number;
  precision?: IndexPrecision;
}

export interface Index {
  readonly kind: IndexKind;
  readonly dim: number;
  readonly size: number;
  /** The search breadth queries run with. */
  readonly efSearch: number;
  /** The k most similar items to a vector, best first (similarity = inner product). */
  query(vector: ArrayLike<number>, k: number): Neighbour[];
  /** The k most similar items of each query row: [rows × k] indices (-1 where none) and similarities. */
  queryBatch(queries: Matrix, k: number): { indices: Int32Array; similarities: Float32Array };
  /** The kNN graph of the indexed items themselves (each item's k neighbours, itself excluded). */
  knnGraph(vectors: Matrix, k: number, onProgress?: (done: number, total: number) => void): KnnGraph;
  /** Save atomically; a failure is a WriteError naming `file`. */
  save(file: string): Promise<void>;
}

/** Defaults of a workspace index (measured in bench/indexCompare.ts; see bench/RESULTS.md). */
export const INDEX_DEFAULTS = { m: 16, efConstruction: 200, efSearch: 64 } as const;

/**
 * The kNN graph from batched queries: each row asks for k + 1 and drops itself (or, when duplicates
 * crowd it out, its last neighbour).
 */
export function knnGraphOf(
  index: Pick<Index, 'queryBatch'>,
  vectors: Matrix,
  k: number,
  onProgress?: (done: number, total: number) => void,
): KnnGraph {
  const neighbors = new Int32Array(vectors.rows * k).fill(-1);
  const similarities = new Float32Array(vectors.rows * k);
  const batch = 10_000;
  for (let start = 0; start < vectors.rows; start += batch) {
    const end = Math.min(vectors.rows, start + batch);
    const found = index.queryBatch(
      {
        rows: end - start,
        cols: vectors.cols,
        data: vectors.data.subarray(start * vectors.cols, end * vectors.cols),
      },
      k + 1,
    );
    for (let r = 0; r < end - start; r++) {
      const i = start + r;
      let j = 0;
      for (let t = 0; t <= k && j < k; t++) {
        const idx = found.indices[r * (k + 1) + t]!;
        if (idx < 0 || idx === i) continue;
        neighbors[i * k + j] = idx;
        similarities[i * k + j] = found.similarities[r * (k + 1) + t]!;
        j++;
      }
    }
    onProgress?.(end, vectors.rows);
  }
  return { k, neighbors, similarities };
}
