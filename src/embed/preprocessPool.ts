/**
 * Image preprocessing (decode, resize, normalise: `pixels.ts`) in a pool of worker threads.
 *
 * Why: onnxruntime-node's `session.run` holds the main thread for the whole inference, so JavaScript
 * pixel work left there (the exact Pillow bicubic and the normalisation, most of the ~3 ms per CIFAR
 * image) cannot overlap the model and the embed pipeline runs decode and inference one after the other.
 * In a worker it runs while the model runs. Jobs are posted as soon as they are asked for, because the
 * main thread cannot hand out work while it is inside `run`.
 *
 * The worker loads this very module (src/io/threads.ts), which serves jobs when it finds itself in such
 * a worker.
 *
 * When inference runs on the CPU with a thread per core, a worker preprocessing at the same time takes
 * a core from it, and every operator waits for its slowest thread: measured on 2 cores, that costs the
 * model about as much time as the worker spends. The encoder then holds the workers while its model
 * runs (`whileModelRuns`): they preprocess in the gaps between batches instead, while the main thread
 * reads shards, tokenises captions and writes embeddings on one core and the other would idle.
 */
import { availableParallelism } from 'node:os';
import { parentPort, type Worker } from 'node:worker_threads';
import sharp from 'sharp';
import { startModuleWorker, workerTask } from '../io/threads.js';
import { preprocessImageInThread, type ImagePreprocessorConfig } from './pixels.js';

const TASK = 'clipcurate:preprocess';

interface Job {
  id: number;
  bytes: Uint8Array;
  config: ImagePreprocessorConfig;
}

type Reply = { id: number; pixels: Float32Array } | { id: number; error: string };

if (workerTask()?.task === TASK) serve();

function serve(): void {
  // libvips' operation cache keeps recent results for reuse; one-off decodes never hit it, and without
  // it a CIFAR JPEG's decode took 0.66 ms instead of 0.78 (1,600 decodes in a loop). The switch is
  // libvips-wide, so it holds for the whole process once a worker starts.
  sharp.cache(false);
  const port = parentPort!;
  const gate = new Int32Array((workerTask()!.data as WorkerData).gate);
  port.on('message', (job: Job) => {
    // Held (see the module comment): wait until the model's run is over. Jobs already handed to sharp
    // finish meanwhile; this only delays the next one.
    while (Atomics.load(gate, 0) === HELD) Atomics.wait(gate, 0, HELD, 1000);
    const bytes = Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength);
    preprocessImageInThread(bytes, job.config).then(
      (pixels) => port.postMessage({ id: job.id, pixels } satisfies Reply, [pixels.buffer as ArrayBuffer]),
      (err: unknown) =>
        port.postMessage({
          id: job.id,
          error: err instanceof Error ? err.message : String(err),
        } satisfies Reply),
    );
  });
}

interface WorkerData {
  gate: SharedArrayBuffer;
}

/** One flag shared with every worker: HELD while a model that uses every core runs. */
const HELD = 1;
const gateBuffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
const gate = new Int32Array(gateBuffer);

/**
 * Run `model` with the preprocessing workers held (they start no new image until it returns). For a
 * model that runs on every core of this machine (see the module comment); others should not call it.
 */
export async function whileModelRuns<T>(model: () => Promise<T>): Promise<T> {
  Atomics.store(gate, 0, HELD);
  try {
    return await model();
  } finally {
    Atomics.store(gate, 0, 0);
    Atomics.notify(gate, 0);
  }
}

/** Whether a model with `intraOpThreads` CPU threads (0: onnxruntime's default, one per core) takes every core. */
export function modelTakesEveryCore(intraOpThreads: number): boolean {
  return intraOpThreads === 0 || intraOpThreads >= availableParallelism();
}

function startWorker(): Worker {
  return startModuleWorker(import.meta.url, TASK, { gate: gateBuffer } satisfies WorkerData);
}

interface Slot {
  worker: Worker;
  outstanding: number;
}

