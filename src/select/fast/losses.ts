/**
 * FAST's loss terms with their closed-form gradients (fast.md §3.3–3.4). Ỹ is M × d_s row-major
 * (float64); each function returns the loss and adds weight·∂loss/∂Ỹ into `grad`. These run per
 * optimisation step on the (small) proxy set; the DPP term's M·D² products go to the MatMul kernel and the
 * n-sized work (φ_ref, PDAS refresh) to the trig kernel.
 */
import { dense, matmul, tmatmul } from '../../embed/backends/linalg.js';
import { projectedTrig } from '../kernels/trig.js';

export interface Proxies {
  m: number;
  d: number;
  y: Float64Array;
}

/** The sampled frequencies of one step (k × d) and the reference CF there. */
export interface FrequencyBatch {
  k: number;
  omega: Float64Array;
  refRe: Float64Array;
  refIm: Float64Array;
}

export interface PhaseOptions {
  /** 'pd' = phase-decoupled CFD (eq. L_CF(ω) of §3.4); 'plain' = |φ_ref − φ_Ỹ|² only. */
  mode: 'pd' | 'plain';
  lambdaP: number;
  alpha: number;
}

const EPS_A = 1e-6;

/** ωᵀy per proxy and frequency, and φ_Ỹ(ω) = (a, b). */
function projections(p: Proxies, f: FrequencyBatch) {
  const u = new Float64Array(p.m * f.k);
  const a = new Float64Array(f.k);
  const b = new Float64Array(f.k);
  for (let m = 0; m < p.m; m++)
    for (let j = 0; j < f.k; j++) {
      let s = 0;
      for (let q = 0; q < p.d; q++) s += f.omega[j * p.d + q]! * p.y[m * p.d + q]!;
      u[m * f.k + j] = s;
      a[j]! += Math.cos(s) / p.m;
      b[j]! += Math.sin(s) / p.m;
    }
  return { u, a, b };
}

/** A phase difference wrapped to (−π, π]. */
export const wrap = (x: number) => Math.atan2(Math.sin(x), Math.cos(x));

/**
 * L_main = (1/k) Σ_j [ |φ_ref(ω_j) − φ_Ỹ(ω_j)|² + λ_φ(ω_j)·wrap(θ_ref − θ_Ỹ)² ], λ_φ(ω) = λ_p/(1 + α‖ω‖²).
 * Gradients (§3.4): magnitude (2/M)[−(a − a_r) sin u_m + (b − b_r) cos u_m] ω; phase
 * −2λ_φ·wrap(θ_r − θ)·(1/(M A²))[a cos u_m + b sin u_m] ω, A² clamped at ε_A.
 */
export function cfdLoss(
  p: Proxies,
  f: FrequencyBatch,
  options: PhaseOptions,
  grad: Float64Array,
  weight = 1,
): number {
  const { u, a, b } = projections(p, f);
  let loss = 0;
  const coefSin = new Float64Array(f.k);
  const coefCos = new Float64Array(f.k);
  for (let j = 0; j < f.k; j++) {
    const [da, db] = [a[j]! - f.refRe[j]!, b[j]! - f.refIm[j]!];
    loss += da * da + db * db;
    coefSin[j] = (-2 * da) / p.m;
    coefCos[j] = (2 * db) / p.m;
    if (options.mode === 'pd') {
      let norm2 = 0;
      for (let q = 0; q < p.d; q++) norm2 += f.omega[j * p.d + q]! ** 2;
      const lambdaPhi = options.lambdaP / (1 + options.alpha * norm2);
      const delta = wrap(Math.atan2(f.refIm[j]!, f.refRe[j]!) - Math.atan2(b[j]!, a[j]!));
      loss += lambdaPhi * delta * delta;
      const a2 = Math.max(EPS_A, a[j]! ** 2 + b[j]! ** 2);
      const c = (-2 * lambdaPhi * delta) / (p.m * a2);
      coefCos[j]! += c * a[j]!;
      coefSin[j]! += c * b[j]!;
    }
  }
  for (let m = 0; m < p.m; m++)
    for (let j = 0; j < f.k; j++) {
      const um = u[m * f.k + j]!;
      const s = (weight / f.k) * (coefSin[j]! * Math.sin(um) + coefCos[j]! * Math.cos(um));
      for (let q = 0; q < p.d; q++) grad[m * p.d + q]! += s * f.omega[j * p.d + q]!;
    }
  return loss / f.k;
}

