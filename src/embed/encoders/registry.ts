import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Device } from '../backends/ort.js';
import { ClipHfEncoder } from './clipHf.js';
import { ClipOnnxEncoder, type Dtype } from './clipOnnx.js';
import type { Encoder } from './types.js';

export const OFFLINE_SPECS = ['default', 'offline'] as const;

export interface ClipLoadOptions {
  device?: Device;
  dtype?: Dtype;
  intraOpThreads?: number;
  /** Let transformers.js download a hub model id (and cache it). */
  allowRemote?: boolean;
}

export function isOfflineSpec(spec: string): boolean {
  return (OFFLINE_SPECS as readonly string[]).includes(spec);
}

/**
 * A CLIP encoder from `--encoder`: a folder in the Hugging Face layout (config.json + onnx/) goes through
 * transformers.js, a folder of raw ONNX exports (visual.onnx / textual.onnx, …) straight to
 * onnxruntime-node, and anything else is taken as a hub model id for transformers.js.
 */
export async function loadClipEncoder(spec: string, options: ClipLoadOptions = {}): Promise<Encoder> {
  if (existsSync(spec)) {
    const hfLayout = existsSync(path.join(spec, 'config.json')) && existsSync(path.join(spec, 'onnx'));
    return hfLayout
      ? ClipHfEncoder.load(spec, {
          ...(options.dtype ? { dtype: options.dtype } : {}),
          ...(options.device ? { device: options.device } : {}),
        })
      : ClipOnnxEncoder.load(spec, options);
  }
  return ClipHfEncoder.load(spec, {
    ...(options.dtype ? { dtype: options.dtype } : {}),
    ...(options.device ? { device: options.device } : {}),
    allowRemote: options.allowRemote ?? true,
  });
}
