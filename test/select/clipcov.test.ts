import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { runSelector, type SelectInput } from '../../src/select/contract.js';
import { latentClasses } from '../../src/select/latentClasses.js';
import { getSelector } from '../../src/select/registry.js';

const d = 32;

/**
 * Latent classes of unequal size (class k holds ∝ 0.8^k of the pool); captions = image + noise whose
 * strength depends on the class (so CLIP scores differ by class), a share of captions swapped.
 */
function pairs(n: number, classes: number, seed: number, mismatched: number) {
  const normal = gaussian(seededRandom(seed));
  const rnd = seededRandom(seed + 1);
  const centres = Array.from({ length: classes }, () => Array.from({ length: d }, normal));
  const weights = centres.map((_, k) => 0.8 ** k);
  const total = weights.reduce((a, b) => a + b, 0);
  const labels = new Int32Array(n);
  const image = new Float32Array(n * d);
  const text = new Float32Array(n * d);
  const bad = new Set<number>();
  const unit = (v: Float32Array) => {
    const s = Math.hypot(...v);
    for (let i = 0; i < v.length; i++) v[i]! /= s;
  };
  for (let i = 0; i < n; i++) {
    let r = rnd() * total;
    let k = 0;
    while (k < classes - 1 && (r -= weights[k]!) > 0) k++;
    labels[i] = k;
    const x = image.subarray(i * d, (i + 1) * d);
    for (let q = 0; q < d; q++) x[q] = centres[k]![q]! + 0.9 * normal();
    unit(x);
    const t = text.subarray(i * d, (i + 1) * d);
    const noise = 0.15 + (0.6 * k) / classes;
    for (let q = 0; q < d; q++) t[q] = x[q]! + noise * normal();
    unit(t);
  }
  // Mismatched pairs: a caption of another random pair.
  const original = Float32Array.from(text);
  for (let i = 0; i < n; i++) {
    if (rnd() >= mismatched) continue;
    const j = Math.floor(rnd() * n);
    if (labels[j] === labels[i]) continue;
    text.set(original.subarray(j * d, (j + 1) * d), i * d);
    bad.add(i);
  }
  return { input: { n, dim: d, image, text, labels } satisfies SelectInput, bad, labels };
}

const dot = (a: Float32Array, i: number, b: Float32Array, j: number) => {
  let s = 0;
  for (let q = 0; q < d; q++) s += a[i * d + q]! * b[j * d + q]!;
  return s;
};

/** F(S) of clipcov.md §3.2 without the saturation penalties, computed directly from its definition. */
function objective(input: SelectInput, labels: Int32Array, subset: ArrayLike<number>): number {
  const x = input.image!;
  const t = input.text!;
  const K = Math.max(...labels) + 1;
  const members = Array.from({ length: K }, () => [] as number[]);
  labels.forEach((k, i) => members[k]!.push(i));
  const sum = (rows: number[], m: Float32Array) => {
    const v = new Float64Array(d);
    for (const i of rows) for (let q = 0; q < d; q++) v[q]! += m[i * d + q]!;
    return v;
  };
  const s = (a: number, b: number) => Math.max(0, dot(x, a, t, b));
  const chosen = members.map(() => [] as number[]);
  for (const j of Array.from(subset)) chosen[labels[j]!]!.push(j);
  const everyone = Array.from({ length: input.n }, (_, i) => i);
  const allX = sum(everyone, x);
  const allT = sum(everyone, t);
  let f = 0;
  for (let k = 0; k < K; k++) {
    const V = members[k]!;
    const S = chosen[k]!;
    let cross = 0;
    for (const i of V) for (const j of S) cross += s(i, j) + s(j, i);
    for (const a of S) for (const b of S) cross -= s(a, b);
    f += cross / V.length;
    const cx = sum(V, x);
    const ct = sum(V, t);
    const w = Float32Array.from(ct, (v) => v / Math.hypot(...ct));
    const otherT = allT.map((v, q) => (v - ct[q]!) / (input.n - V.length));
    const otherX = allX.map((v, q) => (v - cx[q]!) / (input.n - V.length));
    for (const j of S) {
      let label = 0;
      let o = 0;
      for (let q = 0; q < d; q++) {
        label += t[j * d + q]! * w[q]!;
        o += x[j * d + q]! * otherT[q]! + t[j * d + q]! * otherX[q]!;
      }
      f += 2 * s(j, j) + label / 2 - o;
    }
  }
  return f;
}

