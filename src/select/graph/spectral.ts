/**
 * Spectral embedding (FAST, fast.md §3.2): eigenvectors of L_sym = I − D^{-1/2} B D^{-1/2} for the d_s
 * smallest non-zero eigenvalues, i.e. the top eigenvectors of M = D^{-1/2} B D^{-1/2} after the trivial
 * one. Computed by Chebyshev-filtered subspace iteration (Zhou & Saad 2007): the filter damps the part of
 * the spectrum below the current Ritz cut-off, Rayleigh–Ritz on the small block. Columns are then
 * standardised (zero mean, unit variance; §3.2 [R]).
 *
 * The work is the sparse product M·V (nnz × p multiply-adds, p = d_s + 9 columns) times the filter degree
 * per round; it runs on flat typed arrays with M's normalised weights computed once, and the Chebyshev
 * recurrence reuses three blocks instead of allocating one per product. Rounds stop early once every
 * wanted Ritz value has moved by less than `tolerance` since the previous round.
 */
import { dense, symmetricEigen } from '../../embed/backends/linalg.js';
import { gaussian, seededRandom } from '../../embed/backends/random.js';
import type { Matrix } from '../kernels/similarity.js';
import type { SparseGraph } from './fuzzyGraph.js';

export interface SpectralOptions {
  dims: number;
  seed: number;
  /** At most this many outer Rayleigh–Ritz rounds, and the Chebyshev degree per round. */
  rounds?: number;
  degree?: number;
  /**
   * Stop once no wanted Ritz value of M moved by more than this between rounds (0 = run every round).
   * At 1e-6 the Ritz values are converged to about 1e-3 of the smallest wanted eigenvalue of L_sym on our
   * k-means partitions (4 of 6 rounds; the next round moves them by ~1e-11).
   */
  tolerance?: number;
}

export function spectralEmbedding(
  g: SparseGraph,
  options: SpectralOptions,
): Matrix & { eigenvalues: Float64Array; rounds: number } {
  const { n } = g;
  const dims = Math.min(options.dims, Math.max(1, n - 2));
  const p = Math.min(n, dims + 1 + 8); // the trivial vector, d_s, oversampling
  const invSqrt = Float64Array.from(g.degree, (d) => (d > 0 ? 1 / Math.sqrt(d) : 0));
  // M's entries in CSR order: w_ij / √(d_i d_j).
  const normalised = new Float64Array(g.weights.length);
  for (let i = 0; i < n; i++)
    for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++)
      normalised[e] = g.weights[e]! * invSqrt[i]! * invSqrt[g.cols[e]!]!;
  /** out = M·v (n × p row-major blocks). */
  const multiply = (v: Float64Array, out: Float64Array): Float64Array => {
    out.fill(0);
    for (let i = 0; i < n; i++) {
      const row = i * p;
      for (let e = g.rowStart[i]!, end = g.rowStart[i + 1]!; e < end; e++) {
        const w = normalised[e]!;
        const col = g.cols[e]! * p;
        for (let c = 0; c < p; c++) out[row + c]! += w * v[col + c]!;
      }
    }
    return out;
  };
  const normal = gaussian(seededRandom(options.seed));
  let v: Float64Array = Float64Array.from({ length: n * p }, normal);
  orthonormalise(v, n, p);
  let scratch: Float64Array = new Float64Array(n * p);
  let ritz = rayleighRitz(v, multiply(v, scratch), n, p);
  v = ritz.vectors;
  const maxRounds = options.rounds ?? 6;
  const degree = options.degree ?? 8;
  const tolerance = options.tolerance ?? 1e-6;
  let previous: Float64Array = new Float64Array(n * p);
  let next: Float64Array = new Float64Array(n * p);
  let rounds = 0;
  while (rounds < maxRounds) {
    rounds++;
    // Damp eigenvalues in [−1, cut]; keep those above the cut-off (the block's smallest Ritz value).
    const cut = Math.min(ritz.values[p - 1]!, 0.999);
    const [c, e] = [(cut - 1) / 2, (cut + 1) / 2];
    // T₁: current = (M v − c v)/e; T_k = 2(M − c)/e · T_{k−1} − T_{k−2}.
    previous.set(v);
    let current = multiply(v, scratch);
    for (let i = 0; i < current.length; i++) current[i] = (current[i]! - c * v[i]!) / e;
    scratch = v; // v's values now live in `previous`; its buffer is free
    for (let k = 2; k <= degree; k++) {
      multiply(current, next);
      for (let i = 0; i < next.length; i++) next[i] = (2 * (next[i]! - c * current[i]!)) / e - previous[i]!;
      [previous, current, next] = [current, next, previous];
    }
    orthonormalise(current, n, p);
    const before = ritz.values;
    ritz = rayleighRitz(current, multiply(current, next), n, p);
    [v, next] = [ritz.vectors, current];
    let moved = 0;
    for (let k = 0; k <= dims; k++) moved = Math.max(moved, Math.abs(ritz.values[k]! - before[k]!));
    if (moved < tolerance) break;
  }
  // Drop the trivial eigenvector (largest eigenvalue of M, = 1 on a connected graph), keep the next d_s.
  const data = new Float32Array(n * dims);
  for (let c = 0; c < dims; c++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += v[i * p + c + 1]!;
    mean /= n;
    let variance = 0;
    for (let i = 0; i < n; i++) variance += (v[i * p + c + 1]! - mean) ** 2;
    const scale = 1 / Math.sqrt(Math.max(variance / n, 1e-30));
    for (let i = 0; i < n; i++) data[i * dims + c] = (v[i * p + c + 1]! - mean) * scale;
  }
  return {
    rows: n,
    cols: dims,
    data,
    eigenvalues: ritz.values.slice(1, dims + 1).map((m) => 1 - m),
    rounds,
  };
}

