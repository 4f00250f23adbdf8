/**
 * Tiny CLIP towers generated in code, saved in the Hugging Face / transformers.js layout with the real
 * CLIP config, preprocessor and tokenizer files: the real loading code runs on them, offline.
 *   vision: pixel_values [B,3,224,224] → patch Conv → depth × (3×3 Conv + ReLU) → mean pool → image_embeds [B,D]
 *   text:   input_ids, attention_mask [B,77] → embedding Gather → masked mean → text_embeds [B,D]
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GraphBuilder } from '../../src/compute/onnxGraph.js';
import { seededRandom } from '../../src/compute/random.js';
import { BUNDLED_CLIP_TOKENIZER } from '../../src/embed/tokenizer.js';

export interface TinyClipOptions {
  /** Channels inside the towers. */
  width?: number;
  /** Extra 3×3 conv layers in the vision tower (inference cost). */
  depth?: number;
  patch?: number;
  /** Output (projection) dimension. */
  dim?: number;
  seed?: number;
}

const VOCAB = 49408;
const CONTEXT = 77;

function weights(n: number, scale: number, next: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

export function tinyVisionModel(o: Required<TinyClipOptions>): Uint8Array {
  const next = seededRandom(o.seed);
  const g = new GraphBuilder('tiny_clip_vision');
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, 224, 224]);
  const patchW = g.constant(
    weights(o.width * 3 * o.patch * o.patch, 1 / Math.sqrt(3 * o.patch * o.patch), next),
    [o.width, 3, o.patch, o.patch],
  );
  let x = g.op('Relu', [g.op('Conv', [pixels, patchW], { strides: [o.patch, o.patch] })]);
  for (let layer = 0; layer < o.depth; layer++) {
    const w = g.constant(weights(o.width * o.width * 9, 1 / Math.sqrt(o.width * 9), next), [
      o.width,
      o.width,
      3,
      3,
    ]);
    x = g.op('Relu', [g.op('Conv', [x, w], { pads: [1, 1, 1, 1] })]);
  }
  const pooled = g.op('ReduceMean', [x], { axes: [2, 3], keepdims: 0 });
  const proj = g.constant(weights(o.width * o.dim, 1, next), [o.width, o.dim]);
  g.op('MatMul', [pooled, proj], {}, 'image_embeds');
  g.output('image_embeds', 'float32', ['batch', o.dim]);
  return g.toBytes();
}

export function tinyTextModel(o: Required<TinyClipOptions>): Uint8Array {
  const next = seededRandom(o.seed + 1);
  const g = new GraphBuilder('tiny_clip_text');
  const ids = g.input('input_ids', 'int64', ['batch', CONTEXT]);
  const mask = g.input('attention_mask', 'int64', ['batch', CONTEXT]);
  const table = g.constant(weights(VOCAB * o.width, 1, next), [VOCAB, o.width]);
  const tokens = g.op('Gather', [table, ids], { axis: 0 });
  const maskF = g.op('Unsqueeze', [g.op('Cast', [mask], { to: 1 }), g.ints([2])]);
  const summed = g.op('ReduceSum', [g.op('Mul', [tokens, maskF]), g.ints([1])], { keepdims: 0 });
  const count = g.op('ReduceSum', [maskF, g.ints([1])], { keepdims: 0 });
  const mean = g.op('Div', [summed, count]);
  const proj = g.constant(weights(o.width * o.dim, 1, next), [o.width, o.dim]);
  g.op('MatMul', [mean, proj], {}, 'text_embeds');
  g.output('text_embeds', 'float32', ['batch', o.dim]);
  return g.toBytes();
}

/** Write a tiny CLIP model folder (HF layout) and return its path. */
export async function writeTinyClip(folder: string, options: TinyClipOptions = {}): Promise<string> {
  const o: Required<TinyClipOptions> = { width: 16, depth: 1, patch: 32, dim: 64, seed: 7, ...options };
  await mkdir(path.join(folder, 'onnx'), { recursive: true });
  for (const f of [
    'config.json',
    'preprocessor_config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'special_tokens_map.json',
  ]) {
    await copyFile(path.join(BUNDLED_CLIP_TOKENIZER, f), path.join(folder, f));
  }
  await writeFile(path.join(folder, 'onnx/vision_model.onnx'), tinyVisionModel(o));
  await writeFile(path.join(folder, 'onnx/text_model.onnx'), tinyTextModel(o));
  return folder;
}
