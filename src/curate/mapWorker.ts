/**
 * Runs the map layout (mapLayout.ts) in a worker thread, so the process that asked for it (the VS Code
 * extension host: grid pages, thumbnails, every other extension) keeps answering while UMAP runs for
 * tens of seconds.
 *
 * The worker loads this very module (src/io/threads.ts), which serves the layout when it finds itself in
 * such a worker.
 */
import { parentPort, type Worker } from 'node:worker_threads';
import { startModuleWorker, workerTask } from '../io/threads.js';
import { computeLayout, type Layout, type LayoutInput } from './mapLayout.js';

const TASK = 'clipcurate:map-layout';

type FromWorker =
  | { type: 'progress'; done: number; total: number }
  | { type: 'done'; layout: Layout }
  | { type: 'error'; message: string };

const started = workerTask();
if (started?.task === TASK) serve((started.data as { input: LayoutInput }).input);

function serve(input: LayoutInput): void {
  const port = parentPort!;
  const send = (m: FromWorker) => port.postMessage(m);
  computeLayout(input, (done, total) => send({ type: 'progress', done, total })).then(
    (layout) => send({ type: 'done', layout }),
    (err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
  );
}

function startWorker(input: LayoutInput): Worker {
  return startModuleWorker(import.meta.url, TASK, { input });
}

/** The layout of `input`, computed in a worker thread; aborting `signal` stops the worker. */
export function layoutOffThread(
  input: LayoutInput,
  options: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<Layout> {
  options.signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const worker = startWorker(input);
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      outcome();
      void worker.terminate();
    };
    const onAbort = () => finish(() => reject(options.signal!.reason));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'progress') options.onProgress?.(m.done, m.total);
      else if (m.type === 'done') finish(() => resolve(m.layout));
      else finish(() => reject(new Error(`computing the map failed: ${m.message}`)));
    });
    worker.on('error', (err) => finish(() => reject(new Error(`computing the map failed: ${err.message}`))));
    worker.on('exit', (code) =>
      finish(() => reject(new Error(`the map worker stopped (exit code ${code}) before the map was done`))),
    );
  });
}
