/**
 * The only importer of usearch: an HNSW index (Malkov & Yashunin 2018) built on every core, over unit
 * vectors with inner product as similarity, stored as float32 or float16. Item i has key i.
 *
 * Why usearch and not hnswlib-node: hnswlib-node's `addPoint` runs on one thread (1M × 512 took 1,761 s);
 * usearch adds a batch on N threads and its f16 storage halves the index's memory. Measurements in
 * bench/RESULTS.md ("kNN index").
 */
import { open, rename, rm, statfs } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import usearch, { type BatchMatches, type Index as NativeIndex, type Matches } from 'usearch';
import { syncDir, WriteError } from '../../io/atomic.js';
import { failpoint } from '../../io/failpoints.js';
import type { KnnGraph } from '../contract.js';
import type { Matrix } from '../kernels/similarity.js';
import { IndexFileError } from './hnsw.js';
import {
  INDEX_DEFAULTS,
  knnGraphOf,
  type Index,
  type IndexOptions,
  type IndexPrecision,
  type Neighbour,
} from './types.js';

/** Rows added per native call: the build reports progress between calls. */
const ADD_BATCH = 50_000;

/**
 * The first this many items of an index are added one at a time, the rest on every core. usearch
 * 2.26's threaded `add` leaves some nodes badly linked: on tight clusters of 15 (d = 32, shuffled;
 * scratch measurement of the kNN graph against cluster membership) 176 of 200 two-thread builds of 600
 * items and 29 of 30 of 6,000 items had a wrong neighbour somewhere, against 0 of 200 and 0 of 30 one
 * at a time. That costs build time: 20,000 × 512 random unit rows took 10.2–10.5 s one at a time
 * against 5.8–5.9 s on two threads, so pools of the panel's and the demo's size get the exact graph
 * for seconds, and at 1M the build stays on every core (recall@10 0.97, bench/RESULTS.md).
 */
export const SERIAL_BUILD_ITEMS = 50_000;

function usearchIndex(dim: number, options: IndexOptions): NativeIndex {
  return new usearch.Index({
    dimensions: dim,
    metric: usearch.MetricKind.IP,
    quantization: options.precision === 'f32' ? usearch.ScalarKind.F32 : usearch.ScalarKind.F16,
    connectivity: options.m ?? INDEX_DEFAULTS.m,
    expansion_add: options.efConstruction ?? INDEX_DEFAULTS.efConstruction,
    expansion_search: options.efSearch ?? INDEX_DEFAULTS.efSearch,
    multi: false,
  });
}

/**
 * Check the parts of a usearch file its loader trusts: the vector block (uint32 rows, uint32 bytes per
 * row, the rows) and the index header after it ("usearch" magic, counts, dimensions). usearch allocates
 * what a damaged header claims and aborts the process on failure, so this runs first. A file cut short
 * inside the graph that follows is reported by usearch itself (a catchable error).
 */
export async function checkUsearchFile(file: string, dim: number, precision: IndexPrecision): Promise<void> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new IndexFileError(file, code === 'ENOENT' ? 'missing' : (err as Error).message);
  }
  try {
    const size = (await handle.stat()).size;
    const damaged = (what: string) =>
      new IndexFileError(file, `damaged or not a usearch index (${what}, ${size} bytes)`);
    if (size < 8) throw damaged('no vector block header');
    const head = Buffer.alloc(8);
    await handle.read(head, 0, 8, 0);
    const rows = head.readUInt32LE(0);
    const rowBytes = head.readUInt32LE(4);
    const wantRowBytes = dim * (precision === 'f32' ? 4 : 2);
    if (rowBytes !== wantRowBytes)
      throw damaged(
        `${rowBytes} bytes per vector, expected ${wantRowBytes} for ${dim} ${precision} dimensions`,
      );
    const headerAt = 8 + rows * rowBytes;
    if (size < headerAt + HEADER_BYTES) throw damaged(`${rows} vectors do not fit`);
    const header = Buffer.alloc(HEADER_BYTES);
    await handle.read(header, 0, HEADER_BYTES, headerAt);
    if (header.toString('latin1', 0, 7) !== 'usearch') throw damaged('no usearch header after the vectors');
    const present = Number(header.readBigUInt64LE(17));
    const dimensions = Number(header.readBigUInt64LE(33));
    if (dimensions !== dim) throw damaged(`header says ${dimensions} dimensions, expected ${dim}`);
    if (present !== rows) throw damaged(`header counts ${present} vectors, the vector block ${rows}`);
  } finally {
    await handle.close();
  }
}

