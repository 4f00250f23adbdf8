/**
 * GRAFT's batch-local linear algebra (graft.md §3):
 *  (G1) fixed seeded batches, the same at every round;
 *  (G2) per-batch low-rank factor V_r from the K × K Gram X_b X_bᵀ (kernel) and its eigenvectors;
 *  (G3) MaxVol picks per candidate rank, computed once and reused every round (G8);
 *  (G4)–(G5) the gradient part, which changes every round: the least-squares residual e(P) of the batch
 *  gradient on the span of the picks' gradients, in the Gram form, or the alignment option.
 *
 * Gradients: g_i = p_i − e_{y_i} ('logits'), or the proxy's last-layer gradient ĝ_i = [g_i; g_i ⊗ x_i]
 * ('lastLayer', the default) through the Gram trick ⟨ĝ_i, ĝ_j⟩ = ⟨g_i, g_j⟩(1 + ⟨x_i, x_j⟩), where
 * ⟨x_i, x_j⟩ is the batch Gram of (G2) itself. With q = C classes and r > C, e(P) = 0 for every candidate
 * in the 'logits' form (§8), which ĝ (q = C(d+1)) avoids.
 */
import { asDense, dense, tmatmul } from '../../compute/linalg.js';
import { seededRandom } from '../../compute/random.js';
import { gather, innerProducts, type Matrix } from '../kernels/similarity.js';
import { topEigenpairs } from './eigen.js';
import { greedyMaxVol, pivotLogVolume, refineMaxVol, type Factor } from './maxvol.js';

