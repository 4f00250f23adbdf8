/**
 * CRAIG in gradient mode (craig.md §7), AdaCore (adacore.md §7), augmentation coresets (augcoreset.md
 * §7) and the Data-Diet scores, on real onnxruntime kernels and the real softmax proxy.
 */
import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { runSelector, type SelectInput } from '../../src/select/contract.js';
import {
  classBudgets,
  facilityCoreset,
  gradientGram,
  gramToDistances,
  perClassCoreset,
  type GradientSpace,
} from '../../src/select/gradient/coreset.js';
import {
  CurvatureAverage,
  logitHessianDiagonal,
  meanDiagonal,
  precondition,
} from '../../src/select/gradient/precondition.js';
import type { Matrix } from '../../src/select/kernels/similarity.js';
import { proxySignals, warmProxy } from '../../src/select/proxy/problem.js';
import { getSelector } from '../../src/select/registry.js';
import { assembleEpoch, gradientError } from '../../src/select/selectors/augcoreset.js';
import { groupByLabel } from '../../src/select/stratify.js';
import { gaussianClasses } from '../support/gaussianClasses.js';

const coresetOptions = { similarity: 'maxMinusDist', optimizer: 'naive', epsilon: 0.1, seed: 0 } as const;
const SGD = { lr: 2, momentum: 0.9, weightDecay: 1e-4, batchSize: 512 };

function randomMatrix(rows: number, cols: number, seed: number, scale = 1): Matrix {
  const normal = gaussian(seededRandom(seed));
  return { rows, cols, data: Float32Array.from({ length: rows * cols }, () => scale * normal()) };
}

/** Σ_i v_i − Σ_S γ_j v_j, as a norm. */
function matchingError(v: Matrix, ids: ArrayLike<number>, weights: ArrayLike<number>): number {
  const diff = new Float64Array(v.cols);
  for (let i = 0; i < v.rows; i++) for (let c = 0; c < v.cols; c++) diff[c]! += v.data[i * v.cols + c]!;
  for (let t = 0; t < ids.length; t++)
    for (let c = 0; c < v.cols; c++) diff[c]! -= weights[t]! * v.data[ids[t]! * v.cols + c]!;
  return Math.hypot(...diff);
}

/** F(S) = Σ_i max_{j∈S} (max D − D_ij) in float64, written out from (C3)/(C5). */
function facilityValue(v: Matrix, set: ArrayLike<number>): number {
  const dist = (a: number, b: number) => {
    let s = 0;
    for (let c = 0; c < v.cols; c++) s += (v.data[a * v.cols + c]! - v.data[b * v.cols + c]!) ** 2;
    return Math.sqrt(s);
  };
  let dmax = 0;
  for (let a = 0; a < v.rows; a++) for (let b = 0; b < v.rows; b++) dmax = Math.max(dmax, dist(a, b));
  let f = 0;
  for (let i = 0; i < v.rows; i++) {
    let best = 0;
    for (let t = 0; t < set.length; t++) best = Math.max(best, dmax - dist(i, set[t]!));
    f += best;
  }
  return f;
}

