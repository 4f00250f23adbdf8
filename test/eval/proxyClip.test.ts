import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import {
  batchGradients,
  embedProxy,
  evaluateProxyClip,
  initProxyClip,
  MAX_LOG_SCALE,
  PROXY_CLIP_DEFAULTS,
  trainProxyClip,
  type ProxyClipModel,
  type ProxyClipScores,
  type ProxyTower,
} from '../../src/eval/proxyClip.js';
import { staticPlan, type TrainingPlan } from '../../src/eval/types.js';
import { bruteRecall, classPrompts, clipPairs, clipWorld, cosine, shuffleCaptions } from './clipData.js';

/* Float64 reference, written from the formulas (not from the graph). */

/** Tower output rows (unnormalised), params as [w] (d×w) or [w1 (d×h), b1 (h), w2 (h×w)]. */
function towerRef(
  model: ProxyClipModel,
  params: Float64Array[],
  x: ArrayLike<number>,
  n: number,
): Float64Array[] {
  const { dim: d, width: w, hidden: h } = model;
  const rows: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const xi = Array.from({ length: d }, (_, j) => x[i * d + j]!);
    let input = xi;
    let inDim = d;
    if (model.tower === 'mlp') {
      const [w1, b1] = params as [Float64Array, Float64Array, Float64Array];
      const hidden = Array.from({ length: h }, (_, c) => {
        let a = b1[c]!;
        for (let j = 0; j < d; j++) a += xi[j]! * w1[j * h + c]!;
        return Math.max(0, a);
      });
      input = hidden;
      inDim = h;
    }
    const wOut = params[model.tower === 'mlp' ? 2 : 0]!;
    const out = new Float64Array(w);
    for (let c = 0; c < w; c++) for (let j = 0; j < inDim; j++) out[c]! += input[j]! * wOut[j * w + c]!;
    rows.push(out);
  }
  return rows;
}

