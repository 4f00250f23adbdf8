/**
 * The proxy SSL evaluator: judge a subset the way self-supervised pre-training uses it.
 *
 * What it measures. A SimCLR-style head (Chen et al. 2020) is trained FROM SCRATCH on the subset's view
 * embeddings with the NT-Xent loss, at a fixed compute (steps × batch samples seen, the same for every
 * subset), and then tested on a held-out split no method saw:
 *   - kNN top-1 and linear-probe top-1 of held-out images in the head's space (how much class structure
 *     the self-supervised objective recovers from this subset), when labels exist;
 *   - alignment and uniformity of held-out embeddings (Wang & Isola 2020): how close a sample's views
 *     land (lower is better) and how evenly the embeddings spread over the sphere (lower is better).
 * A subset whose views teach invariance to nuisance variation (and that covers the classes) scores
 * higher; a subset of near-duplicates, or one whose views carry no shared content, scores lower. The
 * embeddings are frozen encoder outputs, so this is a proxy: it ranks subsets, it is not the accuracy a
 * full backbone trained on the images would reach.
 *
 * Model. f(x) = z/‖z‖ with z = W x + b (linear) or z = W₂ relu(W₁ x + b₁) + b₂ (MLP, dim → hidden → width).
 *
 * Loss (NT-Xent). A batch draws B rows and two different views of each, u_1..u_2B (row t and t + B are
 * the two views of the same draw). With S_ij = u_i·u_j / τ and p(i) the other view of i,
 *   ℓ_i = −S_i,p(i) + log( exp S_i,p(i) + Σ_{j : sample(j) ≠ sample(i)} exp S_ij ),  L = mean_i ℓ_i.
 * Rows are drawn with replacement, so one sample can be drawn twice into a batch: its copies are the same
 * image, and treating them as negatives would push a sample away from itself. Every row of the same
 * sample (self, the copies and their views) is therefore masked out of the denominator; only the row's
 * own positive p(i) stays in (its separate first column).
 *
 * Gradients, derived by hand and computed in the same onnxruntime graph as the loss (JS only does AdamW):
 *   Q = softmax over [S_i,p(i), masked S_i·] per row;  G = Q_{·,1:} / 2B;  g⁰ = (Q_{·,0} − 1) / 2B
 *   ∂L/∂U = (G + Gᵀ) U / τ + (g⁰ + g⁰∘p) ⊙ U∘p / τ          (∘p: rows swapped to their positives)
 *   ∂L/∂Z = (∂L/∂U − U · rowsum(∂L/∂U ⊙ U)) / ‖Z‖              (through the L2 normalisation)
 *   then the usual dense/ReLU back-propagation to W, b.
 */
import { GraphBuilder } from '../compute/onnxGraph.js';
import { createSession, Tensor, type Session } from '../compute/ort.js';
import { seededRandom } from '../compute/random.js';
import { innerProducts, topKInnerProduct, type Matrix } from '../select/kernels/similarity.js';
import { linearProbe, type ProbeOptions } from '../select/proxy/probe.js';
import type { TrainingPlan } from './types.js';

export type SslHeadKind = 'linear' | 'mlp';

export const PROXY_SSL_DEFAULTS = {
  head: 'mlp' as SslHeadKind,
  /** Output (embedding) width. */
  width: 64,
  /** Hidden width of the MLP head. */
  hidden: 256,
  /** NT-Xent temperature τ (SimCLR's sweep puts 0.1–0.5 near the best). */
  temperature: 0.2,
  batch: 256,
  steps: 500,
  /** AdamW peak learning rate, decayed to 0 on a cosine over the steps. */
  lr: 1e-3,
  /** AdamW decoupled weight decay (weights only, not biases). */
  weightDecay: 1e-4,
  seed: 0,
  /** kNN monitor: neighbours and the temperature of the exp(cos/τ) vote (InstDisc, Wu et al. 2018). */
  knnK: 20,
  knnTemperature: 0.07,
  /** Held-out rows uniformity is estimated on (all pairs of a seeded sample). */
  uniformitySample: 2000,
} as const;

/** One dense layer: weight outputs × inputs (row-major), bias outputs. */
export interface DenseLayer {
  outputs: number;
  inputs: number;
  weight: Float32Array;
  bias: Float32Array;
}

