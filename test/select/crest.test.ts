import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/compute/random.js';
import { runSelector } from '../../src/select/contract.js';
import {
  crestLoop,
  dropLearnedPool,
  lossRing,
  minibatchCoresets,
  recordLosses,
  stepsPerEpoch,
  stratifiedSubset,
  type CrestOptions,
} from '../../src/select/crest/loop.js';
import {
  adaptiveSchedule,
  checkFires,
  displace,
  modelLoss,
  quadraticModel,
  zeroHeadVector,
  type QuadraticModel,
} from '../../src/select/crest/quadratic.js';
import { gather, type Matrix } from '../../src/select/kernels/similarity.js';
import { headPass, initHead, trainHead, type SoftmaxHead } from '../../src/select/proxy/softmaxHead.js';
import { crest } from '../../src/select/selectors/crest.js';
import { gaussianClasses } from '../support/gaussianClasses.js';

const labelsOf = (labels: Int32Array, ids: ArrayLike<number>) => Int32Array.from(ids, (i) => labels[i]!);

/** Σ_i s_i ∇ℓ_i (weight and bias parts concatenated) on the kernel. */
async function weightedGradient(
  head: SoftmaxHead,
  x: Matrix,
  labels: Int32Array,
  ids: ArrayLike<number>,
  s: ArrayLike<number>,
): Promise<Float64Array> {
  const pass = await headPass(head, gather(x, ids), labelsOf(labels, ids), s);
  return Float64Array.from([...pass.gradWeight, ...pass.gradBias]);
}

const distance = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let t = 0;
  for (let i = 0; i < a.length; i++) t += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(t);
};

/** The first `perClass` items of every class, in pool order. */
function balanced(
  data: { x: Matrix; labels: Int32Array },
  classes: number,
  perClass: number,
): { x: Matrix; labels: Int32Array } {
  const taken = new Int32Array(classes);
  const ids: number[] = [];
  data.labels.forEach((c, i) => {
    if (taken[c]! < perClass) {
      taken[c]!++;
      ids.push(i);
    }
  });
  expect(ids.length).toBe(classes * perClass);
  return { x: gather(data.x, ids), labels: labelsOf(data.labels, ids) };
}

const toyOptions = (extra: Partial<CrestOptions> = {}): CrestOptions => ({
  batchSize: 32,
  trainFraction: 0.1,
  epochs: 6,
  randomSubsetSize: 0.01,
  minSubsetBatches: 4,
  coresets: 5,
  checkInterval: 1,
  batchNumMul: 5,
  intervalMul: 1,
  checkThresh: 0.1,
  dropLearned: false,
  watchInterval: 5,
  dropInterval: 20,
  dropThresh: 0.1,
  minTrainSize: 0.8,
  similarity: 'expKernel',
  gradient: 'logits',
  sgd: { lr: 2, momentum: 0.9, weightDecay: 1e-4 },
  seed: 1,
  ...extra,
});

// The loop's toy: 3,000 items, d = 16, 6 overlapping Gaussian classes, m = 32, 10% of the steps.
const toy = gaussianClasses(3000, 16, 6, 1, 2);

