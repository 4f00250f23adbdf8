import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { runSelector, type SelectInput } from '../../src/select/contract.js';
import { innerProducts, type Matrix } from '../../src/select/kernels/similarity.js';
import { getSelector } from '../../src/select/registry.js';
import { kCenterGreedy } from '../../src/select/selectors/kCenter.js';
import { facilitySelect } from '../../src/select/selectors/facility.js';
import { denseColumns, FacilityLocation } from '../../src/select/submodular/facilityLocation.js';
import { lazyGreedy, naiveGreedy, stochasticGreedy } from '../../src/select/submodular/optimizers.js';

function unit(n: number, d: number, seed: number, centres = 0, spread = 0.3): Matrix {
  const normal = gaussian(seededRandom(seed));
  const means = Array.from({ length: centres }, () => Array.from({ length: d }, normal));
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const m = centres ? means[i % centres]! : undefined;
    for (let k = 0; k < d; k++) data[i * d + k] = (m ? m[k]! : 0) + (m ? spread : 1) * normal();
    const r = data.subarray(i * d, (i + 1) * d);
    const s = Math.hypot(...r);
    for (let k = 0; k < d; k++) r[k]! /= s;
  }
  return { rows: n, cols: d, data };
}

async function denseFL(x: Matrix): Promise<() => FacilityLocation> {
  const s = await innerProducts(x, x);
  const min = s.reduce((a, b) => Math.min(a, b), Infinity);
  const shifted = Float32Array.from(s, (v) => v - min);
  return () => new FacilityLocation(denseColumns(x.rows, shifted));
}

const input = (x: Matrix, extra: Partial<SelectInput> = {}): SelectInput => ({
  n: x.rows,
  dim: x.cols,
  image: x.data,
  ...extra,
});

describe('facility location and greedy optimizers', () => {
  it('lazy greedy picks exactly what plain greedy picks; stochastic with a full sample too', async () => {
    const make = await denseFL(unit(300, 8, 1, 6));
    const naive = naiveGreedy(make(), { budget: 25 });
    const lazy = lazyGreedy(make(), { budget: 25 });
    expect(Array.from(lazy.picks)).toEqual(Array.from(naive.picks));
    lazy.gains.forEach((g, i) => expect(g).toBeCloseTo(naive.gains[i]!, 4));
    // ε = e^{-25}: the sample ⌈(n/B)·ln(1/ε)⌉ = 300 covers every item.
    const full = stochasticGreedy(make(), { budget: 25, epsilon: Math.exp(-25.01), seed: 3 });
    expect(Array.from(full.picks)).toEqual(Array.from(naive.picks));
  });

  it('marginal gains equal differences of evaluations, and shrink (submodularity)', async () => {
    const make = await denseFL(unit(60, 6, 2));
    const f = make();
    const { picks, gains } = naiveGreedy(f, { budget: 8 });
    for (let t = 0; t < 8; t++) {
      const before = f.evaluate(picks.slice(0, t));
      const after = f.evaluate(picks.slice(0, t + 1));
      expect(gains[t]!).toBeCloseTo(after - before, 3);
      if (t > 0) expect(gains[t]!).toBeLessThanOrEqual(gains[t - 1]! + 1e-6);
    }
  });

  it('greedy reaches at least (1 − 1/e) of the brute-force optimum on tiny inputs', async () => {
    for (let seed = 0; seed < 10; seed++) {
      const make = await denseFL(unit(11, 4, 100 + seed));
      const f = make();
      const greedy = f.evaluate(naiveGreedy(make(), { budget: 3 }).picks);
      let best = 0;
      for (let a = 0; a < 11; a++)
        for (let b = a + 1; b < 11; b++)
          for (let c = b + 1; c < 11; c++) best = Math.max(best, f.evaluate([a, b, c]));
      expect(greedy).toBeGreaterThanOrEqual((1 - 1 / Math.E) * best - 1e-6);
      expect(greedy).toBeLessThanOrEqual(best + 1e-6);
    }
  });

  it('the kNN-sparse objective is within 2% of the dense one on 5,000 points (dense objective of both subsets)', async () => {
    const x = unit(5000, 16, 4, 50, 0.5);
    const dense = await facilitySelect(x, 100, {
      mode: 'dense',
      neighbors: 20,
      optimizer: 'lazy',
      epsilon: 0.1,
      seed: 0,
      similarity: 'cosine',
    });
    const sparse = await facilitySelect(x, 100, {
      mode: 'sparse',
      neighbors: 50,
      optimizer: 'lazy',
      epsilon: 0.1,
      seed: 0,
      similarity: 'cosine',
    });
    const f = (await denseFL(x))();
    const denseValue = f.evaluate(dense.picks);
    expect(f.evaluate(sparse.picks)).toBeGreaterThan(0.98 * denseValue);
    // Weights are cluster sizes: every point is counted once.
    expect(sparse.weights.reduce((a, b) => a + b, 0)).toBe(5000);
    expect(dense.weights.reduce((a, b) => a + b, 0)).toBe(5000);
  });

  it('facility location represents the pool better than random at equal budget', async () => {
    const x = unit(1000, 16, 5, 20, 0.4);
    const f = (await denseFL(x))();
    const fl = await runSelector(getSelector('facility-location'), input(x), { count: 40 }, {}, { seed: 0 });
    const rnd = await runSelector(getSelector('random'), input(x), { count: 40 }, {}, { seed: 0 });
    expect(f.evaluate(fl.indices)).toBeGreaterThan(f.evaluate(rnd.indices));
  });
});

