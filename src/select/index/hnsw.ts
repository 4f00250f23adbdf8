/**
 * The only importer of hnswlib-node. An HNSW index (Malkov & Yashunin 2018) over unit vectors with inner
 * product as similarity: build, persist, reload, query by vector, and export the sparse kNN graph the
 * graph-based selectors use.
 */
import hnswlib from 'hnswlib-node';
import type { KnnGraph } from '../contract.js';
import { rowsOf, type Matrix } from '../kernels/similarity.js';

export interface HnswOptions {
  /** Links per node (hnswlib's M). */
  m?: number;
  efConstruction?: number;
  /** Search breadth at query time (≥ k). */
  efSearch?: number;
  seed?: number;
}

export interface Neighbour {
  index: number;
  similarity: number;
}

export class HnswIndex {
  private constructor(
    private readonly index: hnswlib.HierarchicalNSW,
    readonly dim: number,
    readonly size: number,
  ) {}

  static build(
    vectors: Matrix,
    options: HnswOptions = {},
    onProgress?: (done: number, total: number) => void,
  ): HnswIndex {
    const index = new hnswlib.HierarchicalNSW('ip', vectors.cols);
    index.initIndex(vectors.rows, options.m ?? 16, options.efConstruction ?? 200, options.seed ?? 100);
    for (let i = 0; i < vectors.rows; i++) {
      index.addPoint(Array.from(rowsOf(vectors, i, i + 1).data), i);
      if (onProgress && (i + 1) % 10_000 === 0) onProgress(i + 1, vectors.rows);
    }
    index.setEf(options.efSearch ?? 64);
    return new HnswIndex(index, vectors.cols, vectors.rows);
  }

  static async load(file: string, dim: number, efSearch = 64): Promise<HnswIndex> {
    const index = new hnswlib.HierarchicalNSW('ip', dim);
    await index.readIndex(file);
    index.setEf(efSearch);
    return new HnswIndex(index, dim, index.getCurrentCount());
  }

  async save(file: string): Promise<void> {
    await this.index.writeIndex(file);
  }

  /** The stored vector of item `index`. */
  vectorOf(index: number): Float32Array {
    return Float32Array.from(this.index.getPoint(index));
  }

  /** The k most similar items to a vector, best first (similarity = inner product). */
  query(vector: ArrayLike<number>, k: number): Neighbour[] {
    if (vector.length !== this.dim)
      throw new Error(`query has ${vector.length} dimensions, the index ${this.dim}`);
    const kk = Math.min(k, this.size);
    if (this.index.getEf() < kk) this.index.setEf(kk);
    const { neighbors, distances } = this.index.searchKnn(Array.from(vector), kk);
    return neighbors
      .map((index, j) => ({ index, similarity: 1 - distances[j]! }))
      .sort((a, b) => b.similarity - a.similarity || a.index - b.index);
  }

  /** The kNN graph of the indexed items themselves (each item's k neighbours, itself excluded). */
  knnGraph(vectors: Matrix, k: number, onProgress?: (done: number, total: number) => void): KnnGraph {
    const neighbors = new Int32Array(vectors.rows * k).fill(-1);
    const similarities = new Float32Array(vectors.rows * k);
    for (let i = 0; i < vectors.rows; i++) {
      const found = this.query(rowsOf(vectors, i, i + 1).data, k + 1)
        .filter((n) => n.index !== i)
        .slice(0, k);
      found.forEach((n, j) => {
        neighbors[i * k + j] = n.index;
        similarities[i * k + j] = n.similarity;
      });
      if (onProgress && (i + 1) % 10_000 === 0) onProgress(i + 1, vectors.rows);
    }
    return { k, neighbors, similarities };
  }
}