/**
 * Orthonormal columns of an n × p row-major block, in place: Cholesky QR twice (V ← V R⁻¹ with
 * VᵀV = RᵀR; the second pass restores the orthogonality the first loses to rounding), which reads the
 * block row by row instead of column by column as Gram–Schmidt does. A rank-deficient block falls back to
 * modified Gram–Schmidt.
 */
function orthonormalise(v: Float64Array, n: number, p: number): void {
  for (let pass = 0; pass < 2; pass++) if (!choleskyQr(v, n, p)) return gramSchmidt(v, n, p);
}

function choleskyQr(v: Float64Array, n: number, p: number): boolean {
  const gram = new Float64Array(p * p);
  for (let i = 0; i < n; i++) {
    const row = i * p;
    for (let a = 0; a < p; a++) {
      const va = v[row + a]!;
      for (let b = a; b < p; b++) gram[a * p + b]! += va * v[row + b]!;
    }
  }
  // Upper-triangular R with RᵀR = gram.
  const r = new Float64Array(p * p);
  for (let a = 0; a < p; a++) {
    let diag = gram[a * p + a]!;
    for (let k = 0; k < a; k++) diag -= r[k * p + a]! ** 2;
    if (!(diag > 1e-10 * Math.max(gram[a * p + a]!, 1e-300))) return false;
    const root = Math.sqrt(diag);
    r[a * p + a] = root;
    for (let b = a + 1; b < p; b++) {
      let s = gram[a * p + b]!;
      for (let k = 0; k < a; k++) s -= r[k * p + a]! * r[k * p + b]!;
      r[a * p + b] = s / root;
    }
  }
  // Each row x of V becomes the solution y of yR = x (forward substitution over the columns).
  const y = new Float64Array(p);
  for (let i = 0; i < n; i++) {
    const row = i * p;
    for (let b = 0; b < p; b++) {
      let s = v[row + b]!;
      for (let k = 0; k < b; k++) s -= y[k]! * r[k * p + b]!;
      y[b] = s / r[b * p + b]!;
    }
    v.set(y, row);
  }
  return true;
}

/** Modified Gram–Schmidt on the columns of an n × p row-major block, in place. */
function gramSchmidt(v: Float64Array, n: number, p: number): void {
  for (let c = 0; c < p; c++) {
    for (let prev = 0; prev < c; prev++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += v[i * p + c]! * v[i * p + prev]!;
      for (let i = 0; i < n; i++) v[i * p + c]! -= dot * v[i * p + prev]!;
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[i * p + c]! ** 2;
    const inv = 1 / Math.sqrt(Math.max(norm, 1e-300));
    for (let i = 0; i < n; i++) v[i * p + c]! *= inv;
  }
}

/** Ritz pairs of the block: H = Vᵀ(MV), H = QΛQᵀ, vectors VQ (descending Λ). */
function rayleighRitz(
  v: Float64Array,
  mv: Float64Array,
  n: number,
  p: number,
): { values: Float64Array; vectors: Float64Array } {
  const h = new Float64Array(p * p);
  for (let i = 0; i < n; i++) {
    const row = i * p;
    for (let a = 0; a < p; a++) {
      const va = v[row + a]!;
      for (let b = 0; b < p; b++) h[a * p + b]! += va * mv[row + b]!;
    }
  }
  const eig = symmetricEigen(dense(p, p, Float32Array.from(h)));
  const q = Float64Array.from(eig.vectors.data);
  const out = new Float64Array(n * p);
  for (let i = 0; i < n; i++) {
    const row = i * p;
    for (let a = 0; a < p; a++) {
      const va = v[row + a]!;
      for (let c = 0; c < p; c++) out[row + c]! += va * q[a * p + c]!;
    }
  }
  return { values: Float64Array.from(eig.values), vectors: out };
}