describe('CREST mini-batch coresets (R1)–(R3)', () => {
  it('exact matching: one pick per identical-gradient group, γ = group sizes, gradients equal (§7.1)', async () => {
    // 8 distinct (x, y) groups, 2 per class, repeated 3..10 times: identical items have identical gradients.
    const d = 6;
    const K = 4;
    const groups = 8;
    const random = seededRandom(3);
    const centres = Array.from({ length: groups }, () =>
      Float32Array.from({ length: d }, () => random() - 0.5),
    );
    const sizes = Array.from({ length: groups }, (_, g) => 3 + ((g * 5) % 8));
    const rows: number[] = [];
    const labelList: number[] = [];
    const groupOf: number[] = [];
    sizes.forEach((size, g) => {
      for (let t = 0; t < size; t++) {
        rows.push(...centres[g]!);
        labelList.push(g % K);
        groupOf.push(g);
      }
    });
    const x: Matrix = { rows: labelList.length, cols: d, data: Float32Array.from(rows) };
    const labels = Int32Array.from(labelList);
    const head = initHead(K, d, 5, 1);
    const subset = Int32Array.from(labels.keys());
    for (const similarity of ['expKernel', 'maxMinusDist'] as const) {
      for (const gradient of ['logits', 'lastLayer'] as const) {
        const { coresets } = await minibatchCoresets(head, x, labels, [subset], groups, {
          similarity,
          gradient,
          seed: 1,
        });
        const c = coresets[0]!;
        expect(c.indices.length).toBe(groups);
        const picked = Array.from(c.indices, (i) => groupOf[i]!);
        expect(new Set(picked).size).toBe(groups);
        picked.forEach((g, t) => expect(c.weights[t]).toBe(sizes[g]));
        const full = await weightedGradient(head, x, labels, subset, new Float32Array(subset.length).fill(1));
        const approx = await weightedGradient(head, x, labels, c.indices, c.weights);
        expect(distance(full, approx)).toBeLessThan(1e-5 * Math.hypot(...full) + 1e-6);
      }
    }
  });

  it('near-unbiased, with less variance than random mini-batches of size m (§7.2)', async () => {
    // 100 seeded rounds (not 500, for time): V_p stratified, 40 per class of 10 classes; m = 32. The
    // estimated quantity is Σ_V g_i with g_i = p_i − e_{y_i}, the vectors the facility location matches.
    // Exactly 350 per class, so the stratified V_p is itself unbiased and what remains is the coresets'.
    const K = 10;
    const { x, labels } = balanced(gaussianClasses(4500, 16, K, 2, 2), K, 350);
    const m = 32;
    const head = initHead(K, 16, 2);
    await trainHead(
      head,
      { x, labels },
      { lr: 2, momentum: 0.9, weightDecay: 0, batchSize: 256, epochs: 1, seed: 2 },
    );
    const g = (await headPass(head, x, labels)).residuals;
    const sumOf = (ids: ArrayLike<number>, weight: (t: number) => number) => {
      const out = new Float64Array(K);
      for (let t = 0; t < ids.length; t++)
        for (let k = 0; k < K; k++) out[k]! += weight(t) * g[ids[t]! * K + k]!;
      return out;
    };
    const byClass: number[][] = Array.from({ length: K }, () => []);
    labels.forEach((c, i) => byClass[c]!.push(i));
    const all = Int32Array.from(labels.keys());
    const full = sumOf(all, () => 1);
    let mass = 0; // Σ_V ‖g_i‖, the scale of the (C2) bound
    for (let i = 0; i < x.rows; i++) mass += Math.hypot(...g.subarray(i * K, (i + 1) * K));
    const random = seededRandom(7);
    const coresetEstimates: Float64Array[] = [];
    const randomEstimates: Float64Array[] = [];
    for (let r = 0; r < 100; r++) {
      const V = stratifiedSubset(byClass, 40, random);
      const { coresets } = await minibatchCoresets(head, x, labels, [V], m, {
        similarity: 'expKernel',
        gradient: 'logits',
        seed: r,
      });
      const c = coresets[0]!;
      expect(c.weights.reduce((a, b) => a + b, 0)).toBe(V.length);
      // (|V|/|V_p|)·Σ_{j∈S_p} γ_j g_j, and (|V|/m)·Σ_{j∈B} g_j for a uniform batch B.
      coresetEstimates.push(sumOf(c.indices, (t) => (c.weights[t]! * x.rows) / V.length));
      const batch = stratifiedSubset([Array.from(all)], m, random);
      randomEstimates.push(sumOf(batch, () => x.rows / m));
    }
    const stats = (estimates: Float64Array[]) => {
      const mean = new Float64Array(K);
      for (const e of estimates) for (let j = 0; j < K; j++) mean[j]! += e[j]! / estimates.length;
      const variance = estimates.reduce((a, e) => a + distance(e, mean) ** 2, 0) / estimates.length;
      return { bias: distance(mean, full) / mass, variance };
    };
    const core = stats(coresetEstimates);
    const rand = stats(randomEstimates);
    console.log(
      `§7.2: |Σg| ${Math.hypot(...full).toFixed(1)}, Σ|g| ${mass.toFixed(1)}; coreset bias ${core.bias.toFixed(4)} var ${core.variance.toFixed(1)}; random bias ${rand.bias.toFixed(4)} var ${rand.variance.toFixed(1)}`,
    );
    expect(core.bias).toBeLessThan(0.02);
    expect(core.variance).toBeLessThan(rand.variance);
  });
});

/** Float64 reference: Σ_j s_j ℓ_j of a softmax head with parameters (W, b) on rows x. */
function referenceLoss(
  weight: Float64Array,
  bias: Float64Array,
  x: Matrix,
  labels: Int32Array,
  s: Float64Array,
): number {
  const K = bias.length;
  const d = x.cols;
  let total = 0;
  for (let i = 0; i < x.rows; i++) {
    const z = Array.from({ length: K }, (_, k) => {
      let v = bias[k]!;
      for (let j = 0; j < d; j++) v += weight[k * d + j]! * x.data[i * d + j]!;
      return v;
    });
    const max = Math.max(...z);
    const logSum = max + Math.log(z.reduce((a, v) => a + Math.exp(v - max), 0));
    total += s[i]! * (logSum - z[labels[i]!]!);
  }
  return total;
}

