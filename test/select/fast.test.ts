import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import {
  cfdLoss,
  dppLoss,
  graphLoss,
  matchLoss,
  type FrequencyBatch,
  type Proxies,
} from '../../src/select/fast/losses.js';
import { auctionAssignment } from '../../src/select/graph/assignment.js';
import { fastPartition } from '../../src/select/selectors/fast.js';
import { kCenterGreedy } from '../../src/select/selectors/kCenter.js';
import { buildLibrary, drawFrequencies, libraryDiscrepancy, normBound } from '../../src/select/fast/pdas.js';

function toy(m: number, d: number, seed: number): Proxies {
  const normal = gaussian(seededRandom(seed));
  return { m, d, y: Float64Array.from({ length: m * d }, normal) };
}

/** Central finite differences of a loss against its analytic gradient: max relative error. */
function gradientError(p: Proxies, loss: (q: Proxies, grad: Float64Array) => number): number {
  const analytic = new Float64Array(p.y.length);
  loss(p, analytic);
  let worst = 0;
  const scale = Math.max(...analytic.map(Math.abs));
  for (let i = 0; i < p.y.length; i++) {
    const h = 1e-5;
    const plus = { ...p, y: Float64Array.from(p.y) };
    const minus = { ...p, y: Float64Array.from(p.y) };
    plus.y[i]! += h;
    minus.y[i]! -= h;
    const numeric =
      (loss(plus, new Float64Array(p.y.length)) - loss(minus, new Float64Array(p.y.length))) / (2 * h);
    worst = Math.max(worst, Math.abs(numeric - analytic[i]!) / Math.max(scale, 1e-12));
  }
  return worst;
}

async function asyncGradientError(
  p: Proxies,
  loss: (q: Proxies, grad: Float64Array) => Promise<number>,
): Promise<number> {
  const analytic = new Float64Array(p.y.length);
  await loss(p, analytic);
  const scale = Math.max(...analytic.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < p.y.length; i++) {
    const h = 1e-5;
    const at = async (delta: number) => {
      const q = { ...p, y: Float64Array.from(p.y) };
      q.y[i]! += delta;
      return loss(q, new Float64Array(p.y.length));
    };
    const numeric = ((await at(h)) - (await at(-h))) / (2 * h);
    worst = Math.max(worst, Math.abs(numeric - analytic[i]!) / Math.max(scale, 1e-12));
  }
  return worst;
}

function frequencies(k: number, d: number, seed: number, refFrom?: Proxies): FrequencyBatch {
  const normal = gaussian(seededRandom(seed));
  const omega = Float64Array.from({ length: k * d }, normal);
  const refRe = new Float64Array(k);
  const refIm = new Float64Array(k);
  const ref = refFrom ?? toy(50, d, seed + 1);
  for (let j = 0; j < k; j++) {
    for (let m = 0; m < ref.m; m++) {
      let u = 0;
      for (let q = 0; q < d; q++) u += omega[j * d + q]! * ref.y[m * d + q]!;
      refRe[j]! += Math.cos(u) / ref.m;
      refIm[j]! += Math.sin(u) / ref.m;
    }
  }
  return { k, omega, refRe, refIm };
}

