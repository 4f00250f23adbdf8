/**
 * AdaCore's preconditioned gradients (adacore.md §3, "reconstructed": no official code exists). For the
 * softmax proxy the per-example Hessian diagonal w.r.t. the logits is analytic (A1), so Hutchinson
 * probes are not needed; the diagonal is averaged over selection rounds AdaHessian-style (A4) and the
 * gradients are divided by it (A3).
 */
export type Preconditioner = 'none' | 'perExample' | 'shared';

export interface CurvatureOptions {
  /** β of the EMA of squared diagonals (AdaHessian default 0.999). */
  beta: number;
  /** k, the Hessian power (1; 0.5 is the softer choice). */
  power: number;
  /** λ, damping added before dividing (AdaHessian eps 1e-4). */
  damping: number;
}

/** (A1) D_i = p_i ⊙ (1 − p_i), with p_i = g_i + e_{y_i} recovered from the residuals. */
export function logitHessianDiagonal(
  residuals: Float32Array,
  labels: ArrayLike<number>,
  classes: number,
): Float32Array {
  const d = new Float32Array(residuals.length);
  for (let i = 0; i < labels.length; i++) {
    for (let c = 0; c < classes; c++) {
      const p = residuals[i * classes + c]! + (labels[i] === c ? 1 : 0);
      d[i * classes + c] = p * (1 - p);
    }
  }
  return d;
}

/**
 * (A4) running state: m_t = β·m_{t−1} + (1 − β)·D_t², and H̄_t = (m_t / (1 − β^t))^{k/2}. For the shared
 * variant the state is one q-vector (the mean diagonal); per example it is n × q.
 */
export class CurvatureAverage {
  private second: Float64Array | undefined;
  private rounds = 0;

  constructor(private readonly o: CurvatureOptions) {}

  /** Fold in this round's diagonal (n × q, or q for the shared variant). */
  update(diagonal: ArrayLike<number>): void {
    const { beta } = this.o;
    this.second ??= new Float64Array(diagonal.length);
    if (this.second.length !== diagonal.length) throw new Error('curvature state changed shape');
    for (let t = 0; t < diagonal.length; t++)
      this.second[t] = beta * this.second[t]! + (1 - beta) * diagonal[t]! * diagonal[t]!;
    this.rounds += 1;
  }

  /** H̄_t, bias-corrected. */
  value(): Float64Array {
    if (!this.second) throw new Error('no curvature yet');
    const correction = 1 - this.o.beta ** this.rounds;
    return this.second.map((m) => (m / correction) ** (this.o.power / 2));
  }
}

/** Mean of the per-example diagonals (the shared variant's D_s). */
export function meanDiagonal(diagonal: Float32Array, q: number): Float64Array {
  const n = diagonal.length / q;
  const mean = new Float64Array(q);
  for (let i = 0; i < n; i++) for (let c = 0; c < q; c++) mean[c]! += diagonal[i * q + c]! / n;
  return mean;
}

/** (A3) u_i = g_i ⊘ (H̄ + λ), H̄ per example (n × q) or shared (q). */
export function precondition(g: Float32Array, hbar: Float64Array, q: number, damping: number): Float32Array {
  const shared = hbar.length === q;
  const u = new Float32Array(g.length);
  for (let t = 0; t < g.length; t++) u[t] = g[t]! / (hbar[shared ? t % q : t]! + damping);
  return u;
}