/** Random Fourier features for the DPP term: Ψ_m = √(2/D) cos(Wᵀ y_m + b). */
export interface FourierFeatures {
  D: number;
  /** d × D row-major. */
  w: Float64Array;
  b: Float64Array;
  delta: number;
}

/**
 * L_div = −log det(ΨΨᵀ + δI_M) = −[(M − D) log δ + log det(ΨᵀΨ + δI_D)] (push-through identity), with
 * ∂L/∂Ψ = −2ΨG⁻¹ and ∂L/∂y_m = W((∂L/∂Ψ_m) ⊙ (−√(2/D) sin(Wᵀy_m + b))) (§3.3).
 */
export async function dppLoss(
  p: Proxies,
  rff: FourierFeatures,
  grad: Float64Array,
  weight = 1,
  products: 'kernel' | 'exact' = 'kernel',
): Promise<number> {
  const { D, w, b, delta } = rff;
  const scale = Math.sqrt(2 / D);
  const psi = new Float64Array(p.m * D);
  const sinPart = new Float64Array(p.m * D);
  // u = Wᵀy_m (+ b): on the trig kernel, then cos(u + b) = cos u cos b − sin u sin b.
  const trig =
    products === 'kernel'
      ? await projectedTrig(
          { rows: p.m, cols: p.d, data: Float32Array.from(p.y) },
          { d: p.d, f: D, data: Float32Array.from(w) },
        )
      : undefined;
  for (let m = 0; m < p.m; m++)
    for (let e = 0; e < D; e++) {
      let c: number;
      let sn: number;
      if (trig) {
        const [cu, su] = [trig.cos[m * D + e]!, trig.sin[m * D + e]!];
        [c, sn] = [cu * Math.cos(b[e]!) - su * Math.sin(b[e]!), su * Math.cos(b[e]!) + cu * Math.sin(b[e]!)];
      } else {
        let s = b[e]!;
        for (let q = 0; q < p.d; q++) s += w[q * D + e]! * p.y[m * p.d + q]!;
        [c, sn] = [Math.cos(s), Math.sin(s)];
      }
      psi[m * D + e] = scale * c;
      sinPart[m * D + e] = -scale * sn;
    }
  // G = ΨᵀΨ + δI (M·D² work: on the MatMul kernel, or in float64 for gradient checks).
  const g =
    products === 'kernel'
      ? Float64Array.from(
          (await tmatmul(dense(p.m, D, Float32Array.from(psi)), dense(p.m, D, Float32Array.from(psi)))).data,
        )
      : gram(psi, p.m, D);
  for (let e = 0; e < D; e++) {
    g[e * D + e]! += delta;
    for (let f = 0; f < e; f++) g[e * D + f] = g[f * D + e] = (g[e * D + f]! + g[f * D + e]!) / 2;
  }
  const { logDet, inverse } = choleskyInverse(g, D);
  const loss = -((p.m - D) * Math.log(delta) + logDet);
  // dΨ = −2ΨG⁻¹ (M·D² again).
  const psiInv =
    products === 'kernel'
      ? (await matmul(dense(p.m, D, Float32Array.from(psi)), dense(D, D, Float32Array.from(inverse)))).data
      : multiply(psi, inverse, p.m, D);
  // ∂L/∂y_m = W·chain_m with chain = (−2ΨG⁻¹) ⊙ (−√(2/D) sin(Wᵀy + b)).
  const chain = new Float64Array(p.m * D);
  for (let i = 0; i < p.m * D; i++) chain[i] = weight * -2 * psiInv[i]! * sinPart[i]!;
  if (products === 'kernel') {
    const wt = new Float32Array(D * p.d);
    for (let q = 0; q < p.d; q++) for (let e = 0; e < D; e++) wt[e * p.d + q] = w[q * D + e]!;
    const g = (await matmul(dense(p.m, D, Float32Array.from(chain)), dense(D, p.d, wt))).data;
    for (let i = 0; i < p.m * p.d; i++) grad[i]! += g[i]!;
  } else {
    for (let m = 0; m < p.m; m++)
      for (let e = 0; e < D; e++)
        for (let q = 0; q < p.d; q++) grad[m * p.d + q]! += chain[m * D + e]! * w[q * D + e]!;
  }
  return loss;
}