describe('FAST loss gradients (fast.md §3.3–3.4) match central finite differences', () => {
  it('phase-decoupled and plain CFD, including across the ±π phase wrap', () => {
    const p = toy(20, 4, 1);
    const f = frequencies(16, 4, 2);
    for (const mode of ['pd', 'plain'] as const)
      expect(gradientError(p, (q, g) => cfdLoss(q, f, { mode, lambdaP: 0.3, alpha: 1.2 }, g))).toBeLessThan(
        1e-3,
      );
    // A reference whose phase sits just across −π from the proxies' phase at one frequency.
    const one: FrequencyBatch = {
      k: 1,
      omega: Float64Array.of(1, 0, 0, 0),
      refRe: Float64Array.of(-0.5),
      refIm: Float64Array.of(-0.01),
    };
    const q: Proxies = {
      m: 20,
      d: 4,
      y: Float64Array.from({ length: 80 }, (_, i) => (i % 4 === 0 ? Math.PI - 0.05 + 0.001 * i : 0.1)),
    };
    expect(
      gradientError(q, (r, g) => cfdLoss(r, one, { mode: 'pd', lambdaP: 0.3, alpha: 1.2 }, g)),
    ).toBeLessThan(1e-3);
  });

  it('DPP diversity, positional match and both graph forms', async () => {
    const p = toy(20, 4, 3);
    const normal = gaussian(seededRandom(4));
    const rff = {
      D: 16,
      w: Float64Array.from({ length: 4 * 16 }, normal),
      b: Float64Array.from({ length: 16 }, () => 2 * Math.PI * seededRandom(5)()),
      delta: 1e-3,
    };
    const rnd = seededRandom(6);
    rff.b = Float64Array.from({ length: 16 }, () => 2 * Math.PI * rnd());
    // Float64 products for the check; the kernel path must agree with them.
    const exactGrad = new Float64Array(p.y.length);
    const kernelGrad = new Float64Array(p.y.length);
    const exact = await dppLoss(p, rff, exactGrad, 1, 'exact');
    expect(await dppLoss(p, rff, kernelGrad, 1, 'kernel')).toBeCloseTo(exact, 2);
    kernelGrad.forEach((v, i) => expect(v).toBeCloseTo(exactGrad[i]!, 2));
    expect(await asyncGradientError(p, (q, g) => dppLoss(q, rff, g, 1, 'exact'))).toBeLessThan(1e-3);
    const anchors = Float64Array.from({ length: 80 }, normal);
    expect(gradientError(p, (q, g) => matchLoss(q, anchors, g))).toBeLessThan(1e-3);
    const edges = {
      from: Int32Array.of(0, 1, 2, 5, 7),
      to: Int32Array.of(1, 2, 9, 6, 19),
      weight: Float64Array.of(0.5, 1, 0.2, 0.7, 0.9),
      degree: Float64Array.from({ length: 20 }, (_, i) => 1 + i / 10),
    };
    for (const form of ['induced', 'literal'] as const)
      expect(gradientError(p, (q, g) => graphLoss(q, edges, form, g))).toBeLessThan(1e-3);
  });

  it('the phase term keeps the gradient alive where |φ| is small: PD-CFD / CFD gradient norm > 10', () => {
    // Y_ref and Ỹ = Y_ref + Δ: a pure phase change at a frequency where |φ_ref| ≈ 0.05.
    const d = 4;
    const normal = gaussian(seededRandom(7));
    const ref: Proxies = { m: 400, d, y: Float64Array.from({ length: 400 * d }, () => 1.2 * normal()) };
    let chosen: FrequencyBatch | undefined;
    for (let seed = 0; seed < 500 && !chosen; seed++) {
      const f = frequencies(1, d, 100 + seed, ref);
      const norm = Math.hypot(...f.omega);
      const magnitude = Math.hypot(f.refRe[0]!, f.refIm[0]!);
      if (norm <= 2.5 && magnitude > 0.04 && magnitude < 0.06) chosen = f;
    }
    expect(chosen).toBeDefined();
    const shifted: Proxies = { ...ref, y: ref.y.map((v, i) => v + (i % d === 0 ? 0.05 : 0)) };
    const norm = (mode: 'pd' | 'plain') => {
      const g = new Float64Array(shifted.y.length);
      cfdLoss(shifted, chosen!, { mode, lambdaP: 0.3, alpha: 1.2 }, g);
      return Math.hypot(...g);
    };
    expect(norm('pd') / norm('plain')).toBeGreaterThan(10);
  });
});

describe('sparse auction assignment', () => {
  it('is one-to-one and within 1% of the optimal (Hungarian) cost on the same candidate lists', () => {
    for (let seed = 0; seed < 5; seed++) {
      const rnd = seededRandom(seed);
      const [m, n, width] = [60, 200, 40];
      const full = Float64Array.from({ length: m * n }, () => rnd());
      const candidates = new Int32Array(m * width);
      const costs = new Float64Array(m * width);
      for (let r = 0; r < m; r++) {
        const order = Array.from({ length: n }, (_, j) => j).sort(
          (a, b) => full[r * n + a]! - full[r * n + b]!,
        );
        for (let j = 0; j < width; j++) {
          candidates[r * width + j] = order[j]!;
          costs[r * width + j] = full[r * n + order[j]!]!;
        }
      }
      const a = auctionAssignment({ m, width, candidates, costs });
      expect(new Set(a.node).size).toBe(m);
      expect(Math.min(...a.node)).toBeGreaterThanOrEqual(0);
      // Hungarian (e-maxx, potentials) on the full matrix with non-candidates at +∞.
      const cost = (r: number, c: number) => {
        for (let j = 0; j < width; j++) if (candidates[r * width + j] === c) return costs[r * width + j]!;
        return 1e9;
      };
      expect(a.totalCost).toBeLessThanOrEqual(hungarian(m, n, cost) * 1.01 + 1e-9);
    }
  });
});

function hungarian(m: number, n: number, cost: (r: number, c: number) => number): number {
  const u = new Float64Array(m + 1);
  const v = new Float64Array(n + 1);
  const p = new Int32Array(n + 1);
  const way = new Int32Array(n + 1);
  for (let i = 1; i <= m; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Float64Array(n + 1).fill(Infinity);
    const used = new Uint8Array(n + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost(i0 - 1, j - 1) - u[i0]! - v[j]!;
        if (cur < minv[j]!) [minv[j], way[j]] = [cur, j0];
        if (minv[j]! < delta) [delta, j1] = [minv[j]!, j];
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]!]! += delta;
          v[j]! -= delta;
        } else minv[j]! -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0);
  }
  let total = 0;
  for (let j = 1; j <= n; j++) if (p[j]) total += cost(p[j]! - 1, j - 1);
  return total;
}

