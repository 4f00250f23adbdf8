/**
 * Fast MaxVol (graft.md G3): greedy pivoting on a K × r matrix V_r with orthonormal columns, and the
 * classic maxvol refinement. Rows P of V_r with large |det V_r[P,:]| span the top-r subspace "as evenly
 * as possible" (§1): every row is V_r[i,:] = B[i,:]·V_r[P,:] with |B_ij| ≤ 1 + δ after refinement.
 *
 * Matrices here are small (K ≤ a few hundred), row-major Float64Array with a row stride `cols`; only the
 * first r columns are read, so one K × r_max factor serves every candidate rank r ≤ r_max.
 */

/** A row-major K × cols factor; the routines read its first r columns. */
export interface Factor {
  rows: number;
  cols: number;
  data: Float64Array;
}

export interface Pivoting {
  /** Chosen rows in pick order (local to the factor). */
  pivots: Int32Array;
  /** R[p_t, t] at each step (signed): |det V_r[P,:]| = Π_t |values[t]|. */
  values: Float64Array;
}

/** Stop pivoting when the largest remaining |R[:,t]| is below this (rank deficiency, G3). */
export const PIVOT_FLOOR = 1e-8;

/**
 * (G3) R ← V_r; for t = 1..r: p_t = argmax_{i∉P} |R[i,t]|, then eliminate column t from the later
 * columns: R[:, t+1..r] −= R[:, t]·R[p_t, t+1..r] / R[p_t, t]. This is LU with partial (row) pivoting,
 * so the pivots of rank r are the first r pivots of any larger rank (the factor's columns are nested).
 * Ties → the lowest row.
 */
export function greedyMaxVol(v: Factor, r = v.cols): Pivoting {
  const { rows: k, cols } = v;
  const rank = Math.min(r, cols, k);
  const residual = new Float64Array(k * rank);
  for (let i = 0; i < k; i++) for (let t = 0; t < rank; t++) residual[i * rank + t] = v.data[i * cols + t]!;
  const taken = new Uint8Array(k);
  const pivots: number[] = [];
  const values: number[] = [];
  for (let t = 0; t < rank; t++) {
    let best = -1;
    let bestAbs = PIVOT_FLOOR;
    for (let i = 0; i < k; i++) {
      const a = Math.abs(residual[i * rank + t]!);
      if (!taken[i] && a >= bestAbs && (best < 0 || a > bestAbs)) {
        best = i;
        bestAbs = a;
      }
    }
    if (best < 0) break;
    taken[best] = 1;
    const pivot = residual[best * rank + t]!;
    pivots.push(best);
    values.push(pivot);
    const pivotRow = residual.slice(best * rank, (best + 1) * rank);
    for (let i = 0; i < k; i++) {
      const factor = residual[i * rank + t]! / pivot;
      if (factor === 0) continue;
      for (let s = t + 1; s < rank; s++) residual[i * rank + s]! -= factor * pivotRow[s]!;
    }
  }
  return { pivots: Int32Array.from(pivots), values: Float64Array.from(values) };
}

/** log|det| from the pivot values (the volume/pivot product of G3). */
export function pivotLogVolume(values: ArrayLike<number>): number {
  let s = 0;
  for (let t = 0; t < values.length; t++) s += Math.log(Math.abs(values[t]!));
  return s;
}

/** log|det V_r[rows, 0..r)| for |rows| = r, by LU with partial pivoting; −∞ when singular. */
export function subsetLogVolume(v: Factor, rows: ArrayLike<number>): number {
  const r = rows.length;
  const a = new Float64Array(r * r);
  for (let i = 0; i < r; i++) for (let t = 0; t < r; t++) a[i * r + t] = v.data[rows[i]! * v.cols + t]!;
  let logDet = 0;
  for (let t = 0; t < r; t++) {
    let p = t;
    for (let i = t + 1; i < r; i++) if (Math.abs(a[i * r + t]!) > Math.abs(a[p * r + t]!)) p = i;
    const pivot = a[p * r + t]!;
    if (pivot === 0) return -Infinity;
    if (p !== t) for (let s = 0; s < r; s++) [a[t * r + s], a[p * r + s]] = [a[p * r + s]!, a[t * r + s]!];
    logDet += Math.log(Math.abs(pivot));
    for (let i = t + 1; i < r; i++) {
      const f = a[i * r + t]! / pivot;
      if (f !== 0) for (let s = t + 1; s < r; s++) a[i * r + s]! -= f * a[t * r + s]!;
    }
  }
  return logDet;
}