function gram(a: Float64Array, rows: number, cols: number): Float64Array {
  const g = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r++)
    for (let e = 0; e < cols; e++) {
      const v = a[r * cols + e]!;
      for (let f = e; f < cols; f++) g[e * cols + f]! += v * a[r * cols + f]!;
    }
  for (let e = 0; e < cols; e++) for (let f = 0; f < e; f++) g[e * cols + f] = g[f * cols + e]!;
  return g;
}

function multiply(a: Float64Array, b: Float64Array, rows: number, n: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < n; k++) {
      const v = a[r * n + k]!;
      for (let c = 0; c < n; c++) out[r * n + c]! += v * b[k * n + c]!;
    }
  return out;
}

/** Cholesky of a symmetric positive-definite matrix: log det and inverse. */
export function choleskyInverse(a: Float64Array, n: number): { logDet: number; inverse: Float64Array } {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-300)) : s / l[j * n + j]!;
    }
  let logDet = 0;
  for (let i = 0; i < n; i++) logDet += 2 * Math.log(l[i * n + i]!);
  // L⁻¹ (lower triangular), then A⁻¹ = L⁻ᵀ L⁻¹.
  const li = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    li[i * n + i] = 1 / l[i * n + i]!;
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= l[i * n + k]! * li[k * n + j]!;
      li[i * n + j] = s / l[i * n + i]!;
    }
  }
  const inverse = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += li[k * n + i]! * li[k * n + j]!;
      inverse[i * n + j] = s;
      inverse[j * n + i] = s;
    }
  return { logDet, inverse };
}

/** L_match = (1/M) Σ_m ‖y_m − v_π(m)‖², gradient (2/M)(y_m − v_π(m)). `anchors` is M × d. */
export function matchLoss(p: Proxies, anchors: Float64Array, grad: Float64Array, weight = 1): number {
  let loss = 0;
  for (let i = 0; i < p.m * p.d; i++) {
    const diff = p.y[i]! - anchors[i]!;
    loss += diff * diff;
    grad[i]! += (weight * 2 * diff) / p.m;
  }
  return loss / p.m;
}

/** Edges among the anchors: proxies m, n and the graph weight B_{π(m)π(n)} (each unordered pair once). */
export interface AnchorEdges {
  from: Int32Array;
  to: Int32Array;
  weight: Float64Array;
  /** Degree of each anchor in the full graph (for the literal form's normalisation). */
  degree: Float64Array;
}

/**
 * L_graph / M. 'induced' (default, pitfall 4): Tr(ỸᵀL_indỸ) = Σ_{pairs} B_mn‖y_m − y_n‖², gradient
 * 2Σ_n B_mn(y_m − y_n). 'literal': Tr(ỸᵀL_subỸ) with L_sub the anchors' block of L_sym = I − D^{-½}BD^{-½},
 * gradient 2L_subỸ.
 */
export function graphLoss(
  p: Proxies,
  edges: AnchorEdges,
  form: 'induced' | 'literal',
  grad: Float64Array,
  weight = 1,
): number {
  let loss = 0;
  const scale = weight / p.m;
  if (form === 'literal') {
    for (let i = 0; i < p.m * p.d; i++) {
      loss += p.y[i]! ** 2;
      grad[i]! += 2 * scale * p.y[i]!;
    }
  }
  for (let e = 0; e < edges.from.length; e++) {
    const [m, n] = [edges.from[e]!, edges.to[e]!];
    if (form === 'induced') {
      const w = edges.weight[e]!;
      for (let q = 0; q < p.d; q++) {
        const diff = p.y[m * p.d + q]! - p.y[n * p.d + q]!;
        loss += w * diff * diff;
        grad[m * p.d + q]! += 2 * scale * w * diff;
        grad[n * p.d + q]! -= 2 * scale * w * diff;
      }
    } else {
      const w = edges.weight[e]! / Math.sqrt(edges.degree[m]! * edges.degree[n]!);
      for (let q = 0; q < p.d; q++) {
        loss -= 2 * w * p.y[m * p.d + q]! * p.y[n * p.d + q]!;
        grad[m * p.d + q]! -= 2 * scale * w * p.y[n * p.d + q]!;
        grad[n * p.d + q]! -= 2 * scale * w * p.y[m * p.d + q]!;
      }
    }
  }
  return loss / p.m;
}
