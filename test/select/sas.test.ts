import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { runSelector, type SelectInput } from '../../src/select/contract.js';
import { getSelector } from '../../src/select/registry.js';

const d = 24;

/** Labelled unit vectors around class centres; `outliers` of each class are random unit vectors. */
function pool(n: number, classes: number, seed: number, outliers = 0) {
  const normal = gaussian(seededRandom(seed));
  const rnd = seededRandom(seed + 1);
  const centres = Array.from({ length: classes }, () => Array.from({ length: d }, normal));
  const image = new Float32Array(n * d);
  const labels = new Int32Array(n);
  const odd = new Set<number>();
  for (let i = 0; i < n; i++) {
    const k = i % classes;
    labels[i] = k;
    const outlier = rnd() < outliers;
    if (outlier) odd.add(i);
    const x = image.subarray(i * d, (i + 1) * d);
    for (let q = 0; q < d; q++) x[q] = outlier ? normal() : centres[k]![q]! * 0.5 + normal() * (0.6 + rnd());
    const s = Math.hypot(...x);
    for (let q = 0; q < d; q++) x[q]! /= s;
  }
  return { input: { n, dim: d, image, labels } satisfies SelectInput, odd };
}

const cos = (m: Float32Array, i: number, j: number) => {
  let s = 0;
  for (let q = 0; q < d; q++) s += m[i * d + q]! * m[j * d + q]!;
  return s;
};

/** R_i = Σ_{j in class} max(0, s_ij), brute force. */
function rowSums(input: SelectInput): Float64Array {
  const r = new Float64Array(input.n);
  for (let i = 0; i < input.n; i++)
    for (let j = 0; j < input.n; j++)
      if (input.labels![i] === input.labels![j]) r[i]! += Math.max(0, cos(input.image!, i, j));
  return r;
}

const byClass = (labels: Int32Array, ids: ArrayLike<number>) => {
  const out = new Map<number, number[]>();
  for (const i of Array.from(ids)) out.set(labels[i]!, [...(out.get(labels[i]!) ?? []), i]);
  return out;
};

