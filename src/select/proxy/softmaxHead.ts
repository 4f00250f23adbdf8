/**
 * The proxy model of the embeddings-first methods (pdd.md §2, and the dynamic methods of craig.md,
 * crest.md, …): multinomial logistic regression on embeddings φ, logits Wφ + c.
 *
 *   p_i = softmax(Wφ_i + c),  ℓ_i = −log p_i[y_i],  r_i = p_i − e_{y_i}
 *   ∇_W ℓ_i = r_i φ_iᵀ (rank one),  ∇_c ℓ_i = r_i
 *
 * Every pass over data is one onnxruntime graph (MatMul, Softmax, LogSoftmax, and the weighted gradient
 * Rᵀ·diag(s)·Φ as a second MatMul), so training and per-example residual export run on the BLAS-grade
 * kernel; JavaScript only does the O(K·d) parameter updates.
 */
import { GraphBuilder } from '../../compute/onnxGraph.js';
import { createSession, Tensor, type Session } from '../../compute/ort.js';
import { gaussian, seededRandom } from '../../compute/random.js';
import { rowsOf, type Matrix } from '../kernels/similarity.js';

export interface SoftmaxHead {
  classes: number;
  dim: number;
  /** K × d, row-major. */
  weight: Float32Array;
  /** K. */
  bias: Float32Array;
}

/** W ~ N(0, scale²), c = 0 (pdd.md §3.3 step 1: scale 0.01), seeded. */
export function initHead(classes: number, dim: number, seed: number, scale = 0.01): SoftmaxHead {
  const normal = gaussian(seededRandom(seed));
  return {
    classes,
    dim,
    weight: Float32Array.from({ length: classes * dim }, () => scale * normal()),
    bias: new Float32Array(classes),
  };
}

export function cloneHead(h: SoftmaxHead): SoftmaxHead {
  return { classes: h.classes, dim: h.dim, weight: h.weight.slice(), bias: h.bias.slice() };
}

export interface HeadPass {
  /** r_i = p_i − e_{y_i}, rows × K. */
  residuals: Float32Array;
  /** ℓ_i, rows. */
  losses: Float32Array;
  /** Σ_i s_i r_i φ_iᵀ, K × d. */
  gradWeight: Float32Array;
  /** Σ_i s_i r_i, K. */
  gradBias: Float32Array;
}

let passSession: Promise<Session> | undefined;

/** x [b,d], w [K,d], c [K], y [b,K] one-hot, s [b] → r [b,K], loss [b], gw [K,d], gc [K]. */
function passGraph(): Promise<Session> {
  passSession ??= (async () => {
    const g = new GraphBuilder('softmax_head_pass');
    const x = g.input('x', 'float32', ['b', 'd']);
    const w = g.input('w', 'float32', ['K', 'd']);
    const c = g.input('c', 'float32', ['K']);
    const y = g.input('y', 'float32', ['b', 'K']);
    const s = g.input('s', 'float32', ['b']);
    const logits = g.op('Add', [g.op('MatMul', [x, g.op('Transpose', [w], { perm: [1, 0] })]), c]);
    const r = g.op('Sub', [g.op('Softmax', [logits], { axis: 1 }), y], {}, 'r');
    const logp = g.op('LogSoftmax', [logits], { axis: 1 });
    g.op('Neg', [g.op('ReduceSum', [g.op('Mul', [logp, y]), g.ints([1])], { keepdims: 0 })], {}, 'loss');
    const weighted = g.op('Mul', [r, g.op('Unsqueeze', [s, g.ints([1])])]);
    g.op('MatMul', [g.op('Transpose', [weighted], { perm: [1, 0] }), x], {}, 'gw');
    g.op('ReduceSum', [weighted, g.ints([0])], { keepdims: 0 }, 'gc');
    g.output('r', 'float32', ['b', 'K']);
    g.output('loss', 'float32', ['b']);
    g.output('gw', 'float32', ['K', 'd']);
    g.output('gc', 'float32', ['K']);
    return (await createSession(g.toBytes())).session;
  })();
  return passSession;
}