const everyone = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('CRAIG on gradient vectors (craig.md §7)', () => {
  it('duplicate groups: one pick per group, γ = group size, weighted gradient = full gradient', async () => {
    const distinct = randomMatrix(5, 10, 1, 0.3);
    const sizes = [7, 2, 11, 4, 6];
    const group = sizes.flatMap((s, g) => Array.from({ length: s }, () => g));
    const g: Matrix = { rows: group.length, cols: 10, data: new Float32Array(group.length * 10) };
    group.forEach((k, i) => g.data.set(distinct.data.subarray(k * 10, k * 10 + 10), i * 10));
    const c = await facilityCoreset({ g }, everyone(group.length), 5, coresetOptions);
    expect(new Set(Array.from(c.picks, (i) => group[i]))).toEqual(new Set([0, 1, 2, 3, 4]));
    c.picks.forEach((i, t) => expect(c.weights[t]).toBe(sizes[group[i]!]));
    expect(matchingError(g, c.picks, c.weights)).toBeLessThan(1e-4);
  });

  it('the bound (C2) holds: ‖Σ g_i − Σ γ_j g_j‖ ≤ Σ_i min_S D_ij; weights sum to N', async () => {
    for (let seed = 0; seed < 5; seed++) {
      const g = randomMatrix(300, 10, 10 + seed, 0.2);
      const c = await facilityCoreset({ g }, everyone(300), 12, { ...coresetOptions, optimizer: 'lazy' });
      const d = gramToDistances(await gradientGram({ g }, everyone(300)), 300);
      let bound = 0;
      for (let i = 0; i < 300; i++) bound += Math.min(...Array.from(c.picks, (j) => d[i * 300 + j]!));
      expect(matchingError(g, c.picks, c.weights)).toBeLessThanOrEqual(bound * (1 + 1e-5));
      expect(c.weights.reduce((a, b) => a + b, 0)).toBe(300);
    }
  });

  it('brute force, N = 12, b = 3: greedy ≥ (1 − 1/e)·OPT; lazy and stochastic (full sample) equal naive', async () => {
    for (let seed = 0; seed < 4; seed++) {
      const g = randomMatrix(12, 4, 40 + seed);
      const naive = await facilityCoreset({ g }, everyone(12), 3, coresetOptions);
      const lazy = await facilityCoreset({ g }, everyone(12), 3, { ...coresetOptions, optimizer: 'lazy' });
      const stochastic = await facilityCoreset({ g }, everyone(12), 3, {
        ...coresetOptions,
        optimizer: 'stochastic',
        epsilon: 1e-9, // sample ⌈(n/b)·ln(1/ε)⌉ ≥ n: every candidate
      });
      expect(Array.from(lazy.picks)).toEqual(Array.from(naive.picks));
      expect(Array.from(stochastic.picks)).toEqual(Array.from(naive.picks));
      let best = 0;
      for (let a = 0; a < 12; a++)
        for (let b = a + 1; b < 12; b++)
          for (let c = b + 1; c < 12; c++) best = Math.max(best, facilityValue(g, [a, b, c]));
      expect(facilityValue(g, naive.picks)).toBeGreaterThanOrEqual((1 - 1 / Math.E) * best);
    }
  });

  it('the objective beats 100 random subsets of equal size', async () => {
    const g = randomMatrix(200, 6, 77, 0.3);
    const c = await facilityCoreset({ g }, everyone(200), 10, { ...coresetOptions, optimizer: 'lazy' });
    const ours = facilityValue(g, c.picks);
    const random = seededRandom(3);
    for (let t = 0; t < 100; t++) {
      const set = new Set<number>();
      while (set.size < 10) set.add(Math.floor(random() * 200));
      expect(ours).toBeGreaterThan(facilityValue(g, [...set]));
    }
  });

  it('the Gram trick: distances of ĝ = [g; g ⊗ h] from ⟨g_i,g_j⟩(1 + ⟨h_i,h_j⟩) equal explicit ones', async () => {
    const g = randomMatrix(40, 5, 5, 0.3);
    const h = randomMatrix(40, 7, 6);
    const d = gramToDistances(await gradientGram({ g, h }, everyone(40)), 40);
    const explicit = (i: number) => {
      const v: number[] = [...g.data.subarray(i * 5, i * 5 + 5)];
      for (let c = 0; c < 5; c++) for (let k = 0; k < 7; k++) v.push(g.data[i * 5 + c]! * h.data[i * 7 + k]!);
      return v;
    };
    for (let i = 0; i < 40; i += 3)
      for (let j = 0; j < 40; j += 7) {
        const a = explicit(i);
        const b = explicit(j);
        const exact = Math.sqrt(a.reduce((s, v, t) => s + (v - b[t]!) ** 2, 0));
        expect(Math.abs(d[i * 40 + j]! - exact)).toBeLessThan(1e-3 * (1 + exact));
      }
  });

  it('equal class budgets hand a tiny class’s shortfall to the others (step 1)', () => {
    expect(Array.from(classBudgets([2, 50, 50], 30, 'equal'))).toEqual([2, 14, 14]);
    expect(Array.from(classBudgets([300, 200, 100], 60, 'proportional'))).toEqual([30, 20, 10]);
  });

  it('through the selector: the weighted subset matches the proxy’s full gradient better than random, Σγ = N_c', async () => {
    const { x, labels } = gaussianClasses(3000, 16, 5, 11, 1.5);
    const input: SelectInput = { n: 3000, dim: 16, image: x.data, labels };
    const budget = 50;
    const s = await runSelector(
      getSelector('craig'),
      input,
      { count: budget },
      { mode: 'gradients' },
      { seed: 4 },
    );
    expect(s.indices.length).toBe(budget);
    // The checkpoint the selector used, rebuilt independently (same seed, same defaults: 2 warm epochs).
    const proxy = await warmProxy(x, labels, 5, 2, SGD, 4);
    const { residuals } = await proxySignals(proxy.head, x, labels);
    const g: Matrix = { rows: 3000, cols: 5, data: residuals };
    const classes = groupByLabel(labels);
    const perClass = new Float64Array(5);
    Array.from(s.indices).forEach((i, t) => (perClass[labels[i]!]! += s.weights![t]!));
    classes.forEach((m, c) => expect(perClass[c]).toBe(m.length));
    const ours = matchingError(g, s.indices, s.weights!);
    const oursLastLayer = await gradientError(proxy.head, x, labels, s.indices, s.weights!);
    const random = seededRandom(9);
    let beaten = 0;
    let beatenLastLayer = 0;
    for (let t = 0; t < 20; t++) {
      const set = new Set<number>();
      while (set.size < budget) set.add(Math.floor(random() * 3000));
      const w = new Float32Array(budget).fill(3000 / budget);
      if (ours < matchingError(g, [...set], w)) beaten++;
      if (oursLastLayer < (await gradientError(proxy.head, x, labels, Int32Array.from(set), w)))
        beatenLastLayer++;
    }
    expect(beaten).toBe(20);
    expect(beatenLastLayer).toBeGreaterThanOrEqual(18);
  });

  it('the schedule: one round per lag epochs over the run, each a full weighted coreset; deterministic', async () => {
    const { x, labels } = gaussianClasses(1500, 8, 3, 12, 1.5);
    const input: SelectInput = { n: 1500, dim: 8, image: x.data, labels };
    const params = { mode: 'gradients', epochs: 4, lag: 2 };
    const s = await runSelector(getSelector('craig'), input, { count: 30 }, params, { seed: 1 });
    const again = await runSelector(getSelector('craig'), input, { count: 30 }, params, { seed: 1 });
    const rounds = s.schedule!.rounds;
    expect(rounds.map((r) => [r.start, r.end])).toEqual([
      [0, 0.5],
      [0.5, 1],
    ]);
    expect(Array.from(rounds[0]!.indices)).toEqual(Array.from(s.indices));
    for (const r of rounds) expect(r.weights!.reduce((a, b) => a + b, 0)).toBe(1500);
    expect(Array.from(rounds[1]!.indices)).not.toEqual(Array.from(rounds[0]!.indices));
    expect(Array.from(again.schedule!.rounds[1]!.indices)).toEqual(Array.from(rounds[1]!.indices));
  });
});