interface Waiting {
  slot: Slot;
  resolve: (pixels: Float32Array) => void;
  reject: (err: Error) => void;
}

class PreprocessPool {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private closing = false;

  constructor(readonly threads: number) {}

  run(bytes: Buffer, config: ImagePreprocessorConfig): Promise<Float32Array> {
    const slot = this.pick();
    const id = this.nextId++;
    // A copy of just these bytes: a Buffer is often a view into a larger one (a whole decompressed
    // shard), which posting would clone entirely.
    const copy = new Uint8Array(bytes);
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { slot, resolve, reject });
      if (slot.outstanding++ === 0) slot.worker.ref();
      slot.worker.postMessage({ id, bytes: copy, config } satisfies Job, [copy.buffer]);
    });
  }

  /** Stop the workers once the jobs already posted are done. */
  close(): void {
    this.closing = true;
    for (const slot of [...this.slots]) if (slot.outstanding === 0) this.stop(slot);
  }

  /** The worker with the fewest jobs, starting a new one while the pool is not full. */
  private pick(): Slot {
    const idle = this.slots.find((s) => s.outstanding === 0);
    if (idle) return idle;
    if (this.slots.length < this.threads) return this.start();
    return this.slots.reduce((a, b) => (b.outstanding < a.outstanding ? b : a));
  }

  private start(): Slot {
    const slot: Slot = { worker: startWorker(), outstanding: 0 };
    slot.worker.unref();
    slot.worker.on('message', (reply: Reply) => this.settle(slot, reply));
    slot.worker.on('error', (err) => this.fail(slot, err.message));
    slot.worker.on('exit', (code) => this.fail(slot, `it exited with code ${code}`));
    this.slots.push(slot);
    return slot;
  }

  private settle(slot: Slot, reply: Reply): void {
    const job = this.waiting.get(reply.id);
    if (!job) return;
    this.waiting.delete(reply.id);
    if ('error' in reply) job.reject(new Error(reply.error));
    else job.resolve(reply.pixels);
    if (--slot.outstanding === 0) {
      slot.worker.unref();
      if (this.closing) this.stop(slot);
    }
  }

  /** A worker that died takes its jobs with it: they fail, and the next job starts a fresh worker. */
  private fail(slot: Slot, why: string): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.slots.splice(index, 1);
    for (const [id, job] of this.waiting) {
      if (job.slot !== slot) continue;
      this.waiting.delete(id);
      job.reject(new Error(`the image preprocessing worker stopped (${why})`));
    }
  }

  private stop(slot: Slot): void {
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots.splice(index, 1);
    void slot.worker.terminate();
  }
}

/**
 * Default pool size: every core but one, which is left to the main thread (reading shards, running the
 * model). On 2 cores that is one worker; onnxruntime's threads and the worker then share the cores, and
 * onnxruntime's idle threads must not spin (the CLIP encoders turn spinning off).
 */
function defaultThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

let configuredThreads: number | undefined;
let pool: PreprocessPool | undefined;

/** Worker threads that preprocess images (0: none, images are preprocessed on the calling thread). */
export function preprocessThreads(): number {
  return configuredThreads ?? defaultThreads();
}

/**
 * Set the number of preprocessing worker threads (`threads: 0` preprocesses on the calling thread);
 * `undefined` restores the default. Workers already busy finish their jobs first.
 */
export function configurePreprocessPool(options: { threads?: number }): void {
  const { threads } = options;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 0))
    throw new Error(`preprocess threads must be a whole number ≥ 0 (0: no worker threads); got ${threads}`);
  configuredThreads = threads;
  pool?.close();
  pool = undefined;
}

/** `preprocessImageInThread` in the pool's workers (on the calling thread when the pool has none). */
export function preprocessOffThread(bytes: Buffer, config: ImagePreprocessorConfig): Promise<Float32Array> {
  const threads = preprocessThreads();
  if (threads === 0) return preprocessImageInThread(bytes, config);
  pool ??= new PreprocessPool(threads);
  return pool.run(bytes, config);
}