/** usearch's index header (index_dense_head_t): magic, version, kinds, counts, dimensions, multi. */
const HEADER_BYTES = 64;

export class UsearchIndex implements Index {
  readonly kind = 'usearch';

  private constructor(
    private readonly index: NativeIndex,
    readonly dim: number,
    readonly efSearch: number,
    private readonly threads: number,
    /** How the vectors are stored. */
    readonly precision: IndexPrecision,
  ) {}

  get size(): number {
    return this.index.size();
  }

  /** Build over the rows of `vectors` (f16 storage unless `precision: 'f32'`), on `threads` threads. */
  static build(
    vectors: Matrix,
    options: IndexOptions = {},
    onProgress?: (done: number, total: number) => void,
  ): UsearchIndex {
    const index = UsearchIndex.empty(vectors.cols, options);
    index.add(vectors, (done) => onProgress?.(done, vectors.rows));
    return index;
  }

  /** An index with no items yet, for a build that adds its rows block by block (`add`). */
  static empty(dim: number, options: IndexOptions = {}): UsearchIndex {
    const threads = options.threads ?? availableParallelism();
    return new UsearchIndex(
      usearchIndex(dim, options),
      dim,
      options.efSearch ?? INDEX_DEFAULTS.efSearch,
      threads,
      options.precision ?? 'f16',
    );
  }

  /**
   * Add the rows of `vectors` as the next items (keys size, size + 1, …); `onProgress` gets the rows
   * added so far. Items below `serialItems` ({@link SERIAL_BUILD_ITEMS} unless set) go in on one thread.
   */
  add(vectors: Matrix, onProgress?: (added: number) => void, serialItems = SERIAL_BUILD_ITEMS): void {
    if (vectors.cols !== this.dim)
      throw new Error(`rows have ${vectors.cols} dimensions, the index ${this.dim}`);
    const first = this.size;
    for (let start = 0; start < vectors.rows;) {
      const serial = first + start < serialItems;
      const end = Math.min(vectors.rows, start + ADD_BATCH, serial ? serialItems - first : Infinity);
      const keys = new BigUint64Array(end - start);
      for (let i = 0; i < keys.length; i++) keys[i] = BigInt(first + start + i);
      const rows = vectors.data.subarray(start * vectors.cols, end * vectors.cols);
      if (serial) this.addSerially(keys, rows);
      else this.index.add(keys, rows, this.threads);
      onProgress?.(end);
      start = end;
    }
  }

  /**
   * One insertion at a time, while searches can still use every thread: the native add that grows the
   * index sizes its per-thread search contexts by its own thread count (a one-thread add there would
   * leave `search` on more threads failing with "Reserve capacity ahead of searches"), so each growth
   * happens in a one-item add given every thread, and the items between growths go in on one thread.
   */
  private addSerially(keys: BigUint64Array, rows: Float32Array): void {
    for (let done = 0; done < keys.length;) {
      const size = this.index.size();
      const capacity = this.index.capacity();
      const grows = size + 1 >= capacity;
      const take = grows ? 1 : Math.min(keys.length - done, capacity - size - 1);
      this.index.add(
        keys.subarray(done, done + take),
        rows.subarray(done * this.dim, (done + take) * this.dim),
        grows ? this.threads : 1,
      );
      done += take;
    }
  }

