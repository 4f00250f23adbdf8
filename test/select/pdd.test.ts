import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/compute/random.js';
import { runSelector } from '../../src/select/contract.js';
import { gather, type Matrix } from '../../src/select/kernels/similarity.js';
import { greedyGradientMatch, matchingError } from '../../src/select/pdd/gradientMatching.js';
import {
  accuracyFromResiduals,
  freshSgdState,
  headPass,
  initHead,
  trainHead,
  type SoftmaxHead,
} from '../../src/select/proxy/softmaxHead.js';
import { getSelector } from '../../src/select/registry.js';
import { pddParams, pddSelect } from '../../src/select/selectors/pdd.js';
import { gaussianClasses } from '../support/gaussianClasses.js';

// pdd.md §5's toy: 10 Gaussian classes, d = 16, 6,000 examples, 3 stages × 10 per class.
const all = gaussianClasses(9000, 16, 10, 1, 2);
const pool: Matrix = { rows: 6000, cols: 16, data: all.x.data.subarray(0, 6000 * 16) };
const labels = all.labels.subarray(0, 6000);
const heldOut = {
  x: { rows: 3000, cols: 16, data: all.x.data.subarray(6000 * 16) },
  labels: all.labels.subarray(6000),
};
const toyParams = (extra: object = {}) => pddParams.parse({ stages: 3, classBudget: 'balanced', ...extra });
const stageSets = (r: { indices: Int32Array; stages: Int32Array }, stages: number) =>
  Array.from({ length: stages }, (_, s) => Array.from(r.indices).filter((_, t) => r.stages[t] === s));

/** Σ_k ‖mean gradient of class k over the pool − over `subset`‖² at θ (independent of the selector). */
async function gradientMismatch(head: SoftmaxHead, subset: number[]): Promise<number> {
  const K = head.classes;
  const d = head.dim;
  const pass = await headPass(head, pool, labels);
  const mean = (ids: number[]) => {
    const g = new Float64Array(K * (d + 1));
    for (const i of ids) {
      for (let k = 0; k < K; k++) {
        const r = pass.residuals[i * K + k]!;
        for (let j = 0; j < d; j++) g[k * (d + 1) + j]! += (r * pool.data[i * d + j]!) / ids.length;
        g[k * (d + 1) + d]! += r / ids.length;
      }
    }
    return g;
  };
  let total = 0;
  for (let k = 0; k < K; k++) {
    const inClass = (ids: number[]) => ids.filter((i) => labels[i] === k);
    const a = mean(inClass(Array.from(labels.keys())));
    const b = mean(inClass(subset));
    for (let j = 0; j < a.length; j++) total += (a[j]! - b[j]!) ** 2;
  }
  return total;
}