/** Rows per kernel call for whole-pool passes (bounds the residual tile and the copies). */
const PASS_ROWS = 16_384;

/**
 * Residuals and losses of every row, and the gradient weighted by s (default s_i = 1/rows: the mean
 * gradient). Tiled over rows, so any N works; the gradient sums accumulate across tiles.
 */
export async function headPass(
  head: SoftmaxHead,
  x: Matrix,
  labels: ArrayLike<number>,
  gradientWeights?: ArrayLike<number>,
): Promise<HeadPass> {
  if (x.cols !== head.dim) throw new Error(`proxy head expects ${head.dim}-d features, got ${x.cols}`);
  if (labels.length !== x.rows) throw new Error(`${labels.length} labels for ${x.rows} rows`);
  const session = await passGraph();
  const K = head.classes;
  const residuals = new Float32Array(x.rows * K);
  const losses = new Float32Array(x.rows);
  const gradWeight = new Float32Array(K * head.dim);
  const gradBias = new Float32Array(K);
  for (let r0 = 0; r0 < x.rows; r0 += PASS_ROWS) {
    const r1 = Math.min(x.rows, r0 + PASS_ROWS);
    const b = r1 - r0;
    const y = new Float32Array(b * K);
    const s = new Float32Array(b);
    for (let i = 0; i < b; i++) {
      const label = labels[r0 + i]!;
      if (!(label >= 0 && label < K))
        throw new Error(`label ${label} of row ${r0 + i} is outside 0..${K - 1}`);
      y[i * K + label] = 1;
      s[i] = gradientWeights ? gradientWeights[r0 + i]! : 1 / x.rows;
    }
    const tile = rowsOf(x, r0, r1);
    const out = await session.run({
      x: new Tensor('float32', tile.data, [b, head.dim]),
      w: new Tensor('float32', head.weight, [K, head.dim]),
      c: new Tensor('float32', head.bias, [K]),
      y: new Tensor('float32', y, [b, K]),
      s: new Tensor('float32', s, [b]),
    });
    residuals.set(out.r!.data as Float32Array, r0 * K);
    losses.set(out.loss!.data as Float32Array, r0);
    const gw = out.gw!.data as Float32Array;
    const gc = out.gc!.data as Float32Array;
    for (let j = 0; j < gw.length; j++) gradWeight[j]! += gw[j]!;
    for (let k = 0; k < K; k++) gradBias[k]! += gc[k]!;
  }
  return { residuals, losses, gradWeight, gradBias };
}

/** argmax_k p_i[k] from residuals (p = r + e_y). */
export function predictionsFromResiduals(
  residuals: Float32Array,
  labels: ArrayLike<number>,
  classes: number,
): Int32Array {
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    let bestP = -Infinity;
    for (let k = 0; k < classes; k++) {
      const p = residuals[i * classes + k]! + (k === labels[i] ? 1 : 0);
      if (p > bestP) [best, bestP] = [k, p];
    }
    out[i] = best;
  }
  return out;
}

/** Share of rows whose arg-max class is their label. */
export function accuracyFromResiduals(
  residuals: Float32Array,
  labels: ArrayLike<number>,
  classes: number,
): number {
  if (labels.length === 0) return 0;
  const predicted = predictionsFromResiduals(residuals, labels, classes);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct / labels.length;
}

export interface SgdOptions {
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Minibatch rows; ≥ the data size means full-batch gradient descent. */
  batchSize: number;
  epochs: number;
  /** Train at least this many steps (pdd.md §3.5: small sets need steps, not epochs). */
  minSteps?: number;
  /** Stop after this many steps (a segment of a fractional number of epochs). */
  maxSteps?: number;
  seed: number;
  /** Called after every epoch with the current parameters (expert checkpoints). */
  onEpoch?: (epoch: number, head: SoftmaxHead) => void | Promise<void>;
  /** Called after every step (1-based count) with the current parameters. */
  onStep?: (step: number, head: SoftmaxHead) => void | Promise<void>;
  signal?: AbortSignal;
}

/** Momentum buffers, carried across stages when a schedule trains in stages (pdd.md pitfall 4). */
export interface SgdState {
  velocityWeight: Float32Array;
  velocityBias: Float32Array;
}