export interface SslHead {
  kind: SslHeadKind;
  dim: number;
  width: number;
  /** Linear: one layer; MLP: two, with a ReLU between them. */
  layers: DenseLayer[];
}

export interface ProxySslModel {
  head: SslHead;
  seed: number;
  steps: number;
  batch: number;
  temperature: number;
  /** NT-Xent loss of every step's batch. */
  losses: Float32Array;
}

export interface SslViews {
  n: number;
  dim: number;
  /** ≥ 2 view matrices, each n × dim, row-aligned (row i of every matrix is sample i). */
  views: Float32Array[];
}

export interface ProxySslOptions {
  head?: SslHeadKind;
  width?: number;
  hidden?: number;
  temperature?: number;
  batch?: number;
  steps?: number;
  lr?: number;
  weightDecay?: number;
  seed?: number;
  /** Called after every step with its 1-based number, the batch loss and the sample rows drawn. */
  onStep?: (step: number, loss: number, rows: Int32Array) => void;
  signal?: AbortSignal;
}

// ---------------------------------------------------------------------------------------------------
// Graphs
// ---------------------------------------------------------------------------------------------------

/** Feeds the parameter tensors as inputs w0, b0, w1, b1, …; returns the names of their values. */
function parameterInputs(g: GraphBuilder, layers: number): Array<{ w: string; b: string }> {
  return Array.from({ length: layers }, (_, l) => ({
    w: g.input(`w${l}`, 'float32', [`out${l}`, `in${l}`]),
    b: g.input(`b${l}`, 'float32', [`out${l}`]),
  }));
}

/** x → pre-activations of every layer, the ReLU outputs between layers, z, ‖z‖ and u = z / ‖z‖. */
function forward(g: GraphBuilder, x: string, params: Array<{ w: string; b: string }>) {
  const inputs: string[] = [x];
  const preActivations: string[] = [];
  let h = x;
  params.forEach(({ w, b }, l) => {
    const a = g.op('Add', [g.op('MatMul', [h, g.op('Transpose', [w], { perm: [1, 0] })]), b]);
    preActivations.push(a);
    if (l < params.length - 1) {
      h = g.op('Relu', [a]);
      inputs.push(h);
    } else h = a;
  });
  const z = h;
  const norm = g.op('Max', [
    g.op('Sqrt', [g.op('ReduceSum', [g.op('Mul', [z, z]), g.ints([1])], { keepdims: 1 })]),
    g.constant(Float32Array.of(1e-12), []),
  ]);
  const u = g.op('Div', [z, norm]);
  return { inputs, preActivations, norm, u };
}

/** Rows [a; b] → [b; a] (each view swapped with its positive). */
function swapHalves(g: GraphBuilder, m: string): string {
  const [top, bottom] = g.node('Split', [m], { axis: 0 }, [`${m}_top`, `${m}_bottom`]);
  return g.op('Concat', [bottom!, top!], { axis: 0 });
}

const sessions = new Map<string, Promise<Session>>();

/**
 * Training pass: x [2B, d] (view a of the B draws, then view b), ids [2B] int64 (sample of each row),
 * invTau [1], invRows [1] = 1/2B, parameters → loss [] (mean NT-Xent) and gw{l}, gb{l} (its gradients).
 */
