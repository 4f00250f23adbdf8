/**
 * An HNSW index split into shards, each an hnswlib graph built on its own worker thread, searched
 * together: a query asks every shard for its k best and keeps the k best of all. hnswlib-node adds
 * points one at a time on one thread; shards are how its build uses every core. Item i lives in shard
 * i mod S as that shard's item ⌊i / S⌋ (interleaved, so every shard's worker has work from the first
 * block of a pool read in order).
 *
 * Why this and not usearch's threaded build: at 1M × 512 two shards built in 620 s wall / 1,192 CPU s
 * against usearch-f16's 1,396 s / 1,852 CPU s, and reached recall@10 0.945 at efSearch 256 and 0.992
 * at 1024 (usearch-f16 0.863 / 0.961), bench/RESULTS.md "kNN index candidates at N = 1,000,000". Each
 * shard is built in a fixed order on one thread, so a build is byte-reproducible for a given shard
 * count. Its price is float32 storage (~2.2 kB an item at d = 512), twice usearch-f16's.
 */
import { parentPort, type Worker } from 'node:worker_threads';
import { WriteError } from '../../io/atomic.js';
import { startModuleWorker, workerTask } from '../../io/threads.js';
import type { KnnGraph } from '../contract.js';
import type { Matrix } from '../kernels/similarity.js';
import { HnswIndex, type HnswOptions } from './hnsw.js';
import { knnGraphOf, type Index, type Neighbour } from './types.js';

/** The files of an index of `shards` shards saved as `file` (`image.hnsw` → `image.0.hnsw`, …). */
export function shardFiles(file: string, shards: number): string[] {
  if (shards === 1) return [file];
  const dot = file.endsWith('.hnsw') ? file.length - '.hnsw'.length : file.length;
  return Array.from({ length: shards }, (_, s) => `${file.slice(0, dot)}.${s}${file.slice(dot)}`);
}

/** How many of `n` items shard `s` of `shards` holds (items s, s + S, s + 2S, …). */
export function shardRows(n: number, shards: number, s: number): number {
  return Math.max(0, Math.ceil((n - s) / shards));
}

export class ShardedHnswIndex implements Index {
  readonly kind = 'hnswlib';

  constructor(private readonly parts: readonly HnswIndex[]) {
    if (parts.length === 0) throw new Error('an index needs at least one shard');
  }

  get shards(): number {
    return this.parts.length;
  }

  get dim(): number {
    return this.parts[0]!.dim;
  }

  get size(): number {
    return this.parts.reduce((n, p) => n + p.size, 0);
  }

  get efSearch(): number {
    return this.parts[0]!.efSearch;
  }

  /** Search every shard with breadth `ef` from now on. */
  setEfSearch(ef: number): void {
    for (const p of this.parts) p.setEfSearch(ef);
  }

  /** Load the shard files `files` (shard order); a missing or damaged one is an IndexFileError naming it. */
  static async load(files: readonly string[], dim: number, efSearch: number): Promise<ShardedHnswIndex> {
    // hnswlib-node reads off the main thread: the shards load side by side.
    return new ShardedHnswIndex(await Promise.all(files.map((f) => HnswIndex.load(f, dim, efSearch))));
  }

  /** Save each shard atomically to its file of `shardFiles(file, shards)`. */
  async save(file: string): Promise<void> {
    const files = shardFiles(file, this.shards);
    for (let s = 0; s < this.shards; s++) await this.parts[s]!.save(files[s]!);
  }

  query(vector: ArrayLike<number>, k: number): Neighbour[] {
    if (vector.length !== this.dim)
      throw new Error(`query has ${vector.length} dimensions, the index ${this.dim}`);
    const S = this.shards;
    const found: Neighbour[] = [];
    this.parts.forEach((part, s) => {
      for (const h of part.query(vector, k)) found.push({ index: h.index * S + s, similarity: h.similarity });
    });
    return found.sort((a, b) => b.similarity - a.similarity || a.index - b.index).slice(0, k);
  }

  queryBatch(queries: Matrix, k: number): { indices: Int32Array; similarities: Float32Array } {
    if (queries.cols !== this.dim)
      throw new Error(`queries have ${queries.cols} dimensions, the index ${this.dim}`);
    const indices = new Int32Array(queries.rows * k).fill(-1);
    const similarities = new Float32Array(queries.rows * k);
    for (let r = 0; r < queries.rows; r++) {
      this.query(queries.data.subarray(r * queries.cols, (r + 1) * queries.cols), k).forEach((h, j) => {
        indices[r * k + j] = h.index;
        similarities[r * k + j] = h.similarity;
      });
    }
    return { indices, similarities };
  }

  knnGraph(vectors: Matrix, k: number, onProgress?: (done: number, total: number) => void): KnnGraph {
    return knnGraphOf(this, vectors, k, onProgress);
  }
}

// ---- The build: one worker thread per shard ----

const TASK = 'clipcurate:hnsw-shard';

interface ShardSpec {
  dim: number;
  capacity: number;
  options: HnswOptions;
}

type ToShard = { type: 'add'; rows: Float32Array } | { type: 'save'; file: string };
type FromShard =
  | { type: 'progress'; added: number }
  | { type: 'added' }
  | { type: 'saved' }
  | { type: 'error'; message: string; file?: string; code?: string };

