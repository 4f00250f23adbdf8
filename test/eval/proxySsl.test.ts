import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import {
  embedSsl,
  evaluateProxySsl,
  initSslHead,
  knnTop1,
  ntXentPass,
  trainProxySsl,
  type SslHead,
  type SslHeadKind,
} from '../../src/eval/proxySsl.js';
import { staticPlan, type TrainingPlan } from '../../src/eval/types.js';
import { nuisanceClasses, shuffledRows } from './sslData.js';

const everyRow = (n: number) => staticPlan(Array.from({ length: n }, (_, i) => i));

function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  return Float32Array.from({ length: rows * cols }, gaussian(seededRandom(seed)));
}

interface Layer64 {
  outputs: number;
  inputs: number;
  weight: Float64Array;
  bias: Float64Array;
}

/**
 * NT-Xent in float64, written from the definition with plain loops: rows t and t + B are the two views
 * of draw t; the denominator of row i holds its positive and every row of another sample (with
 * `maskDuplicates` false: every row but itself, SimCLR's form that ignores repeated samples).
 */
function referenceLoss(
  layers: Layer64[],
  x: Float64Array,
  samples: number[],
  tau: number,
  maskDuplicates = true,
): number {
  const b = samples.length;
  const m = 2 * b;
  const dim = layers[0]!.inputs;
  const u: Float64Array[] = [];
  for (let r = 0; r < m; r++) {
    let h = x.subarray(r * dim, (r + 1) * dim);
    layers.forEach((layer, l) => {
      const a = new Float64Array(layer.outputs);
      for (let o = 0; o < layer.outputs; o++) {
        let v = layer.bias[o]!;
        for (let k = 0; k < layer.inputs; k++) v += layer.weight[o * layer.inputs + k]! * h[k]!;
        a[o] = l < layers.length - 1 ? Math.max(0, v) : v;
      }
      h = a;
    });
    const norm = Math.hypot(...h);
    u.push(h.map((v) => v / norm));
  }
  const dot = (i: number, j: number) => u[i]!.reduce((s, v, k) => s + v * u[j]![k]!, 0) / tau;
  const sample = (i: number) => samples[i % b]!;
  let total = 0;
  for (let i = 0; i < m; i++) {
    const p = (i + b) % m;
    let denominator = Math.exp(dot(i, p));
    for (let j = 0; j < m; j++) {
      if (j === i || j === p) continue;
      if (maskDuplicates && sample(j) === sample(i)) continue;
      denominator += Math.exp(dot(i, j));
    }
    total += -dot(i, p) + Math.log(denominator);
  }
  return total / m;
}

const toFloat64 = (head: SslHead): Layer64[] =>
  head.layers.map((l) => ({
    outputs: l.outputs,
    inputs: l.inputs,
    weight: Float64Array.from(l.weight),
    bias: Float64Array.from(l.bias),
  }));

describe('proxy SSL: the NT-Xent graph', () => {
  it.each<SslHeadKind>(['linear', 'mlp'])(
    '%s head: loss and gradients equal a float64 NT-Xent and its central differences (duplicates masked)',
    async (kind) => {
      const [dim, width, hidden, tau] = [5, 4, 7, 0.2];
      // Sample 1 is drawn three times and sample 3 twice: their copies must not be negatives.
      const samples = [0, 1, 2, 1, 3, 1, 3];
      const head = initSslHead(kind, dim, width, hidden, seededRandom(3));
      const x = randomMatrix(2 * samples.length, dim, 4);
      const pass = await ntXentPass(head, x, samples, tau);

      const layers = toFloat64(head);
      const x64 = Float64Array.from(x);
      const loss = referenceLoss(layers, x64, samples, tau);
      expect(pass.loss).toBeCloseTo(loss, 5);
      // The masking is visible: the loss that counts copies as negatives differs.
      expect(Math.abs(referenceLoss(layers, x64, samples, tau, false) - loss)).toBeGreaterThan(0.05);

      const h = 1e-6;
      let worst = 0;
      let scale = 0;
      layers.forEach((layer, l) => {
        for (const [name, values] of [
          ['weight', layer.weight],
          ['bias', layer.bias],
        ] as const) {
          const graph = pass.gradients[l]![name];
          expect(graph.length).toBe(values.length);
          for (let k = 0; k < values.length; k++) {
            const keep = values[k]!;
            values[k] = keep + h;
            const plus = referenceLoss(layers, x64, samples, tau);
            values[k] = keep - h;
            const minus = referenceLoss(layers, x64, samples, tau);
            values[k] = keep;
            const numeric = (plus - minus) / (2 * h);
            worst = Math.max(worst, Math.abs(graph[k]! - numeric));
            scale = Math.max(scale, Math.abs(numeric));
          }
        }
      });
      expect(scale).toBeGreaterThan(0.01);
      expect(worst).toBeLessThan(1e-4 * Math.max(1, scale));
    },
  );

  it('a batch of one sample has no negatives: loss 0 and no gradient, not NaN', async () => {
    const head = initSslHead('linear', 3, 2, 1, seededRandom(1));
    const pass = await ntXentPass(head, randomMatrix(6, 3, 2), [4, 4, 4], 0.2);
    expect(pass.loss).toBeCloseTo(0, 6);
    for (const g of pass.gradients)
      for (const v of [...g.weight, ...g.bias]) expect(Math.abs(v)).toBeLessThan(1e-6);
  });
});

