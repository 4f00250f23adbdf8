/**
 * Progressive Discrepancy-Aware Sampling (FAST, fast.md §3.5): an anisotropic frequency library per
 * norm band, a curriculum that opens frequencies from low to high norm, and importance sampling by the
 * current discrepancy with a penalty on directions already drawn.
 *
 * [R] AFL scales: the spec's 50 steps of stochastic ascent on E[L_CF] over log s are replaced by their
 * fixed point on a probe set: s_j² ∝ the discrepancy-weighted second moment of the probe directions'
 * j-th coordinate (directions where the initial proxies mismatch the data get more frequencies).
 */
import { gaussian } from '../../compute/random.js';
import { wrap } from './losses.js';
import { dense, matmul } from '../../compute/linalg.js';
import { characteristicFunction, projectedTrig, type Frequencies } from '../kernels/trig.js';
import type { Matrix } from '../kernels/similarity.js';

export const BANDS: ReadonlyArray<readonly [number, number]> = [
  [0, 1],
  [1, 2],
  [2, 3],
];

export interface FrequencyLibrary {
  d: number;
  count: number;
  /** count × d, row-major. */
  omega: Float64Array;
  norm: Float64Array;
  refRe: Float64Array;
  refIm: Float64Array;
  /** cos of the angle between library directions, count × count. */
  cosine: Float32Array;
  /** Per-band dimension scales, for the report. */
  scales: Float64Array[];
}

export interface PhaseWeights {
  lambdaP: number;
  alpha: number;
}

const asColumns = (omega: Float64Array, count: number, d: number): Frequencies => {
  const data = new Float32Array(d * count);
  for (let j = 0; j < count; j++) for (let q = 0; q < d; q++) data[q * count + j] = omega[j * d + q]!;
  return { d, f: count, data };
};

function draw(
  count: number,
  d: number,
  band: readonly [number, number],
  scale: Float64Array,
  random: () => number,
) {
  const normal = gaussian(random);
  const omega = new Float64Array(count * d);
  for (let j = 0; j < count; j++) {
    let norm = 0;
    for (let q = 0; q < d; q++) norm += (omega[j * d + q] = scale[q]! * normal()) ** 2;
    const radius = band[0] + (band[1] - band[0]) * random();
    const f = radius / Math.sqrt(Math.max(norm, 1e-30));
    for (let q = 0; q < d; q++) omega[j * d + q]! *= f;
  }
  return omega;
}

/** L_CF(ω) per frequency (eq. of §3.4) for CFs given as (re, im) arrays. */
export function discrepancy(
  omega: Float64Array,
  d: number,
  ref: { re: ArrayLike<number>; im: ArrayLike<number> },
  cur: { re: ArrayLike<number>; im: ArrayLike<number> },
  w: PhaseWeights,
): Float64Array {
  const count = ref.re.length;
  const out = new Float64Array(count);
  for (let j = 0; j < count; j++) {
    let norm2 = 0;
    for (let q = 0; q < d; q++) norm2 += omega[j * d + q]! ** 2;
    const [da, db] = [cur.re[j]! - ref.re[j]!, cur.im[j]! - ref.im[j]!];
    const delta = wrap(Math.atan2(ref.im[j]!, ref.re[j]!) - Math.atan2(cur.im[j]!, cur.re[j]!));
    out[j] = da * da + db * db + (w.lambdaP / (1 + w.alpha * norm2)) * delta * delta;
  }
  return out;
}

/**
 * Reference rows the AFL probe's discrepancies are estimated on (evenly spaced when there are more): the
 * probe only sets the per-dimension scales, and a CF estimate from 4,096 points is within ~0.016 of
 * the whole partition's. The library's φ_ref itself is always computed on every row.
 */
const PROBE_SAMPLE = 4096;

function evenlySpacedRows(m: Matrix, count: number): Matrix {
  if (m.rows <= count) return m;
  const data = new Float32Array(count * m.cols);
  for (let t = 0; t < count; t++) {
    const row = Math.floor((t * m.rows) / count);
    data.set(m.data.subarray(row * m.cols, (row + 1) * m.cols), t * m.cols);
  }
  return { rows: count, cols: m.cols, data };
}