describe('CRAIG (feature mode)', () => {
  it('duplicate groups: one pick per group, weight = group size, weighted sum = full sum (craig.md §7.1)', async () => {
    const distinct = unit(6, 8, 6);
    const sizes = [5, 1, 9, 3, 7, 2];
    const ids: number[] = [];
    sizes.forEach((s, g) => ids.push(...Array.from({ length: s }, () => g)));
    const data = new Float32Array(ids.length * 8);
    ids.forEach((g, i) => data.set(distinct.data.subarray(g * 8, g * 8 + 8), i * 8));
    const x = { rows: ids.length, cols: 8, data };
    const s = await runSelector(
      getSelector('craig'),
      input(x, { labels: new Int32Array(ids.length) }),
      { count: 6 },
      {},
      { seed: 0 },
    );
    expect(new Set(Array.from(s.indices, (i) => ids[i]))).toEqual(new Set([0, 1, 2, 3, 4, 5]));
    Array.from(s.indices).forEach((i, t) => expect(s.weights![t]).toBe(sizes[ids[i]!]));
    for (let k = 0; k < 8; k++) {
      let full = 0;
      for (let i = 0; i < ids.length; i++) full += data[i * 8 + k]!;
      let weighted = 0;
      Array.from(s.indices).forEach((i, t) => (weighted += s.weights![t]! * data[i * 8 + k]!));
      expect(weighted).toBeCloseTo(full, 4);
    }
  });

  it('per-class budgets are proportional and the weights of each class sum to its size', async () => {
    const x = unit(600, 8, 7, 3, 0.4);
    const labels = Int32Array.from({ length: 600 }, (_, i) => (i < 300 ? 0 : i < 500 ? 1 : 2));
    const s = await runSelector(getSelector('craig'), input(x, { labels }), { count: 60 }, {}, { seed: 0 });
    const perClass = [0, 0, 0];
    const weight = [0, 0, 0];
    Array.from(s.indices).forEach((i, t) => {
      perClass[labels[i]!]! += 1;
      weight[labels[i]!]! += s.weights![t]!;
    });
    expect(perClass).toEqual([30, 20, 10]);
    expect(weight).toEqual([300, 200, 100]);
  });
});

