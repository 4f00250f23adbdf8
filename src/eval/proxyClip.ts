/**
 * The proxy CLIP evaluator: judge a subset the way CLIP pre-training uses it. Two small towers (linear,
 * or a one-hidden-layer ReLU MLP) are trained FROM SCRATCH on the subset's frozen image and caption
 * embeddings with CLIP's symmetric InfoNCE loss and a learnable temperature, at a fixed compute
 * (steps × batch, the same for every subset), and are then scored on held-out pairs no method saw:
 * image↔text recall@1/5/10 and, when class prompts and labels are given, zero-shot top-1. What the proxy
 * can see: which pairs are drawn and how often (weights, dynamic rounds), whether a pair's caption
 * matches its image, duplicates and coverage of the embedding space; a subset of mismatched or redundant
 * pairs teaches a worse alignment and scores lower. What it cannot see: anything the frozen encoders
 * already lost (pixels, wording beyond the embedding), how the subset would shape the encoders
 * themselves, and effects that only appear at full scale (long training, large batches, deep towers), so
 * it ranks subsets, it does not predict a full CLIP's accuracy.
 *
 * One training step is one onnxruntime graph (forward and the hand-derived backward, below); JavaScript
 * draws the batch and applies AdamW.
 *
 *   z = tower(x),  u = z / ‖z‖,  s = exp(t),  L = s · U_img U_txtᵀ + M
 *   ℓ = ½ [ mean_i CE(softmax(L_i·), i) + mean_j CE(softmax(L_·j), j) ]
 *   G = ∂ℓ/∂L = (P_row + P_col − 2I) / (2B),  ∂ℓ/∂t = s Σ G∘(U_img U_txtᵀ)
 *   ∂ℓ/∂U_img = s G U_txt,  ∂ℓ/∂U_txt = s Gᵀ U_img,  ∂ℓ/∂z = (∂ℓ/∂u − u ⟨u, ∂ℓ/∂u⟩) / ‖z‖
 *   linear z = xW: ∂W = xᵀ∂z;  mlp a = xW₁ + b₁, h = relu(a), z = hW₂:
 *   ∂W₂ = hᵀ∂z, ∂a = (∂z W₂ᵀ)∘[a > 0], ∂W₁ = xᵀ∂a, ∂b₁ = Σ_rows ∂a
 *
 * M masks in-batch copies: batches are drawn with replacement, so the same pool row can appear twice;
 * M is −1e9 (−∞ in effect: exp underflows to exactly 0 in float32, so those entries get zero
 * probability and zero gradient) wherever two different batch positions hold the same pool row, so an
 * item is never a negative for its own copy. The diagonal is never masked.
 */
import { GraphBuilder } from '../compute/onnxGraph.js';
import { createSession, Tensor, type Session } from '../compute/ort.js';
import { gaussian, seededRandom } from '../compute/random.js';
import { normalizeRows, retrievalRecall, zeroShotTop1 } from './retrieval.js';
import type { PlanRound, TrainingPlan } from './types.js';

export type ProxyTower = 'linear' | 'mlp';

export interface ProxyClipOptions {
  tower: ProxyTower;
  /** Output (joint space) width of both towers. */
  width: number;
  /** Hidden width of the MLP tower (ignored for linear). */
  hidden: number;
  /** Optimiser steps; with `batch`, the fixed compute every subset gets. */
  steps: number;
  batch: number;
  /** Peak AdamW learning rate, decayed to 0 by a cosine over the steps. */
  lr: number;
  /** Decoupled weight decay on weight matrices (not on biases or the temperature). */
  weightDecay: number;
  /** Seeds initialisation and batch sampling. */
  seed: number;
  onStep?: (step: number, loss: number) => void;
  /** Called with each batch's pool rows before its step (0-based step). */
  onBatch?: (step: number, rows: Int32Array) => void;
  signal?: AbortSignal;
}

export const PROXY_CLIP_DEFAULTS: Readonly<Omit<ProxyClipOptions, 'onStep' | 'onBatch' | 'signal'>> =
  Object.freeze({
    tower: 'linear',
    width: 64,
    hidden: 256,
    steps: 500,
    batch: 256,
    lr: 1e-3,
    weightDecay: 0.1,
    seed: 0,
  });