describe('FAST selector (fast.md)', () => {
  const d = 16;
  function clustered(n: number, seed: number) {
    const normal = gaussian(seededRandom(seed));
    const centres = Array.from({ length: 6 }, () => Array.from({ length: d }, normal));
    const data = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      // Unequal clusters, so a good subset must get the proportions right.
      const c = Math.floor(6 * seededRandom(seed * 1000 + i)() ** 2);
      let s = 0;
      for (let q = 0; q < d; q++) s += (data[i * d + q] = centres[c]![q]! + 0.8 * normal()) ** 2;
      for (let q = 0; q < d; q++) data[i * d + q]! /= Math.sqrt(s);
    }
    return { rows: n, cols: d, data };
  }

  /** CFD between a subset of V's rows and all of V on fresh Gaussian frequencies with norms in [0, 3]. */
  function freshCfd(
    v: { rows: number; cols: number; data: Float32Array },
    subset: number[],
    seed: number,
  ): number {
    const normal = gaussian(seededRandom(seed));
    const rnd = seededRandom(seed + 1);
    let total = 0;
    for (let j = 0; j < 200; j++) {
      const w = Array.from({ length: v.cols }, normal);
      const r = (3 * rnd()) / Math.hypot(...w);
      const cf = (rows: ArrayLike<number>) => {
        let [re, im] = [0, 0];
        for (let t = 0; t < rows.length; t++) {
          let u = 0;
          for (let q = 0; q < v.cols; q++) u += r * w[q]! * v.data[rows[t]! * v.cols + q]!;
          re += Math.cos(u) / rows.length;
          im += Math.sin(u) / rows.length;
        }
        return [re, im] as const;
      };
      const [a, b] = cf(subset);
      const [ar, br] = cf(Array.from({ length: v.rows }, (_, i) => i));
      total += (a - ar) ** 2 + (b - br) ** 2;
    }
    return total / 200;
  }

  it('its subset matches the spectral distribution better than the median of 50 random subsets and than k-center; picks are a bijection', async () => {
    const x = clustered(1500, 1);
    const defaults = (await import('../../src/select/registry.js'))
      .getSelector('fast')
      .params.parse({}) as never;
    const result = await fastPartition(x, 100, { ...(defaults as object), iterations: 150 } as never, 0);
    expect(new Set(result.picks).size).toBe(100);
    const ours = freshCfd(result.spectral, result.picks, 5);
    const random: number[] = [];
    for (let s = 0; s < 50; s++) {
      const rnd = seededRandom(100 + s);
      const ids = Array.from({ length: 1500 }, (_, i) => i);
      for (let i = 0; i < 100; i++) {
        const j = i + Math.floor(rnd() * (1500 - i));
        [ids[i], ids[j]] = [ids[j]!, ids[i]!];
      }
      random.push(freshCfd(result.spectral, ids.slice(0, 100), 5));
    }
    random.sort((a, b) => a - b);
    expect(ours).toBeLessThan(random[25]!);
    // …and better than k-center's cover of the same size (greedy in the embedding space, as the baseline).
    const cover = await kCenterGreedy(x, 100, 0);
    expect(ours).toBeLessThan(freshCfd(result.spectral, Array.from(cover.indices), 5));
  });

  it('PDAS curriculum: drawn frequencies never exceed τ_t, their running maximum rises, no repeats in a step', async () => {
    const v = clustered(400, 2);
    const normal = gaussian(seededRandom(3));
    const reference = { rows: 400, cols: 4, data: Float32Array.from({ length: 1600 }, normal) };
    const initial = { rows: 40, cols: 4, data: reference.data.slice(0, 160) };
    const lib = await buildLibrary(reference, initial, 256, { lambdaP: 0.3, alpha: 1.2 }, seededRandom(4));
    expect(lib.count).toBe(768);
    const lcf = await libraryDiscrepancy(lib, initial, { lambdaP: 0.3, alpha: 1.2 });
    const random = seededRandom(5);
    let runningMax = 0;
    const maxima: number[] = [];
    for (let t = 0; t < 100; t += 5) {
      const tau = normBound(t, 100);
      const drawn = drawFrequencies(lib, lcf, tau, 16, random);
      expect(new Set(drawn).size).toBe(drawn.length);
      for (const j of drawn) expect(lib.norm[j]!).toBeLessThanOrEqual(tau);
      runningMax = Math.max(runningMax, ...drawn.map((j) => lib.norm[j]!));
      maxima.push(runningMax);
    }
    expect(maxima.at(-1)!).toBeGreaterThan(maxima[0]! + 1);
    expect(v.rows).toBe(400);
  });
});