describe('AdaCore (adacore.md §7)', () => {
  it('a constant curvature reduces to CRAIG: same order, same weights', async () => {
    const g = randomMatrix(400, 6, 21, 0.2);
    const craig = await facilityCoreset({ g }, everyone(400), 15, { ...coresetOptions, optimizer: 'lazy' });
    const u = precondition(g.data, new Float64Array(400 * 6).fill(0.37), 6, 1e-4);
    const ada = await facilityCoreset({ g: { ...g, data: u } }, everyone(400), 15, {
      ...coresetOptions,
      optimizer: 'lazy',
    });
    expect(Array.from(ada.picks)).toEqual(Array.from(craig.picks));
    expect(Array.from(ada.weights)).toEqual(Array.from(craig.weights));
  });

  it('(A4) with a constant diagonal the bias-corrected average is D^k at every round', () => {
    for (const power of [1, 0.5]) {
      const avg = new CurvatureAverage({ beta: 0.999, power, damping: 1e-4 });
      for (let t = 0; t < 5; t++) {
        avg.update([0.2, 0.05]);
        const v = avg.value();
        expect(v[0]).toBeCloseTo(0.2 ** power, 10);
        expect(v[1]).toBeCloseTo(0.05 ** power, 10);
      }
    }
  });

  it('(A1) the logit Hessian diagonal is p ⊙ (1 − p)', () => {
    const residuals = Float32Array.from([0.2, -0.3, 0.1]); // p = (0.2, 0.7, 0.1), y = 1
    const d = logitHessianDiagonal(residuals, [1], 3);
    [0.16, 0.21, 0.09].forEach((v, c) => expect(d[c]).toBeCloseTo(v, 6));
  });

  it('preconditioning matters: clusters equal in g but 100× apart in curvature get their own representatives', async () => {
    const n = 100;
    const g: Matrix = { rows: n, cols: 2, data: new Float32Array(n * 2) };
    const curvature = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) {
      g.data.set([0.1, -0.1], i * 2);
      curvature.fill(i < 50 ? 1 : 0.01, i * 2, i * 2 + 2);
    }
    const craig = await facilityCoreset({ g }, everyone(n), 2, coresetOptions);
    expect(craig.weights[0]).toBe(100); // one shared representative
    const u = precondition(g.data, curvature, 2, 1e-4);
    const ada = await facilityCoreset({ g: { ...g, data: u } }, everyone(n), 2, coresetOptions);
    expect(new Set(Array.from(ada.picks, (i) => i < 50))).toEqual(new Set([true, false]));
    expect(Array.from(ada.weights)).toEqual([50, 50]);
  });

  it('through the selector: the shared variant equals CRAIG on g ⊘ (D̄^k + λ) at the same checkpoint', async () => {
    const { x, labels } = gaussianClasses(1200, 8, 4, 13, 1.5);
    const input: SelectInput = { n: 1200, dim: 8, image: x.data, labels };
    const s = await runSelector(
      getSelector('adacore'),
      input,
      { count: 40 },
      { preconditioner: 'shared', hessianPower: 0.5 },
      { seed: 2 },
    );
    const proxy = await warmProxy(x, labels, 4, 2, SGD, 2);
    const { residuals } = await proxySignals(proxy.head, x, labels);
    const dbar = meanDiagonal(logitHessianDiagonal(residuals, labels, 4), 4).map((v) => v ** 0.5);
    const space: GradientSpace = { g: { rows: 1200, cols: 4, data: precondition(residuals, dbar, 4, 1e-4) } };
    const expected = await perClassCoreset(space, groupByLabel(labels), 40, 'equal', {
      ...coresetOptions,
      optimizer: 'lazy',
      seed: 2,
    });
    expect(Array.from(s.indices)).toEqual(Array.from(expected.indices));
    expect(Array.from(s.weights!)).toEqual(Array.from(expected.weights));
    // Bound in u-space per class and Σγ = N_c (A5, A6).
    const perClass = new Float64Array(4);
    Array.from(s.indices).forEach((i, t) => (perClass[labels[i]!]! += s.weights![t]!));
    groupByLabel(labels).forEach((m, c) => expect(perClass[c]).toBe(m.length));
  });
});