/** CLIP's initial temperature 0.07 and its cap on the logit scale (100). */
export const INIT_LOG_SCALE = Math.log(1 / 0.07);
export const MAX_LOG_SCALE = Math.log(100);
/** AdamW constants of CLIP (Radford et al. 2021, §2.5): β₁ 0.9, β₂ 0.98, ε 1e-6. */
const BETA1 = 0.9;
const BETA2 = 0.98;
const EPSILON = 1e-6;
const MASKED = -1e9;

export interface TowerParams {
  /** linear: [w]; mlp: [w1, b1, w2] (row-major, x·W layout: W is in × out). */
  tensors: Float32Array[];
}

export interface ProxyClipModel {
  tower: ProxyTower;
  dim: number;
  width: number;
  /** MLP hidden width (0 for linear). */
  hidden: number;
  image: TowerParams;
  text: TowerParams;
  /** t, the log of the logit scale s = exp(t). */
  logScale: number;
  /** Training loss of every step. */
  losses: Float32Array;
}

export interface PairedEmbeddings {
  n: number;
  dim: number;
  /** n × dim, row i is the image of pair i. */
  image: Float32Array;
  /** n × dim, row i is the caption of pair i. */
  text: Float32Array;
}

export interface HeldOutPairs extends PairedEmbeddings {
  /** Class of each held-out pair, for zero-shot accuracy. */
  labels?: Int32Array;
}

export interface ProxyClipScores {
  i2tR1: number;
  i2tR5: number;
  i2tR10: number;
  t2iR1: number;
  t2iR5: number;
  t2iR10: number;
  /** null unless class prompts and labels were both given. */
  zeroShotTop1: number | null;
}

interface ParamSpec {
  name: string;
  shape: (dim: number, width: number, hidden: number) => number[];
  /** Weight decay applies (matrices) or not (biases). */
  decay: boolean;
  /** Standard deviation of the initial normal draw (0: zeros). */
  initStd: (dim: number, width: number, hidden: number) => number;
}

/** Fan-in scaled normal init (He for the ReLU layer), so initial outputs are O(1) for unit inputs. */
const TOWER_PARAMS: Record<ProxyTower, ParamSpec[]> = {
  linear: [{ name: 'w', shape: (d, w) => [d, w], decay: true, initStd: (d) => 1 / Math.sqrt(d) }],
  mlp: [
    { name: 'w1', shape: (d, _w, h) => [d, h], decay: true, initStd: (d) => Math.sqrt(2 / d) },
    { name: 'b1', shape: (_d, _w, h) => [h], decay: false, initStd: () => 0 },
    { name: 'w2', shape: (_d, w, h) => [h, w], decay: true, initStd: (_d, _w, h) => 1 / Math.sqrt(h) },
  ],
};

const SIDES = ['image', 'text'] as const;

/* ------------------------------------------------------------------------------------------------ */
/* Graphs                                                                                            */
/* ------------------------------------------------------------------------------------------------ */

interface TowerForward {
  z: string;
  /** mlp: pre-activation and hidden activation, kept for the backward pass. */
  a?: string;
  h?: string;
}

function paramInputs(g: GraphBuilder, kind: ProxyTower, prefix: string): string[] {
  const dims: Record<string, string[]> = { w: ['d', 'w'], w1: ['d', 'h'], b1: ['h'], w2: ['h', 'w'] };
  return TOWER_PARAMS[kind].map((p) => g.input(`${prefix}_${p.name}`, 'float32', dims[p.name]!));
}

function towerForward(g: GraphBuilder, kind: ProxyTower, params: string[], x: string): TowerForward {
  if (kind === 'linear') return { z: g.op('MatMul', [x, params[0]!]) };
  const a = g.op('Add', [g.op('MatMul', [x, params[0]!]), params[1]!]);
  const h = g.op('Relu', [a]);
  return { z: g.op('MatMul', [h, params[2]!]), a, h };
}

/** u = z / max(‖z‖, 1e-12) (F.normalize), with the norm kept for the backward pass. */
function l2normalize(g: GraphBuilder, z: string): { u: string; norm: string } {
  const eps = g.constant(Float32Array.of(1e-12), [1]);
  const norm = g.op('Max', [g.op('ReduceL2', [z], { axes: [1], keepdims: 1 }), eps]);
  return { u: g.op('Div', [z, norm]), norm };
}