/** Build the library against the reference sample and the initial proxies (§3.5 step 1). */
export async function buildLibrary(
  reference: Matrix,
  initial: Matrix,
  perBand: number,
  w: PhaseWeights,
  random: () => number,
): Promise<FrequencyLibrary> {
  const d = reference.cols;
  const parts: Float64Array[] = [];
  const scales: Float64Array[] = [];
  const probeReference = evenlySpacedRows(reference, PROBE_SAMPLE);
  for (const band of BANDS) {
    const probe = draw(1024, d, band, new Float64Array(d).fill(1), random);
    const columns = asColumns(probe, 1024, d);
    const L = discrepancy(
      probe,
      d,
      await characteristicFunction(probeReference, columns),
      await characteristicFunction(initial, columns),
      w,
    );
    const scale = new Float64Array(d);
    let total = 0;
    for (let j = 0; j < 1024; j++) {
      let norm2 = 0;
      for (let q = 0; q < d; q++) norm2 += probe[j * d + q]! ** 2;
      for (let q = 0; q < d; q++) scale[q]! += (L[j]! * probe[j * d + q]! ** 2) / Math.max(norm2, 1e-30);
      total += L[j]!;
    }
    for (let q = 0; q < d; q++)
      scale[q] = Math.min(4, Math.max(0.25, Math.sqrt((d * scale[q]!) / Math.max(total, 1e-30))));
    scales.push(scale);
    parts.push(draw(perBand, d, band, scale, random));
  }
  const count = perBand * BANDS.length;
  const omega = new Float64Array(count * d);
  parts.forEach((p, b) => omega.set(p, b * perBand * d));
  const norm = new Float64Array(count);
  const unit = new Float64Array(count * d);
  for (let j = 0; j < count; j++) {
    for (let q = 0; q < d; q++) norm[j]! += omega[j * d + q]! ** 2;
    norm[j] = Math.sqrt(norm[j]!);
    for (let q = 0; q < d; q++) unit[j * d + q] = omega[j * d + q]! / Math.max(norm[j]!, 1e-30);
  }
  const ref = await characteristicFunction(reference, asColumns(omega, count, d));
  // Direction cosines between library frequencies (the sampler's collinearity penalty D(ω)): one
  // count × d × count product on the MatMul kernel.
  const cosine: Float32Array = (
    await matmul(
      dense(count, d, Float32Array.from(unit)),
      dense(d, count, new Float32Array(asColumns(unit, count, d).data)),
    )
  ).data;
  return { d, count, omega, norm, refRe: ref.re, refIm: ref.im, cosine, scales };
}

/** L_CF of the current proxies at every library frequency (refreshed every few steps, §3.5 step 3). */
export async function libraryDiscrepancy(
  lib: FrequencyLibrary,
  proxies: Matrix,
  w: PhaseWeights,
): Promise<Float64Array> {
  const { cos, sin } = await projectedTrig(proxies, asColumns(lib.omega, lib.count, lib.d));
  const re = new Float64Array(lib.count);
  const im = new Float64Array(lib.count);
  for (let m = 0; m < proxies.rows; m++)
    for (let j = 0; j < lib.count; j++) {
      re[j]! += cos[m * lib.count + j]! / proxies.rows;
      im[j]! += sin[m * lib.count + j]! / proxies.rows;
    }
  return discrepancy(lib.omega, lib.d, { re: lib.refRe, im: lib.refIm }, { re, im }, w);
}

/** τ_t: rises linearly from 1 to 3 over the first 70% of the iterations (§3.5 step 2 [R]). */
export function normBound(t: number, iterations: number): number {
  return 1 + 2 * Math.min(1, t / Math.max(1, 0.7 * iterations));
}

/**
 * Draw k library frequencies with ‖ω‖ ≤ τ_t, sequentially without replacement, p ∝ L_CF(ω)·D(ω),
 * D(ω) = max(0.05, 1 − max_{ω' drawn} |cos∠(ω, ω')|) (§3.5 step 3). The normaliser Σ p is kept up to
 * date as penalties shrink, so each draw is one pass for the penalty update and one (usually partial)
 * pass for the inverse-CDF pick over the candidates' contiguous copies.
 */
export function drawFrequencies(
  lib: FrequencyLibrary,
  lcf: Float64Array,
  tau: number,
  k: number,
  random: () => number,
): number[] {
  const pool: number[] = [];
  for (let j = 0; j < lib.count; j++) if (lib.norm[j]! <= tau) pool.push(j);
  const size = pool.length;
  const score = Float64Array.from(pool, (j) => lcf[j]!);
  const mass = Float64Array.from(score, (s) => s + 1e-12); // L_CF·D + 1e-12, D = 1 before any draw
  const penalty = new Float64Array(size).fill(1);
  let total = 0;
  for (let i = 0; i < size; i++) total += mass[i]!;
  const chosen: number[] = [];
  for (let draw = 0; draw < Math.min(k, size); draw++) {
    let r = random() * total;
    let pick = -1;
    for (let i = 0; i < size; i++) {
      if (mass[i] === 0) continue; // taken
      pick = i;
      r -= mass[i]!;
      if (r <= 0) break;
    }
    total -= mass[pick]!;
    mass[pick] = 0;
    const j = pool[pick]!;
    chosen.push(j);
    const row = j * lib.count;
    for (let i = 0; i < size; i++) {
      if (mass[i] === 0) continue;
      const d = Math.max(0.05, 1 - Math.abs(lib.cosine[row + pool[i]!]!));
      if (d >= penalty[i]!) continue;
      penalty[i] = d;
      const next = score[i]! * d + 1e-12;
      total -= mass[i]! - next;
      mass[i] = next;
    }
  }
  return chosen;
}