function trainGraph(layers: number): Promise<Session> {
  const key = `train${layers}`;
  let session = sessions.get(key);
  if (!session) {
    session = (async () => {
      const g = new GraphBuilder(`ssl_ntxent_${layers}`);
      const x = g.input('x', 'float32', ['m', 'd']);
      const ids = g.input('ids', 'int64', ['m']);
      const invTau = g.input('invTau', 'float32', [1]);
      const invRows = g.input('invRows', 'float32', [1]);
      const params = parameterInputs(g, layers);
      const { inputs, preActivations, norm, u } = forward(g, x, params);

      // Logits: the positive column first, then every row with rows of the same sample masked out.
      const uSwap = swapHalves(g, u);
      const similarity = g.op('Mul', [g.op('MatMul', [u, g.op('Transpose', [u], { perm: [1, 0] })]), invTau]);
      const positive = g.op('Mul', [
        g.op('ReduceSum', [g.op('Mul', [u, uSwap]), g.ints([1])], { keepdims: 1 }),
        invTau,
      ]);
      const sameSample = g.op('Equal', [
        g.op('Unsqueeze', [ids, g.ints([1])]),
        g.op('Unsqueeze', [ids, g.ints([0])]),
      ]);
      const masked = g.op('Where', [sameSample, g.constant(Float32Array.of(-1e9), []), similarity]);
      const logits = g.op('Concat', [positive, masked], { axis: 1 });
      const logPositive = g.op('Slice', [
        g.op('LogSoftmax', [logits], { axis: 1 }),
        g.ints([0]),
        g.ints([1]),
        g.ints([1]),
      ]);
      g.op('Neg', [g.op('ReduceMean', [logPositive], { keepdims: 0 })], {}, 'loss');

      // ∂L/∂U.
      const q = g.op('Softmax', [logits], { axis: 1 });
      const qPositive = g.op('Slice', [q, g.ints([0]), g.ints([1]), g.ints([1])]);
      const qOthers = g.op('Slice', [q, g.ints([1]), g.ints([Number.MAX_SAFE_INTEGER]), g.ints([1])]);
      const gOthers = g.op('Mul', [qOthers, invRows]);
      const gPositive = g.op('Mul', [g.op('Sub', [qPositive, g.constant(Float32Array.of(1), [])]), invRows]);
      const symmetric = g.op('Add', [gOthers, g.op('Transpose', [gOthers], { perm: [1, 0] })]);
      const dU = g.op('Mul', [
        g.op('Add', [
          g.op('MatMul', [symmetric, u]),
          g.op('Mul', [g.op('Add', [gPositive, swapHalves(g, gPositive)]), uSwap]),
        ]),
        invTau,
      ]);
      // Through the normalisation: ∂L/∂Z = (∂L/∂U − U·rowsum(∂L/∂U ⊙ U)) / ‖Z‖.
      const radial = g.op('ReduceSum', [g.op('Mul', [dU, u]), g.ints([1])], { keepdims: 1 });
      let delta = g.op('Div', [g.op('Sub', [dU, g.op('Mul', [u, radial])]), norm]);
      // Dense layers, last to first.
      for (let l = layers - 1; l >= 0; l--) {
        g.op('MatMul', [g.op('Transpose', [delta], { perm: [1, 0] }), inputs[l]!], {}, `gw${l}`);
        g.op('ReduceSum', [delta, g.ints([0])], { keepdims: 0 }, `gb${l}`);
        if (l > 0) {
          const back = g.op('MatMul', [delta, params[l]!.w]);
          const active = g.op('Greater', [preActivations[l - 1]!, g.constant(Float32Array.of(0), [])]);
          delta = g.op('Where', [active, back, g.constant(Float32Array.of(0), [])]);
        }
      }
      g.output('loss', 'float32', []);
      for (let l = 0; l < layers; l++) {
        g.output(`gw${l}`, 'float32', [`out${l}`, `in${l}`]);
        g.output(`gb${l}`, 'float32', [`out${l}`]);
      }
      return (await createSession(g.toBytes())).session;
    })();
    sessions.set(key, session);
  }
  return session;
}

/** Embedding pass: x [m, d], parameters → u [m, width] unit rows. */
function embedGraph(layers: number): Promise<Session> {
  const key = `embed${layers}`;
  let session = sessions.get(key);
  if (!session) {
    session = (async () => {
      const g = new GraphBuilder(`ssl_embed_${layers}`);
      const x = g.input('x', 'float32', ['m', 'd']);
      const { u } = forward(g, x, parameterInputs(g, layers));
      g.op('Identity', [u], {}, 'u');
      g.output('u', 'float32', ['m', 'width']);
      return (await createSession(g.toBytes())).session;
    })();
    sessions.set(key, session);
  }
  return session;
}

function parameterFeeds(head: SslHead): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  head.layers.forEach((layer, l) => {
    feeds[`w${l}`] = new Tensor('float32', layer.weight, [layer.outputs, layer.inputs]);
    feeds[`b${l}`] = new Tensor('float32', layer.bias, [layer.outputs]);
  });
  return feeds;
}

