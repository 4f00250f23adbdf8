import { describe, expect, it } from 'vitest';
import { linearProbe } from '../../src/select/proxy/probe.js';
import {
  accuracyFromResiduals,
  headPass,
  initHead,
  trainHead,
  type SoftmaxHead,
} from '../../src/select/proxy/softmaxHead.js';
import { gaussianClasses } from '../support/gaussianClasses.js';

/** Float64 reference: residuals, losses and the s-weighted gradient, written from the formulas. */
function referencePass(
  head: SoftmaxHead,
  x: Float32Array,
  labels: Int32Array,
  s: ArrayLike<number>,
): { r: Float64Array; loss: Float64Array; gw: Float64Array; gc: Float64Array } {
  const { classes: K, dim: d } = head;
  const n = labels.length;
  const r = new Float64Array(n * K);
  const loss = new Float64Array(n);
  const gw = new Float64Array(K * d);
  const gc = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: K }, (_, k) => {
      let v = head.bias[k]!;
      for (let j = 0; j < d; j++) v += head.weight[k * d + j]! * x[i * d + j]!;
      return v;
    });
    const max = Math.max(...z);
    const e = z.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    loss[i] = -(z[labels[i]!]! - max - Math.log(sum));
    for (let k = 0; k < K; k++) {
      r[i * K + k] = e[k]! / sum - (k === labels[i] ? 1 : 0);
      gc[k]! += s[i]! * r[i * K + k]!;
      for (let j = 0; j < d; j++) gw[k * d + j]! += s[i]! * r[i * K + k]! * x[i * d + j]!;
    }
  }
  return { r, loss, gw, gc };
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('softmax proxy head', () => {
  it('one kernel pass gives the residuals, losses and weighted gradient of the formulas (tiled rows)', async () => {
    // 20,000 rows > one 16,384-row tile, so the tile accumulation is exercised.
    const { x, labels } = gaussianClasses(20_000, 6, 4, 1, 1);
    const head = initHead(4, 6, 2, 0.8);
    const s = Float32Array.from({ length: x.rows }, (_, i) => ((i * 7) % 5) / x.rows);
    const got = await headPass(head, x, labels, s);
    const want = referencePass(head, x.data, labels, s);
    expect(maxDiff(got.residuals, want.r)).toBeLessThan(1e-5);
    expect(maxDiff(got.losses, want.loss)).toBeLessThan(1e-4);
    expect(maxDiff(got.gradWeight, want.gw)).toBeLessThan(1e-4);
    expect(maxDiff(got.gradBias, want.gc)).toBeLessThan(1e-4);
  });

  it('full-batch training follows momentum SGD with weight decay step for step', async () => {
    const { x, labels } = gaussianClasses(200, 5, 3, 3, 1);
    const head = initHead(3, 5, 4, 0.1);
    const ref = { w: Float64Array.from(head.weight), c: Float64Array.from(head.bias) };
    const o = { lr: 0.5, momentum: 0.9, weightDecay: 0.01, batchSize: 1000, epochs: 15, seed: 0 };
    await trainHead(head, { x, labels }, o);
    const vw = new Float64Array(ref.w.length);
    const vc = new Float64Array(ref.c.length);
    for (let step = 0; step < 15; step++) {
      const h = { classes: 3, dim: 5, weight: Float32Array.from(ref.w), bias: Float32Array.from(ref.c) };
      const g = referencePass(h, x.data, labels, new Float64Array(200).fill(1 / 200));
      for (let j = 0; j < ref.w.length; j++) {
        vw[j] = 0.9 * vw[j]! + g.gw[j]! + 0.01 * ref.w[j]!;
        ref.w[j]! -= 0.5 * vw[j]!;
      }
      for (let k = 0; k < 3; k++) {
        vc[k] = 0.9 * vc[k]! + g.gc[k]!;
        ref.c[k]! -= 0.5 * vc[k]!;
      }
    }
    expect(maxDiff(head.weight, ref.w)).toBeLessThan(1e-4);
    expect(maxDiff(head.bias, ref.c)).toBeLessThan(1e-4);
  });

  it('a weight of 2 trains exactly like a duplicated row', async () => {
    const { x, labels } = gaussianClasses(60, 4, 3, 5, 1.2);
    const weights = Float32Array.from({ length: 60 }, (_, i) => (i < 20 ? 2 : 1));
    const dupRows = [...Array.from({ length: 60 }, (_, i) => i), ...Array.from({ length: 20 }, (_, i) => i)];
    const dup = {
      x: {
        rows: 80,
        cols: 4,
        data: Float32Array.from(dupRows.flatMap((i) => Array.from(x.data.subarray(i * 4, i * 4 + 4)))),
      },
      labels: Int32Array.from(dupRows, (i) => labels[i]!),
    };
    const o = { lr: 1, momentum: 0.5, weightDecay: 0, batchSize: 1000, epochs: 30, seed: 0 };
    const a = initHead(3, 4, 0, 0);
    const b = initHead(3, 4, 0, 0);
    await trainHead(a, { x, labels, weights }, o);
    await trainHead(b, dup, o);
    expect(maxDiff(a.weight, b.weight)).toBeLessThan(1e-5);
  });

  it('minibatch SGD is seeded and learns separable classes', async () => {
    const train = gaussianClasses(3000, 16, 5, 7, 1.5);
    // Same seed → same centres and the same first 3,000 rows; rows 3,000.. are fresh held-out draws.
    const heldOut = gaussianClasses(4000, 16, 5, 7, 1.5);
    const rows = { rows: 1000, cols: 16, data: heldOut.x.data.subarray(3000 * 16) };
    const o = { lr: 2, momentum: 0.9, weightDecay: 5e-4, batchSize: 256, epochs: 5, seed: 11 };
    const a = initHead(5, 16, 1);
    const b = initHead(5, 16, 1);
    await trainHead(a, train, o);
    await trainHead(b, train, o);
    expect(Array.from(a.weight)).toEqual(Array.from(b.weight));
    const before = await headPass(initHead(5, 16, 1), rows, heldOut.labels.subarray(3000));
    const after = await headPass(a, rows, heldOut.labels.subarray(3000));
    const meanLoss = (l: Float32Array) => l.reduce((s, v) => s + v, 0) / l.length;
    expect(meanLoss(after.losses)).toBeLessThan(0.5 * meanLoss(before.losses));
    expect(accuracyFromResiduals(after.residuals, heldOut.labels.subarray(3000), 5)).toBeGreaterThan(0.8);
  });

  it('the linear-probe evaluator agrees with an independent float64 computation', async () => {
    const train = gaussianClasses(300, 6, 4, 9, 2.5);
    const all = gaussianClasses(800, 6, 4, 9, 2.5);
    const test = {
      x: { rows: 500, cols: 6, data: all.x.data.subarray(300 * 6) },
      labels: all.labels.subarray(300),
    };
    const weights = Float32Array.from({ length: 300 }, (_, i) => 1 + (i % 3));
    const got = await linearProbe({ ...train, weights }, test, { steps: 40 });
    // Independent: full-batch GD with momentum from zero, loss Σ wᵢℓᵢ / Σ wᵢ, then arg-max accuracy.
    const w = new Float64Array(4 * 6);
    const c = new Float64Array(4);
    const vw = new Float64Array(w.length);
    const vc = new Float64Array(4);
    const total = weights.reduce((a, b) => a + b, 0);
    for (let step = 0; step < 40; step++) {
      const h = { classes: 4, dim: 6, weight: Float32Array.from(w), bias: Float32Array.from(c) };
      const g = referencePass(
        h,
        train.x.data,
        train.labels,
        Array.from(weights, (v) => v / total),
      );
      for (let j = 0; j < w.length; j++) {
        vw[j] = 0.9 * vw[j]! + g.gw[j]! + 1e-4 * w[j]!;
        w[j]! -= 2 * vw[j]!;
      }
      for (let k = 0; k < 4; k++) {
        vc[k] = 0.9 * vc[k]! + g.gc[k]!;
        c[k]! -= 2 * vc[k]!;
      }
    }
    let correct = 0;
    for (let i = 0; i < 500; i++) {
      let best = 0;
      let bestZ = -Infinity;
      for (let k = 0; k < 4; k++) {
        let z = c[k]!;
        for (let j = 0; j < 6; j++) z += w[k * 6 + j]! * test.x.data[i * 6 + j]!;
        if (z > bestZ) [best, bestZ] = [k, z];
      }
      if (best === test.labels[i]) correct++;
    }
    expect(got.accuracy).toBeCloseTo(correct / 500, 10);
    expect(got.accuracy).toBeGreaterThan(0.3); // better than chance (0.25) on overlapping classes
    expect(maxDiff(got.head.weight, w)).toBeLessThan(1e-4);
  });
});
