/**
 * The top eigenpairs of a small symmetric matrix (GRAFT's K × K batch Gram, graft.md G2). A full
 * decomposition with eigenvectors (ml-matrix's tred2 + tql2) costs ~25 ms at K = 128, mostly in the QL
 * rotations of the eigenvector matrix; GRAFT needs only r_max ≈ K·f(1 + f) of them. So: Householder
 * reduction to a tridiagonal T (≈ K³ flops), every eigenvalue of T by implicit QL without vectors (O(K²)),
 * the wanted eigenvectors of T by inverse iteration (O(K) per solve, re-orthogonalised within clusters of
 * close eigenvalues as LAPACK's dstein does), then mapped back through the reflectors (O(K²) each).
 */
import { seededRandom } from '../../compute/random.js';

export interface TopEigen {
  /** All eigenvalues, descending. */
  values: Float64Array;
  /** The first `count` eigenvectors as the columns of an n × count row-major matrix. */
  vectors: Float64Array;
  count: number;
}

const EPS = 2 ** -52;

export function topEigenpairs(a: ArrayLike<number>, n: number, count: number): TopEigen {
  const wanted = Math.max(0, Math.min(count, n));
  if (n === 0) return { values: new Float64Array(0), vectors: new Float64Array(0), count: 0 };
  const { diag, off, reflectors } = tridiagonalize(a, n);
  const values = tridiagonalEigenvalues(diag, off).sort((x, y) => y - x);
  let norm = 0;
  for (let i = 0; i < n; i++)
    norm = Math.max(norm, Math.abs(diag[i]!) + Math.abs(off[i] ?? 0) + Math.abs(off[i - 1] ?? 0));
  const vectors = new Float64Array(n * wanted);
  const found: Float64Array[] = [];
  const random = seededRandom(0x9e3779b9);
  const clusterGap = 1e-3 * norm;
  const shiftGap = 10 * EPS * Math.max(norm, Number.MIN_VALUE);
  let clusterStart = 0;
  let previousShift = Infinity;
  for (let j = 0; j < wanted; j++) {
    if (j > 0 && values[j - 1]! - values[j]! > clusterGap) clusterStart = j;
    // Equal eigenvalues: nudge the shift so each solve starts from a distinct (nonsingular) system.
    let shift = values[j]!;
    if (previousShift - shift < shiftGap) shift = previousShift - shiftGap;
    previousShift = shift;
    const solver = factorShifted(diag, off, shift, EPS * Math.max(norm, Number.MIN_VALUE));
    let z: Float64Array = Float64Array.from({ length: n }, () => random() * 2 - 1);
    for (let iteration = 0; iteration < 3; iteration++) {
      z = solver(z);
      for (let t = clusterStart; t < j; t++) subtractProjection(z, found[t]!);
      normalize(z);
    }
    found.push(z);
    const y = backTransform(z, reflectors, n);
    for (let i = 0; i < n; i++) vectors[i * wanted + j] = y[i]!;
  }
  return { values, vectors, count: wanted };
}

/** Householder: A = Q T Qᵀ with Q = H_0 H_1 ⋯ H_{n−3}, H_k = I − 2 v_k v_kᵀ acting on rows k+1..n−1. */
function tridiagonalize(
  a: ArrayLike<number>,
  n: number,
): { diag: Float64Array; off: Float64Array; reflectors: Array<Float64Array | undefined> } {
  const m = new Float64Array(n * n);
  // Symmetrise: float32 Gram products are symmetric only up to rounding.
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m[i * n + j] = (a[i * n + j]! + a[j * n + i]!) / 2;
  const diag = new Float64Array(n);
  const off = new Float64Array(Math.max(0, n - 1));
  const reflectors: Array<Float64Array | undefined> = [];
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const s = n - k - 1;
    const v = new Float64Array(s);
    let norm = 0;
    for (let i = 0; i < s; i++) norm += (v[i] = m[(k + 1 + i) * n + k]!) ** 2;
    norm = Math.sqrt(norm);
    diag[k] = m[k * n + k]!;
    if (norm === 0) {
      off[k] = 0;
      reflectors.push(undefined);
      continue;
    }
    const alpha = v[0]! > 0 ? -norm : norm;
    off[k] = alpha;
    v[0]! -= alpha;
    let vNorm = 0;
    for (let i = 0; i < s; i++) vNorm += v[i]! ** 2;
    vNorm = Math.sqrt(vNorm);
    for (let i = 0; i < s; i++) v[i]! /= vNorm;
    reflectors.push(v);
    // Trailing block S ← H S H = S − v qᵀ − q vᵀ with p = S v, β = vᵀp, q = 2(p − β v).
    let beta = 0;
    for (let i = 0; i < s; i++) {
      const row = (k + 1 + i) * n + k + 1;
      let sum = 0;
      for (let j = 0; j < s; j++) sum += m[row + j]! * v[j]!;
      p[i] = sum;
      beta += v[i]! * sum;
    }
    for (let i = 0; i < s; i++) p[i] = 2 * (p[i]! - beta * v[i]!);
    for (let i = 0; i < s; i++) {
      const row = (k + 1 + i) * n + k + 1;
      const vi = v[i]!;
      const qi = p[i]!;
      for (let j = 0; j < s; j++) m[row + j]! -= vi * p[j]! + qi * v[j]!;
    }
  }
  if (n >= 2) {
    diag[n - 2] = m[(n - 2) * n + n - 2]!;
    off[n - 2] = m[(n - 1) * n + n - 2]!;
  }
  diag[n - 1] = m[(n - 1) * n + n - 1]!;
  return { diag, off, reflectors };
}

