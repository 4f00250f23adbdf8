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
  /**
   * The text tower: `mean` (masked mean of token embeddings, fixed 77 tokens) or `transformer` (CLIP's
   * shape: token + position embeddings, causal self-attention layers, pooled at the EOS token, any
   * sequence length up to 77).
   */
  text?: 'mean' | 'transformer';
  /** Layers of the transformer text tower. */
  textLayers?: number;
  /** The transformer text tower's export takes exactly 77 tokens (as some exports do), not any length. */
  textFixedLength?: boolean;
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

/**
 * A CLIP-shaped text tower: x = tokens + positions; per layer x += Attn(LN(x)) (one head, causal and
 * padding masks), x += MLP(LN(x)) (4× width, QuickGELU); LN; the row at the EOS token (the largest id,
 * as OpenAI's CLIP pools) projected to `dim`. `length`: a fixed sequence length (an export that only
 * takes 77 tokens) or, when undefined, a symbolic one.
 */
export function tinyTransformerTextModel(o: Required<TinyClipOptions>, length?: number): Uint8Array {
  const next = seededRandom(o.seed + 2);
  const w = o.width;
  const g = new GraphBuilder('tiny_clip_text_transformer');
  const ids = g.input('input_ids', 'int64', ['batch', length ?? 'sequence']);
  const mask = g.input('attention_mask', 'int64', ['batch', length ?? 'sequence']);
  const seqLength = g.op('Slice', [g.op('Shape', [ids]), g.ints([1]), g.ints([2])]);
  const zero = g.ints([0]);
  const tokens = g.op('Gather', [g.constant(weights(VOCAB * w, 1, next), [VOCAB, w]), ids], { axis: 0 });
  const positions = g.op('Slice', [
    g.constant(weights(CONTEXT * w, 1, next), [CONTEXT, w]),
    zero,
    seqLength,
    zero,
  ]);
  let x = g.op('Add', [tokens, positions]);
  // Additive masks: −1e9 above the diagonal (causal) and at padding keys; exp(−1e9 − max) is exactly 0.
  const causal = new Float32Array(CONTEXT * CONTEXT);
  for (let i = 0; i < CONTEXT; i++) for (let j = i + 1; j < CONTEXT; j++) causal[i * CONTEXT + j] = -1e9;
  const causalLL = g.op('Slice', [
    g.constant(causal, [CONTEXT, CONTEXT]),
    g.ints([0, 0]),
    g.op('Concat', [seqLength, seqLength], { axis: 0 }),
    g.ints([0, 1]),
  ]);
  const keep = g.op('Cast', [mask], { to: 1 });
  const padding = g.op('Unsqueeze', [
    g.op('Mul', [
      g.op('Sub', [g.constant(new Float32Array([1]), []), keep]),
      g.constant(new Float32Array([-1e9]), []),
    ]),
    g.ints([1]),
  ]);
  const layerNorm = (v: string) => {
    const centred = g.op('Sub', [v, g.op('ReduceMean', [v], { axes: [-1], keepdims: 1 })]);
    const variance = g.op('ReduceMean', [g.op('Mul', [centred, centred])], { axes: [-1], keepdims: 1 });
    return g.op('Div', [
      centred,
      g.op('Sqrt', [g.op('Add', [variance, g.constant(new Float32Array([1e-5]), [])])]),
    ]);
  };
  const linear = (v: string, from: number, to: number) =>
    g.op('MatMul', [v, g.constant(weights(from * to, 1 / Math.sqrt(from), next), [from, to])]);
  for (let layer = 0; layer < o.textLayers; layer++) {
    const h = layerNorm(x);
    const [q, k, v] = [linear(h, w, w), linear(h, w, w), linear(h, w, w)];
    const scores = g.op('Add', [
      g.op('Add', [
        g.op('Mul', [
          g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 2, 1] })]),
          g.constant(new Float32Array([1 / Math.sqrt(w)]), []),
        ]),
        causalLL,
      ]),
      padding,
    ]);
    x = g.op('Add', [x, linear(g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]), w, w)]);
    const up = linear(layerNorm(x), w, 4 * w);
    const gelu = g.op('Mul', [
      up,
      g.op('Sigmoid', [g.op('Mul', [up, g.constant(new Float32Array([1.702]), [])])]),
    ]);
    x = g.op('Add', [x, linear(gelu, 4 * w, w)]);
  }
  const eos = g.op('ArgMax', [ids], { axis: 1, keepdims: 1 });
  const pooled = g.op('GatherND', [layerNorm(x), eos], { batch_dims: 1 });
  g.op(
    'MatMul',
    [pooled, g.constant(weights(w * o.dim, 1 / Math.sqrt(w), next), [w, o.dim])],
    {},
    'text_embeds',
  );
  g.output('text_embeds', 'float32', ['batch', o.dim]);
  return g.toBytes();
}

/** Write a tiny CLIP model folder (HF layout) and return its path. */
export async function writeTinyClip(folder: string, options: TinyClipOptions = {}): Promise<string> {
  const o: Required<TinyClipOptions> = {
    width: 16,
    depth: 1,
    patch: 32,
    dim: 64,
    seed: 7,
    text: 'mean',
    textLayers: 1,
    textFixedLength: false,
    ...options,
  };
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
  await writeFile(
    path.join(folder, 'onnx/text_model.onnx'),
    o.text === 'transformer'
      ? tinyTransformerTextModel(o, o.textFixedLength ? CONTEXT : undefined)
      : tinyTextModel(o),
  );
  return folder;
}
