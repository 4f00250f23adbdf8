/**
 * What the subset evaluators (proxy CLIP, proxy SSL) train on and report. A subset is evaluated the way
 * pre-training uses it: a small model is trained from scratch on it at a fixed compute (steps × batch,
 * the same for every subset, as DataComp fixes samples seen) and tested on a held-out split that no
 * method saw.
 */

/**
 * What the trainer draws its batches from, over training progress in [0, 1]: round r is in force for
 * progress in [start, end). A static subset is one round [0, 1]; a dynamic method's schedule is its rounds
 * (before the first round starts, the whole `pool` subset is used, as CREST's warm-up).
 * Indices are rows of the training matrices; weights (≥ 0, default 1) make a row's chance of being drawn
 * into a batch proportional to its weight (so a CRAIG weight of 5 counts like five copies).
 */
export interface TrainingPlan {
  rounds: PlanRound[];
  /** Rows used before the first round's start (default: the first round's rows). */
  warmup?: Int32Array;
}

export interface PlanRound {
  start: number;
  end: number;
  indices: Int32Array;
  weights?: Float32Array;
}

/** A plan with one round: the subset `indices` (optionally weighted) for the whole run. */
export function staticPlan(indices: ArrayLike<number>, weights?: ArrayLike<number>): TrainingPlan {
  return {
    rounds: [
      {
        start: 0,
        end: 1,
        indices: Int32Array.from(indices),
        ...(weights ? { weights: Float32Array.from(weights) } : {}),
      },
    ],
  };
}

/** A metric over seeds: mean, sample standard deviation (0 for one seed) and the per-seed values. */
export interface SeededMetric {
  mean: number;
  std: number;
  seeds: number[];
}

export function seededMetric(values: number[]): SeededMetric {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const variance =
    values.length > 1 ? values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, std: Math.sqrt(variance), seeds: values };
}

/**
 * Whether two seeded metrics differ by less than their noise: the gap between means is within the
 * combined standard error, √(s_a²/n_a + s_b²/n_b), times 2 (≈ a 95% band). With one seed each (no
 * spread known) nothing is called within noise.
 */
export function withinNoise(a: SeededMetric, b: SeededMetric): boolean {
  const na = a.seeds.length;
  const nb = b.seeds.length;
  if (na < 2 || nb < 2) return false;
  const se = Math.sqrt(a.std ** 2 / na + b.std ** 2 / nb);
  return Math.abs(a.mean - b.mean) <= 2 * se;
}

/** Proxy CLIP's held-out metrics of one subset (fractions in [0, 1], each over seeds). */
export interface ProxyClipMetrics {
  /** Zero-shot top-1 from class-name prompts; null when class names or labels are unknown. */
  zeroShotTop1: SeededMetric | null;
  i2tR1: SeededMetric;
  i2tR5: SeededMetric;
  i2tR10: SeededMetric;
  t2iR1: SeededMetric;
  t2iR5: SeededMetric;
  t2iR10: SeededMetric;
}

/** Proxy SSL's held-out metrics of one subset (each over seeds). */
export interface ProxySslMetrics {
  /** kNN top-1 in the head's space against the labelled subset; null without labels. */
  knnTop1: SeededMetric | null;
  /** Linear-probe top-1 on the head's outputs; null without labels. */
  probeTop1: SeededMetric | null;
  /** E‖f(x) − f(x⁺)‖² on held-out view pairs (lower = more view-invariant). */
  alignment: SeededMetric | null;
  /** log E exp(−2‖f(x) − f(y)‖²) on held-out pairs (lower = more uniform). */
  uniformity: SeededMetric;
}