describe('k-center greedy (B5)', () => {
  it('covering radius ≤ 2 × the brute-force optimum on tiny inputs; farthest point comes second', async () => {
    for (let seed = 0; seed < 6; seed++) {
      const x = unit(12, 3, 200 + seed);
      const dist = (a: number, b: number) =>
        Math.sqrt(
          Math.max(
            0,
            2 - 2 * x.data.subarray(a * 3, a * 3 + 3).reduce((s, v, k) => s + v * x.data[b * 3 + k]!, 0),
          ),
        );
      const radius = (set: number[]) =>
        Math.max(...Array.from({ length: 12 }, (_, i) => Math.min(...set.map((c) => dist(i, c)))));
      const s = await runSelector(getSelector('k-center'), input(x), { count: 3 }, {}, { seed });
      let best = Infinity;
      for (let a = 0; a < 12; a++)
        for (let b = a + 1; b < 12; b++)
          for (let c = b + 1; c < 12; c++) best = Math.min(best, radius([a, b, c]));
      expect(radius(Array.from(s.indices))).toBeLessThanOrEqual(2 * best + 1e-6);
      const first = s.indices[0]!;
      const farthest = Array.from({ length: 12 }, (_, i) => i).sort(
        (a, b) => dist(first, b) - dist(first, a),
      )[0];
      expect(s.indices[1]).toBe(farthest);
    }
  });
  it('the lazy form (with kernel synchronisation every 256 picks) picks exactly what the plain O(N·B·d) loop picks, duplicates included', async () => {
    for (const [n, d, budget, seed] of [
      [400, 6, 60, 1],
      [2000, 16, 300, 2],
      [300, 3, 300, 3],
    ] as const) {
      const base = unit(n, d, seed, 5, 0.4);
      // Every tenth item duplicates another, so zero distances and ties occur.
      for (let i = 0; i < n; i += 10)
        base.data.copyWithin(i * d, ((i * 7 + 3) % n) * d, ((i * 7 + 3) % n) * d + d);
      const plainMin = new Float64Array(n).fill(Infinity);
      const plain: number[] = [];
      let next = seed % n;
      for (let t = 0; t < budget; t++) {
        plain.push(next);
        let best = -1;
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let k = 0; k < d; k++) s += (base.data[i * d + k]! - base.data[next * d + k]!) ** 2;
          plainMin[i] = Math.min(plainMin[i]!, s);
          if (!plain.includes(i) && (best < 0 || plainMin[i]! > plainMin[best]!)) best = i;
        }
        next = best;
      }
      const pruned = await kCenterGreedy(base, budget, seed % n);
      expect(Array.from(pruned.indices)).toEqual(plain);
      pruned.minSquared.forEach((m, i) => expect(m).toBeCloseTo(plainMin[i]!, 5));
      // Fewer up-to-date checks than the plain loop's N per pick.
      expect(pruned.lazyChecks).toBeLessThan((n * budget) / 4);
    }
  });
});

describe('herding (B6)', () => {
  it('the subset mean tracks the pool mean better than the median random subset; first pick is closest to the mean', async () => {
    const x = unit(800, 12, 8, 4, 0.8);
    const meanGap = (ids: ArrayLike<number>) => {
      const gap = new Float64Array(12);
      for (let i = 0; i < 800; i++) for (let k = 0; k < 12; k++) gap[k]! += x.data[i * 12 + k]! / 800;
      for (let t = 0; t < ids.length; t++)
        for (let k = 0; k < 12; k++) gap[k]! -= x.data[ids[t]! * 12 + k]! / ids.length;
      return Math.hypot(...gap);
    };
    const h = await runSelector(getSelector('herding'), input(x), { count: 20 }, {}, { seed: 0 });
    const randomGaps: number[] = [];
    for (let seed = 0; seed < 21; seed++)
      randomGaps.push(
        meanGap((await runSelector(getSelector('random'), input(x), { count: 20 }, {}, { seed })).indices),
      );
    randomGaps.sort((a, b) => a - b);
    expect(meanGap(h.indices)).toBeLessThan(randomGaps[10]!);
    const mean = new Float64Array(12);
    for (let i = 0; i < 800; i++) for (let k = 0; k < 12; k++) mean[k]! += x.data[i * 12 + k]!;
    const closest = Array.from({ length: 800 }, (_, i) => i).sort(
      (a, b) =>
        x.data.subarray(b * 12, b * 12 + 12).reduce((s, v, k) => s + v * mean[k]!, 0) -
        x.data.subarray(a * 12, a * 12 + 12).reduce((s, v, k) => s + v * mean[k]!, 0),
    )[0];
    expect(h.indices[0]).toBe(closest);
  });
});