/** (G1) One seeded permutation of 0..n−1 cut into batches of `size` (the last may be smaller). */
export function fixedBatches(n: number, size: number, seed: number): Int32Array[] {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const random = seededRandom(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const batches: Int32Array[] = [];
  for (let s = 0; s < n; s += size) batches.push(order.slice(s, Math.min(n, s + size)));
  return batches;
}

/**
 * Eigenvectors with λ ≤ this × λ_1 are dropped: the thin SVD of X_bᵀ has min(d, K) columns (G2), and
 * directions at float32 noise level carry no feature information.
 */
export const RANK_TOLERANCE = 1e-6;

export interface BatchFactor {
  /** Global ids of the batch's rows, in batch order (local id = position here). */
  members: Int32Array;
  /** Columns of V kept (numerical rank of X_b). */
  rank: number;
  /** Local MaxVol picks per candidate rank, in pivot order; |picks| = min(r, rank). */
  picks: Map<number, Int32Array>;
  /** |R[p_t, t]| of each pick (volume = their product). */
  pivots: Map<number, Float64Array>;
  /** log|det V_r[P,:]| per candidate rank. */
  logVolume: Map<number, number>;
  /** Picks of rank r are the first r of one pivot order (no refinement): prefixes can share work. */
  nested: boolean;
  /** Local ids that appear in any candidate's picks. */
  rows: Int32Array;
  /** Row `slot[j]` holds ⟨x_j, x_i⟩ for every i in the batch: the (G2) Gram rows of `rows`, |rows| × K. */
  gramRows: Float32Array;
  slot: Int32Array;
}

export interface FactorOptions {
  refine: boolean;
  /** Refinement threshold δ (G3): swap while max|B_ij| > 1 + δ. */
  delta: number;
  signal?: AbortSignal;
  progress?: (done: number, total: number) => void;
}

/**
 * (G2)–(G3) for every batch: Gram X_b X_bᵀ on the kernel, its top r_max eigenvectors (V_r = the right
 * singular vectors of A_b = X_bᵀ; eigen.ts computes only those), MaxVol picks for each candidate rank.
 * `ranks` is every rank any round may try (G6 draws them ahead), so the factors are computed once (G8).
 */
export async function factorBatches(
  features: Matrix,
  batches: readonly Int32Array[],
  ranks: readonly number[],
  options: FactorOptions,
): Promise<BatchFactor[]> {
  const wanted = [...new Set(ranks)].sort((a, b) => a - b);
  const rMax = wanted.at(-1) ?? 0;
  const factors: BatchFactor[] = [];
  for (const [b, members] of batches.entries()) {
    options.signal?.throwIfAborted();
    const k = members.length;
    const xb = gather(features, members);
    const gram = await innerProducts(xb, xb);
    const eigen = topEigenpairs(gram, k, rMax);
    const top = eigen.values[0] ?? 0;
    let rank = 0;
    while (rank < k && top > 0 && eigen.values[rank]! > RANK_TOLERANCE * top) rank++;
    const cols = Math.min(eigen.count, rank);
    const v: Factor = { rows: k, cols, data: new Float64Array(k * cols) };
    for (let i = 0; i < k; i++)
      for (let t = 0; t < cols; t++) v.data[i * cols + t] = eigen.vectors[i * eigen.count + t]!;
    const greedy = greedyMaxVol(v);
    const picks = new Map<number, Int32Array>();
    const pivots = new Map<number, Float64Array>();
    const logVolume = new Map<number, number>();
    for (const r of wanted) {
      const size = Math.min(r, greedy.pivots.length);
      let chosen = greedy.pivots.subarray(0, size);
      let values = greedy.values.subarray(0, size);
      if (options.refine && size > 0) {
        const refined = refineMaxVol(v, chosen, { delta: options.delta });
        // Re-pivot the refined rows among themselves, so picks stay in pivot order with their |pivot|.
        const sub: Factor = { rows: size, cols: size, data: new Float64Array(size * size) };
        for (let i = 0; i < size; i++)
          for (let t = 0; t < size; t++) sub.data[i * size + t] = v.data[refined.pivots[i]! * cols + t]!;
        const order = greedyMaxVol(sub);
        chosen = Int32Array.from(order.pivots, (i) => refined.pivots[i]!);
        values = order.values;
      }
      picks.set(r, chosen);
      pivots.set(
        r,
        Float64Array.from(values, (x) => Math.abs(x)),
      );
      logVolume.set(r, pivotLogVolume(values));
    }
    const rows = Int32Array.from(new Set([...picks.values()].flatMap((p) => Array.from(p))));
    const slot = new Int32Array(k).fill(-1);
    const gramRows = new Float32Array(rows.length * k);
    rows.forEach((j, s) => {
      slot[j] = s;
      gramRows.set(gram.subarray(j * k, (j + 1) * k), s * k);
    });
    factors.push({
      members,
      rank,
      picks,
      pivots,
      logVolume,
      nested: !options.refine,
      rows,
      gramRows,
      slot,
    });
    options.progress?.(b + 1, batches.length);
  }
  return factors;
}

export type GradientForm = 'lastLayer' | 'logits';
export type Criterion = 'error' | 'alignment';

/** (G4) in the chosen gradient space: ‖ĝ_b‖² with ĝ_b = Σ_{i∈b} ĝ_i. */
export async function batchTargetNorm(
  features: Matrix,
  residuals: Float32Array,
  classes: number,
  members: Int32Array,
  form: GradientForm,
): Promise<number> {
  const k = members.length;
  const g = new Float32Array(k * classes);
  const gBar = new Float64Array(classes);
  for (let a = 0; a < k; a++)
    for (let c = 0; c < classes; c++) {
      const v = residuals[members[a]! * classes + c]!;
      g[a * classes + c] = v;
      gBar[c]! += v;
    }
  let normSq = 0;
  for (const v of gBar) normSq += v * v;
  if (form === 'logits') return normSq;
  // ĝ_b = [ḡ; Σ_i g_i ⊗ x_i]: the second block is M = G_bᵀ X_b (C × d), one kernel product.
  const m = await tmatmul(dense(k, classes, g), asDense(gather(features, members)));
  for (const v of m.data) normSq += v * v;
  return normSq;
}

/**
 * (G5) for one batch and every candidate rank: e(P_r) (criterion 'error') or a(P_r) ('alignment').
 * Gram form: with G_jk = ⟨ĝ_j, ĝ_k⟩ over the picks and c_j = Σ_{i∈b} ⟨ĝ_j, ĝ_i⟩,
 * e(P)² = ‖ĝ_b‖² − cᵀ G_PP⁺ c; a(P) = Σ_P c_j / (‖Σ_P ĝ_j‖·‖ĝ_b‖) (the K/|P| scale does not change a cos).
 */
export function rankCriteria(
  factor: BatchFactor,
  residuals: Float32Array,
  classes: number,
  targetNormSq: number,
  ranks: readonly number[],
  form: GradientForm,
  criterion: Criterion,
): Float64Array {
  const { members, rows, gramRows, slot } = factor;
  const k = members.length;
  const u = rows.length;
  const gOf = (local: number) => members[local]! * classes;
  // c_j = Σ_i ⟨g_j, g_i⟩ (1 + ⟨x_j, x_i⟩) for j ∈ rows ('logits': without the x term).
  const c = new Float64Array(u);
  for (let s = 0; s < u; s++) {
    const gj = gOf(rows[s]!);
    let sum = 0;
    for (let i = 0; i < k; i++) {
      const gi = gOf(i);
      let dot = 0;
      for (let q = 0; q < classes; q++) dot += residuals[gj + q]! * residuals[gi + q]!;
      sum += form === 'lastLayer' ? dot * (1 + gramRows[s * k + i]!) : dot;
    }
    c[s] = sum;
  }
  const gram = (a: number, b: number): number => {
    const ga = gOf(a);
    const gb = gOf(b);
    let dot = 0;
    for (let q = 0; q < classes; q++) dot += residuals[ga + q]! * residuals[gb + q]!;
    return form === 'lastLayer' ? dot * (1 + gramRows[slot[a]! * k + b]!) : dot;
  };
  const evaluate = (picks: Int32Array, checkpoints: readonly number[]): Float64Array => {
    const m = picks.length;
    const g = new Float64Array(m * m);
    for (let a = 0; a < m; a++)
      for (let b = 0; b <= a; b++) g[a * m + b] = g[b * m + a] = gram(picks[a]!, picks[b]!);
    const cp = Float64Array.from(picks, (j) => c[slot[j]!]!);
    return projectionCriteria(g, cp, targetNormSq, checkpoints, criterion);
  };
  const out = new Float64Array(ranks.length);
  if (factor.nested) {
    // One pass over the longest pivot order; rank r reads its prefix of min(r, rank) picks.
    const longest = factor.picks.get(Math.max(...ranks))!;
    out.set(
      evaluate(
        longest,
        ranks.map((r) => factor.picks.get(r)!.length),
      ),
    );
  } else {
    ranks.forEach((r, t) => {
      const picks = factor.picks.get(r)!;
      out[t] = evaluate(picks, [picks.length])[0]!;
    });
  }
  return out;
}

/** Items whose gradient is this close (relative squared residual) to the span so far add nothing. */
export const DEPENDENCE_TOLERANCE = 1e-6;

/**
 * Least-squares residual (or alignment) of a target on prefixes of an ordered set, from Grams only:
 * incremental Cholesky of G in pick order, dropping numerically dependent items, so the projection is
 * onto the span of the prefix (= cᵀG⁺c of the pseudo-inverse). `gram` is m × m, `c` the target's inner
 * products with the items, `checkpoints` prefix lengths (each ≤ m). Errors are √max(0, ‖t‖² − ‖proj‖²).
 */
export function projectionCriteria(
  gram: Float64Array,
  c: Float64Array,
  targetNormSq: number,
  checkpoints: readonly number[],
  criterion: Criterion,
): Float64Array {
  const m = c.length;
  const value = new Float64Array(m + 1);
  if (criterion === 'alignment') {
    let dotTarget = 0;
    let sumNormSq = 0;
    for (let t = 0; t < m; t++) {
      dotTarget += c[t]!;
      sumNormSq += gram[t * m + t]!;
      for (let s = 0; s < t; s++) sumNormSq += 2 * gram[t * m + s]!;
      const denominator = Math.sqrt(Math.max(0, sumNormSq) * targetNormSq);
      value[t + 1] = denominator > 0 ? dotTarget / denominator : 0;
    }
  } else {
    const kept: number[] = [];
    const lower = new Float64Array(m * m); // row a = kept item a's Cholesky row
    const z = new Float64Array(m);
    const l = new Float64Array(m);
    let projected = 0;
    value[0] = Math.sqrt(Math.max(0, targetNormSq));
    for (let t = 0; t < m; t++) {
      const diag = gram[t * m + t]!;
      let residual = diag;
      for (let a = 0; a < kept.length; a++) {
        let s = gram[kept[a]! * m + t]!;
        for (let b = 0; b < a; b++) s -= lower[a * m + b]! * l[b]!;
        l[a] = s / lower[a * m + a]!;
        residual -= l[a]! * l[a]!;
      }
      if (diag > 0 && residual > DEPENDENCE_TOLERANCE * diag) {
        const a = kept.length;
        const root = Math.sqrt(residual);
        let s = c[t]!;
        for (let b = 0; b < a; b++) {
          lower[a * m + b] = l[b]!;
          s -= l[b]! * z[b]!;
        }
        lower[a * m + a] = root;
        z[a] = s / root;
        projected += z[a]! * z[a]!;
        kept.push(t);
      }
      value[t + 1] = Math.sqrt(Math.max(0, targetNormSq - projected));
    }
  }
  return Float64Array.from(checkpoints, (p) => value[p]!);
}

/** Two candidates whose squared errors differ by less than this × ‖ĝ_b‖² (or cosines by it) tie. */
export const TIE_TOLERANCE = 1e-9;

/**
 * (G7) r*_b: argmin_r e(P_r) or argmax_r a(P_r); ties → the smallest r ([R]). `ranks` ascending.
 * Returns the position in `ranks`.
 */
export function chooseRank(values: Float64Array, criterion: Criterion, targetNormSq: number): number {
  if (values.length === 0) return -1;
  if (criterion === 'error') {
    let best = Infinity;
    for (const e of values) best = Math.min(best, e * e);
    return values.findIndex((e) => e * e <= best + TIE_TOLERANCE * targetNormSq);
  }
  let best = -Infinity;
  for (const a of values) best = Math.max(best, a);
  return values.findIndex((a) => a >= best - TIE_TOLERANCE);
}
