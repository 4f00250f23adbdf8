/**
 * One class of one PDD-Select stage (pdd.md §3.3 step 5, our adaptation [R]): pick m examples S from the
 * candidates so that the mean last-layer gradient of U_{i−1} ∪ S matches the class's full-data mean
 * gradient at every checkpoint τ of the expert segment:
 *
 *   min_S Σ_τ ‖ Ḡ_τ − (A_τ + Σ_{j∈S} g_{j,τ}) / (|U| + |S|) ‖_F²,   g_{j,τ} = r_{j,τ} [φ_j; 1]ᵀ
 *
 * by stochastic greedy. With q the current count and E_τ = Ḡ_τ − A_τ/(q+1), candidate e decreases the
 * objective by Σ_τ [ 2/(q+1) · r_{e,τ}ᵀ E_τ [φ_e; 1] − ‖r_{e,τ}‖² (‖φ_e‖² + 1)/(q+1)² ] (up to a term the
 * same for every candidate). The s sampled candidates are scored in one MatMul, [φ]·[E_1; …; E_T]ᵀ.
 */
import { gather, innerProducts, type Matrix } from '../kernels/similarity.js';

export interface MatchingProblem {
  /** The class's examples (n × d). Positions below index rows of this matrix. */
  x: Matrix;
  classes: number;
  /** Per checkpoint τ: residuals r_{j,τ} of the n examples, n × K. */
  residuals: Float32Array[];
  /** Per checkpoint τ: the target Ḡ_τ, K × (d + 1) (last column: the bias gradient). */
  targets: Float64Array[];
  /** Positions of the frozen earlier stages U_{i−1} (the conditioning). */
  frozen: readonly number[];
  /** Positions that may be picked. */
  candidates: readonly number[];
}

export interface MatchingResult {
  /** Picked positions in pick order. */
  picked: number[];
  /** Objective before the first pick, then after each pick. */
  objective: number[];
}

/**
 * s = ⌈(n/m)·ln(1/ε)⌉ candidates per pick (stochastic greedy, Mirzasoleiman et al. 2015); all remaining
 * candidates when that is more.
 */
export function sampleSize(candidates: number, picks: number, epsilon: number): number {
  return Math.min(candidates, Math.ceil((candidates / Math.max(1, picks)) * Math.log(1 / epsilon)));
}

export async function greedyGradientMatch(
  p: MatchingProblem,
  picks: number,
  epsilon: number,
  random: () => number,
  signal?: AbortSignal,
): Promise<MatchingResult> {
  const { x, classes: K } = p;
  const d = x.cols;
  const T = p.residuals.length;
  const width = d + 1;
  // A_τ = Σ_{u∈U} r_{u,τ} [φ_u; 1]ᵀ, the frozen earlier stages (eq. of §3.3 step 5).
  const sums = p.targets.map(() => new Float64Array(K * width));
  for (const u of p.frozen) addGradient(p, sums, u);
  let count = p.frozen.length;

  const objective = [matchingError(p.targets, sums, count)];
  const picked: number[] = [];
  const remaining = [...p.candidates];
  const want = Math.min(picks, remaining.length);
  const s = sampleSize(remaining.length, want, epsilon);
  const stacked = new Float32Array(T * K * d);
  const biasColumn = new Float64Array(T * K);
  for (let t = 0; t < want; t++) {
    signal?.throwIfAborted();
    // E_τ = Ḡ_τ − A_τ/(q+1), stacked as T·K rows of length d (+ its bias column kept apart).
    const q1 = count + 1;
    for (let tau = 0; tau < T; tau++) {
      const g = p.targets[tau]!;
      const a = sums[tau]!;
      for (let k = 0; k < K; k++) {
        const row = (tau * K + k) * d;
        for (let j = 0; j < d; j++) stacked[row + j] = g[k * width + j]! - a[k * width + j]! / q1;
        biasColumn[tau * K + k] = g[k * width + d]! - a[k * width + d]! / q1;
      }
    }
    // Partial Fisher–Yates: the first `take` entries of `remaining` become a uniform sample.
    const take = Math.min(s, remaining.length);
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(random() * (remaining.length - i));
      [remaining[i], remaining[j]] = [remaining[j]!, remaining[i]!];
    }
    const sample = remaining.slice(0, take);
    const products = await innerProducts(gather(x, sample), { rows: T * K, cols: d, data: stacked });
    let best = -1;
    let bestGain = -Infinity;
    for (let c = 0; c < take; c++) {
      const e = sample[c]!;
      let phiNorm = 1;
      for (let j = 0; j < d; j++) phiNorm += x.data[e * d + j]! ** 2;
      let gain = 0;
      for (let tau = 0; tau < T; tau++) {
        const r = p.residuals[tau]!;
        let along = 0;
        let rNorm = 0;
        for (let k = 0; k < K; k++) {
          const rk = r[e * K + k]!;
          along += rk * (products[c * T * K + tau * K + k]! + biasColumn[tau * K + k]!);
          rNorm += rk * rk;
        }
        gain += (2 / q1) * along - (rNorm * phiNorm) / (q1 * q1);
      }
      if (gain > bestGain) [best, bestGain] = [c, gain];
    }
    const chosen = sample[best]!;
    remaining[best] = remaining[remaining.length - 1]!;
    remaining.pop();
    addGradient(p, sums, chosen);
    count += 1;
    picked.push(chosen);
    objective.push(matchingError(p.targets, sums, count));
  }
  return { picked, objective };
}

/** A_τ += r_{e,τ} [φ_e; 1]ᵀ for every τ. */
function addGradient(p: MatchingProblem, sums: Float64Array[], e: number): void {
  const K = p.classes;
  const d = p.x.cols;
  const phi = p.x.data.subarray(e * d, (e + 1) * d);
  sums.forEach((a, tau) => {
    const r = p.residuals[tau]!;
    for (let k = 0; k < K; k++) {
      const rk = r[e * K + k]!;
      if (rk === 0) continue;
      const row = k * (d + 1);
      for (let j = 0; j < d; j++) a[row + j]! += rk * phi[j]!;
      a[row + d]! += rk;
    }
  });
}

/** Σ_τ ‖Ḡ_τ − A_τ/q‖² (q = 0: Σ_τ ‖Ḡ_τ‖², nothing chosen yet). */
export function matchingError(targets: Float64Array[], sums: Float64Array[], count: number): number {
  let total = 0;
  targets.forEach((g, tau) => {
    const a = sums[tau]!;
    for (let j = 0; j < g.length; j++) total += (g[j]! - (count > 0 ? a[j]! / count : 0)) ** 2;
  });
  return total;
}