  /**
   * Load a saved index whose vectors have `dim` dimensions and are stored at `precision` (`mapped`:
   * memory-map the file instead of reading it); a missing, damaged or mismatched file is an
   * IndexFileError naming it.
   */
  static async load(
    file: string,
    dim: number,
    options: { precision?: IndexPrecision; efSearch?: number; threads?: number; mapped?: boolean } = {},
  ): Promise<UsearchIndex> {
    await checkUsearchFile(file, dim, options.precision ?? 'f16');
    const index = usearchIndex(dim, options);
    try {
      // Mapped: the file's pages are shared with the page cache, not copied into the process (opening
      // one file several times, as the efSearch tuning does, then costs no more memory than once).
      if (options.mapped) index.view(file);
      else index.load(file);
    } catch (err) {
      throw new IndexFileError(file, `cannot be read (${(err as Error).message})`);
    }
    if (index.dimensions() !== dim)
      throw new IndexFileError(file, `holds ${index.dimensions()}-dimensional vectors, expected ${dim}`);
    return new UsearchIndex(
      index,
      dim,
      options.efSearch ?? INDEX_DEFAULTS.efSearch,
      options.threads ?? availableParallelism(),
      options.precision ?? 'f16',
    );
  }

  /** Save atomically: write `<file>.tmp`, sync, rename. A failure removes it and names `file`. */
  async save(file: string): Promise<void> {
    const tmp = `${file}.tmp`;
    try {
      this.index.save(tmp);
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
      // usearch reports a failed write without an errno: a (nearly) full disk is told apart here.
      let code = (err as NodeJS.ErrnoException).code;
      const fs = code ? undefined : await statfs(path.dirname(file)).catch(() => undefined);
      if (fs !== undefined && fs.bavail * fs.bsize < 1 << 20) code = 'ENOSPC';
      throw new WriteError(file, code, err);
    }
  }

  query(vector: ArrayLike<number>, k: number): Neighbour[] {
    if (vector.length !== this.dim)
      throw new Error(`query has ${vector.length} dimensions, the index ${this.dim}`);
    const { indices, similarities } = this.queryBatch(
      { rows: 1, cols: this.dim, data: Float32Array.from(vector) },
      k,
    );
    const out: Neighbour[] = [];
    for (let j = 0; j < indices.length; j++)
      if (indices[j]! >= 0) out.push({ index: indices[j]!, similarity: similarities[j]! });
    return out.sort((a, b) => b.similarity - a.similarity || a.index - b.index);
  }

  queryBatch(queries: Matrix, k: number): { indices: Int32Array; similarities: Float32Array } {
    if (queries.cols !== this.dim)
      throw new Error(`queries have ${queries.cols} dimensions, the index ${this.dim}`);
    const indices = new Int32Array(queries.rows * k).fill(-1);
    const similarities = new Float32Array(queries.rows * k);
    const kk = Math.min(k, this.size);
    if (queries.rows === 0 || kk === 0) return { indices, similarities };
    const found = this.index.search(queries.data, kk, this.threads) as Matches | BatchMatches;
    // One query gives Matches (keys, distances), several give BatchMatches (with counts, stride kk).
    const counts =
      found instanceof usearch.BatchMatches ? found.counts : BigUint64Array.of(BigInt(found.keys.length));
    for (let r = 0; r < queries.rows; r++) {
      const count = Number(counts[r]!);
      for (let j = 0; j < count; j++) {
        indices[r * k + j] = Number(found.keys[r * kk + j]!);
        similarities[r * k + j] = 1 - found.distances[r * kk + j]!; // usearch's ip distance is 1 − ⟨a, b⟩
      }
    }
    return { indices, similarities };
  }

  knnGraph(vectors: Matrix, k: number, onProgress?: (done: number, total: number) => void): KnnGraph {
    return knnGraphOf(this, vectors, k, onProgress);
  }
}
