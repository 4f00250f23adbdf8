/**
 * Runs the map layout (mapLayout.ts) in a worker thread, so the process that asked for it (the VS Code
 * extension host: grid pages, thumbnails, every other extension) keeps answering while UMAP runs for
 * tens of seconds.
 *
 * The worker loads this very module, which serves the layout when it finds itself in such a worker.
 * Where this module lives decides how: the compiled ES module (CLI, API) is loaded as is; the
 * extension's single-file bundle is loaded with its `vscode` import stubbed (the worker never touches
 * the VS Code API, and only the extension host can provide it); the TypeScript source (tests) is
 * loaded through tsx.
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { computeLayout, type Layout, type LayoutInput } from './mapLayout.js';

const TASK = 'clipcurate:map-layout';

type FromWorker =
  | { type: 'progress'; done: number; total: number }
  | { type: 'done'; layout: Layout }
  | { type: 'error'; message: string };

if (!isMainThread && (workerData as { task?: string } | null)?.task === TASK) serve();

function serve(): void {
  const port = parentPort!;
  const send = (m: FromWorker) => port.postMessage(m);
  computeLayout((workerData as { input: LayoutInput }).input, (done, total) =>
    send({ type: 'progress', done, total }),
  ).then(
    (layout) => send({ type: 'done', layout }),
    (err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
  );
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

/**
 * The TypeScript source (tests, `tsx` scripts) cannot be loaded in a worker as is (Node 20 applies no
 * loader hooks there): bundle this module with esbuild, a development dependency, and run the bundle.
 */
function bundledSource(file: string): string {
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
  return out.outputFiles[0]!.text;
}

function startWorker(input: LayoutInput): Worker {
  const self = fileURLToPath(import.meta.url);
  const data = { task: TASK, input };
  if (self.endsWith('.cjs'))
    return new Worker(BUNDLE_LOADER, { eval: true, workerData: { ...data, bundle: self } });
  if (self.endsWith('.ts')) return new Worker(bundledSource(self), { eval: true, workerData: data });
  return new Worker(self, { workerData: data });
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