function classKl(labels: Int32Array, subset: ArrayLike<number>): number {
  const K = Math.max(...labels) + 1;
  const full = new Float64Array(K);
  const sub = new Float64Array(K);
  labels.forEach((k) => full[k]!++);
  for (const i of Array.from(subset)) sub[labels[i]!]!++;
  let kl = 0;
  for (let k = 0; k < K; k++) {
    const p = sub[k]! / subset.length;
    if (p > 0) kl += p * Math.log(p / (full[k]! / labels.length));
  }
  return kl;
}

describe('ClipCov (clipcov.md)', () => {
  it('keeps far fewer mismatched pairs than random at ρ = 5% (k-means latent classes)', async () => {
    const { input, bad } = pairs(4000, 20, 1, 0.3);
    const { labels: _, ...unlabelled } = input;
    const s = await runSelector(
      getSelector('clipcov'),
      unlabelled,
      { fraction: 0.05 },
      { clusters: 20 },
      { seed: 0 },
    );
    const r = await runSelector(getSelector('random'), unlabelled, { fraction: 0.05 }, {}, { seed: 0 });
    const share = (ids: Int32Array) => Array.from(ids).filter((i) => bad.has(i)).length / ids.length;
    expect(share(r.indices)).toBeGreaterThan(0.2);
    expect(share(s.indices)).toBeLessThan(share(r.indices) / 4);
    expect(s.trace[0]!.message).toMatch(/20 kmeans classes/);
  });

  it('its objective F beats 20 random subsets of the same size', async () => {
    const { input, labels } = pairs(1500, 10, 2, 0.2);
    const s = await runSelector(
      getSelector('clipcov'),
      input,
      { fraction: 0.1 },
      { classes: 'labels' },
      { seed: 0 },
    );
    const f = objective(input, labels, s.indices);
    for (let seed = 0; seed < 20; seed++) {
      const r = await runSelector(getSelector('random'), input, { fraction: 0.1 }, {}, { seed });
      expect(f).toBeGreaterThan(objective(input, labels, r.indices));
    }
  });

  it('covers classes better than top-B CLIP score, thanks to the saturation penalties', async () => {
    const { input, labels } = pairs(4000, 20, 3, 0.1);
    const budget = { fraction: 0.05 };
    const withPenalties = await runSelector(
      getSelector('clipcov'),
      input,
      budget,
      { delta: 10 },
      { seed: 0 },
    );
    const without = await runSelector(
      getSelector('clipcov'),
      input,
      budget,
      { delta: 10, classPenalty: 'none' },
      { seed: 0 },
    );
    const topScore = await runSelector(getSelector('clip-score'), input, budget, {}, { seed: 0 });
    const kl = classKl(labels, withPenalties.indices);
    expect(kl).toBeLessThan(classKl(labels, topScore.indices));
    expect(kl).toBeLessThan(classKl(labels, without.indices));
  });

  it('without the threshold, pairwise sums on the kernel and running sums give the same ordering', async () => {
    const { input } = pairs(1200, 8, 4, 0.2);
    const run = (form: string) =>
      runSelector(
        getSelector('clipcov'),
        input,
        { count: 150 },
        { threshold: 'none', form, delta: 5 },
        { seed: 0 },
      );
    const pairwise = await run('pairwise');
    const running = await run('running-sum');
    expect(Array.from(pairwise.indices)).toEqual(Array.from(running.indices));
    // With τ = 0 the threshold matters little on aligned data, but it is applied: scores differ.
    const thresholded = await runSelector(
      getSelector('clipcov'),
      input,
      { count: 150 },
      { delta: 5 },
      { seed: 0 },
    );
    expect(thresholded.trace.some((e) => /negative/.test(e.message))).toBe(true);
  });

  it('zero-shot latent classes are the argmax cosine to the class prompts', async () => {
    const { input } = pairs(600, 5, 5, 0);
    const normal = gaussian(seededRandom(9));
    const prompts = Float32Array.from({ length: 5 * d }, normal);
    const withPrompts = { ...input, classPrompts: { names: ['a', 'b', 'c', 'd', 'e'], embeddings: prompts } };
    const c = await latentClasses(withPrompts, 'auto', 'auto', { rows: 600, cols: d, data: input.image }, 0);
    expect(c.source).toBe('zero-shot');
    for (let i = 0; i < 600; i++) {
      const scores = Array.from({ length: 5 }, (_, k) => dot(input.image, i, prompts, k));
      expect(c.assignment[i]).toBe(scores.indexOf(Math.max(...scores)));
    }
  });
});
