import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Device } from '../../compute/ort.js';
import { ClipHfEncoder } from './clipHf.js';
import { ClipOnnxEncoder, findTowerFiles, type Dtype } from './clipOnnx.js';
import type { Encoder } from './types.js';

export const OFFLINE_SPECS = ['default', 'offline'] as const;

export interface ClipLoadOptions {
  device?: Device;
  dtype?: Dtype;
  intraOpThreads?: number;
  /** Let transformers.js download a hub model id (and cache it). */
  allowRemote?: boolean;
}

/** A named encoder (`--encoder X`) that cannot be loaded: the message names it and what is missing. */
export class EncoderLoadError extends Error {
  override name = 'EncoderLoadError';
}

export function isOfflineSpec(spec: string): boolean {
  return (OFFLINE_SPECS as readonly string[]).includes(spec);
}

/** `./x`, `../x`, `/x`, `~/x`, `a/b/c` or a Windows path: meant as a folder, never a hub id (`owner/name`). */
function looksLikePath(spec: string): boolean {
  return (
    /^(\.{1,2}[\\/]|[\\/]|~|[A-Za-z]:[\\/])/.test(spec) ||
    spec.split(/[\\/]/).length > 2 ||
    spec.includes('\\')
  );
}

/**
 * A CLIP encoder from `--encoder`: a folder in the Hugging Face layout (config.json + onnx/) goes through
 * transformers.js, a folder of raw ONNX exports (visual.onnx / textual.onnx, …) straight to
 * onnxruntime-node, and anything else is taken as a hub model id for transformers.js. Whatever cannot
 * be loaded is an `EncoderLoadError` naming the spec and the reason; there is no silent fallback.
 */
export async function loadClipEncoder(spec: string, options: ClipLoadOptions = {}): Promise<Encoder> {
  const hfOptions = {
    ...(options.dtype ? { dtype: options.dtype } : {}),
    ...(options.device ? { device: options.device } : {}),
  };
  if (existsSync(spec)) {
    const folder = path.resolve(spec);
    if (!statSync(folder).isDirectory())
      throw new EncoderLoadError(`--encoder ${spec}: ${folder} is a file; give the model's folder`);
    try {
      // Checked first so a folder with configs but no weights says which files it needs.
      findTowerFiles(folder, options.dtype);
    } catch (err) {
      throw new EncoderLoadError(`--encoder ${spec}: ${(err as Error).message}`);
    }
    const hfLayout = existsSync(path.join(folder, 'config.json')) && existsSync(path.join(folder, 'onnx'));
    try {
      return await (hfLayout ? ClipHfEncoder.load(folder, hfOptions) : ClipOnnxEncoder.load(folder, options));
    } catch (err) {
      throw wrap(err, `--encoder ${spec}: cannot load the CLIP model in ${folder}`);
    }
  }
  if (looksLikePath(spec))
    throw new EncoderLoadError(`--encoder ${spec}: no such folder (${path.resolve(spec)})`);
  try {
    return await ClipHfEncoder.load(spec, { ...hfOptions, allowRemote: options.allowRemote ?? true });
  } catch (err) {
    throw wrap(err, `--encoder ${spec}: not a folder here, and it could not be loaded as a model id`);
  }
}

/** Device errors keep their own message; anything else becomes an EncoderLoadError with context. */
function wrap(err: unknown, context: string): Error {
  if (err instanceof Error && err.name === 'DeviceUnavailableError') return err;
  return new EncoderLoadError(`${context}: ${(err as Error).message}`, { cause: err });
}