const started = workerTask();
if (started?.task === TASK) serveShard(started.data as ShardSpec);

/** In a shard's worker: add the rows each message brings, save when told to. */
function serveShard(spec: ShardSpec): void {
  const port = parentPort!;
  const send = (m: FromShard) => port.postMessage(m);
  const index = HnswIndex.empty(spec.dim, spec.capacity, spec.options);
  port.on('message', (m: ToShard) => {
    if (m.type === 'add') {
      const before = index.size;
      try {
        index.add({ rows: m.rows.length / spec.dim, cols: spec.dim, data: m.rows }, (added) =>
          send({ type: 'progress', added: before + added }),
        );
        send({ type: 'added' });
      } catch (err) {
        send({ type: 'error', message: (err as Error).message });
      }
      return;
    }
    index.save(m.file).then(
      () => send({ type: 'saved' }),
      (err: unknown) =>
        send({
          type: 'error',
          message: (err as Error).message,
          // A WriteError is rebuilt on the other side from its file, code and cause (not its message,
          // which would then be prefixed twice).
          ...(err instanceof WriteError
            ? { file: err.file, code: err.code, message: String((err.cause as Error)?.message ?? err.cause) }
            : {}),
        }),
    );
  });
}

/** One shard's worker as the building thread sees it: one request in flight at a time. */
class ShardWorker {
  added = 0;
  private waiting: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(
    readonly worker: Worker,
    onProgress: () => void,
  ) {
    worker.on('message', (m: FromShard) => {
      if (m.type === 'progress') {
        this.added = m.added;
        onProgress();
      } else if (m.type === 'error') {
        this.fail(m.file ? new WriteError(m.file, m.code, new Error(m.message)) : new Error(m.message));
      } else {
        const w = this.waiting;
        this.waiting = undefined;
        w?.resolve();
      }
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) =>
      this.fail(new Error(`an index shard worker stopped (exit code ${code}) before its shard was saved`)),
    );
  }

  /** Send `message` once the previous request is answered; resolves when this one is. */
  async request(message: ToShard, transfer: ArrayBuffer[] = []): Promise<void> {
    if (this.failure) throw this.failure;
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage(message, transfer);
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(this.failure);
  }
}

/**
 * Builds a sharded index of up to `total` items, fed block by block in item order: `add` hands each shard its
 * rows of the block and returns once the previous block is in (so the next block is read while this
 * one is added), `save` writes every shard's file, stops the workers (also when it fails) and loads
 * the saved index. `close` stops the workers of a build that will not be saved.
 */
export class ShardedHnswBuilder {
  private readonly workers: ShardWorker[];
  private next = 0;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    readonly dim: number,
    readonly total: number,
    readonly shards: number,
    private readonly options: HnswOptions = {},
    private readonly onProgress?: (done: number, total: number) => void,
  ) {
    if (!Number.isInteger(shards) || shards < 1)
      throw new Error(`shards must be a positive integer, not ${shards}`);
    const report = () => this.onProgress?.(this.added, this.total);
    this.workers = Array.from(
      { length: shards },
      (_, s) =>
        new ShardWorker(
          startModuleWorker(import.meta.url, TASK, {
            dim,
            capacity: shardRows(total, shards, s),
            options,
          } satisfies ShardSpec),
          report,
        ),
    );
  }

  /** Items added so far, over all shards. */
  get added(): number {
    return this.workers.reduce((n, w) => n + w.added, 0);
  }

  /** Add the next `block.rows` items (they follow the items of earlier blocks). */
  async add(block: Matrix): Promise<void> {
    if (block.cols !== this.dim) throw new Error(`rows have ${block.cols} dimensions, the index ${this.dim}`);
    if (this.next + block.rows > this.total)
      throw new Error(`more rows than the ${this.total} the index was sized for`);
    await this.inFlight;
    const S = this.shards;
    const first = this.next;
    this.next += block.rows;
    this.inFlight = Promise.all(
      this.workers.map((w, s) => {
        // The block's rows of shard s: items first + r with (first + r) mod S = s.
        const r0 = (((s - first) % S) + S) % S;
        const count = r0 < block.rows ? Math.ceil((block.rows - r0) / S) : 0;
        const rows = new Float32Array(count * this.dim);
        for (let j = 0; j < count; j++) {
          const r = r0 + j * S;
          rows.set(block.data.subarray(r * this.dim, (r + 1) * this.dim), j * this.dim);
        }
        return w.request({ type: 'add', rows }, [rows.buffer]);
      }),
    ).then(() => undefined);
    // A failure surfaces at the next add or at save; keep it from being reported as unhandled meanwhile.
    this.inFlight.catch(() => undefined);
  }

  /**
   * Wait for the last block, save shard s to `shardFiles(file, S)[s]` (each atomically, in its worker),
   * stop the workers and load the saved shards at `efSearch`.
   */
  async save(file: string, efSearch: number): Promise<ShardedHnswIndex> {
    const files = shardFiles(file, this.shards);
    try {
      await this.inFlight;
      await Promise.all(this.workers.map((w, s) => w.request({ type: 'save', file: files[s]! })));
    } finally {
      // Also after a failure: no worker outlives the build. And the workers' copies go before the saved
      // files are loaded, so the index is held once, not twice.
      await this.close();
    }
    return ShardedHnswIndex.load(files, this.dim, efSearch);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
