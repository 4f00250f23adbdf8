/**
 * The only module that imports onnxruntime-node. Maps device names to execution providers through one
 * table and creates sessions for encoders and compute kernels alike.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import ort from 'onnxruntime-node';

export type Device = 'auto' | 'cpu' | 'cuda';
export const DEVICES: readonly Device[] = ['auto', 'cpu', 'cuda'];

/** `auto` uses CUDA when it loads and says why not otherwise; an explicit `cuda` never falls back. */
const PROVIDERS: Record<Device, readonly string[]> = Object.freeze({
  auto: ['cuda', 'cpu'],
  cpu: ['cpu'],
  cuda: ['cuda'],
});

export const CUDA_INSTALL_HINT =
  'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js';

/** An explicit device that cannot be used (e.g. `--device cuda` without CUDA libraries). */
export class DeviceUnavailableError extends Error {
  override name = 'DeviceUnavailableError';
}

export interface SessionOptions {
  device?: Device;
  /** Threads inside one operator (default: onnxruntime's choice, all cores). */
  intraOpThreads?: number;
  /**
   * Let idle onnxruntime threads spin (default true: lowest latency for back-to-back kernels). The embed
   * pipeline turns it off so image decoding on the same cores is not starved by spinning threads.
   */
  spin?: boolean;
}

export type Session = ort.InferenceSession;
export const Tensor = ort.Tensor;
export type Tensor = ort.Tensor;

/**
 * Whether onnxruntime-node's CUDA provider libraries are installed. They are a separate download
 * (skipped by this project's .npmrc); without them ORT would log a load failure for every session.
 */
export function cudaInstalled(): boolean {
  const ortDir = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  const binDir = path.join(ortDir, 'bin', 'napi-v6', process.platform, process.arch);
  return existsSync(
    path.join(
      binDir,
      process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so',
    ),
  );
}

/**
 * The provider a library that runs ONNX itself (transformers.js) should get for `device`, before any
 * session exists: CUDA only when its libraries are installed; `cuda` without them is an error.
 */
export function providerFor(device: Device): { provider: 'cuda' | 'cpu'; note?: string } {
  if (device === 'cpu') return { provider: 'cpu' };
  if (cudaInstalled()) return { provider: 'cuda' };
  const why = `CUDA is not available in this onnxruntime-node install (run: ${CUDA_INSTALL_HINT})`;
  if (device === 'cuda') throw new DeviceUnavailableError(`--device cuda: ${why}`);
  return { provider: 'cpu', note: `${why}; using CPU` };
}

export interface OpenedSession {
  session: Session;
  /** The provider that runs it, and why, when it is not the one asked for. */
  provider: string;
  note?: string;
}

/** What sessions created in this thread get when they do not say (see setThreadSessionDefaults). */
let threadDefaults: Pick<SessionOptions, 'intraOpThreads' | 'spin'> = {};

/**
 * Defaults for every later session of this thread that does not set them itself. A worker thread that
 * shares the cores with other workers runs its kernels on one thread without spinning, so that the
 * workers do not take each other's cores.
 */
export function setThreadSessionDefaults(defaults: Pick<SessionOptions, 'intraOpThreads' | 'spin'>): void {
  threadDefaults = { ...defaults };
}

export async function createSession(
  model: Uint8Array | string,
  requested: SessionOptions = {},
): Promise<OpenedSession> {
  const options = { ...threadDefaults, ...requested };
  const device = options.device ?? 'cpu';
  if (!DEVICES.includes(device))
    throw new Error(`unknown device '${device}'; use one of ${DEVICES.join(', ')}`);
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
    ...(options.spin === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  };
  let note: string | undefined;
  for (const provider of PROVIDERS[device]) {
    if (provider === 'cuda' && !cudaInstalled()) {
      note = `CUDA is not available in this onnxruntime-node install (run: ${CUDA_INSTALL_HINT})`;
      if (device === 'cuda') throw new DeviceUnavailableError(`--device cuda: ${note}`);
      note += '; using CPU';
      continue;
    }
    try {
      const opts = { ...base, executionProviders: [provider] };
      const session =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, opts)
          : await ort.InferenceSession.create(model, opts);
      return { session, provider, ...(note ? { note } : {}) };
    } catch (err) {
      if (provider === 'cpu') throw err;
      if (device === 'cuda')
        throw new DeviceUnavailableError(`--device cuda: the CUDA session failed: ${(err as Error).message}`);
      note = `CUDA session failed (${(err as Error).message}); using CPU`;
    }
  }
  throw new Error(`no execution provider could run the model on '${device}'`);
}