/** Eigenvalues of the symmetric tridiagonal (diag, off) by implicit QL (EISPACK tql1), unsorted. */
function tridiagonalEigenvalues(diagIn: Float64Array, offIn: Float64Array): Float64Array {
  const n = diagIn.length;
  const d = Float64Array.from(diagIn);
  const e = new Float64Array(n);
  e.set(offIn);
  let f = 0;
  let tst1 = 0;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n && Math.abs(e[m]!) > EPS * tst1) m++;
    if (m > l) {
      do {
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > EPS * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  return d;
}

/**
 * LU with partial pivoting of T − σI (LAPACK dgttrf; zero pivots replaced by `tiny`), returning a solver
 * (dgttrs) for (T − σI) z = b.
 */
function factorShifted(
  diag: Float64Array,
  off: Float64Array,
  shift: number,
  tiny: number,
): (b: Float64Array) => Float64Array {
  const n = diag.length;
  const d = Float64Array.from(diag, (x) => x - shift);
  const dl = Float64Array.from(off);
  const du = Float64Array.from(off);
  const du2 = new Float64Array(n);
  const swapped = new Uint8Array(n);
  const guard = (x: number) => (Math.abs(x) < tiny ? (x < 0 ? -tiny : tiny) : x);
  for (let i = 0; i < n - 1; i++) {
    if (Math.abs(d[i]!) >= Math.abs(dl[i]!)) {
      d[i] = guard(d[i]!);
      const fact = dl[i]! / d[i]!;
      dl[i] = fact;
      d[i + 1]! -= fact * du[i]!;
    } else {
      const fact = d[i]! / dl[i]!;
      d[i] = dl[i]!;
      dl[i] = fact;
      const temp = du[i]!;
      du[i] = d[i + 1]!;
      d[i + 1] = temp - fact * d[i + 1]!;
      if (i < n - 2) {
        du2[i] = du[i + 1]!;
        du[i + 1] = -fact * du[i + 1]!;
      }
      swapped[i] = 1;
    }
  }
  d[n - 1] = guard(d[n - 1]!);
  return (bIn) => {
    const b = Float64Array.from(bIn);
    for (let i = 0; i < n - 1; i++) {
      if (swapped[i]) {
        const temp = b[i]!;
        b[i] = b[i + 1]!;
        b[i + 1] = temp - dl[i]! * b[i]!;
      } else b[i + 1]! -= dl[i]! * b[i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = b[i]!;
      if (i + 1 < n) s -= du[i]! * b[i + 1]!;
      if (i + 2 < n) s -= du2[i]! * b[i + 2]!;
      b[i] = s / d[i]!;
    }
    return b;
  };
}

function subtractProjection(z: Float64Array, u: Float64Array): void {
  let dot = 0;
  for (let i = 0; i < z.length; i++) dot += z[i]! * u[i]!;
  for (let i = 0; i < z.length; i++) z[i]! -= dot * u[i]!;
}

function normalize(z: Float64Array): void {
  let norm = 0;
  for (const x of z) norm += x * x;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < z.length; i++) z[i]! /= norm;
}

/** y = Q z = H_0 (H_1 (⋯ H_{n−3} z)). */
function backTransform(
  z: Float64Array,
  reflectors: Array<Float64Array | undefined>,
  n: number,
): Float64Array {
  const y = Float64Array.from(z);
  for (let k = reflectors.length - 1; k >= 0; k--) {
    const v = reflectors[k];
    if (!v) continue;
    let dot = 0;
    for (let i = 0; i < v.length; i++) dot += v[i]! * y[k + 1 + i]!;
    dot *= 2;
    for (let i = 0; i < v.length; i++) y[k + 1 + i]! -= dot * v[i]!;
  }
  return y.subarray(0, n);
}