export function freshSgdState(head: SoftmaxHead): SgdState {
  return {
    velocityWeight: new Float32Array(head.weight.length),
    velocityBias: new Float32Array(head.bias.length),
  };
}

export interface TrainingData {
  x: Matrix;
  labels: ArrayLike<number>;
  /** Per-example weights (a weighted coreset): the loss is Σ w_i ℓ_i / Σ w_i. */
  weights?: ArrayLike<number>;
}

/**
 * SGD with momentum and weight decay, PyTorch's form: v ← μv + (g + λθ), θ ← θ − ηv (bias not decayed).
 * Mutates `head` and `state`; returns the number of steps taken. Batches are drawn from a seeded
 * shuffle per epoch; per-example weights enter the batch gradient as w_i / mean(w).
 */
export async function trainHead(
  head: SoftmaxHead,
  data: TrainingData,
  o: SgdOptions,
  state: SgdState = freshSgdState(head),
): Promise<number> {
  const n = data.x.rows;
  if (n === 0) return 0;
  const d = head.dim;
  const batch = Math.min(o.batchSize, n);
  const epochs = plannedEpochs(n, o);
  let meanWeight = 1;
  if (data.weights) {
    let total = 0;
    for (let i = 0; i < n; i++) total += data.weights[i]!;
    meanWeight = total / n;
    if (!(meanWeight > 0)) throw new Error('training weights must have a positive sum');
  }
  const random = seededRandom(o.seed);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const xb = new Float32Array(batch * d);
  const yb = new Int32Array(batch);
  const sb = new Float32Array(batch);
  let steps = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    if (batch < n) {
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
    }
    for (let b0 = 0; b0 < n && steps < (o.maxSteps ?? Infinity); b0 += batch) {
      o.signal?.throwIfAborted();
      const rows = Math.min(batch, n - b0);
      let xs: Matrix;
      if (batch === n) {
        xs = data.x;
        for (let t = 0; t < n; t++) yb[t] = data.labels[t]!;
      } else {
        for (let t = 0; t < rows; t++) {
          const i = order[b0 + t]!;
          xb.set(data.x.data.subarray(i * d, (i + 1) * d), t * d);
          yb[t] = data.labels[i]!;
        }
        xs = { rows, cols: d, data: xb.subarray(0, rows * d) };
      }
      for (let t = 0; t < rows; t++) {
        const w = data.weights ? data.weights[batch === n ? t : order[b0 + t]!]! / meanWeight : 1;
        sb[t] = w / rows;
      }
      const g = await headPass(head, xs, yb.subarray(0, rows), sb.subarray(0, rows));
      sgdUpdate(head, g, state, o);
      steps++;
      await o.onStep?.(steps, head);
    }
    await o.onEpoch?.(epoch, head);
  }
  return steps;
}

/** Epochs `trainHead` will run on n rows (the epoch count, raised to reach `minSteps`). */
export function plannedEpochs(n: number, o: Pick<SgdOptions, 'batchSize' | 'epochs' | 'minSteps'>): number {
  const stepsPerEpoch = Math.ceil(n / Math.min(o.batchSize, n));
  return Math.max(o.epochs, Math.ceil((o.minSteps ?? 0) / stepsPerEpoch));
}

/** One PyTorch-form momentum SGD step from a pass's gradient (trainHead's update, for custom step loops). */
export function sgdUpdate(
  head: SoftmaxHead,
  g: HeadPass,
  state: SgdState,
  o: Pick<SgdOptions, 'lr' | 'momentum' | 'weightDecay'>,
): void {
  const { weight, bias } = head;
  const vw = state.velocityWeight;
  const vb = state.velocityBias;
  for (let j = 0; j < weight.length; j++) {
    vw[j] = o.momentum * vw[j]! + g.gradWeight[j]! + o.weightDecay * weight[j]!;
    weight[j]! -= o.lr * vw[j]!;
  }
  for (let k = 0; k < bias.length; k++) {
    vb[k] = o.momentum * vb[k]! + g.gradBias[k]!;
    bias[k]! -= o.lr * vb[k]!;
  }
}