function unit(v: Float64Array): Float64Array {
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

/** Symmetric InfoNCE with copies of one pool row excluded from each other's negatives. */
function lossRef(
  model: ProxyClipModel,
  image: Float64Array[],
  text: Float64Array[],
  logScale: number,
  xi: Float32Array,
  xt: Float32Array,
  ids: number[],
): number {
  const b = ids.length;
  const u = towerRef(model, image, xi, b).map(unit);
  const v = towerRef(model, text, xt, b).map(unit);
  const s = Math.exp(logScale);
  const logit = (p: number, q: number) => s * u[p]!.reduce((acc, x, c) => acc + x * v[q]![c]!, 0);
  const allowed = (p: number, q: number) => p === q || ids[p] !== ids[q];
  let total = 0;
  for (let a = 0; a < b; a++) {
    let rowSum = 0;
    let colSum = 0;
    for (let c = 0; c < b; c++) {
      if (allowed(a, c)) rowSum += Math.exp(logit(a, c));
      if (allowed(c, a)) colSum += Math.exp(logit(c, a));
    }
    total += Math.log(rowSum) - logit(a, a) + Math.log(colSum) - logit(a, a);
  }
  return total / (2 * b);
}

function randomRows(n: number, d: number, seed: number): Float32Array {
  return Float32Array.from({ length: n * d }, gaussian(seededRandom(seed)));
}

describe.each<ProxyTower>(['linear', 'mlp'])('proxy CLIP gradients (%s towers)', (tower) => {
  it('equal central finite differences of an independent float64 loss, temperature included', async () => {
    const d = 4;
    const b = 5;
    const model = initProxyClip(d, { tower, width: 3, hidden: 5, seed: 11 });
    model.logScale = 1.3;
    const xi = randomRows(b, d, 12);
    const xt = randomRows(b, d, 13);
    // Rows 1 and 2 are copies of one pool row: each must not be the other's negative.
    const ids = [7, 3, 3, 9, 4];
    xi.copyWithin(2 * d, d, 2 * d);
    xt.copyWithin(2 * d, d, 2 * d);
    const got = await batchGradients(model, xi, xt, b, ids);
    const image = model.image.tensors.map((t) => Float64Array.from(t));
    const text = model.text.tensors.map((t) => Float64Array.from(t));
    const loss = (t = model.logScale) => lossRef(model, image, text, t, xi, xt, ids);
    expect(got.loss).toBeCloseTo(loss(), 5);
    const h = 1e-5;
    const fd = (params: Float64Array, j: number) => {
      const keep = params[j]!;
      params[j] = keep + h;
      const up = loss();
      params[j] = keep - h;
      const down = loss();
      params[j] = keep;
      return (up - down) / (2 * h);
    };
    let checked = 0;
    for (const [side, params] of [
      ['image', image],
      ['text', text],
    ] as const) {
      params.forEach((p, k) => {
        const graph = got[side][k]!;
        expect(graph.length).toBe(p.length);
        for (let j = 0; j < p.length; j++) {
          expect(Math.abs(graph[j]! - fd(p, j))).toBeLessThan(2e-4 + 1e-3 * Math.abs(fd(p, j)));
          checked++;
        }
      });
    }
    expect(checked).toBe(tower === 'linear' ? 24 : 80);
    const fdT = (loss(model.logScale + h) - loss(model.logScale - h)) / (2 * h);
    expect(Math.abs(got.logScale - fdT)).toBeLessThan(2e-4 + 1e-3 * Math.abs(fdT));
    expect(Math.abs(fdT)).toBeGreaterThan(1e-3);
  });
});

describe('trainProxyClip batches', () => {
  const pairs = clipPairs(clipWorld(4, 2, 3, 1), 12, 2);

  it('draws from the warm-up rows before the first round, then the round in force, ∝ weights', async () => {
    const plan: TrainingPlan = {
      warmup: Int32Array.of(0, 1),
      rounds: [{ start: 0.5, end: 1, indices: Int32Array.of(2, 3), weights: Float32Array.of(1, 3) }],
    };
    const seen: number[][] = [];
    await trainProxyClip(pairs, plan, {
      steps: 10,
      batch: 200,
      width: 3,
      onBatch: (step, rows) => (seen[step] = Array.from(rows)),
    });
    for (let step = 0; step < 5; step++) expect(new Set(seen[step])).toEqual(new Set([0, 1]));
    const late = seen.slice(5).flat();
    expect(new Set(late)).toEqual(new Set([2, 3]));
    const share3 = late.filter((r) => r === 3).length / late.length;
    expect(share3).toBeGreaterThan(0.7);
    expect(share3).toBeLessThan(0.8);
  });

  it('masks copies of one row: a one-row subset has nothing to contrast, so its loss is 0', async () => {
    const model = await trainProxyClip(pairs, staticPlan([5]), { steps: 3, batch: 16, width: 3 });
    expect(model.losses.length).toBe(3);
    for (const loss of model.losses) expect(Math.abs(loss)).toBe(0);
  });

  it('names what is wrong with a bad plan or option', async () => {
    await expect(trainProxyClip(pairs, staticPlan([0, 12]), { steps: 1 })).rejects.toThrow(
      /round 0 names row 12, outside the 12 training pairs/,
    );
    await expect(trainProxyClip(pairs, staticPlan([0, 1], [0, 0]), { steps: 1 })).rejects.toThrow(
      /round 0 has weights that sum to 0/,
    );
    await expect(trainProxyClip(pairs, staticPlan([0]), { steps: 1, batch: 0 })).rejects.toThrow(
      /batch must be a positive integer/,
    );
  });
});

describe('evaluateProxyClip', () => {
  it('scores the towers’ outputs as a float64 re-implementation does (recall and zero-shot)', async () => {
    const world = clipWorld(8, 4, 5, 3);
    const train = clipPairs(world, 300, 4);
    const held = clipPairs(world, 120, 5);
    const prompts = classPrompts(world);
    const model = await trainProxyClip(train, staticPlan(train.labels.map((_, i) => i)), {
      tower: 'mlp',
      width: 6,
      hidden: 10,
      steps: 100,
      batch: 64,
      lr: 3e-3,
      seed: 1,
    });
    const got = await evaluateProxyClip(model, held, prompts);
    const params = (side: 'image' | 'text') => model[side].tensors.map((t) => Float64Array.from(t));
    const flat = (rows: Float64Array[]) => Float32Array.from(rows.flatMap((r) => Array.from(unit(r))));
    const image = flat(towerRef(model, params('image'), held.image, held.n));
    const text = flat(towerRef(model, params('text'), held.text, held.n));
    // The graph's embedding matches the reference tower to float32 accuracy.
    const embedded = await embedProxy(model, held.image, held.n, 'image');
    for (let i = 0; i < embedded.length; i++) expect(embedded[i]).toBeCloseTo(image[i]!, 5);
    const i2t = bruteRecall(image, text, held.n, model.width, [1, 5, 10]);
    const t2i = bruteRecall(text, image, held.n, model.width, [1, 5, 10]);
    expect([got.i2tR1, got.i2tR5, got.i2tR10]).toEqual([i2t[1], i2t[5], i2t[10]]);
    expect([got.t2iR1, got.t2iR5, got.t2iR10]).toEqual([t2i[1], t2i[5], t2i[10]]);
    const K = world.classes;
    const normalizedPrompts = Array.from({ length: K }, (_, k) =>
      unit(Float64Array.from(prompts.subarray(k * 8, (k + 1) * 8))),
    );
    const classes = flat(
      towerRef(model, params('text'), Float64Array.from(normalizedPrompts.flatMap((r) => Array.from(r))), K),
    );
    let correct = 0;
    for (let i = 0; i < held.n; i++) {
      let best = 0;
      for (let k = 1; k < K; k++)
        if (cosine(image, i, classes, k, model.width) > cosine(image, i, classes, best, model.width))
          best = k;
      if (best === held.labels[i]) correct++;
    }
    expect(got.zeroShotTop1).toBe(correct / held.n);
    expect(got.zeroShotTop1).toBeGreaterThan(1 / K);
    // Zero-shot needs both prompts and labels.
    expect((await evaluateProxyClip(model, { ...held, labels: undefined }, prompts)).zeroShotTop1).toBeNull();
    expect((await evaluateProxyClip(model, held)).zeroShotTop1).toBeNull();
  });
});

/**
 * The evaluator can fail: images and captions share latent classes but come through different random
 * maps, so only training aligns them. Subset A is half the pool with half of its captions shuffled;
 * B is a same-size clean subset; both get the same steps × batch.
 */
describe('the proxy separates a corrupted subset from a clean one', () => {
  const steps = 150;
  const options = { tower: 'linear' as const, width: 16, steps, batch: 128 };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: clean B beats corrupted A; zero weight on the corrupted rows equals dropping them`, async () => {
      const world = clipWorld(32, 16, 20, seed);
      const clean = clipPairs(world, 2000, seed + 100);
      const pool = shuffleCaptions(clean, range(0, 500), seed + 200);
      const held = clipPairs(world, 500, seed + 300);
      const prompts = classPrompts(world);
      const subsetA = range(0, 1000);
      const subsetB = range(1000, 2000);
      const run = async (plan: TrainingPlan) => {
        const model = await trainProxyClip(pool, plan, { ...options, seed });
        return { model, scores: await evaluateProxyClip(model, held, prompts) };
      };
      const a = await run(staticPlan(subsetA));
      const b = await run(staticPlan(subsetB));
      const margin = (key: keyof ProxyClipScores) => (b.scores[key] as number) - (a.scores[key] as number);
      expect(margin('i2tR5')).toBeGreaterThan(0.15);
      expect(margin('t2iR5')).toBeGreaterThan(0.15);
      expect(margin('zeroShotTop1')).toBeGreaterThan(0.05);
      // Weight 0 on A's corrupted rows: the same draws as training on A's clean half alone.
      const weighted = await run(
        staticPlan(
          subsetA,
          subsetA.map((i) => (i < 500 ? 0 : 1)),
        ),
      );
      const cleanHalf = await run(staticPlan(range(500, 1000)));
      expect(weighted.scores).toEqual(cleanHalf.scores);
      expect(weighted.model.image.tensors).toEqual(cleanHalf.model.image.tensors);
      expect(weighted.scores.i2tR5 - a.scores.i2tR5).toBeGreaterThan(0.15);
    }, 60_000);
  }

  it('is deterministic for a seed and changes with it', async () => {
    const world = clipWorld(16, 8, 5, 9);
    const pool = clipPairs(world, 400, 10);
    const plan = staticPlan(range(0, 400));
    const small = { ...options, width: 8, steps: 20, batch: 64 };
    const first = await trainProxyClip(pool, plan, { ...small, seed: 4 });
    const again = await trainProxyClip(pool, plan, { ...small, seed: 4 });
    const other = await trainProxyClip(pool, plan, { ...small, seed: 5 });
    expect(again.image.tensors).toEqual(first.image.tensors);
    expect(again.text.tensors).toEqual(first.text.tensors);
    expect(again.losses).toEqual(first.losses);
    expect(other.losses).not.toEqual(first.losses);
    expect(first.logScale).toBeLessThanOrEqual(MAX_LOG_SCALE);
  });

  it('defaults to the documented setting', () => {
    expect(PROXY_CLIP_DEFAULTS).toMatchObject({
      tower: 'linear',
      width: 64,
      hidden: 256,
      steps: 500,
      batch: 256,
    });
    expect(PROXY_CLIP_DEFAULTS.lr).toBe(1e-3);
    expect(PROXY_CLIP_DEFAULTS.weightDecay).toBe(0.1);
  });
});