describe('augmentation coresets (augcoreset.md §7)', () => {
  it('(U1): the coreset’s gradient error stays below random subsets’ median as inputs are perturbed, growing about linearly', async () => {
    const { x, labels } = gaussianClasses(2000, 12, 4, 14, 1.2);
    const input: SelectInput = { n: 2000, dim: 12, image: x.data, labels };
    const s = await runSelector(getSelector('augcoreset'), input, { count: 80 }, {}, { seed: 3 });
    const { head } = await warmProxy(x, labels, 4, 2, SGD, 3);
    const noise = randomMatrix(2000, 12, 15);
    const normalise = (m: Matrix) => {
      const len = new Float64Array(m.rows);
      for (let i = 0; i < m.rows * m.cols; i++) len[Math.floor(i / m.cols)]! += m.data[i]! ** 2;
      return Float32Array.from(m.data, (v, i) => v / Math.sqrt(len[Math.floor(i / m.cols)]! / 1));
    };
    const direction = { ...noise, data: normalise(noise) };
    const random = seededRandom(16);
    const randomSets = Array.from({ length: 25 }, () => {
      const set = new Set<number>();
      while (set.size < 80) set.add(Math.floor(random() * 2000));
      return Int32Array.from(set);
    });
    const uniform = new Float32Array(80).fill(2000 / 80);
    const errors: number[] = [];
    for (const eps of [0, 0.01, 0.02, 0.05]) {
      const xt = { ...x, data: Float32Array.from(x.data, (v, i) => v + eps * direction.data[i]!) };
      const ours = await gradientError(head, xt, labels, s.indices, s.weights!);
      const others: number[] = [];
      for (const set of randomSets) others.push(await gradientError(head, xt, labels, set, uniform));
      others.sort((a, b) => a - b);
      expect(ours).toBeLessThan(others[others.length >> 1]!);
      errors.push(ours);
    }
    const slopes = [0.01, 0.02, 0.05].map((eps, t) => Math.abs(errors[t + 1]! - errors[0]!) / eps);
    expect(Math.max(...slopes)).toBeLessThan(3 * Math.min(...slopes) + 1e-3 * errors[0]!);
  });

  it('empty clusters weigh 1 and equal budgets per class; reselection rounds start at 0, R, 2R', async () => {
    const { x, labels } = gaussianClasses(1200, 8, 3, 17, 1.5);
    const input: SelectInput = { n: 1200, dim: 8, image: x.data, labels };
    const s = await runSelector(
      getSelector('augcoreset'),
      input,
      { count: 30 },
      { epochs: 6, lag: 2 },
      { seed: 5 },
    );
    expect(s.schedule!.rounds.map((r) => r.start)).toEqual([0, 2 / 6, 4 / 6]);
    const perClass = [0, 0, 0];
    for (const i of s.indices) perClass[labels[i]!]! += 1;
    expect(perClass).toEqual([10, 10, 10]);
    // Duplicates: more picks than distinct vectors, the surplus represents nobody → weight 1, not 0.
    const g: Matrix = { rows: 6, cols: 2, data: Float32Array.from([1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1]) };
    const c = await facilityCoreset({ g }, everyone(6), 3, {
      ...coresetOptions,
      emptyClustersWeighOne: true,
    });
    expect(Array.from(c.weights).sort()).toEqual([1, 3, 3]);
  });

  it('epoch assembly (U4): M1 N + B, M2 and M3 2B, copies keep ids, M2 weak weights have mean 1', () => {
    const coreset = { indices: [4, 9, 2], weights: [5, 1, 2] };
    const m1 = assembleEpoch('augment-only', 10, coreset);
    expect(m1.length).toBe(13);
    expect(m1.filter((e) => e.augmented).map((e) => e.index)).toEqual([4, 9, 2]);
    const m2 = assembleEpoch('train-and-augment', 10, coreset);
    expect(m2.length).toBe(6);
    const weak = m2.filter((e) => !e.augmented);
    expect(weak.reduce((a, e) => a + e.weight, 0) / weak.length).toBeCloseTo(1, 10);
    expect(weak[0]!.weight).toBeCloseTo(5 / (8 / 3), 10);
    const m3 = assembleEpoch('random-main', 10, coreset, seededRandom(1));
    expect(m3.length).toBe(6);
    expect(new Set(m3.filter((e) => !e.augmented).map((e) => e.index)).size).toBe(3);
  });
});

