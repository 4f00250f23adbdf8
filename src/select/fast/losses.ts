/**
 * FAST's loss terms with their closed-form gradients (fast.md §3.3–3.4). Ỹ is M × d_s row-major
 * (float64); each function returns the loss and adds weight·∂loss/∂Ỹ into `grad`. These run per
 * optimisation step on the (small) proxy set in float64; the n-sized work (φ_ref, PDAS refresh) is on the
 * trig kernel.
 */

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

const wrap = (x: number) => Math.atan2(Math.sin(x), Math.cos(x));

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
export function dppLoss(p: Proxies, rff: FourierFeatures, grad: Float64Array, weight = 1): number {
  const { D, w, b, delta } = rff;
  const scale = Math.sqrt(2 / D);
  const psi = new Float64Array(p.m * D);
  const sinPart = new Float64Array(p.m * D);
  for (let m = 0; m < p.m; m++)
    for (let e = 0; e < D; e++) {
      let s = b[e]!;
      for (let q = 0; q < p.d; q++) s += w[q * D + e]! * p.y[m * p.d + q]!;
      psi[m * D + e] = scale * Math.cos(s);
      sinPart[m * D + e] = -scale * Math.sin(s);
    }
  const g = new Float64Array(D * D);
  for (let m = 0; m < p.m; m++)
    for (let e = 0; e < D; e++) {
      const v = psi[m * D + e]!;
      if (v === 0) continue;
      for (let f = e; f < D; f++) g[e * D + f]! += v * psi[m * D + f]!;
    }
  for (let e = 0; e < D; e++) {
    g[e * D + e]! += delta;
    for (let f = 0; f < e; f++) g[e * D + f] = g[f * D + e]!;
  }
  const { logDet, inverse } = choleskyInverse(g, D);
  const loss = -((p.m - D) * Math.log(delta) + logDet);
  for (let m = 0; m < p.m; m++) {
    // dΨ_m = −2 Ψ_m G⁻¹
    for (let e = 0; e < D; e++) {
      let s = 0;
      for (let f = 0; f < D; f++) s += psi[m * D + f]! * inverse[f * D + e]!;
      const chain = weight * -2 * s * sinPart[m * D + e]!;
      for (let q = 0; q < p.d; q++) grad[m * p.d + q]! += chain * w[q * D + e]!;
    }
  }
  return loss;
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
