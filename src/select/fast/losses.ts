/**
 * FAST's loss terms with their closed-form gradients (fast.md §3.3–3.4). Ỹ is M × d_s row-major
 * (float64); each function returns the loss and adds weight·∂loss/∂Ỹ into `grad`. These run per
 * optimisation step on the (small) proxy set; the DPP term's M·D² products go to the MatMul kernel and the
 * n-sized work (φ_ref, PDAS refresh) to the trig kernel.
 */
import { dense, inverse64, matmul, tmatmul } from '../../compute/linalg.js';
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
  const { loss, coefSin, coefCos } = cfdCoefficients(p, f, options, a, b);
  for (let m = 0; m < p.m; m++)
    for (let j = 0; j < f.k; j++) {
      const um = u[m * f.k + j]!;
      const s = (weight / f.k) * (coefSin[j]! * Math.sin(um) + coefCos[j]! * Math.cos(um));
      for (let q = 0; q < p.d; q++) grad[m * p.d + q]! += s * f.omega[j * p.d + q]!;
    }
  return loss;
}

/**
 * cfdLoss with its two M·k·d products on the kernel: cos and sin of U = ỸΩᵀ from the trig kernel, the
 * gradient as S·Ω on MatMul (S = the per-proxy, per-frequency coefficients); JavaScript only does the
 * O(M·k) elementwise work. Same loss and gradient up to float32 rounding of the products.
 */
export async function cfdLossKernel(
  p: Proxies,
  f: FrequencyBatch,
  options: PhaseOptions,
  grad: Float64Array,
  weight = 1,
): Promise<number> {
  const omegaT = new Float32Array(p.d * f.k); // d × k: column j = ω_j
  for (let j = 0; j < f.k; j++) for (let q = 0; q < p.d; q++) omegaT[q * f.k + j] = f.omega[j * p.d + q]!;
  const trig = await projectedTrig(
    { rows: p.m, cols: p.d, data: Float32Array.from(p.y) },
    { d: p.d, f: f.k, data: omegaT },
  );
  const a = new Float64Array(f.k);
  const b = new Float64Array(f.k);
  for (let m = 0; m < p.m; m++)
    for (let j = 0; j < f.k; j++) {
      a[j]! += trig.cos[m * f.k + j]! / p.m;
      b[j]! += trig.sin[m * f.k + j]! / p.m;
    }
  const { loss, coefSin, coefCos } = cfdCoefficients(p, f, options, a, b);
  const s = new Float32Array(p.m * f.k);
  for (let m = 0; m < p.m; m++)
    for (let j = 0; j < f.k; j++)
      s[m * f.k + j] =
        (weight / f.k) * (coefSin[j]! * trig.sin[m * f.k + j]! + coefCos[j]! * trig.cos[m * f.k + j]!);
  const g = (await matmul(dense(p.m, f.k, s), dense(f.k, p.d, Float32Array.from(f.omega)))).data;
  for (let i = 0; i < p.m * p.d; i++) grad[i]! += g[i]!;
  return loss;
}