export interface Refinement {
  pivots: Int32Array;
  swaps: number;
  /** log of the volume ratio after / before (Σ log|B_ij| over the swaps), ≥ 0. */
  logGain: number;
}

/**
 * Classic maxvol refinement (G3, optional): B = V_r·V_r[P,:]⁻¹; while max|B_ij| > 1 + δ, replace P_j by
 * row i. The volume is multiplied by |B_ij| > 1 at each swap, so it never decreases; B is updated by the
 * rank-1 formula B ← B − B[:,j]·(B[i,:] − e_jᵀ)/B_ij (Sherman–Morrison on V_r[P,:] + e_j(v_i − v_{P_j})ᵀ).
 * Needs r full-rank pivots; otherwise they are returned unchanged.
 */
export function refineMaxVol(
  v: Factor,
  pivots: Int32Array,
  options: { delta?: number; maxSwaps?: number } = {},
): Refinement {
  const r = pivots.length;
  const k = v.rows;
  const delta = options.delta ?? 0.05;
  const maxSwaps = options.maxSwaps ?? 10 * Math.max(1, r);
  const out = Int32Array.from(pivots);
  const inverse = invertSubmatrix(v, out);
  if (r === 0 || !inverse) return { pivots: out, swaps: 0, logGain: 0 };
  // B = V_r · S⁻¹ (K × r).
  const b = new Float64Array(k * r);
  for (let i = 0; i < k; i++)
    for (let s = 0; s < r; s++) {
      let sum = 0;
      for (let t = 0; t < r; t++) sum += v.data[i * v.cols + t]! * inverse[t * r + s]!;
      b[i * r + s] = sum;
    }
  let swaps = 0;
  let logGain = 0;
  const column = new Float64Array(k);
  const rowUpdate = new Float64Array(r);
  while (swaps < maxSwaps) {
    let bi = 0;
    let bj = 0;
    let best = 0;
    for (let t = 0; t < k * r; t++) {
      const a = Math.abs(b[t]!);
      if (a > best) {
        best = a;
        bi = Math.floor(t / r);
        bj = t % r;
      }
    }
    if (best <= 1 + delta) break;
    const pivot = b[bi * r + bj]!;
    for (let i = 0; i < k; i++) column[i] = b[i * r + bj]!;
    for (let s = 0; s < r; s++) rowUpdate[s] = (b[bi * r + s]! - (s === bj ? 1 : 0)) / pivot;
    for (let i = 0; i < k; i++) {
      const c = column[i]!;
      if (c !== 0) for (let s = 0; s < r; s++) b[i * r + s]! -= c * rowUpdate[s]!;
    }
    out[bj] = bi;
    logGain += Math.log(Math.abs(pivot));
    swaps++;
  }
  return { pivots: out, swaps, logGain };
}

/** (V_r[rows, 0..r))⁻¹ by Gauss–Jordan with partial pivoting, r × r row-major; undefined if singular. */
function invertSubmatrix(v: Factor, rows: Int32Array): Float64Array | undefined {
  const r = rows.length;
  const a = new Float64Array(r * r);
  const inv = new Float64Array(r * r);
  for (let i = 0; i < r; i++) {
    for (let t = 0; t < r; t++) a[i * r + t] = v.data[rows[i]! * v.cols + t]!;
    inv[i * r + i] = 1;
  }
  for (let t = 0; t < r; t++) {
    let p = t;
    for (let i = t + 1; i < r; i++) if (Math.abs(a[i * r + t]!) > Math.abs(a[p * r + t]!)) p = i;
    if (Math.abs(a[p * r + t]!) < PIVOT_FLOOR) return undefined;
    if (p !== t)
      for (let s = 0; s < r; s++) {
        [a[t * r + s], a[p * r + s]] = [a[p * r + s]!, a[t * r + s]!];
        [inv[t * r + s], inv[p * r + s]] = [inv[p * r + s]!, inv[t * r + s]!];
      }
    const pivot = a[t * r + t]!;
    for (let s = 0; s < r; s++) {
      a[t * r + s]! /= pivot;
      inv[t * r + s]! /= pivot;
    }
    for (let i = 0; i < r; i++) {
      const f = a[i * r + t]!;
      if (i === t || f === 0) continue;
      for (let s = 0; s < r; s++) {
        a[i * r + s]! -= f * a[t * r + s]!;
        inv[i * r + s]! -= f * inv[t * r + s]!;
      }
    }
  }
  return inv;
}