/** Gradients of the tower's parameters (in TOWER_PARAMS order) given ∂ℓ/∂z. */
function towerBackward(
  g: GraphBuilder,
  kind: ProxyTower,
  params: string[],
  x: string,
  f: TowerForward,
  dz: string,
): string[] {
  const xT = g.op('Transpose', [x], { perm: [1, 0] });
  if (kind === 'linear') return [g.op('MatMul', [xT, dz])];
  const dw2 = g.op('MatMul', [g.op('Transpose', [f.h!], { perm: [1, 0] }), dz]);
  const dh = g.op('MatMul', [dz, g.op('Transpose', [params[2]!], { perm: [1, 0] })]);
  const zero = g.constant(Float32Array.of(0), [1]);
  const active = g.op('Cast', [g.op('Greater', [f.a!, zero])], { to: 1 /* float */ });
  const da = g.op('Mul', [dh, active]);
  const dw1 = g.op('MatMul', [xT, da]);
  const db1 = g.op('ReduceSum', [da, g.ints([0])], { keepdims: 0 });
  return [dw1, db1, dw2];
}

const stepSessions = new Map<ProxyTower, Promise<Session>>();
const embedSessions = new Map<ProxyTower, Promise<Session>>();

/**
 * x_image, x_text [B,d], mask [B,B], t [1], inv2b [1] = 1/(2B), both towers' parameters →
 * loss [1], g_t [1], and g_<side>_<param> for every parameter.
 */
function stepGraph(kind: ProxyTower): Promise<Session> {
  let session = stepSessions.get(kind);
  if (!session) {
    session = (async () => {
      const g = new GraphBuilder(`proxy_clip_step_${kind}`);
      const xi = g.input('x_image', 'float32', ['B', 'd']);
      const xt = g.input('x_text', 'float32', ['B', 'd']);
      const mask = g.input('mask', 'float32', ['B', 'B']);
      const t = g.input('t', 'float32', [1]);
      const inv2b = g.input('inv2b', 'float32', [1]);
      const pi = paramInputs(g, kind, 'image');
      const pt = paramInputs(g, kind, 'text');
      const fi = towerForward(g, kind, pi, xi);
      const ft = towerForward(g, kind, pt, xt);
      const ni = l2normalize(g, fi.z);
      const nt = l2normalize(g, ft.z);
      const s = g.op('Exp', [t]);
      const cos = g.op('MatMul', [ni.u, g.op('Transpose', [nt.u], { perm: [1, 0] })]);
      const logits = g.op('Add', [g.op('Mul', [cos, s]), mask]);
      const eye = g.op('EyeLike', [logits]);
      // Loss: −(Σ diag log softmax_rows + Σ diag log softmax_cols) / (2B). Masked entries are finite
      // (−1e9), so 0 · logp stays 0.
      const diagRows = g.op('ReduceSum', [g.op('Mul', [g.op('LogSoftmax', [logits], { axis: 1 }), eye])], {
        keepdims: 0,
      });
      const diagCols = g.op('ReduceSum', [g.op('Mul', [g.op('LogSoftmax', [logits], { axis: 0 }), eye])], {
        keepdims: 0,
      });
      g.op('Neg', [g.op('Mul', [g.op('Add', [diagRows, diagCols]), inv2b])], {}, 'loss');
      // G = (P_rows + P_cols − 2I) / (2B).
      const two = g.constant(Float32Array.of(2), [1]);
      const probs = g.op('Add', [
        g.op('Softmax', [logits], { axis: 1 }),
        g.op('Softmax', [logits], { axis: 0 }),
      ]);
      const G = g.op('Mul', [g.op('Sub', [probs, g.op('Mul', [eye, two])]), inv2b]);
      g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [G, cos])], { keepdims: 0 }), s], {}, 'g_t');
      const dCos = g.op('Mul', [G, s]);
      const dUi = g.op('MatMul', [dCos, nt.u]);
      const dUt = g.op('MatMul', [g.op('Transpose', [dCos], { perm: [1, 0] }), ni.u]);
      const dz = (n: { u: string; norm: string }, du: string) => {
        const along = g.op('ReduceSum', [g.op('Mul', [n.u, du]), g.ints([1])], { keepdims: 1 });
        return g.op('Div', [g.op('Sub', [du, g.op('Mul', [n.u, along])]), n.norm]);
      };
      const gi = towerBackward(g, kind, pi, xi, fi, dz(ni, dUi));
      const gt = towerBackward(g, kind, pt, xt, ft, dz(nt, dUt));
      g.output('loss', 'float32', [1]);
      g.output('g_t', 'float32', [1]);
      const dims: Record<string, string[]> = { w: ['d', 'w'], w1: ['d', 'h'], b1: ['h'], w2: ['h', 'w'] };
      for (const [side, grads] of [
        ['image', gi],
        ['text', gt],
      ] as const) {
        TOWER_PARAMS[kind].forEach((p, k) => {
          const name = `g_${side}_${p.name}`;
          g.op('Identity', [grads[k]!], {}, name);
          g.output(name, 'float32', dims[p.name]!);
        });
      }
      return (await createSession(g.toBytes())).session;
    })();
    stepSessions.set(kind, session);
  }
  return session;
}

