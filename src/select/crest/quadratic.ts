/**
 * CREST's local quadratic model of the proxy loss (crest.md (R4)–(R7)), analytic for the linear softmax
 * head instead of the code's Hutchinson/AdaHessian estimate (crest.md §2 [R]).
 *
 * On the weighted coreset S (weights s_j = w_j / Σw):
 *   L₀ = Σ_j s_j ℓ_j,   g = Σ_j s_j r_j [x_j; 1]ᵀ,
 *   diag(H)[c,k] = Σ_j s_j p_jc(1 − p_jc) x_jk²,   diag(H)[c, bias] = Σ_j s_j p_jc(1 − p_jc),
 * and F̃(δ) = L₀ + gᵀδ + ½ δᵀ diag(h) δ. The O(|S|·K·d) parts run on the kernel: the gradient in the head
 * pass, the diagonal as one product (s ⊙ p(1 − p))ᵀ · (x ⊙ x).
 */
import { asDense, tmatmul } from '../../compute/linalg.js';
import type { Matrix } from '../kernels/similarity.js';
import { headPass, type SoftmaxHead } from '../proxy/softmaxHead.js';

/** A vector in the head's parameter space: W (K × d, row-major) and the bias (K). */
export interface HeadVector {
  weight: Float64Array;
  bias: Float64Array;
}

export function zeroHeadVector(classes: number, dim: number): HeadVector {
  return { weight: new Float64Array(classes * dim), bias: new Float64Array(classes) };
}

export interface QuadraticModel {
  /** L₀: weighted mean loss on the coreset at w₀. */
  loss: number;
  /** g = ∇L at w₀. */
  gradient: HeadVector;
  /** h = diag(∇²L) at w₀. */
  hessianDiagonal: HeadVector;
  /** κ = ‖h‖₂ over all parameters, the curvature norm of (R7). */
  curvature: number;
}

/** (R4): L₀, g and diag(H) of the weighted mean cross-entropy of `head` on (x, labels, weights). */
export async function quadraticModel(
  head: SoftmaxHead,
  x: Matrix,
  labels: ArrayLike<number>,
  weights?: ArrayLike<number>,
): Promise<QuadraticModel> {
  const n = x.rows;
  const K = head.classes;
  const d = head.dim;
  if (n === 0) throw new Error('quadratic model of an empty coreset');
  let total = 0;
  for (let j = 0; j < n; j++) total += weights ? weights[j]! : 1;
  if (!(total > 0)) throw new Error('coreset weights must have a positive sum');
  const s = Float32Array.from({ length: n }, (_, j) => (weights ? weights[j]! : 1) / total);
  const pass = await headPass(head, x, labels, s);

  let loss = 0;
  for (let j = 0; j < n; j++) loss += s[j]! * pass.losses[j]!;
  // a_jc = s_j p_jc (1 − p_jc), p = r + e_y.
  const a = new Float32Array(n * K);
  const hessBias = new Float64Array(K);
  for (let j = 0; j < n; j++) {
    const y = labels[j]!;
    for (let c = 0; c < K; c++) {
      const p = pass.residuals[j * K + c]! + (c === y ? 1 : 0);
      const v = s[j]! * p * (1 - p);
      a[j * K + c] = v;
      hessBias[c]! += v;
    }
  }
  const squares = Float32Array.from(x.data.subarray(0, n * d), (v) => v * v);
  const hw = await tmatmul(
    asDense({ rows: n, cols: K, data: a }),
    asDense({ rows: n, cols: d, data: squares }),
  );
  const hessianDiagonal = { weight: Float64Array.from(hw.data), bias: hessBias };
  return {
    loss,
    gradient: { weight: Float64Array.from(pass.gradWeight), bias: Float64Array.from(pass.gradBias) },
    hessianDiagonal,
    curvature: Math.sqrt(dot(hessianDiagonal, hessianDiagonal)),
  };
}

/** Σ a_i b_i over all parameters. */
export function dot(a: HeadVector, b: HeadVector): number {
  let t = 0;
  for (let i = 0; i < a.weight.length; i++) t += a.weight[i]! * b.weight[i]!;
  for (let i = 0; i < a.bias.length; i++) t += a.bias[i]! * b.bias[i]!;
  return t;
}

/** F̃(δ) = L₀ + gᵀδ + ½ δᵀ diag(h) δ (R4). */
export function modelLoss(model: QuadraticModel, delta: HeadVector): number {
  const h = model.hessianDiagonal;
  let curvature = 0;
  for (let i = 0; i < delta.weight.length; i++) curvature += h.weight[i]! * delta.weight[i]! ** 2;
  for (let i = 0; i < delta.bias.length; i++) curvature += h.bias[i]! * delta.bias[i]! ** 2;
  return model.loss + dot(model.gradient, delta) + 0.5 * curvature;
}

/**
 * (R5): δ ← δ − η·∇L_batch, the plain-SGD displacement (momentum and weight decay ignored, as the
 * code's `self.delta -= lr * gf_current`).
 */
export function displace(
  delta: HeadVector,
  batchGradient: { gradWeight: ArrayLike<number>; gradBias: ArrayLike<number> },
  lr: number,
): void {
  for (let i = 0; i < delta.weight.length; i++) delta.weight[i]! -= lr * batchGradient.gradWeight[i]!;
  for (let i = 0; i < delta.bias.length; i++) delta.bias[i]! -= lr * batchGradient.gradBias[i]!;
}

/** (R6): reselect when |L_true − F̃(δ)| > τ·L_true. */
export function checkFires(trueLoss: number, approxLoss: number, tau: number): boolean {
  return Math.abs(trueLoss - approxLoss) > tau * trueLoss;
}

export interface AdaptiveSchedule {
  /** T₁: steps between checks. */
  checkInterval: number;
  /** P: mini-batch coresets at the next selection. */
  coresets: number;
}

/**
 * (R7): T₁ = ⌈κ₀/κ_t · interval_mul⌉ (at least 1), P = min(T₁ · batch_num_mul, steps_per_epoch).
 * Flatter regions (small κ_t) → fewer checks and more coresets per selection.
 */
export function adaptiveSchedule(
  initialCurvature: number,
  curvature: number,
  intervalMul: number,
  batchNumMul: number,
  stepsPerEpoch: number,
): AdaptiveSchedule {
  const ratio = curvature > 0 ? initialCurvature / curvature : Number.POSITIVE_INFINITY;
  // The tolerance keeps an exact ratio (2/0.5·1 = 4) from rounding up on float noise.
  const raw = Math.ceil(ratio * intervalMul - 1e-9);
  const checkInterval = Math.max(1, Number.isFinite(raw) ? raw : stepsPerEpoch);
  return { checkInterval, coresets: Math.max(1, Math.min(checkInterval * batchNumMul, stepsPerEpoch)) };
}
