/**
 * Spectral embedding (FAST, fast.md §3.2): eigenvectors of L_sym = I − D^{-1/2} B D^{-1/2} for the d_s
 * smallest non-zero eigenvalues, i.e. the top eigenvectors of M = D^{-1/2} B D^{-1/2} after the trivial
 * one. Computed by Chebyshev-filtered subspace iteration (Zhou & Saad 2007): the filter damps the part of
 * the spectrum below the current Ritz cut-off, Rayleigh–Ritz on the small block. Columns are then
 * standardised (zero mean, unit variance; §3.2 [R]).
 */
import { dense, symmetricEigen } from '../../embed/backends/linalg.js';
import { gaussian, seededRandom } from '../../embed/backends/random.js';
import type { Matrix } from '../kernels/similarity.js';
import type { SparseGraph } from './fuzzyGraph.js';

export interface SpectralOptions {
  dims: number;
  seed: number;
  /** Outer Rayleigh–Ritz rounds and Chebyshev degree per round. */
  rounds?: number;
  degree?: number;
}

export function spectralEmbedding(
  g: SparseGraph,
  options: SpectralOptions,
): Matrix & { eigenvalues: Float64Array } {
  const { n } = g;
  const dims = Math.min(options.dims, Math.max(1, n - 2));
  const p = Math.min(n, dims + 1 + 8); // the trivial vector, d_s, oversampling
  const invSqrt = Float64Array.from(g.degree, (d) => (d > 0 ? 1 / Math.sqrt(d) : 0));
  const multiply = (v: Float64Array): Float64Array => {
    const out = new Float64Array(n * p);
    for (let i = 0; i < n; i++) {
      for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++) {
        const j = g.cols[e]!;
        const w = g.weights[e]! * invSqrt[i]! * invSqrt[j]!;
        for (let c = 0; c < p; c++) out[i * p + c]! += w * v[j * p + c]!;
      }
    }
    return out;
  };
  const normal = gaussian(seededRandom(options.seed));
  let v: Float64Array = Float64Array.from({ length: n * p }, normal);
  orthonormalise(v, n, p);
  let ritz = rayleighRitz(v, multiply(v), n, p);
  v = ritz.vectors;
  const rounds = options.rounds ?? 6; // converged to 4 decimals in 4 rounds on our graphs
  const degree = options.degree ?? 8;
  for (let round = 0; round < rounds; round++) {
    // Damp eigenvalues in [−1, cut]; keep those above the cut-off (the block's smallest Ritz value).
    const cut = Math.min(ritz.values[p - 1]!, 0.999);
    const [c, e] = [(cut - 1) / 2, (cut + 1) / 2];
    let previous: Float64Array = v;
    let current: Float64Array = multiply(v).map((y, idx) => (y - c * v[idx]!) / e);
    for (let k = 2; k <= degree; k++) {
      const mc = multiply(current);
      const next = mc.map((y, idx) => (2 * (y - c * current[idx]!)) / e - previous[idx]!);
      previous = current;
      current = next;
    }
    orthonormalise(current, n, p);
    ritz = rayleighRitz(current, multiply(current), n, p);
    v = ritz.vectors;
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
  return { rows: n, cols: dims, data, eigenvalues: ritz.values.slice(1, dims + 1).map((m) => 1 - m) };
}

/** Modified Gram–Schmidt on the columns of an n × p row-major block, in place. */
function orthonormalise(v: Float64Array, n: number, p: number): void {
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
  const h = dense(p, p);
  for (let a = 0; a < p; a++)
    for (let b = 0; b < p; b++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += v[i * p + a]! * mv[i * p + b]!;
      h.data[a * p + b] = s;
    }
  const eig = symmetricEigen(h);
  const out = new Float64Array(n * p);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < p; c++) {
      let s = 0;
      for (let a = 0; a < p; a++) s += v[i * p + a]! * eig.vectors.data[a * p + c]!;
      out[i * p + c] = s;
    }
  return { values: eig.values, vectors: out };
}