/** The loss and, per frequency, the coefficients of sin u_m and cos u_m in the gradient (before ·ω/k). */
function cfdCoefficients(
  p: Proxies,
  f: FrequencyBatch,
  options: PhaseOptions,
  a: Float64Array,
  b: Float64Array,
): { loss: number; coefSin: Float64Array; coefCos: Float64Array } {
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
  return { loss: loss / f.k, coefSin, coefCos };
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
 * L_div = −log det(ΨΨᵀ + δI_M), ∂L/∂Ψ = −2(ΨΨᵀ + δI_M)⁻¹Ψ and ∂L/∂y_m = W((∂L/∂Ψ_m) ⊙ (−√(2/D) sin(Wᵀy_m + b)))
 * (§3.3). The determinant and the solve are taken in whichever of the two equal forms is smaller: the M × M
 * form above when M < D, else the push-through identity det(ΨΨᵀ + δI_M) = δ^(M−D) det(ΨᵀΨ + δI_D) with
 * (ΨΨᵀ + δI_M)⁻¹Ψ = Ψ(ΨᵀΨ + δI_D)⁻¹ (a D × D Cholesky). Loss and gradient are the same in both.
 * With kernel products the inverse runs on the kernel too; `loss: false` skips the determinant (NaN is
 * returned) for callers that only step along the gradient.
 */
export async function dppLoss(
  p: Proxies,
  rff: FourierFeatures,
  grad: Float64Array,
  weight = 1,
  products: 'kernel' | 'exact' = 'kernel',
  form: 'auto' | 'proxies' | 'features' = 'auto',
  options: { loss?: boolean } = {},
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
  const cosB = Float64Array.from(b, Math.cos);
  const sinB = Float64Array.from(b, Math.sin);
  for (let m = 0; m < p.m; m++)
    for (let e = 0; e < D; e++) {
      let c: number;
      let sn: number;
      if (trig) {
        const [cu, su] = [trig.cos[m * D + e]!, trig.sin[m * D + e]!];
        [c, sn] = [cu * cosB[e]! - su * sinB[e]!, su * cosB[e]! + cu * sinB[e]!];
      } else {
        let s = b[e]!;
        for (let q = 0; q < p.d; q++) s += w[q * D + e]! * p.y[m * p.d + q]!;
        [c, sn] = [Math.cos(s), Math.sin(s)];
      }
      psi[m * D + e] = scale * c;
      sinPart[m * D + e] = -scale * sn;
    }
  const proxiesForm = form === 'auto' ? p.m < D : form === 'proxies';
  const { loss, psiSolved } = proxiesForm
    ? await proxyFormSolve(psi, p.m, D, delta, products, options.loss ?? true)
    : await featureFormSolve(psi, p.m, D, delta, products, options.loss ?? true);
  // ∂L/∂y_m = W·chain_m with chain = (−2 (ΨΨᵀ + δI)⁻¹Ψ) ⊙ (−√(2/D) sin(Wᵀy + b)).
  const chain = new Float64Array(p.m * D);
  for (let i = 0; i < p.m * D; i++) chain[i] = weight * -2 * psiSolved[i]! * sinPart[i]!;
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

/** K = ΨΨᵀ + δI_M (M × M): loss −log det K and K⁻¹Ψ. */
async function proxyFormSolve(
  psi: Float64Array,
  m: number,
  D: number,
  delta: number,
  products: 'kernel' | 'exact',
  wantLoss: boolean,
): Promise<{ loss: number; psiSolved: ArrayLike<number> }> {
  let k: Float64Array;
  if (products === 'kernel') {
    const psiT = new Float32Array(D * m);
    for (let r = 0; r < m; r++) for (let e = 0; e < D; e++) psiT[e * m + r] = psi[r * D + e]!;
    k = Float64Array.from((await matmul(dense(m, D, Float32Array.from(psi)), dense(D, m, psiT))).data);
  } else k = rowGram(psi, m, D);
  regularise(k, m, delta);
  const { logDet, inverse } = await solveSpd(k, m, products, wantLoss);
  const psiSolved =
    products === 'kernel'
      ? (await matmul(dense(m, m, Float32Array.from(inverse)), dense(m, D, Float32Array.from(psi)))).data
      : multiply(inverse, psi, m, m, D);
  return { loss: -logDet, psiSolved };
}

/** G = ΨᵀΨ + δI_D (D × D): loss −[(M − D) log δ + log det G] (push-through) and ΨG⁻¹. */
async function featureFormSolve(
  psi: Float64Array,
  m: number,
  D: number,
  delta: number,
  products: 'kernel' | 'exact',
  wantLoss: boolean,
): Promise<{ loss: number; psiSolved: ArrayLike<number> }> {
  const g =
    products === 'kernel'
      ? Float64Array.from(
          (await tmatmul(dense(m, D, Float32Array.from(psi)), dense(m, D, Float32Array.from(psi)))).data,
        )
      : gram(psi, m, D);
  regularise(g, D, delta);
  const { logDet, inverse } = await solveSpd(g, D, products, wantLoss);
  const psiSolved =
    products === 'kernel'
      ? (await matmul(dense(m, D, Float32Array.from(psi)), dense(D, D, Float32Array.from(inverse)))).data
      : multiply(psi, inverse, m, D, D);
  return { loss: -((m - D) * Math.log(delta) + logDet), psiSolved };
}

/**
 * log det and inverse of a symmetric positive-definite matrix: all in JavaScript for exact products,
 * else the inverse on the kernel and the determinant (a Cholesky factor's diagonal) only if wanted.
 */
async function solveSpd(
  a: Float64Array,
  n: number,
  products: 'kernel' | 'exact',
  wantLoss: boolean,
): Promise<{ logDet: number; inverse: Float64Array }> {
  if (products === 'exact') return choleskyInverse(a, n);
  return { logDet: wantLoss ? logDetOf(cholesky(a, n), n) : NaN, inverse: await inverse64(a, n) };
}

/** Symmetrise (float32 products are symmetric only up to rounding) and add δ on the diagonal. */
function regularise(a: Float64Array, n: number, delta: number): void {
  for (let e = 0; e < n; e++) {
    a[e * n + e]! += delta;
    for (let f = 0; f < e; f++) a[e * n + f] = a[f * n + e] = (a[e * n + f]! + a[f * n + e]!) / 2;
  }
}

/** AᵀA (cols × cols) in float64. */
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

/** AAᵀ (rows × rows) in float64. */
function rowGram(a: Float64Array, rows: number, cols: number): Float64Array {
  const g = new Float64Array(rows * rows);
  for (let r = 0; r < rows; r++)
    for (let s = 0; s <= r; s++) {
      let dot = 0;
      for (let e = 0; e < cols; e++) dot += a[r * cols + e]! * a[s * cols + e]!;
      g[r * rows + s] = g[s * rows + r] = dot;
    }
  return g;
}

/** A (rows × inner) · B (inner × cols) in float64. */
function multiply(a: Float64Array, b: Float64Array, rows: number, inner: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < inner; k++) {
      const v = a[r * inner + k]!;
      for (let c = 0; c < cols; c++) out[r * cols + c]! += v * b[k * cols + c]!;
    }
  return out;
}

/** Lower-triangular L with LLᵀ = a (n × n, row-major). */
function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-300)) : s / l[j * n + j]!;
    }
  return l;
}

function logDetOf(l: Float64Array, n: number): number {
  let logDet = 0;
  for (let i = 0; i < n; i++) logDet += 2 * Math.log(l[i * n + i]!);
  return logDet;
}

/** Cholesky of a symmetric positive-definite matrix: log det and inverse. */
export function choleskyInverse(a: Float64Array, n: number): { logDet: number; inverse: Float64Array } {
  const l = cholesky(a, n);
  const logDet = logDetOf(l, n);
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