describe('CREST quadratic model and check (R4)–(R7)', () => {
  it('L₀, g and diag(H) are the weighted loss, its gradient and its Hessian diagonal (Taylor accuracy)', async () => {
    const { x, labels } = gaussianClasses(300, 5, 3, 4, 1);
    const head = initHead(3, 5, 4, 1);
    const random = seededRandom(9);
    const w = Float32Array.from({ length: x.rows }, () => 0.2 + 2 * random());
    const model = await quadraticModel(head, x, labels, w);
    const total = w.reduce((a, b) => a + b, 0);
    const s = Float64Array.from(w, (v) => v / total);
    const W0 = Float64Array.from(head.weight);
    const b0 = Float64Array.from(head.bias);
    const at = (dw: Float64Array, db: Float64Array) => referenceLoss(dw, db, x, labels, s);
    const L0 = at(W0, b0);
    expect(model.loss).toBeCloseTo(L0, 5);
    // Every coordinate of W and b: central first and second differences of the float64 loss.
    const coords = [
      ...Array.from(W0.keys(), (i) => ['w', i] as const),
      ...Array.from(b0.keys(), (i) => ['b', i] as const),
    ];
    let secondOrderWins = 0;
    for (const [part, i] of coords) {
      const shifted = (e: number) => {
        const dw = W0.slice();
        const db = b0.slice();
        (part === 'w' ? dw : db)[i]! += e;
        return at(dw, db);
      };
      const g = (part === 'w' ? model.gradient.weight : model.gradient.bias)[i]!;
      const h = (part === 'w' ? model.hessianDiagonal.weight : model.hessianDiagonal.bias)[i]!;
      const eps = 1e-3;
      expect(Math.abs((shifted(eps) - shifted(-eps)) / (2 * eps) - g)).toBeLessThan(1e-5);
      expect(Math.abs((shifted(eps) - 2 * L0 + shifted(-eps)) / eps ** 2 - h)).toBeLessThan(
        1e-4 * Math.max(1, h),
      );
      // F̃(δ) along one coordinate is second-order accurate: far closer than the first-order model.
      const step = 0.05;
      const delta = zeroHeadVector(3, 5);
      (part === 'w' ? delta.weight : delta.bias)[i] = step;
      const truth = shifted(step);
      const quadraticError = Math.abs(truth - modelLoss(model, delta));
      const linearError = Math.abs(truth - (model.loss + g * step));
      if (quadraticError < 0.1 * linearError) secondOrderWins++;
    }
    expect(secondOrderWins).toBe(coords.length);
  });

  it('(R6) on an exactly quadratic loss: never fires at τ = 0.1; with τ = 0 and a set offset, at the first check', () => {
    // f(w) = L₀ + gᵀw + ½ Σ h w² is its own quadratic model; plain SGD gives δ = w − w₀ exactly.
    const dim = 40;
    const random = seededRandom(11);
    // min f = L₀ − Σ g²/2h ≥ 2 − 40 · 0.0625/2 > 0, so τ·L_true stays positive.
    const g = Float64Array.from({ length: dim }, () => 0.5 * (random() - 0.5));
    const h = Float64Array.from({ length: dim }, () => 1 + random());
    const model: QuadraticModel = {
      loss: 2,
      gradient: { weight: g, bias: new Float64Array(0) },
      hessianDiagonal: { weight: h, bias: new Float64Array(0) },
      curvature: Math.hypot(...h),
    };
    const f = (w: Float64Array) => model.loss + w.reduce((a, v, i) => a + g[i]! * v + 0.5 * h[i]! * v * v, 0);
    const w = new Float64Array(dim);
    const delta = zeroHeadVector(0, 0);
    delta.weight = new Float64Array(dim);
    const offset = 1e-3; // the check compares a random-set loss with a coreset model (crest.md §8)
    let firstFire = -1;
    for (let step = 1; step <= 50; step++) {
      const gradWeight = Float64Array.from(w, (v, i) => g[i]! + h[i]! * v);
      displace(delta, { gradWeight, gradBias: new Float64Array(0) }, 0.3);
      for (let i = 0; i < dim; i++) w[i]! -= 0.3 * gradWeight[i]!;
      const approx = modelLoss(model, delta);
      expect(Math.abs(f(w) - approx)).toBeLessThan(1e-12);
      expect(checkFires(f(w), approx, 0.1)).toBe(false);
      expect(checkFires(f(w) + offset, approx, 0.1)).toBe(false);
      if (firstFire < 0 && checkFires(f(w) + offset, approx, 0)) firstFire = step;
    }
    expect(firstFire).toBe(1);
  });

  it('(R7): κ₀ = 2, κ_t = 0.5, interval_mul 1, batch_num_mul 5, 40 steps per epoch → T₁ = 4, P = 20', () => {
    expect(adaptiveSchedule(2, 0.5, 1, 5, 40)).toEqual({ checkInterval: 4, coresets: 20 });
    expect(adaptiveSchedule(2, 2, 1, 5, 40)).toEqual({ checkInterval: 1, coresets: 5 });
    expect(adaptiveSchedule(2, 0.1, 1, 5, 40)).toEqual({ checkInterval: 20, coresets: 40 });
    expect(adaptiveSchedule(2, 4, 1, 5, 40)).toEqual({ checkInterval: 1, coresets: 5 });
    expect(stepsPerEpoch(50_000, 0.1, 128)).toBe(40);
  });
});