describe('proxy SSL: the evaluator can fail', () => {
  it('a head trained on real views beats one trained on shuffled views on held-out kNN, 3 seeds', async () => {
    const [n, held, dim] = [800, 400, 32];
    const options = { head: 'mlp' as const, width: 16, hidden: 64, steps: 150, batch: 128 };
    for (const seed of [1, 2, 3]) {
      const train = nuisanceClasses({ n, dim, classes: 10, signalDims: 8, nuisance: 4, seed });
      const test = nuisanceClasses({
        n: held,
        dim,
        classes: 10,
        signalDims: 8,
        nuisance: 4,
        seed: seed + 100,
        centres: train.centres,
      });
      const shuffled = [train.views[0]!, shuffledRows(train.views[1]!, n, dim, seed)];
      const real = await trainProxySsl({ n, dim, views: train.views }, everyRow(n), { ...options, seed });
      const fake = await trainProxySsl({ n, dim, views: shuffled }, everyRow(n), { ...options, seed });
      const realMetrics = await evaluateProxySsl(real, train, test);
      const fakeMetrics = await evaluateProxySsl(fake, train, test);
      // The raw embeddings' own kNN: the nuisance dominates it.
      const raw = await knnTop1(
        { rows: n, cols: dim, data: train.image, labels: train.labels },
        { rows: held, cols: dim, data: test.image, labels: test.labels },
      );
      expect(realMetrics.knnTop1!).toBeGreaterThan(fakeMetrics.knnTop1! + 0.3);
      expect(realMetrics.knnTop1!).toBeGreaterThan(raw! + 0.2);
      expect(realMetrics.probeTop1!).toBeGreaterThan(fakeMetrics.probeTop1! + 0.3);
    }
  });
});

/** kNN top-1 from the definition, in float64: sort every labelled training row by cosine, vote exp(cos/τ). */
function bruteKnn(
  train: Float32Array,
  trainLabels: ArrayLike<number>,
  queries: Float32Array,
  queryLabels: ArrayLike<number>,
  width: number,
  k: number,
  tau: number,
): number {
  let correct = 0;
  let counted = 0;
  for (let q = 0; q < queryLabels.length; q++) {
    if (queryLabels[q]! < 0) continue;
    counted++;
    const scored: Array<[number, number]> = [];
    for (let j = 0; j < trainLabels.length; j++) {
      if (trainLabels[j]! < 0) continue;
      let s = 0;
      for (let c = 0; c < width; c++) s += queries[q * width + c]! * train[j * width + c]!;
      scored.push([s, trainLabels[j]!]);
    }
    scored.sort((a, b) => b[0] - a[0]);
    const votes = new Map<number, number>();
    for (const [s, label] of scored.slice(0, k))
      votes.set(label, (votes.get(label) ?? 0) + Math.exp(s / tau));
    const best = [...votes].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
    if (best === queryLabels[q]) correct++;
  }
  return correct / counted;
}

describe('proxy SSL: metrics', () => {
  it('kNN top-1, alignment and uniformity equal float64 implementations of their definitions', async () => {
    const dim = 16;
    const train = nuisanceClasses({ n: 300, dim, classes: 6, signalDims: 6, nuisance: 2, seed: 7 });
    const test = nuisanceClasses({
      n: 120,
      dim,
      classes: 6,
      signalDims: 6,
      nuisance: 2,
      seed: 8,
      views: 3,
      centres: train.centres,
    });
    // Unlabelled rows (label −1) take no part.
    const trainLabels = Int32Array.from(train.labels, (l, i) => (i % 7 === 0 ? -1 : l));
    const testLabels = Int32Array.from(test.labels, (l, i) => (i % 5 === 0 ? -1 : l));
    const model = await trainProxySsl(train, everyRow(300), {
      head: 'linear',
      width: 8,
      steps: 20,
      batch: 32,
    });
    const trainEmb = await embedSsl(model, train.image, 300);
    const testEmb = await embedSsl(model, test.image, 120);

    for (const [k, tau] of [
      [1, 0.07],
      [20, 0.07],
      [7, 1],
    ] as const) {
      const metrics = await evaluateProxySsl(
        model,
        { ...train, labels: trainLabels },
        { ...test, labels: testLabels },
        { knnK: k, knnTemperature: tau, uniformitySample: 5000 },
      );
      const want = bruteKnn(trainEmb, trainLabels, testEmb, testLabels, 8, k, tau);
      expect(metrics.knnTop1).toBe(want);
      expect(want).toBeGreaterThan(0.2);
      expect(want).toBeLessThan(1);
    }

    const metrics = await evaluateProxySsl(model, train, test, { uniformitySample: 5000 });
    const views = await Promise.all(test.views.map((v) => embedSsl(model, v, 120)));
    let align = 0;
    let pairs = 0;
    for (let a = 0; a < 3; a++)
      for (let b = a + 1; b < 3; b++)
        for (let i = 0; i < 120; i++) {
          let d2 = 0;
          for (let c = 0; c < 8; c++) d2 += (views[a]![i * 8 + c]! - views[b]![i * 8 + c]!) ** 2;
          align += d2;
          pairs++;
        }
    expect(metrics.alignment!).toBeCloseTo(align / pairs, 5);
    let sum = 0;
    let count = 0;
    for (let i = 0; i < 120; i++)
      for (let j = i + 1; j < 120; j++) {
        let d2 = 0;
        for (let c = 0; c < 8; c++) d2 += (testEmb[i * 8 + c]! - testEmb[j * 8 + c]!) ** 2;
        sum += Math.exp(-2 * d2);
        count++;
      }
    expect(metrics.uniformity).toBeCloseTo(Math.log(sum / count), 4);
    // Without labels or views the label and view metrics are null, not zero.
    const bare = await evaluateProxySsl(
      model,
      { n: 300, dim, image: train.image },
      { n: 120, dim, image: test.image },
    );
    expect(bare).toMatchObject({ knnTop1: null, probeTop1: null, alignment: null });
    expect(bare.uniformity).toBeLessThan(0);
  });
});