/** x [n,d] and one tower's parameters (prefixed `p_`) → u [n,w] unit rows. */
function embedGraph(kind: ProxyTower): Promise<Session> {
  let session = embedSessions.get(kind);
  if (!session) {
    session = (async () => {
      const g = new GraphBuilder(`proxy_clip_embed_${kind}`);
      const x = g.input('x', 'float32', ['n', 'd']);
      const params = paramInputs(g, kind, 'p');
      const { u } = l2normalize(g, towerForward(g, kind, params, x).z);
      g.op('Identity', [u], {}, 'u');
      g.output('u', 'float32', ['n', 'w']);
      return (await createSession(g.toBytes())).session;
    })();
    embedSessions.set(kind, session);
  }
  return session;
}

/* ------------------------------------------------------------------------------------------------ */
/* Parameters, gradients                                                                             */
/* ------------------------------------------------------------------------------------------------ */

function specShapes(model: Pick<ProxyClipModel, 'tower' | 'dim' | 'width' | 'hidden'>): number[][] {
  return TOWER_PARAMS[model.tower].map((p) => p.shape(model.dim, model.width, model.hidden));
}

function paramFeeds(model: ProxyClipModel, side: 'image' | 'text', prefix: string): Record<string, Tensor> {
  const shapes = specShapes(model);
  const feeds: Record<string, Tensor> = {};
  TOWER_PARAMS[model.tower].forEach((p, k) => {
    feeds[`${prefix}_${p.name}`] = new Tensor('float32', model[side].tensors[k]!, shapes[k]!);
  });
  return feeds;
}

/** A freshly initialised model (seeded), before any training. */
export function initProxyClip(
  dim: number,
  options: Pick<ProxyClipOptions, 'tower' | 'width' | 'hidden' | 'seed'>,
): ProxyClipModel {
  const { tower, width, seed } = options;
  const hidden = tower === 'mlp' ? options.hidden : 0;
  const normal = gaussian(seededRandom(seed));
  const towerParams = (): TowerParams => ({
    tensors: TOWER_PARAMS[tower].map((p) => {
      const size = p.shape(dim, width, hidden).reduce((a, b) => a * b, 1);
      const std = p.initStd(dim, width, hidden);
      return Float32Array.from({ length: size }, () => (std === 0 ? 0 : std * normal()));
    }),
  });
  const image = towerParams();
  const text = towerParams();
  return { tower, dim, width, hidden, image, text, logScale: INIT_LOG_SCALE, losses: new Float32Array(0) };
}

export interface BatchGradients {
  loss: number;
  /** ∂ℓ/∂t. */
  logScale: number;
  image: Float32Array[];
  text: Float32Array[];
}

/**
 * Loss and gradients of one batch: rows of `xImage`/`xText` are the batch's pairs (b × dim); `poolIds`
 * (optional) names each row's pool row, so copies of one row are masked from each other's negatives.
 */
export async function batchGradients(
  model: ProxyClipModel,
  xImage: Float32Array,
  xText: Float32Array,
  b: number,
  poolIds?: ArrayLike<number>,
): Promise<BatchGradients> {
  const session = await stepGraph(model.tower);
  const d = model.dim;
  const out = await session.run({
    x_image: new Tensor('float32', xImage, [b, d]),
    x_text: new Tensor('float32', xText, [b, d]),
    mask: new Tensor('float32', duplicateMask(poolIds, b), [b, b]),
    t: new Tensor('float32', Float32Array.of(model.logScale), [1]),
    inv2b: new Tensor('float32', Float32Array.of(1 / (2 * b)), [1]),
    ...paramFeeds(model, 'image', 'image'),
    ...paramFeeds(model, 'text', 'text'),
  });
  const grads = (side: string) =>
    TOWER_PARAMS[model.tower].map((p) => out[`g_${side}_${p.name}`]!.data as Float32Array);
  return {
    loss: (out.loss!.data as Float32Array)[0]!,
    logScale: (out.g_t!.data as Float32Array)[0]!,
    image: grads('image'),
    text: grads('text'),
  };
}