describe('CREST loop', () => {
  it('with τ = 0 every round ends at its first check', async () => {
    const run = await crestLoop(toy.x, toy.labels, 6, toyOptions({ checkThresh: 0 }));
    const rounds = run.schedule.rounds;
    expect(rounds.length).toBeGreaterThan(5);
    for (const r of rounds.slice(0, -1)) {
      expect(r.info?.ended).toBe('check');
      expect(r.info?.steps).toBe(r.info?.checkInterval);
    }
    expect(run.fired).toBe(rounds.length - 1);
    expect(run.checks).toBe(run.fired);
  });

  it('spends exactly epochs × steps_per_epoch steps; every pick lies in the pool, also while (R8) shrinks it', async () => {
    const pools: number[] = [];
    let outside = 0;
    const o = toyOptions({
      dropLearned: true,
      watchInterval: 2,
      dropInterval: 2,
      dropThresh: 0.5,
      minTrainSize: 0.5,
      onSelection: (e) => {
        pools.push(e.pool.reduce((a, b) => a + b, 0));
        for (const ids of [...e.subsets, ...e.coresets.map((c) => c.indices)])
          for (const i of ids) if (!e.pool[i]) outside++;
      },
    });
    const run = await crestLoop(toy.x, toy.labels, 6, o);
    const spe = stepsPerEpoch(3000, 0.1, 32);
    expect(spe).toBe(10);
    expect(run.steps).toBe(6 * spe);
    expect(run.schedule).toMatchObject({ unit: 'step', total: 6 * spe });
    expect(run.warmupSteps).toBe(spe);
    const rounds = run.schedule.rounds;
    expect(rounds[0]!.start).toBeCloseTo(1 / 6, 12);
    expect(rounds.at(-1)!.end).toBe(1);
    rounds.slice(1).forEach((r, t) => expect(r.start).toBe(rounds[t]!.end));
    expect(rounds.reduce((a, r) => a + Number(r.info?.steps), 0)).toBe(5 * spe);
    expect(outside).toBe(0);
    expect(Math.min(...pools)).toBeLessThan(3000);
    expect(Math.min(...pools)).toBeGreaterThan(1500);
    expect(run.poolSize).toBeLessThan(3000);
  });

  it('(R8): a learned example leaves only when its class keeps > ⌈ρN/C⌉ candidates and the pool stays large', () => {
    // Class 0: items 0–9, class 1: items 10–13. Slots: 5, threshold 0.1, perClass 3.
    const labels = Int32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    const ring = lossRing(5, labels.length);
    const low = [0.05, 0.02, 0.1, 0.01, 0.08];
    const set = (i: number, losses: number[]) => losses.forEach((v, e) => recordLosses(ring, e, [i], [v]));
    set(0, low); // learned in all 5 slots
    set(1, [0.05, 0.02, 0.3, 0.01, 0.08]); // hard once: stays
    for (let i = 2; i < 7; i++) set(i, [0.5, 0.6, 0.7, 0.8, 0.9]);
    recordLosses(ring, 2, [7], [0.05]); // evaluated once, learned: leaves
    // 8, 9: never evaluated: stay.
    set(10, low);
    set(11, low);
    set(12, [1, 1, 1, 1, 1]);
    set(13, [1, 1, 1, 1, 1]);
    const previous = new Uint8Array(labels.length).fill(1);
    const applied = dropLearnedPool(ring, labels, previous, 0.1, 3, 11);
    expect(applied.applied).toBe(true);
    // Class 0 keeps 8 candidates > 3: items 0 and 7 leave. Class 1 has 2 ≤ 3: its pool is unchanged.
    expect(Array.from(applied.pool)).toEqual([0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1]);
    // The new pool (12 items) must exceed min_train_size, else the old pool stays.
    const refused = dropLearnedPool(ring, labels, previous, 0.1, 3, 12);
    expect(refused.applied).toBe(false);
    expect(refused.pool).toBe(previous);
    // With perClass 8 class 0's 8 candidates are not enough either.
    expect(Array.from(dropLearnedPool(ring, labels, previous, 0.1, 8, 0).pool)).toEqual(Array.from(previous));
  });
});