// ---------------------------------------------------------------------------------------------------
// Head, one NT-Xent pass, embedding
// ---------------------------------------------------------------------------------------------------

/** PyTorch's nn.Linear initialisation: weights and biases uniform in ±1/√inputs, seeded. */
export function initSslHead(
  kind: SslHeadKind,
  dim: number,
  width: number,
  hidden: number,
  random: () => number,
): SslHead {
  const shapes =
    kind === 'linear'
      ? [[width, dim]]
      : [
          [hidden, dim],
          [width, hidden],
        ];
  const layers = shapes.map(([outputs, inputs]) => {
    const bound = 1 / Math.sqrt(inputs!);
    const uniform = () => (2 * random() - 1) * bound;
    return {
      outputs: outputs!,
      inputs: inputs!,
      weight: Float32Array.from({ length: outputs! * inputs! }, uniform),
      bias: Float32Array.from({ length: outputs! }, uniform),
    };
  });
  return { kind, dim, width, layers };
}

export interface SslPass {
  loss: number;
  /** Per layer, the gradient of the mean loss: weight (outputs × inputs) and bias. */
  gradients: Array<{ weight: Float32Array; bias: Float32Array }>;
}

/**
 * Mean NT-Xent loss and its gradient for one batch: `x` is 2B × dim (the first view of the B draws, then
 * the second view, in the same order), `samples` the B sample ids of the draws (equal ids are masked as
 * negatives of each other).
 */
export async function ntXentPass(
  head: SslHead,
  x: Float32Array,
  samples: ArrayLike<number>,
  temperature: number,
): Promise<SslPass> {
  const b = samples.length;
  if (b < 1) throw new Error('NT-Xent: the batch is empty');
  if (x.length !== 2 * b * head.dim)
    throw new Error(`NT-Xent: expected 2 × ${b} rows of ${head.dim} values, got ${x.length} values`);
  if (!(temperature > 0)) throw new Error(`NT-Xent: temperature must be > 0, got ${temperature}`);
  const ids = new BigInt64Array(2 * b);
  for (let t = 0; t < b; t++) ids[t] = ids[t + b] = BigInt(samples[t]!);
  const session = await trainGraph(head.layers.length);
  const out = await session.run({
    x: new Tensor('float32', x, [2 * b, head.dim]),
    ids: new Tensor('int64', ids, [2 * b]),
    invTau: new Tensor('float32', Float32Array.of(1 / temperature), [1]),
    invRows: new Tensor('float32', Float32Array.of(1 / (2 * b)), [1]),
    ...parameterFeeds(head),
  });
  return {
    loss: (out.loss!.data as Float32Array)[0]!,
    gradients: head.layers.map((_, l) => ({
      weight: out[`gw${l}`]!.data as Float32Array,
      bias: out[`gb${l}`]!.data as Float32Array,
    })),
  };
}

/** Rows per embedding call (bounds the copies). */
const EMBED_ROWS = 16_384;