describe('EL2N and GraNd (Data Diet) on the proxy', () => {
  it('mislabelled examples score highest; skipHardest leaves them out; GraNd = √2·EL2N for unit rows', async () => {
    const { x, labels: clean } = gaussianClasses(2000, 16, 5, 18, 1);
    const labels = Int32Array.from(clean);
    const flipped = new Set<number>();
    const random = seededRandom(19);
    while (flipped.size < 100) flipped.add(Math.floor(random() * 2000));
    for (const i of flipped) labels[i] = (labels[i]! + 1) % 5;
    const input: SelectInput = { n: 2000, dim: 16, image: x.data, labels };
    const hard = await runSelector(getSelector('el2n'), input, { count: 100 }, {}, { seed: 0 });
    const caught = Array.from(hard.indices).filter((i) => flipped.has(i)).length;
    expect(caught).toBeGreaterThan(80);
    const order = Array.from(hard.scores!.keys()).sort(
      (a, b) => hard.scores![b]! - hard.scores![a]! || a - b,
    );
    expect(Array.from(hard.indices)).toEqual(order.slice(0, 100));
    const skipped = await runSelector(
      getSelector('el2n'),
      input,
      { count: 100 },
      { skipHardest: 0.05 },
      { seed: 0 },
    );
    expect(Array.from(skipped.indices).filter((i) => flipped.has(i)).length).toBeLessThan(10);
    const grand = await runSelector(getSelector('grand'), input, { count: 100 }, { epochs: 2 }, { seed: 0 });
    hard.scores!.forEach((v, i) => expect(grand.scores![i]).toBeCloseTo(Math.SQRT2 * v, 4));
    const again = await runSelector(getSelector('el2n'), input, { count: 100 }, {}, { seed: 0 });
    expect(Array.from(again.indices)).toEqual(Array.from(hard.indices));
  });
});
