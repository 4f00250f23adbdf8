/**
 * The only importer of hnswlib-node. An HNSW index (Malkov & Yashunin 2018) over unit vectors with inner
 * product as similarity: build, persist, reload, query by vector, and export the sparse kNN graph the
 * graph-based selectors use. Its build runs on one thread: a workspace index is several of these built
 * side by side on worker threads (`ShardedHnswIndex`, shardedHnsw.ts); the map layout builds one alone.
 */
import { open, rename, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import hnswlib from 'hnswlib-node';
import { syncDir, WriteError } from '../../io/atomic.js';
import { failpoint } from '../../io/failpoints.js';
import type { KnnGraph } from '../contract.js';
import { rowsOf, type Matrix } from '../kernels/similarity.js';
import type { Index, IndexOptions, Neighbour } from './types.js';

export type { Neighbour } from './types.js';
/** hnswlib's options: M, efConstruction, efSearch, seed (threads and precision do not apply). */
export type HnswOptions = Pick<IndexOptions, 'm' | 'efConstruction' | 'efSearch' | 'seed'>;

/** An index file that is missing, cut short or not an hnswlib index; the message names it. */
export class IndexFileError extends Error {
  override name = 'IndexFileError';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** hnswlib's file header: 6 size_t, int maxlevel, uint32 entry point, 3 size_t, double mult, size_t ef. */
const HEADER_BYTES = 96;

/**
 * Check that `file` is a whole hnswlib index: the header, every element's level-0 record, and one
 * length-prefixed link list per element that together end exactly at the end of the file. (hnswlib's
 * own writer does not report a failed write, and its reader says only "Index seems to be corrupted".)
 * Returns the element count.
 */
export async function checkIndexFile(file: string): Promise<number> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new IndexFileError(file, code === 'ENOENT' ? 'missing' : (err as Error).message);
  }
  try {
    const size = (await handle.stat()).size;
    const cut = (what: string) => new IndexFileError(file, `cut short or damaged (${what}, ${size} bytes)`);
    if (size < HEADER_BYTES) throw cut('no complete header');
    const header = Buffer.alloc(HEADER_BYTES);
    await handle.read(header, 0, HEADER_BYTES, 0);
    const count = Number(header.readBigUInt64LE(16));
    const perElement = Number(header.readBigUInt64LE(24));
    const level0End = HEADER_BYTES + count * perElement;
    if (!Number.isSafeInteger(level0End) || perElement <= 0) throw cut('not an hnswlib index header');
    if (size < level0End + 4 * count) throw cut(`${count} elements do not fit`);
    // The link lists: a uint32 length and that many bytes per element, read in chunks.
    const rest = size - level0End;
    const chunk = Buffer.alloc(Math.min(rest, 1 << 22));
    let pos = 0; // relative to level0End
    let have = 0; // bytes of `chunk` valid, starting at file offset level0End + chunkStart
    let chunkStart = 0;
    for (let i = 0; i < count; i++) {
      if (pos + 4 > rest) throw cut(`link list ${i} of ${count} missing`);
      if (pos < chunkStart || pos + 4 > chunkStart + have) {
        chunkStart = pos;
        have = (await handle.read(chunk, 0, Math.min(chunk.length, rest - pos), level0End + pos)).bytesRead;
      }
      pos += 4 + chunk.readUInt32LE(pos - chunkStart);
    }
    if (pos !== rest) throw cut(pos > rest ? 'last link list cut short' : 'trailing bytes');
    return count;
  } finally {
    await handle.close();
  }
}

export class HnswIndex implements Index {
  readonly kind = 'hnswlib';

  private constructor(
    private readonly index: hnswlib.HierarchicalNSW,
    readonly dim: number,
    private count: number,
  ) {}

  /** Items added so far. */
  get size(): number {
    return this.count;
  }

  static build(
    vectors: Matrix,
    options: HnswOptions = {},
    onProgress?: (done: number, total: number) => void,
  ): HnswIndex {
    const index = HnswIndex.empty(vectors.cols, vectors.rows, options);
    index.add(vectors, onProgress && ((added) => onProgress(added, vectors.rows)));
    return index;
  }

  /** An index with room for `capacity` items and none yet, filled block by block with `add`. */
  static empty(dim: number, capacity: number, options: HnswOptions = {}): HnswIndex {
    const index = new hnswlib.HierarchicalNSW('ip', dim);
    index.initIndex(
      Math.max(1, capacity),
      options.m ?? 16,
      options.efConstruction ?? 200,
      options.seed ?? 100,
    );
    index.setEf(options.efSearch ?? 64);
    return new HnswIndex(index, dim, 0);
  }

  /**
   * Add the rows of `vectors` as the next items (labels size, size + 1, …), one at a time on this
   * thread; `onProgress` gets the rows of this call added so far, every 10,000.
   */
  add(vectors: Matrix, onProgress?: (added: number) => void): void {
    if (vectors.cols !== this.dim)
      throw new Error(`rows have ${vectors.cols} dimensions, the index ${this.dim}`);
    for (let i = 0; i < vectors.rows; i++) {
      this.index.addPoint(Array.from(rowsOf(vectors, i, i + 1).data), this.count++);
      if (onProgress && ((i + 1) % 10_000 === 0 || i + 1 === vectors.rows)) onProgress(i + 1);
    }
  }

  /** Load a saved index; a missing or damaged file is an IndexFileError naming it. */
  static async load(file: string, dim: number, efSearch = 64): Promise<HnswIndex> {
    await checkIndexFile(file);
    const index = new hnswlib.HierarchicalNSW('ip', dim);
    try {
      await index.readIndex(file);
    } catch (err) {
      throw new IndexFileError(file, `cannot be read (${(err as Error).message})`);
    }
    index.setEf(efSearch);
    return new HnswIndex(index, dim, index.getCurrentCount());
  }

  get efSearch(): number {
    return this.index.getEf();
  }

  /** Search with breadth `ef` from now on. */
  setEfSearch(ef: number): void {
    this.index.setEf(ef);
  }

  /**
   * Save atomically: hnswlib writes `<file>.tmp`, which is checked whole (hnswlib does not report a
   * failed write, e.g. on a full disk), synced and renamed over `file`. A failure removes the temporary
   * file and is a WriteError naming `file`.
   */
  async save(file: string): Promise<void> {
    const tmp = `${file}.tmp`;
    try {
      await this.index.writeIndex(tmp);
      try {
        await checkIndexFile(tmp);
      } catch (err) {
        const fs = await statfs(path.dirname(file)).catch(() => undefined);
        const full = fs !== undefined && fs.bavail * fs.bsize < 1 << 16;
        throw Object.assign(new Error(`the index was written incompletely (${(err as Error).message})`), {
          code: full ? 'ENOSPC' : undefined,
        });
      }
      const handle = await open(tmp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      failpoint('index.written');
      await rename(tmp, file);
      await syncDir(path.dirname(file));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new WriteError(file, (err as NodeJS.ErrnoException).code, err);
    }
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

  queryBatch(queries: Matrix, k: number): { indices: Int32Array; similarities: Float32Array } {
    const indices = new Int32Array(queries.rows * k).fill(-1);
    const similarities = new Float32Array(queries.rows * k);
    for (let r = 0; r < queries.rows; r++) {
      this.query(rowsOf(queries, r, r + 1).data, k).forEach((h, j) => {
        indices[r * k + j] = h.index;
        similarities[r * k + j] = h.similarity;
      });
    }
    return { indices, similarities };
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