describe('SemDeDup (B4)', () => {
  it('removes planted near-duplicates, keeping exactly one of each group; ε = 0 removes nothing', async () => {
    const base = unit(200, 32, 9);
    const normal = gaussian(seededRandom(10));
    const rows: Float32Array[] = [];
    const group: number[] = [];
    for (let g = 0; g < 200; g++) {
      const copies = g < 40 ? 3 : 1; // 40 groups of 3 near-identical items
      for (let c = 0; c < copies; c++) {
        const v = Float32Array.from(
          base.data.subarray(g * 32, g * 32 + 32),
          (x) => x + (c ? 1e-3 * normal() : 0),
        );
        const s = Math.hypot(...v);
        rows.push(v.map((x) => x / s));
        group.push(g);
      }
    }
    const data = new Float32Array(rows.length * 32);
    rows.forEach((r, i) => data.set(r, i * 32));
    const x = { rows: rows.length, cols: 32, data };
    const s = await runSelector(
      getSelector('semdedup'),
      input(x),
      { count: rows.length },
      { epsilon: 0.01, clusters: 4 },
      { seed: 0 },
    );
    expect(s.indices.length).toBe(200);
    expect(new Set(Array.from(s.indices, (i) => group[i]))).toEqual(
      new Set(Array.from({ length: 200 }, (_, g) => g)),
    );
    const none = await runSelector(
      getSelector('semdedup'),
      input(x),
      { count: rows.length },
      { epsilon: 0, clusters: 4 },
      { seed: 0 },
    );
    expect(none.indices.length).toBe(rows.length);
    // With a budget and no ε, ε is calibrated to it: the 200 kept are again one per group.
    const calibrated = await runSelector(
      getSelector('semdedup'),
      input(x),
      { count: 200 },
      { clusters: 4 },
      { seed: 0 },
    );
    expect(new Set(Array.from(calibrated.indices, (i) => group[i])).size).toBe(200);
  });
});

describe('PCA projection for the sequential methods', () => {
  it('keeps pairwise distances of data that lies in a low-dimensional subspace', async () => {
    const { pcaProject } = await import('../../src/select/kernels/pca.js');
    const normal = gaussian(seededRandom(12));
    const basis = Array.from({ length: 6 }, () => Float32Array.from({ length: 128 }, normal));
    const n = 500;
    const data = new Float32Array(n * 128);
    for (let i = 0; i < n; i++) {
      const coef = Array.from({ length: 6 }, normal);
      for (let k = 0; k < 128; k++)
        data[i * 128 + k] = 0.5 + coef.reduce((s, c, b) => s + c * basis[b]![k]!, 0);
    }
    const { projected, explained } = await pcaProject({ rows: n, cols: 128, data }, 10);
    expect(explained).toBeGreaterThan(0.999);
    const dist = (m: Float32Array, d: number, a: number, b: number) =>
      Math.sqrt(m.subarray(a * d, a * d + d).reduce((s, v, k) => s + (v - m[b * d + k]!) ** 2, 0));
    for (const [a, b] of [
      [0, 1],
      [17, 333],
      [250, 499],
    ] as const) {
      expect(dist(projected.data, 10, a, b)).toBeCloseTo(dist(data, 128, a, b), 2);
    }
  });
});