/** −1e9 where two different batch positions hold the same pool row, 0 elsewhere (diagonal included). */
function duplicateMask(poolIds: ArrayLike<number> | undefined, b: number): Float32Array {
  const mask = new Float32Array(b * b);
  if (!poolIds) return mask;
  const positions = new Map<number, number[]>();
  for (let a = 0; a < b; a++) {
    const id = poolIds[a]!;
    const list = positions.get(id);
    if (list) list.push(a);
    else positions.set(id, [a]);
  }
  for (const list of positions.values()) {
    if (list.length < 2) continue;
    for (const p of list) for (const q of list) if (p !== q) mask[p * b + q] = MASKED;
  }
  return mask;
}

/* ------------------------------------------------------------------------------------------------ */
/* Plan sampling                                                                                     */
/* ------------------------------------------------------------------------------------------------ */

/** A round ready for weighted draws: rows and their cumulative weights. */
interface Sampler {
  indices: Int32Array;
  cumulative: Float64Array;
}

function samplerOf(indices: Int32Array, weights: Float32Array | undefined, n: number, what: string): Sampler {
  if (indices.length === 0) throw new Error(`training plan: ${what} has no rows`);
  if (weights && weights.length !== indices.length)
    throw new Error(`training plan: ${what} has ${indices.length} rows but ${weights.length} weights`);
  const cumulative = new Float64Array(indices.length);
  let total = 0;
  for (let j = 0; j < indices.length; j++) {
    const row = indices[j]!;
    if (!(Number.isInteger(row) && row >= 0 && row < n))
      throw new Error(`training plan: ${what} names row ${row}, outside the ${n} training pairs`);
    const w = weights ? weights[j]! : 1;
    if (!(w >= 0) || !Number.isFinite(w))
      throw new Error(`training plan: ${what} gives row ${row} weight ${w}; weights must be finite and ≥ 0`);
    cumulative[j] = total += w;
  }
  if (!(total > 0)) throw new Error(`training plan: ${what} has weights that sum to 0`);
  return { indices, cumulative };
}

/** A row drawn with probability ∝ its weight (zero-weight rows are never drawn). */
function draw(s: Sampler, random: () => number): number {
  const target = random() * s.cumulative[s.cumulative.length - 1]!;
  let lo = 0;
  let hi = s.cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (s.cumulative[mid]! > target) hi = mid;
    else lo = mid + 1;
  }
  return s.indices[lo]!;
}

/**
 * The plan's rounds as samplers, and which one is in force at a progress p: before the first round's
 * start, the warm-up rows; otherwise the last round that has started (a round stays in force through
 * any gap before the next one, and the last one to the end of training).
 */
function planSamplers(plan: TrainingPlan, n: number): (progress: number) => Sampler {
  if (plan.rounds.length === 0) throw new Error('training plan has no rounds');
  const rounds: PlanRound[] = plan.rounds;
  rounds.forEach((r, i) => {
    if (!(r.start >= 0 && r.start < r.end && r.end <= 1))
      throw new Error(`training plan: round ${i} spans [${r.start}, ${r.end}); need 0 ≤ start < end ≤ 1`);
    if (i > 0 && r.start < rounds[i - 1]!.end)
      throw new Error(`training plan: round ${i} starts at ${r.start}, before round ${i - 1} ends`);
  });
  const samplers = rounds.map((r, i) => samplerOf(r.indices, r.weights, n, `round ${i}`));
  const warmup = plan.warmup ? samplerOf(plan.warmup, undefined, n, 'the warm-up') : samplers[0]!;
  return (progress) => {
    let current = -1;
    for (let i = 0; i < rounds.length && rounds[i]!.start <= progress; i++) current = i;
    return current < 0 ? warmup : samplers[current]!;
  };
}

