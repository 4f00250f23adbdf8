import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { runSelector } from '../../src/select/contract.js';
import {
  cfdLoss,
  cfdLossKernel,
  dppLoss,
  type FourierFeatures,
  type Proxies,
} from '../../src/select/fast/losses.js';
import {
  buildLibrary,
  drawFrequencies,
  libraryDiscrepancy,
  type FrequencyLibrary,
} from '../../src/select/fast/pdas.js';
import { getSelector } from '../../src/select/registry.js';
import { fast, fastPartition } from '../../src/select/selectors/fast.js';

function toy(m: number, d: number, seed: number): Proxies {
  const normal = gaussian(seededRandom(seed));
  return { m, d, y: Float64Array.from({ length: m * d }, normal) };
}

function features(d: number, D: number, seed: number): FourierFeatures {
  const normal = gaussian(seededRandom(seed));
  const rnd = seededRandom(seed + 1);
  return {
    D,
    w: Float64Array.from({ length: d * D }, () => 0.7 * normal()),
    b: Float64Array.from({ length: D }, () => 2 * Math.PI * rnd()),
    delta: 1e-3,
  };
}

/** The sampler as it was before the running normaliser: the reference for identical draws. */
function drawReference(
  lib: FrequencyLibrary,
  lcf: Float64Array,
  tau: number,
  k: number,
  random: () => number,
) {
  const pool: number[] = [];
  for (let j = 0; j < lib.count; j++) if (lib.norm[j]! <= tau) pool.push(j);
  const penalty = new Float64Array(pool.length).fill(1);
  const taken = new Uint8Array(pool.length);
  const chosen: number[] = [];
  for (let draw = 0; draw < Math.min(k, pool.length); draw++) {
    let total = 0;
    for (let i = 0; i < pool.length; i++) if (!taken[i]) total += lcf[pool[i]!]! * penalty[i]! + 1e-12;
    let r = random() * total;
    let pick = -1;
    for (let i = 0; i < pool.length; i++) {
      if (taken[i]) continue;
      pick = i;
      r -= lcf[pool[i]!]! * penalty[i]! + 1e-12;
      if (r <= 0) break;
    }
    taken[pick] = 1;
    const j = pool[pick]!;
    chosen.push(j);
    for (let i = 0; i < pool.length; i++) {
      const c = Math.abs(lib.cosine[j * lib.count + pool[i]!]!);
      penalty[i] = Math.min(penalty[i]!, Math.max(0.05, 1 - c));
    }
  }
  return chosen;
}