describe('crest selector', () => {
  const input = { n: 3000, dim: 16, image: toy.x.data, labels: toy.labels };
  const params = { batchSize: 32, epochs: 6 };

  it('returns a valid step schedule of mini-batch coresets and a static subset ≤ B, deterministically', async () => {
    const a = await runSelector(crest, input, { fraction: 0.1 }, params, { seed: 4 });
    const b = await runSelector(crest, input, { fraction: 0.1 }, params, { seed: 4 });
    const c = await runSelector(crest, input, { fraction: 0.1 }, params, { seed: 5 });
    const schedule = a.schedule!;
    expect(schedule).toMatchObject({ unit: 'step', total: 60 });
    expect(a.indices.length).toBeGreaterThan(0);
    expect(a.indices.length).toBeLessThanOrEqual(300);
    expect(a.scores).toHaveLength(3000);
    for (let t = 1; t < a.indices.length; t++)
      expect(a.scores![a.indices[t - 1]!]).toBeGreaterThanOrEqual(a.scores![a.indices[t]!]!);
    for (const r of schedule.rounds) {
      const P = Number(r.info?.coresets);
      expect(r.batches).toHaveLength(r.indices.length);
      // Each coreset: ⌈m/C⌉ = 6 per class of 6 classes (no trim), Σγ = |V_p| = 6 × 22.
      for (let p = 0; p < P; p++) {
        const picks = Array.from(r.batches!.keys()).filter((t) => r.batches![t] === p);
        expect(picks.length).toBe(36);
        expect(picks.reduce((s, t) => s + r.weights![t]!, 0)).toBe(132);
      }
      expect(Math.max(...r.batches!)).toBe(P - 1);
      for (const key of ['tau', 'checkInterval', 'coresets', 'lossCoreset', 'curvature'])
        expect(r.info).toHaveProperty(key);
    }
    expect(a.trace.some((e) => e.stage === 'static' && /no static subset/.test(e.message))).toBe(true);
    // Determinism.
    expect(b.indices).toEqual(a.indices);
    expect(b.schedule).toEqual(a.schedule);
    expect(c.schedule).not.toEqual(a.schedule);
  });

  it('each round’s coresets match their random subset’s gradient better than random mini-batches of size m', async () => {
    const perRound: Array<{ coreset: number; random: number }> = [];
    const random = seededRandom(21);
    await crestLoop(
      toy.x,
      toy.labels,
      6,
      toyOptions({
        seed: 3,
        onSelection: async (e) => {
          let coreset = 0;
          let rand = 0;
          for (const [p, c] of e.coresets.entries()) {
            const V = e.subsets[p]!;
            const target = await weightedGradient(
              e.head,
              toy.x,
              toy.labels,
              V,
              new Float32Array(V.length).fill(1 / V.length),
            );
            const approx = await weightedGradient(
              e.head,
              toy.x,
              toy.labels,
              c.indices,
              Float32Array.from(c.weights, (g) => g / V.length),
            );
            const batch = stratifiedSubset([Array.from(V)], 32, random);
            const plain = await weightedGradient(
              e.head,
              toy.x,
              toy.labels,
              batch,
              new Float32Array(32).fill(1 / 32),
            );
            coreset += distance(approx, target) / e.coresets.length;
            rand += distance(plain, target) / e.coresets.length;
          }
          perRound.push({ coreset, random: rand });
        },
      }),
    );
    console.log(
      `gradient matching per round (coreset / random): ${perRound.map((r) => `${r.coreset.toFixed(3)}/${r.random.toFixed(3)}`).join(' ')}`,
    );
    expect(perRound.length).toBeGreaterThan(2);
    for (const r of perRound) expect(r.coreset).toBeLessThan(r.random);
  });
});