/* ------------------------------------------------------------------------------------------------ */
/* Training, embedding, evaluation                                                                   */
/* ------------------------------------------------------------------------------------------------ */

function checkPairs(data: PairedEmbeddings, what: string): void {
  const { n, dim } = data;
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`${what}: n must be a positive integer, got ${n}`);
  if (!(Number.isInteger(dim) && dim > 0))
    throw new Error(`${what}: dim must be a positive integer, got ${dim}`);
  if (data.image.length !== n * dim)
    throw new Error(`${what}: image embeddings hold ${data.image.length} values, expected ${n} × ${dim}`);
  if (data.text.length !== n * dim)
    throw new Error(`${what}: caption embeddings hold ${data.text.length} values, expected ${n} × ${dim}`);
}

function checkOptions(o: ProxyClipOptions): void {
  if (o.tower !== 'linear' && o.tower !== 'mlp')
    throw new Error(`proxy CLIP: unknown tower '${String(o.tower)}'; use linear or mlp`);
  for (const key of ['width', 'hidden', 'steps', 'batch'] as const)
    if (!(Number.isInteger(o[key]) && o[key] > 0))
      throw new Error(`proxy CLIP: ${key} must be a positive integer, got ${o[key]}`);
  if (!(o.lr > 0)) throw new Error(`proxy CLIP: lr must be positive, got ${o.lr}`);
  if (!(o.weightDecay >= 0)) throw new Error(`proxy CLIP: weightDecay must be ≥ 0, got ${o.weightDecay}`);
}

/** AdamW state: first and second moments per parameter tensor, plus the temperature's. */
interface AdamState {
  m: Float32Array[];
  v: Float32Array[];
  mt: number;
  vt: number;
}

/**
 * Train the two towers from scratch on `data` (the training pool) drawing batches from `plan`:
 * `steps` batches of `batch` pairs, each drawn with replacement (probability ∝ weight) from the round in
 * force at progress step/steps. AdamW (PyTorch's decoupled form) with a cosine-decayed learning rate;
 * the log logit scale is clamped to [0, log 100] after every update, as CLIP does.
 */
export async function trainProxyClip(
  data: PairedEmbeddings,
  plan: TrainingPlan,
  options: Partial<ProxyClipOptions> = {},
): Promise<ProxyClipModel> {
  const o: ProxyClipOptions = { ...PROXY_CLIP_DEFAULTS, ...options };
  checkPairs(data, 'proxy CLIP training pairs');
  checkOptions(o);
  const samplerAt = planSamplers(plan, data.n);
  const model = initProxyClip(data.dim, o);
  // A separate stream for sampling, so changing the tower does not change which rows are drawn.
  const random = seededRandom((o.seed ^ 0x5bd1e995) >>> 0);
  const d = data.dim;
  const B = o.batch;
  const xi = new Float32Array(B * d);
  const xt = new Float32Array(B * d);
  const ids = new Int32Array(B);
  const tensors = [...model.image.tensors, ...model.text.tensors];
  const decays = [...TOWER_PARAMS[o.tower], ...TOWER_PARAMS[o.tower]].map((p) => p.decay);
  const adam: AdamState = {
    m: tensors.map((t) => new Float32Array(t.length)),
    v: tensors.map((t) => new Float32Array(t.length)),
    mt: 0,
    vt: 0,
  };
  const losses = new Float32Array(o.steps);
  for (let step = 0; step < o.steps; step++) {
    o.signal?.throwIfAborted();
    const sampler = samplerAt(step / o.steps);
    for (let r = 0; r < B; r++) {
      const row = draw(sampler, random);
      ids[r] = row;
      xi.set(data.image.subarray(row * d, (row + 1) * d), r * d);
      xt.set(data.text.subarray(row * d, (row + 1) * d), r * d);
    }
    o.onBatch?.(step, ids);
    const g = await batchGradients(model, xi, xt, B, ids);
    if (!Number.isFinite(g.loss)) throw new Error(`proxy CLIP: the loss became ${g.loss} at step ${step}`);
    losses[step] = g.loss;
    const lr = 0.5 * o.lr * (1 + Math.cos((Math.PI * step) / o.steps));
    const t = step + 1;
    const c1 = 1 - BETA1 ** t;
    const c2 = 1 - BETA2 ** t;
    const grads = [...g.image, ...g.text];
    tensors.forEach((p, k) => {
      const gk = grads[k]!;
      const m = adam.m[k]!;
      const v = adam.v[k]!;
      const shrink = decays[k] ? 1 - lr * o.weightDecay : 1;
      for (let j = 0; j < p.length; j++) {
        m[j] = BETA1 * m[j]! + (1 - BETA1) * gk[j]!;
        v[j] = BETA2 * v[j]! + (1 - BETA2) * gk[j]! ** 2;
        p[j] = p[j]! * shrink - (lr * (m[j]! / c1)) / (Math.sqrt(v[j]! / c2) + EPSILON);
      }
    });
    adam.mt = BETA1 * adam.mt + (1 - BETA1) * g.logScale;
    adam.vt = BETA2 * adam.vt + (1 - BETA2) * g.logScale ** 2;
    model.logScale -= (lr * (adam.mt / c1)) / (Math.sqrt(adam.vt / c2) + EPSILON);
    model.logScale = Math.min(MAX_LOG_SCALE, Math.max(0, model.logScale));
    o.onStep?.(step + 1, g.loss);
  }
  model.losses = losses;
  return model;
}