describe('SAS (sas.md)', () => {
  it('rowsum = the official code: every class keeps its top items by thresholded row sum', async () => {
    const { input } = pool(1200, 6, 1);
    const s = await runSelector(getSelector('sas'), input, { fraction: 0.2 }, {}, { seed: 0 });
    expect(s.indices.length).toBe(240);
    const r = rowSums(input);
    for (const [k, picked] of byClass(input.labels, s.indices)) {
      const members = Array.from({ length: 1200 }, (_, i) => i).filter((i) => input.labels[i] === k);
      const top = members.sort((a, b) => r[b]! - r[a]!).slice(0, picked.length);
      expect(new Set(picked)).toEqual(new Set(top));
    }
  });

  it('mean within-class row sum beats 20 class-balanced random subsets in every class', async () => {
    const { input } = pool(900, 3, 2);
    const r = rowSums(input);
    const s = await runSelector(getSelector('sas'), input, { fraction: 0.1 }, {}, { seed: 0 });
    const mean = (ids: number[]) => ids.reduce((a, i) => a + r[i]!, 0) / ids.length;
    const ours = byClass(input.labels, s.indices);
    for (let seed = 0; seed < 20; seed++) {
      const rand = await runSelector(
        getSelector('random'),
        input,
        { fraction: 0.1 },
        { stratified: true },
        { seed },
      );
      for (const [k, ids] of byClass(input.labels, rand.indices))
        expect(mean(ours.get(k)!)).toBeGreaterThan(mean(ids));
    }
  });

  it('drops outliers: < 2% of the subset at ρ = 0.2 with 10% outliers per class', async () => {
    const { input, odd } = pool(3000, 5, 3, 0.1);
    const s = await runSelector(getSelector('sas'), input, { fraction: 0.2 }, {}, { seed: 0 });
    const r = await runSelector(getSelector('random'), input, { fraction: 0.2 }, {}, { seed: 0 });
    const share = (ids: Int32Array) => Array.from(ids).filter((i) => odd.has(i)).length / ids.length;
    expect(share(s.indices)).toBeLessThan(0.02);
    expect(share(r.indices)).toBeGreaterThan(0.06);
  });

  it('picks the easy examples: higher class-mean-classifier margin than random', async () => {
    const { input } = pool(2000, 5, 4);
    const means = Array.from({ length: 5 }, () => new Float64Array(d));
    for (let i = 0; i < input.n; i++)
      for (let q = 0; q < d; q++) means[input.labels[i]!]![q]! += input.image[i * d + q]!;
    const margin = (i: number) => {
      const logits = means.map((m) => m.reduce((a, v, q) => a + v * input.image[i * d + q]!, 0));
      const own = logits[input.labels[i]!]!;
      return own - Math.max(...logits.filter((_, k) => k !== input.labels[i]));
    };
    const avg = (ids: Int32Array) => Array.from(ids).reduce((a, i) => a + margin(i), 0) / ids.length;
    const s = await runSelector(getSelector('sas'), input, { fraction: 0.2 }, {}, { seed: 0 });
    const r = await runSelector(getSelector('random'), input, { fraction: 0.2 }, {}, { seed: 1 });
    expect(avg(s.indices)).toBeGreaterThan(avg(r.indices) * 1.2);
  });

  it('graphcut: accepted gains never increase and overlap with rowsum is high at ρ = 0.2', async () => {
    const { input } = pool(1000, 4, 5);
    const g = await runSelector(
      getSelector('sas'),
      input,
      { fraction: 0.2 },
      { objective: 'graphcut' },
      { seed: 0 },
    );
    const rs = await runSelector(getSelector('sas'), input, { fraction: 0.2 }, {}, { seed: 0 });
    const r = rowSums(input);
    for (const [, picked] of byClass(input.labels, g.indices)) {
      let previous = Infinity;
      picked.forEach((e, t) => {
        let gain = r[e]! - 1; // R_e − s⁺_ee
        for (const j of picked.slice(0, t)) gain -= 2 * Math.max(0, cos(input.image, e, j));
        expect(gain).toBeLessThanOrEqual(previous + 1e-4);
        previous = gain;
      });
    }
    const overlap = Array.from(g.indices).filter((i) => new Set(rs.indices).has(i)).length / g.indices.length;
    expect(overlap).toBeGreaterThan(0.6);
    expect(overlap).toBeLessThan(1);
  });

  it('large classes: the sampled row-sum estimate ranks like the exact one (Spearman > 0.95)', async () => {
    const { input } = pool(3000, 1, 6);
    const exact = await runSelector(getSelector('sas'), input, { count: 300 }, {}, { seed: 0 });
    const sampled = await runSelector(
      getSelector('sas'),
      input,
      { count: 300 },
      { pairwiseLimit: 1000, sampleSize: 600 },
      { seed: 0 },
    );
    const rank = (v: Float32Array) => {
      const order = Array.from(v.keys()).sort((a, b) => v[a]! - v[b]!);
      const out = new Float64Array(v.length);
      order.forEach((i, r) => (out[i] = r));
      return out;
    };
    const [a, b] = [rank(exact.scores!), rank(sampled.scores!)];
    const n = a.length;
    const dsq = a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);
    expect(1 - (6 * dsq) / (n * (n * n - 1))).toBeGreaterThan(0.95);
  });

  it('uses mean augmented-view embeddings when the pool has them, diagonal excluded', async () => {
    const { input } = pool(400, 2, 7);
    // Views: a damped copy of the embedding (norm < 1), as averaging unit views gives.
    const imageViews = Float32Array.from(
      input.image,
      (v, idx) => v * (0.6 + (0.3 * ((Math.floor(idx / d) * 7) % 10)) / 10),
    );
    const s = await runSelector(getSelector('sas'), { ...input, imageViews }, { count: 40 }, {}, { seed: 0 });
    expect(s.trace.some((e) => /mean augmented-view/.test(e.message))).toBe(true);
    const plain = await runSelector(
      getSelector('sas'),
      { ...input, imageViews },
      { count: 40 },
      { views: 'off' },
      { seed: 0 },
    );
    expect(Array.from(s.indices)).not.toEqual(Array.from(plain.indices));
  });
});