describe('PDD-style progressive selection (pdd.md §3.3)', () => {
  it('returns disjoint, exactly sized, nested stages through the Selector contract, deterministically', async () => {
    const input = { n: pool.rows, dim: 16, image: pool.data, labels };
    const params = { stages: 3, classBudget: 'balanced' };
    const a = await runSelector(getSelector('pdd'), input, { count: 300 }, params, { seed: 4 });
    const b = await runSelector(getSelector('pdd'), input, { count: 300 }, params, { seed: 4 });
    expect(Array.from(a.indices)).toEqual(Array.from(b.indices));
    expect(new Set(a.indices).size).toBe(300);
    const stages = a.stages!;
    // Stage order: U_1 ⊂ U_2 ⊂ U_3 are prefixes of the output.
    expect(Array.from(stages)).toEqual([...stages].sort((x, y) => x - y));
    for (let s = 0; s < 3; s++) {
      const picks = Array.from(a.indices).filter((_, t) => stages[t] === s);
      expect(picks).toHaveLength(100);
      for (let k = 0; k < 10; k++) expect(picks.filter((i) => labels[i] === k)).toHaveLength(10);
    }
    expect(a.trace.map((e) => e.stage)).toContain('stage 3');
  });

  it('conditioning on earlier stages matches the full-data gradient better than ignoring them', async () => {
    const conditioned = await pddSelect(pool, labels, 10, 300, toyParams(), { seed: 0 });
    const ignoring = await pddSelect(pool, labels, 10, 300, toyParams({ conditioning: 'none' }), { seed: 0 });
    const [u1, s2] = stageSets(conditioned, 3);
    const [u1b, s2b] = stageSets(ignoring, 3);
    expect(u1b).toEqual(u1); // stage 1 has nothing to condition on
    const theta1 = conditioned.reports[1]!.head;
    const withConditioning = await gradientMismatch(theta1, [...u1!, ...s2!]);
    const without = await gradientMismatch(theta1, [...u1!, ...s2b!]);
    expect(withConditioning).toBeLessThan(0.7 * without);
  });

  it('new stages are harder for the proxy than what it has already learned', async () => {
    const r = await pddSelect(pool, labels, 10, 300, toyParams(), { seed: 1 });
    const sets = stageSets(r, 3);
    for (let s = 1; s < 3; s++) {
      const head = r.reports[s]!.head;
      const meanLoss = async (ids: number[]) => {
        const pass = await headPass(
          head,
          gather(pool, ids),
          Int32Array.from(ids, (i) => labels[i]!),
        );
        return pass.losses.reduce((a, b) => a + b, 0) / ids.length;
      };
      const earlier = await meanLoss(sets.slice(0, s).flat());
      const next = await meanLoss(sets[s]!);
      expect(next).toBeGreaterThan(1.3 * earlier);
      expect(r.reports[s]!.meanLossNew).toBeCloseTo(next, 4);
    }
    // The proxy is still learning at stage P−1 (pitfall 7).
    expect(r.reports[2]!.accuracy).toBeGreaterThan(r.reports[1]!.accuracy);
  });

  it('easy-example pruning (paper Table 6) keeps confidently learned examples out of later stages', async () => {
    const confident = async (r: Awaited<ReturnType<typeof pddSelect>>) => {
      let count = 0;
      for (const [s, ids] of stageSets(r, 3).entries()) {
        if (s === 0) continue;
        const pass = await headPass(
          r.reports[s]!.head,
          gather(pool, ids),
          Int32Array.from(ids, (i) => labels[i]!),
        );
        ids.forEach((i, t) => (count += pass.residuals[t * 10 + labels[i]!]! + 1 >= 0.6 ? 1 : 0));
      }
      return count;
    };
    const plain = await pddSelect(pool, labels, 10, 300, toyParams(), { seed: 0 });
    const pruning = await pddSelect(
      pool,
      labels,
      10,
      300,
      toyParams({ pruneEasy: true, easyThreshold: 0.6 }),
      {
        seed: 0,
      },
    );
    expect(pruning.reports[1]!.pruned).toBeGreaterThan(0);
    expect(await confident(pruning)).toBe(0);
    expect(await confident(plain)).toBeGreaterThan(0);
  });

  it('a staged probe on U_1..U_P beats the same schedule on class-balanced random stages (5 seeds)', async () => {
    async function stagedAccuracy(stages: number[][]): Promise<number> {
      const head = initHead(10, 16, 0);
      const state = freshSgdState(head);
      const union: number[] = [];
      for (const s of stages) {
        union.push(...s);
        const data = { x: gather(pool, union), labels: Int32Array.from(union, (i) => labels[i]!) };
        const o = { lr: 2, momentum: 0.9, weightDecay: 5e-4, batchSize: 512, epochs: 50, seed: 0 };
        await trainHead(head, data, o, state);
      }
      const pass = await headPass(head, heldOut.x, heldOut.labels);
      return accuracyFromResiduals(pass.residuals, heldOut.labels, 10);
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const pddAcc: number[] = [];
    const randomAcc: number[] = [];
    for (let seed = 0; seed < 5; seed++) {
      const r = await pddSelect(pool, labels, 10, 300, toyParams(), { seed });
      pddAcc.push(await stagedAccuracy(stageSets(r, 3)));
      const rng = seededRandom(100 + seed);
      const shuffled = Array.from({ length: 10 }, (_, k) =>
        Array.from(labels.keys())
          .filter((i) => labels[i] === k)
          .map((i) => [rng(), i] as const)
          .sort((a, b) => a[0] - b[0])
          .map(([, i]) => i),
      );
      randomAcc.push(
        await stagedAccuracy([0, 1, 2].map((s) => shuffled.flatMap((m) => m.slice(10 * s, 10 * s + 10)))),
      );
    }
    expect(mean(pddAcc)).toBeGreaterThan(mean(randomAcc) + 0.02);
  });
});

describe('stochastic greedy gradient matching (pdd.md §3.3 step 5)', () => {
  // A small problem with explicit per-example gradients: n = 40, d = 5, K = 3, T = 2 checkpoints.
  const n = 40;
  const d = 5;
  const K = 3;
  const random = seededRandom(3);
  const x: Matrix = { rows: n, cols: d, data: Float32Array.from({ length: n * d }, () => random() - 0.5) };
  const residuals = [0, 1].map(() => Float32Array.from({ length: n * K }, () => random() - 0.5));
  const gradient = (e: number, tau: number) => {
    const g = new Float64Array(K * (d + 1));
    for (let k = 0; k < K; k++) {
      const r = residuals[tau]![e * K + k]!;
      for (let j = 0; j < d; j++) g[k * (d + 1) + j] = r * x.data[e * d + j]!;
      g[k * (d + 1) + d] = r;
    }
    return g;
  };
  const targets = [0, 1].map((tau) => {
    const g = new Float64Array(K * (d + 1));
    for (let e = 0; e < n; e++) gradient(e, tau).forEach((v, j) => (g[j]! += v / n));
    return g;
  });
  const frozen = [0, 1, 2, 3];
  const candidates = Array.from({ length: n - 4 }, (_, i) => i + 4);
  const errorOf = (set: number[]) =>
    matchingError(
      targets,
      [0, 1].map((tau) => {
        const a = new Float64Array(K * (d + 1));
        for (const e of set) gradient(e, tau).forEach((v, j) => (a[j]! += v));
        return a;
      }),
      set.length,
    );

  it('with every candidate scored, picks what exhaustive greedy on the explicit objective picks', async () => {
    const got = await greedyGradientMatch(
      { x, classes: K, residuals, targets, frozen, candidates },
      8,
      1e-12, // s = all remaining candidates
      seededRandom(0),
    );
    const chosen = [...frozen];
    const want: number[] = [];
    for (let t = 0; t < 8; t++) {
      let best = -1;
      let bestError = Infinity;
      for (const e of candidates) {
        if (chosen.includes(e)) continue;
        const err = errorOf([...chosen, e]);
        if (err < bestError) [best, bestError] = [e, err];
      }
      chosen.push(best);
      want.push(best);
    }
    expect(got.picked).toEqual(want);
    expect(got.objective.at(-1)).toBeCloseTo(errorOf(chosen), 8);
    for (let t = 1; t < got.objective.length; t++)
      expect(got.objective[t]!).toBeLessThan(got.objective[t - 1]!);
  });

  it('the stochastic version still beats 20 random subsets of the same size', async () => {
    const got = await greedyGradientMatch(
      { x, classes: K, residuals, targets, frozen, candidates },
      8,
      0.01,
      seededRandom(5),
    );
    const rng = seededRandom(9);
    for (let trial = 0; trial < 20; trial++) {
      const subset = [...candidates].sort(() => rng() - 0.5).slice(0, 8);
      expect(got.objective.at(-1)!).toBeLessThan(errorOf([...frozen, ...subset]));
    }
  });
});