/** Rows per embedding call (bounds the hidden activations of the MLP). */
const EMBED_ROWS = 16_384;

/** The tower of `side` applied to n rows of x (n × dim) → n × width unit rows. */
export async function embedProxy(
  model: ProxyClipModel,
  x: Float32Array,
  n: number,
  side: 'image' | 'text',
): Promise<Float32Array> {
  if (!SIDES.includes(side)) throw new Error(`embedProxy: side must be image or text, got '${String(side)}'`);
  if (x.length !== n * model.dim)
    throw new Error(`embedProxy: ${x.length} values is not ${n} rows of the model's ${model.dim} dims`);
  const session = await embedGraph(model.tower);
  const params = paramFeeds(model, side, 'p');
  const out = new Float32Array(n * model.width);
  for (let r0 = 0; r0 < n; r0 += EMBED_ROWS) {
    const m = Math.min(EMBED_ROWS, n - r0);
    const res = await session.run({
      x: new Tensor('float32', x.subarray(r0 * model.dim, (r0 + m) * model.dim), [m, model.dim]),
      ...params,
    });
    out.set(res.u!.data as Float32Array, r0 * model.width);
  }
  return out;
}

/**
 * Score a trained proxy on held-out pairs: recall@1/5/10 both ways on the towers' outputs, and zero-shot
 * top-1 when `classPrompts` (K × dim, one caption-space embedding per class, e.g. a prompt ensemble's
 * mean; rows are renormalised to unit length before the text tower, like the workspace's embeddings) and
 * `heldOut.labels` are both given.
 */
export async function evaluateProxyClip(
  model: ProxyClipModel,
  heldOut: HeldOutPairs,
  classPrompts?: Float32Array,
): Promise<ProxyClipScores> {
  checkPairs(heldOut, 'held-out pairs');
  if (heldOut.dim !== model.dim)
    throw new Error(`held-out pairs are ${heldOut.dim}-d but the proxy was trained on ${model.dim}-d`);
  const image = await embedProxy(model, heldOut.image, heldOut.n, 'image');
  const text = await embedProxy(model, heldOut.text, heldOut.n, 'text');
  const recall = await retrievalRecall(image, text, heldOut.n, model.width, [1, 5, 10]);
  let zeroShot: number | null = null;
  if (classPrompts && heldOut.labels) {
    if (classPrompts.length % model.dim !== 0 || classPrompts.length === 0)
      throw new Error(
        `class prompts: ${classPrompts.length} values is not a whole number of ${model.dim}-d rows`,
      );
    const K = classPrompts.length / model.dim;
    const prompts = normalizeRows(classPrompts, K, model.dim, 'class prompts');
    const classes = await embedProxy(model, prompts, K, 'text');
    zeroShot = await zeroShotTop1(image, heldOut.n, model.width, classes, heldOut.labels);
  }
  return {
    i2tR1: recall.i2t[1]!,
    i2tR5: recall.i2t[5]!,
    i2tR10: recall.i2t[10]!,
    t2iR1: recall.t2i[1]!,
    t2iR5: recall.t2i[5]!,
    t2iR10: recall.t2i[10]!,
    zeroShotTop1: zeroShot,
  };
}