/** The head applied to n rows of x (n × dim): n × width unit rows. */
export async function embedSsl(
  model: ProxySslModel | SslHead,
  x: Float32Array,
  n: number,
): Promise<Float32Array> {
  const head = 'head' in model ? model.head : model;
  if (x.length !== n * head.dim)
    throw new Error(`proxy SSL head expects ${n} rows of ${head.dim} values, got ${x.length} values`);
  const session = await embedGraph(head.layers.length);
  const params = parameterFeeds(head);
  const out = new Float32Array(n * head.width);
  for (let r0 = 0; r0 < n; r0 += EMBED_ROWS) {
    const r1 = Math.min(n, r0 + EMBED_ROWS);
    const result = await session.run({
      x: new Tensor('float32', x.subarray(r0 * head.dim, r1 * head.dim), [r1 - r0, head.dim]),
      ...params,
    });
    out.set(result.u!.data as Float32Array, r0 * head.width);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------------

/** A plan round ready for weighted draws: rows and the running sum of their weights. */
interface DrawTable {
  start: number;
  rows: Int32Array;
  cumulative: Float64Array;
}

function drawTable(
  what: string,
  start: number,
  rows: Int32Array,
  weights: ArrayLike<number> | undefined,
  n: number,
) {
  if (rows.length === 0) throw new Error(`${what} has no rows`);
  if (weights && weights.length !== rows.length)
    throw new Error(`${what} has ${rows.length} rows but ${weights.length} weights`);
  const cumulative = new Float64Array(rows.length);
  let total = 0;
  for (let t = 0; t < rows.length; t++) {
    const row = rows[t]!;
    if (!(row >= 0 && row < n)) throw new Error(`${what}: row ${row} is outside 0..${n - 1}`);
    const w = weights ? weights[t]! : 1;
    if (!(w >= 0 && Number.isFinite(w))) throw new Error(`${what}: weight ${w} of row ${row} is not ≥ 0`);
    cumulative[t] = total += w;
  }
  if (!(total > 0)) throw new Error(`${what}: the weights sum to 0`);
  return { start, rows, cumulative };
}

/** Checked draw tables of a plan: the warm-up first (start −∞), then the rounds by start. */
function drawTables(plan: TrainingPlan, n: number): DrawTable[] {
  if (plan.rounds.length === 0) throw new Error('training plan has no rounds');
  plan.rounds.forEach((r, i) => {
    if (!(r.start >= 0 && r.start < r.end && r.end <= 1))
      throw new Error(`training plan round ${i}: [${r.start}, ${r.end}) is not a range inside [0, 1]`);
    if (i > 0 && r.start < plan.rounds[i - 1]!.start)
      throw new Error(`training plan round ${i} starts before round ${i - 1}; rounds must be in order`);
  });
  const rounds = plan.rounds.map((r, i) =>
    drawTable(`training plan round ${i}`, r.start, r.indices, r.weights, n),
  );
  const warmup = plan.warmup
    ? drawTable('training plan warm-up', -Infinity, plan.warmup, undefined, n)
    : { ...rounds[0]!, start: -Infinity };
  return [warmup, ...rounds];
}

/**
 * The table in force at `progress`: the last round that has started (a gap between rounds, or the
 * time after a round's end, keeps the latest round), or the warm-up before the first round.
 */
function tableAt(tables: DrawTable[], progress: number): DrawTable {
  let current = tables[0]!;
  for (const t of tables) if (t.start <= progress) current = t;
  return current;
}

/** A row drawn with probability ∝ its weight (rows of weight 0 are never drawn). */
function draw(table: DrawTable, random: () => number): number {
  const c = table.cumulative;
  const target = random() * c[c.length - 1]!;
  let lo = 0;
  let hi = c.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (c[mid]! > target) hi = mid;
    else lo = mid + 1;
  }
  return table.rows[lo]!;
}

/** AdamW (Loshchilov & Hutter 2019) in PyTorch's form; moments in float64; biases are not decayed. */
class AdamW {
  private readonly m1: Float64Array[];
  private readonly m2: Float64Array[];
  private t = 0;

  constructor(
    private readonly params: Array<{ values: Float32Array; decay: boolean }>,
    private readonly weightDecay: number,
  ) {
    this.m1 = params.map((p) => new Float64Array(p.values.length));
    this.m2 = params.map((p) => new Float64Array(p.values.length));
  }

  step(gradients: ArrayLike<number>[], lr: number): void {
    this.t++;
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    this.params.forEach(({ values, decay }, p) => {
      const g = gradients[p]!;
      const m1 = this.m1[p]!;
      const m2 = this.m2[p]!;
      const shrink = decay ? 1 - lr * this.weightDecay : 1;
      for (let i = 0; i < values.length; i++) {
        m1[i] = b1 * m1[i]! + (1 - b1) * g[i]!;
        m2[i] = b2 * m2[i]! + (1 - b2) * g[i]! ** 2;
        values[i] = values[i]! * shrink - (lr * (m1[i]! / c1)) / (Math.sqrt(m2[i]! / c2) + eps);
      }
    });
  }
}

function checkViews(what: string, data: SslViews, minViews: number): void {
  if (!(Number.isInteger(data.n) && data.n >= 0))
    throw new Error(`${what}: n must be a count, got ${data.n}`);
  if (!(Number.isInteger(data.dim) && data.dim > 0))
    throw new Error(`${what}: dim must be > 0, got ${data.dim}`);
  if (data.views.length < minViews)
    throw new Error(`${what}: needs at least ${minViews} views per sample, got ${data.views.length}`);
  data.views.forEach((v, i) => {
    if (v.length !== data.n * data.dim)
      throw new Error(`${what}: view ${i} has ${v.length} values, expected ${data.n} × ${data.dim}`);
  });
}

function positiveInteger(name: string, value: number): number {
  if (!(Number.isInteger(value) && value > 0))
    throw new Error(`proxy SSL: ${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Train the proxy head from scratch on the plan's rows: `steps` batches of `batch` draws (with
 * replacement, ∝ weight, from the round in force at progress step/steps), two different views of each
 * draw, NT-Xent, AdamW with cosine learning-rate decay. The same compute whatever the subset's size;
 * deterministic for a seed.
 */
export async function trainProxySsl(
  data: SslViews,
  plan: TrainingPlan,
  options: ProxySslOptions = {},
): Promise<ProxySslModel> {
  const o = { ...PROXY_SSL_DEFAULTS, ...options };
  checkViews('proxy SSL training data', data, 2);
  if (o.head !== 'linear' && o.head !== 'mlp')
    throw new Error(`proxy SSL: head must be 'linear' or 'mlp', got '${String(o.head)}'`);
  const steps = positiveInteger('steps', o.steps);
  const batch = positiveInteger('batch', o.batch);
  const width = positiveInteger('width', o.width);
  const hidden = positiveInteger('hidden', o.hidden);
  if (!(o.temperature > 0)) throw new Error(`proxy SSL: temperature must be > 0, got ${o.temperature}`);
  if (!(o.lr > 0)) throw new Error(`proxy SSL: lr must be > 0, got ${o.lr}`);
  if (!(o.weightDecay >= 0)) throw new Error(`proxy SSL: weightDecay must be ≥ 0, got ${o.weightDecay}`);
  const tables = drawTables(plan, data.n);

  const { dim, views } = data;
  const random = seededRandom(o.seed);
  const head = initSslHead(o.head, dim, width, hidden, random);
  const optimizer = new AdamW(
    head.layers.flatMap((l) => [
      { values: l.weight, decay: true },
      { values: l.bias, decay: false },
    ]),
    o.weightDecay,
  );
  const x = new Float32Array(2 * batch * dim);
  const rows = new Int32Array(batch);
  const losses = new Float32Array(steps);
  for (let step = 0; step < steps; step++) {
    o.signal?.throwIfAborted();
    const table = tableAt(tables, step / steps);
    for (let t = 0; t < batch; t++) {
      const row = (rows[t] = draw(table, random));
      // Two different views, in random order.
      const a = Math.floor(random() * views.length);
      let b = Math.floor(random() * (views.length - 1));
      if (b >= a) b++;
      x.set(views[a]!.subarray(row * dim, (row + 1) * dim), t * dim);
      x.set(views[b]!.subarray(row * dim, (row + 1) * dim), (t + batch) * dim);
    }
    const pass = await ntXentPass(head, x, rows, o.temperature);
    losses[step] = pass.loss;
    const lr = 0.5 * o.lr * (1 + Math.cos((Math.PI * step) / steps));
    optimizer.step(
      pass.gradients.flatMap((g) => [g.weight, g.bias]),
      lr,
    );
    o.onStep?.(step + 1, pass.loss, rows);
  }
  return { head, seed: o.seed, steps, batch, temperature: o.temperature, losses };
}

// ---------------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------------

export interface SslSplit {
  n: number;
  dim: number;
  /** n × dim image embeddings. */
  image: Float32Array;
  /** Class of each row; a negative label marks an unlabelled row (left out of kNN and the probe). */
  labels?: ArrayLike<number>;
}

export interface SslHeldOut extends SslSplit {
  /** ≥ 2 row-aligned view matrices (n × dim) for alignment. */
  views?: Float32Array[];
}

export interface ProxySslMetrics {
  /** Held-out kNN top-1 against the labelled training rows in the head's space; null without labels. */
  knnTop1: number | null;
  /** Held-out top-1 of a linear probe trained on the head outputs of the training rows; null without labels. */
  probeTop1: number | null;
  /** E‖f(x) − f(x⁺)‖² over held-out view pairs (lower = more view-invariant); null without views. */
  alignment: number | null;
  /** log E exp(−2‖f(x) − f(y)‖²) over held-out pairs (lower = more uniform on the sphere). */
  uniformity: number;
}

export interface EvaluateSslOptions {
  knnK?: number;
  knnTemperature?: number;
  uniformitySample?: number;
  /** Seeds the uniformity sample (default: the model's training seed). */
  seed?: number;
  probe?: ProbeOptions;
}

/**
 * Weighted kNN top-1 (the InstDisc / SimCLR kNN monitor, Wu et al. 2018): each query's k most similar
 * labelled training rows (cosine, rows are unit) vote for their class with weight exp(cos/τ); the class
 * with the largest total wins (ties: the smaller class id). Rows and queries with a negative label are
 * left out. The similarity search is the blocked MatMul + TopK kernel. Returns null when no labelled
 * training row or query exists.
 */
export async function knnTop1(
  train: { rows: number; cols: number; data: Float32Array; labels: ArrayLike<number> },
  queries: { rows: number; cols: number; data: Float32Array; labels: ArrayLike<number> },
  k: number = PROXY_SSL_DEFAULTS.knnK,
  temperature: number = PROXY_SSL_DEFAULTS.knnTemperature,
): Promise<number | null> {
  positiveInteger('knnK', k);
  if (!(temperature > 0)) throw new Error(`proxy SSL: knnTemperature must be > 0, got ${temperature}`);
  const base = labelledRows(train);
  const query = labelledRows(queries);
  if (base.matrix.rows === 0 || query.matrix.rows === 0) return null;
  const kk = Math.min(k, base.matrix.rows);
  const top = await topKInnerProduct(query.matrix, base.matrix, kk);
  const votes = new Map<number, number>();
  let correct = 0;
  for (let q = 0; q < query.matrix.rows; q++) {
    votes.clear();
    for (let j = 0; j < kk; j++) {
      const neighbour = top.indices[q * kk + j]!;
      if (neighbour < 0) continue;
      const label = base.labels[neighbour]!;
      votes.set(label, (votes.get(label) ?? 0) + Math.exp(top.values[q * kk + j]! / temperature));
    }
    let best = -1;
    let bestVote = -Infinity;
    for (const [label, vote] of votes)
      if (vote > bestVote || (vote === bestVote && label < best)) [best, bestVote] = [label, vote];
    if (best === query.labels[q]) correct++;
  }
  return correct / query.matrix.rows;
}

function labelledRows(m: { rows: number; cols: number; data: Float32Array; labels: ArrayLike<number> }): {
  matrix: Matrix;
  labels: Int32Array;
} {
  if (m.labels.length !== m.rows) throw new Error(`${m.labels.length} labels for ${m.rows} rows`);
  const keep: number[] = [];
  for (let i = 0; i < m.rows; i++) if (m.labels[i]! >= 0) keep.push(i);
  if (keep.length === m.rows) return { matrix: m, labels: Int32Array.from(m.labels) };
  const data = new Float32Array(keep.length * m.cols);
  keep.forEach((i, t) => data.set(m.data.subarray(i * m.cols, (i + 1) * m.cols), t * m.cols));
  return {
    matrix: { rows: keep.length, cols: m.cols, data },
    labels: Int32Array.from(keep, (i) => m.labels[i]!),
  };
}

/**
 * Wang & Isola's uniformity (t = 2) of unit rows: log of the mean of exp(−2‖f_i − f_j‖²) over all pairs
 * i < j of a seeded sample of ≤ `sample` rows; ‖f_i − f_j‖² = 2 − 2⟨f_i, f_j⟩ from one MatMul.
 */
export async function uniformity(
  embeddings: Matrix,
  sample: number = PROXY_SSL_DEFAULTS.uniformitySample,
  seed = 0,
): Promise<number> {
  const m = Math.min(embeddings.rows, positiveInteger('uniformitySample', sample));
  if (m < 2) throw new Error(`uniformity needs at least 2 held-out rows, got ${embeddings.rows}`);
  // A seeded partial Fisher–Yates shuffle picks the sample (all rows when there are few).
  const order = Int32Array.from({ length: embeddings.rows }, (_, i) => i);
  const random = seededRandom(seed);
  for (let i = 0; i < m && m < embeddings.rows; i++) {
    const j = i + Math.floor(random() * (embeddings.rows - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const picked: Matrix = { rows: m, cols: embeddings.cols, data: new Float32Array(m * embeddings.cols) };
  for (let t = 0; t < m; t++)
    picked.data.set(
      embeddings.data.subarray(order[t]! * embeddings.cols, (order[t]! + 1) * embeddings.cols),
      t * embeddings.cols,
    );
  const gram = await innerProducts(picked, picked);
  let sum = 0;
  for (let i = 0; i < m; i++)
    for (let j = i + 1; j < m; j++) sum += Math.exp(-2 * Math.max(0, 2 - 2 * gram[i * m + j]!));
  return Math.log(sum / ((m * (m - 1)) / 2));
}

/** Mean ‖f(v_a) − f(v_b)‖² over rows and every pair of views a < b. */
function alignment(views: Float32Array[], rows: number, width: number): number {
  let sum = 0;
  let pairs = 0;
  for (let a = 0; a < views.length; a++)
    for (let b = a + 1; b < views.length; b++) {
      for (let i = 0; i < rows * width; i++) sum += (views[a]![i]! - views[b]![i]!) ** 2;
      pairs++;
    }
  return sum / (pairs * rows);
}

/** kNN, linear-probe, alignment and uniformity metrics of a trained proxy head on a held-out split. */
export async function evaluateProxySsl(
  model: ProxySslModel,
  train: SslSplit,
  heldOut: SslHeldOut,
  options: EvaluateSslOptions = {},
): Promise<ProxySslMetrics> {
  const { head } = model;
  for (const [what, split] of [
    ['training split', train],
    ['held-out split', heldOut],
  ] as const) {
    if (split.dim !== head.dim)
      throw new Error(`proxy SSL ${what}: ${split.dim}-d rows, the head expects ${head.dim}`);
    if (split.image.length !== split.n * split.dim)
      throw new Error(
        `proxy SSL ${what}: image has ${split.image.length} values, expected ${split.n} × ${split.dim}`,
      );
    if (split.labels && split.labels.length !== split.n)
      throw new Error(`proxy SSL ${what}: ${split.labels.length} labels for ${split.n} rows`);
  }
  if (heldOut.views)
    checkViews('proxy SSL held-out split', { n: heldOut.n, dim: heldOut.dim, views: heldOut.views }, 2);
  const width = head.width;
  const trainEmb: Matrix = { rows: train.n, cols: width, data: await embedSsl(head, train.image, train.n) };
  const heldEmb: Matrix = {
    rows: heldOut.n,
    cols: width,
    data: await embedSsl(head, heldOut.image, heldOut.n),
  };

  let knn: number | null = null;
  let probe: number | null = null;
  if (train.labels && heldOut.labels) {
    const trainLabelled = labelledRows({ ...trainEmb, labels: train.labels });
    const heldLabelled = labelledRows({ ...heldEmb, labels: heldOut.labels });
    knn = await knnTop1(
      { ...trainLabelled.matrix, labels: trainLabelled.labels },
      { ...heldLabelled.matrix, labels: heldLabelled.labels },
      options.knnK ?? PROXY_SSL_DEFAULTS.knnK,
      options.knnTemperature ?? PROXY_SSL_DEFAULTS.knnTemperature,
    );
    if (trainLabelled.matrix.rows > 0 && heldLabelled.matrix.rows > 0)
      probe = (
        await linearProbe(
          { x: trainLabelled.matrix, labels: trainLabelled.labels },
          { x: heldLabelled.matrix, labels: heldLabelled.labels },
          options.probe,
        )
      ).accuracy;
  }
  let align: number | null = null;
  if (heldOut.views) {
    const embedded = await Promise.all(heldOut.views.map((v) => embedSsl(head, v, heldOut.n)));
    align = heldOut.n > 0 ? alignment(embedded, heldOut.n, width) : null;
  }
  return {
    knnTop1: knn,
    probeTop1: probe,
    alignment: align,
    uniformity: await uniformity(heldEmb, options.uniformitySample, options.seed ?? model.seed),
  };
}