describe('proxy SSL: training plan and determinism', () => {
  const dim = 8;
  const data = nuisanceClasses({ n: 20, dim, classes: 3, signalDims: 4, seed: 5, views: 3 });
  const small = { head: 'linear' as const, width: 4, steps: 30, batch: 64 };

  it('a weight counts like copies, weight 0 is never drawn, and draws follow the weights', async () => {
    const counts = new Map<number, number>();
    const weighted = await trainProxySsl(data, staticPlan([5, 9, 2], [2, 0, 1]), {
      ...small,
      onStep: (_, __, rows) => rows.forEach((r) => counts.set(r, (counts.get(r) ?? 0) + 1)),
    });
    const copies = await trainProxySsl(data, staticPlan([5, 5, 2]), small);
    for (let l = 0; l < weighted.head.layers.length; l++) {
      expect(weighted.head.layers[l]!.weight).toEqual(copies.head.layers[l]!.weight);
      expect(weighted.head.layers[l]!.bias).toEqual(copies.head.layers[l]!.bias);
    }
    expect(counts.has(9)).toBe(false);
    const draws = small.steps * small.batch;
    expect(Math.abs(counts.get(5)! / draws - 2 / 3)).toBeLessThan(0.04);
    // And the plan is not ignored: the unweighted plan over the same rows trains another model.
    const unweighted = await trainProxySsl(data, staticPlan([5, 9, 2]), small);
    expect(unweighted.head.layers[0]!.weight).not.toEqual(weighted.head.layers[0]!.weight);
  });

  it('each step draws from the round in force, and from the warm-up before the first round', async () => {
    const plan: TrainingPlan = {
      warmup: Int32Array.of(0),
      rounds: [
        { start: 0.25, end: 0.5, indices: Int32Array.of(1) },
        { start: 0.5, end: 1, indices: Int32Array.of(2, 3) },
      ],
    };
    const seen: number[][] = [];
    await trainProxySsl(data, plan, {
      ...small,
      steps: 8,
      batch: 6,
      onStep: (_, __, rows) => seen.push([...rows]),
    });
    expect(seen.map((rows) => [...new Set(rows)].sort())).toEqual([
      [0],
      [0],
      [1],
      [1],
      [2, 3],
      [2, 3],
      [2, 3],
      [2, 3],
    ]);
  });

  it('the same seed gives identical models and metrics; another seed does not', async () => {
    const run = async (seed: number) => {
      const model = await trainProxySsl(data, everyRow(20), { ...small, seed });
      return { model, metrics: await evaluateProxySsl(model, data, { ...data, views: data.views }) };
    };
    const [a, b, c] = [await run(1), await run(1), await run(2)];
    expect(b.model.head).toEqual(a.model.head);
    expect(b.model.losses).toEqual(a.model.losses);
    expect(b.metrics).toEqual(a.metrics);
    expect(c.model.head.layers[0]!.weight).not.toEqual(a.model.head.layers[0]!.weight);
  });

  it('bad input is an error naming what is wrong', async () => {
    await expect(trainProxySsl({ ...data, views: [data.image] }, everyRow(20))).rejects.toThrow(
      /at least 2 views/,
    );
    await expect(trainProxySsl(data, staticPlan([3, 20]), small)).rejects.toThrow(
      /round 0: row 20 is outside 0..19/,
    );
    await expect(trainProxySsl(data, staticPlan([3, 4], [0, 0]), small)).rejects.toThrow(/weights sum to 0/);
    await expect(trainProxySsl(data, everyRow(20), { ...small, steps: 0 })).rejects.toThrow(/steps must be/);
    const model = await trainProxySsl(data, everyRow(20), { ...small, steps: 1 });
    await expect(
      evaluateProxySsl(model, data, { n: 20, dim: 4, image: new Float32Array(80) }),
    ).rejects.toThrow(/held-out split: 4-d rows, the head expects 8/);
  });
});
