/**
 * Worker threads that run one of this project's own modules, wherever it is loaded from. A module that
 * serves work in a worker checks `workerTask()` at its top level and serves when the task is its own;
 * the caller starts it with `startModuleWorker(import.meta.url, task, data)`.
 *
 * Where the module lives decides how the worker loads it: the compiled ES module (CLI, API) is loaded as
 * is; the extension's single-file bundle is loaded with its `vscode` import stubbed (a worker never
 * touches the VS Code API, and only the extension host can provide it); the TypeScript source (tests,
 * `tsx` scripts) is bundled with esbuild (a development dependency), since Node 20 applies no loader
 * hooks inside workers.
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

interface TaskData {
  task: string;
  data: unknown;
}

/** The task and data this thread was started with, when it is a worker started by startModuleWorker. */
export function workerTask(): TaskData | undefined {
  if (isMainThread) return undefined;
  const d = workerData as Partial<TaskData> | null;
  return typeof d?.task === 'string' ? (d as TaskData) : undefined;
}

/** Starts a worker thread running the module at `moduleUrl` (its import.meta.url) with `task` and `data`. */
export function startModuleWorker(moduleUrl: string, task: string, data: unknown): Worker {
  const self = fileURLToPath(moduleUrl);
  const payload: TaskData = { task, data };
  if (self.endsWith('.cjs'))
    return new Worker(BUNDLE_LOADER, { eval: true, workerData: { ...payload, bundle: self } });
  if (self.endsWith('.ts')) return new Worker(bundledSource(self), { eval: true, workerData: payload });
  return new Worker(self, { workerData: payload });
}

/** Loads the extension bundle in a worker with `require('vscode')` answered by an empty module. */
const BUNDLE_LOADER = `
const Module = require('node:module');
const load = Module._load;
Module._load = function (request, ...rest) {
  return request === 'vscode' ? {} : load.call(this, request, ...rest);
};
require(require('node:worker_threads').workerData.bundle);
`;

const bundles = new Map<string, string>();

/** The TypeScript source bundled into one CommonJS script (once per file and process). */
function bundledSource(file: string): string {
  let text = bundles.get(file);
  if (text === undefined) {
    const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
    const out = esbuild.buildSync({
      entryPoints: [file],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      write: false,
      packages: 'external',
      define: { 'import.meta.url': 'importMetaUrl' },
      banner: { js: `const importMetaUrl = ${JSON.stringify(pathToFileURL(file).href)};` },
    });
    text = out.outputFiles[0]!.text;
    bundles.set(file, text);
  }
  return text;
}

type ToWorker<I> = { id: number; input: I };
type FromWorker<O> = { id: number; output: O } | { id: number; error: string };

/**
 * In a worker started for `task` by mapOnWorkers: answers every job with `handler(input)`. Call it at the
 * serving module's top level; it does nothing in any other thread.
 */
export function serveJobs<I, O>(task: string, handler: (input: I) => Promise<O>): void {
  if (workerTask()?.task !== task) return;
  const port = parentPort!;
  port.on('message', (m: ToWorker<I>) => {
    handler(m.input).then(
      (output) => port.postMessage({ id: m.id, output } satisfies FromWorker<O>),
      (err: unknown) =>
        port.postMessage({
          id: m.id,
          error: err instanceof Error ? err.message : String(err),
        } satisfies FromWorker<O>),
    );
  });
}

/**
 * Runs `jobs` on `workers` threads of the module at `moduleUrl` (which calls serveJobs for `task`), each
 * thread taking the next job when it finishes one; outputs come back in job order. A job's input is made
 * only when a thread takes it (so only `workers` inputs exist at once), and its buffers are transferred,
 * not copied. The first failure, or `signal`, stops every thread.
 */
export function mapOnWorkers<I, O>(
  moduleUrl: string,
  task: string,
  jobs: ReadonlyArray<() => { input: I; transfer?: ArrayBuffer[] }>,
  workers: number,
  options: { signal?: AbortSignal; onOutput?: (index: number, output: O) => void } = {},
): Promise<O[]> {
  options.signal?.throwIfAborted();
  const outputs = new Array<O>(jobs.length);
  if (jobs.length === 0) return Promise.resolve(outputs);
  return new Promise((resolve, reject) => {
    const threads: Worker[] = [];
    let next = 0;
    let done = 0;
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      for (const t of threads) void t.terminate();
      outcome();
    };
    const onAbort = () => finish(() => reject(options.signal!.reason));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const give = (thread: Worker) => {
      if (next >= jobs.length) return;
      const id = next++;
      const { input, transfer } = jobs[id]!();
      thread.postMessage({ id, input } satisfies ToWorker<I>, transfer ?? []);
    };
    for (let w = 0; w < Math.min(workers, jobs.length); w++) {
      const thread = startModuleWorker(moduleUrl, task, null);
      threads.push(thread);
      thread.on('message', (m: FromWorker<O>) => {
        if ('error' in m) return finish(() => reject(new Error(m.error)));
        outputs[m.id] = m.output;
        options.onOutput?.(m.id, m.output);
        if (++done === jobs.length) return finish(() => resolve(outputs));
        give(thread);
      });
      thread.on('error', (err) => finish(() => reject(err)));
      thread.on('exit', (code) =>
        finish(() =>
          reject(new Error(`a ${task} worker stopped (exit code ${code}) before its work was done`)),
        ),
      );
      give(thread);
    }
  });
}