describe('FAST per-step work in its cheaper forms', () => {
  it('the M × M DPP form equals the D × D push-through form (loss and gradient), on both sides of M = D', async () => {
    for (const [m, D] of [
      [12, 32],
      [40, 16],
    ] as const) {
      const p = toy(m, 5, m);
      const rff = features(5, D, D);
      const viaProxies = new Float64Array(m * 5);
      const viaFeatures = new Float64Array(m * 5);
      const lossP = await dppLoss(p, rff, viaProxies, 1, 'exact', 'proxies');
      const lossF = await dppLoss(p, rff, viaFeatures, 1, 'exact', 'features');
      expect(Math.abs(lossP - lossF)).toBeLessThan(1e-8 * Math.max(1, Math.abs(lossF)));
      const scale = Math.max(...viaFeatures.map(Math.abs));
      viaProxies.forEach((g, i) => expect(Math.abs(g - viaFeatures[i]!)).toBeLessThan(1e-8 * scale));
      // The kernel (float32 MatMul) path of the automatic choice agrees with float64.
      const kernel = new Float64Array(m * 5);
      expect(await dppLoss(p, rff, kernel, 1, 'kernel')).toBeCloseTo(lossF, 1);
      kernel.forEach((g, i) => expect(Math.abs(g - viaFeatures[i]!)).toBeLessThan(2e-2 * scale));
      // Without the loss (FAST's steps): the same gradient, no determinant.
      const gradientOnly = new Float64Array(m * 5);
      expect(await dppLoss(p, rff, gradientOnly, 1, 'kernel', 'auto', { loss: false })).toBeNaN();
      expect(Array.from(gradientOnly)).toEqual(Array.from(kernel));
    }
  });

  it('the CFD loss on the kernel equals the JavaScript one (loss and gradient)', async () => {
    const p = toy(60, 8, 41);
    const normal = gaussian(seededRandom(42));
    const k = 24;
    const f = {
      k,
      omega: Float64Array.from({ length: k * 8 }, () => 0.4 * normal()),
      refRe: Float64Array.from({ length: k }, () => 0.3 * normal()),
      refIm: Float64Array.from({ length: k }, () => 0.3 * normal()),
    };
    for (const mode of ['pd', 'plain'] as const) {
      const js = new Float64Array(p.y.length);
      const kernel = new Float64Array(p.y.length);
      const options = { mode, lambdaP: 0.3, alpha: 1.2 };
      const expected = cfdLoss(p, f, options, js, 0.7);
      expect(await cfdLossKernel(p, f, options, kernel, 0.7)).toBeCloseTo(expected, 4);
      const scale = Math.max(...js.map(Math.abs));
      kernel.forEach((g, i) => expect(Math.abs(g - js[i]!)).toBeLessThan(1e-3 * scale));
    }
  });

  it('the M × M form matches central finite differences', async () => {
    const p = toy(10, 4, 3);
    const rff = features(4, 24, 9);
    const analytic = new Float64Array(p.y.length);
    await dppLoss(p, rff, analytic, 1, 'exact', 'proxies');
    const scale = Math.max(...analytic.map(Math.abs));
    for (let i = 0; i < p.y.length; i++) {
      const at = async (h: number) => {
        const q = { ...p, y: Float64Array.from(p.y) };
        q.y[i]! += h;
        return dppLoss(q, rff, new Float64Array(p.y.length), 1, 'exact', 'proxies');
      };
      const numeric = ((await at(1e-5)) - (await at(-1e-5))) / 2e-5;
      expect(Math.abs(numeric - analytic[i]!) / scale).toBeLessThan(1e-3);
    }
  });

  it('PDAS with a running normaliser draws exactly what the recomputing sampler draws', async () => {
    const normal = gaussian(seededRandom(11));
    const reference = { rows: 600, cols: 6, data: Float32Array.from({ length: 3600 }, normal) };
    const initial = { rows: 30, cols: 6, data: reference.data.slice(0, 180) };
    const weights = { lambdaP: 0.3, alpha: 1.2 };
    const lib = await buildLibrary(reference, initial, 256, weights, seededRandom(12));
    // The kernel-built cosine table is the table of direction cosines.
    for (const [a, b] of [
      [0, 1],
      [5, 700],
      [300, 301],
    ] as const) {
      let dot = 0;
      for (let q = 0; q < 6; q++) dot += lib.omega[a * 6 + q]! * lib.omega[b * 6 + q]!;
      expect(lib.cosine[a * lib.count + b]!).toBeCloseTo(dot / (lib.norm[a]! * lib.norm[b]!), 5);
    }
    const lcf = await libraryDiscrepancy(lib, initial, weights);
    for (const tau of [1, 1.7, 3]) {
      const [r1, r2] = [seededRandom(13), seededRandom(13)];
      for (let step = 0; step < 20; step++)
        expect(drawFrequencies(lib, lcf, tau, 32, r1)).toEqual(drawReference(lib, lcf, tau, 32, r2));
    }
  });

  it('the level-off rule stops only after the curriculum has opened, where the library CFD has levelled off', async () => {
    const normal = gaussian(seededRandom(21));
    const x = { rows: 400, cols: 8, data: Float32Array.from({ length: 3200 }, normal) };
    const defaults = getSelector('fast').params.parse({}) as Parameters<typeof fastPartition>[2];
    const iterations = 100;
    const full = await fastPartition(x, 20, { ...defaults, iterations, levelOff: 0 }, 0);
    expect(full.steps).toBe(iterations);
    // A loose tolerance: the first check once τ = 3 (step 70) must stop it.
    const loose = await fastPartition(x, 20, { ...defaults, iterations, levelOff: 0.99 }, 0);
    expect(loose.steps).toBe(70);
    const history = loose.cfdHistory;
    const at = (step: number) => history.find((h) => h.step === step)!.cfd;
    expect(at(20) - at(70)).toBeLessThan(0.99 * at(20));
    expect(new Set(loose.picks).size).toBe(20);
    // Up to the stop both runs are the same optimisation.
    expect(history).toEqual(full.cfdHistory.filter((h) => h.step <= 70));
  });

  it('the selector states the stopping rule and the per-phase seconds in its trace', async () => {
    const normal = gaussian(seededRandom(31));
    const n = 600;
    const image = Float32Array.from({ length: n * 8 }, normal);
    const result = await runSelector(
      fast,
      { n, dim: 8, image },
      { count: 30 },
      { iterations: 60, clusters: 2 },
      { seed: 0 },
    );
    expect(result.indices.length).toBe(30);
    const line = result.trace!.find((t) => t.stage === 'optimisation')!.message;
    expect(line).toMatch(/stopping rule: from step 42 \(curriculum open\)/);
    expect(line).toMatch(/seconds: graph \d/);
  });

  it('keeps every partition within maxPartition, splitting again where k-means left a larger piece', async () => {
    // Two tight groups of 450 and 150 rows: k-means into ⌈600 / 200⌉ = 3 pieces halves the large group
    // (225 + 225 + 150), so one split round leaves pieces above 200.
    const normal = gaussian(seededRandom(5));
    const n = 600;
    const d = 8;
    const centres = [Array.from({ length: d }, normal), Array.from({ length: d }, normal)];
    const image = new Float32Array(n * d);
    for (let i = 0; i < n; i++)
      for (let q = 0; q < d; q++) image[i * d + q] = centres[i < 450 ? 0 : 1]![q]! + 0.05 * normal();
    const result = await runSelector(
      fast,
      { n, dim: d, image },
      { count: 30 },
      { partition: 'none', maxPartition: 200, iterations: 20 },
      { seed: 0 },
    );
    const line = result.trace!.find((t) => t.stage === 'partitions')!.message;
    const [, count, largest] = /^(\d+) partitions .*largest (\d+)/.exec(line)!;
    expect(Number(largest)).toBeLessThanOrEqual(200);
    expect(Number(count)).toBeGreaterThanOrEqual(3);
    expect(new Set(result.indices).size).toBe(30);
  });
});
