import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import {
  parseBudget,
  resolveBudget,
  runSelector,
  SelectionInputError,
  type SelectInput,
} from '../../src/select/contract.js';
import { describeMethods, getSelector, registry, selectionMethods } from '../../src/select/registry.js';
import { clipScores } from '../../src/select/selectors/clipScore.js';
import { allocateBudget } from '../../src/select/stratify.js';

/** Unit vectors with a label each; captions = image + noise, some shuffled (mismatched). */
function pool(n: number, dim: number, seed: number, mismatched = 0.2): SelectInput & { bad: Set<number> } {
  const normal = gaussian(seededRandom(seed));
  const rnd = seededRandom(seed + 1);
  const image = new Float32Array(n * dim);
  const text = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const bad = new Set<number>();
  const unit = (v: Float32Array) => {
    const s = Math.hypot(...v);
    for (let i = 0; i < v.length; i++) v[i]! /= s;
  };
  for (let i = 0; i < n; i++) {
    labels[i] = i % 5;
    const u = image.subarray(i * dim, (i + 1) * dim);
    for (let k = 0; k < dim; k++) u[k] = normal() + (k === labels[i] ? 3 : 0);
    unit(u);
    const t = text.subarray(i * dim, (i + 1) * dim);
    const partner = rnd() < mismatched ? Math.floor(rnd() * n) : i;
    if (partner !== i) bad.add(i);
    for (let k = 0; k < dim; k++) t[k] = (partner === i ? u[k]! : normal()) + 0.3 * normal();
    unit(t);
  }
  return { n, dim, image, text, labels, bad };
}

describe('selector contract', () => {
  it('resolves budgets as counts or fractions and rejects impossible ones with a message', () => {
    expect(resolveBudget({ count: 10 }, 100)).toBe(10);
    expect(resolveBudget({ fraction: 0.1 }, 995)).toBe(100); // round(99.5) = 100
    expect(resolveBudget(parseBudget('10%'), 50)).toBe(5);
    expect(parseBudget('250')).toEqual({ count: 250 });
    expect(() => resolveBudget({ count: 0 }, 10)).toThrow(SelectionInputError);
    expect(() => resolveBudget({ count: 11 }, 10)).toThrow(/pool size 10/);
    expect(() => resolveBudget({ fraction: 1.5 }, 10)).toThrow(/\(0, 1\]/);
  });

  it('checks needs and parameters before running', async () => {
    const p = pool(20, 8, 1);
    await expect(
      runSelector(
        getSelector('clip-score'),
        { n: 20, dim: 8, image: p.image },
        { count: 5 },
        {},
        { seed: 0 },
      ),
    ).rejects.toThrow(/clip-score needs text embeddings/);
    await expect(
      runSelector(getSelector('random'), p, { count: 5 }, { stratified: 'yes' }, { seed: 0 }),
    ).rejects.toThrow(/stratified/);
    // A misspelt option is an error naming it, not a silent run with the defaults.
    await expect(
      runSelector(getSelector('random'), p, { count: 5 }, { stratify: true }, { seed: 0 }),
    ).rejects.toThrow(/stratify/);
    expect(() => getSelector('nope')).toThrow(/available: random, clip-score/);
  });

  it('lists every method with a JSON schema of its parameters and their defaults', () => {
    const methods = describeMethods();
    expect(methods.map((m) => m.name)).toEqual([...registry.keys()]);
    const random = methods.find((m) => m.name === 'random')!;
    expect(random.params).toMatchObject({ properties: { stratified: { type: 'boolean', default: false } } });
  });

  // Filters keep whatever passes (test/select/filters.test.ts), so a 20% budget does not apply to them.
  it.each(selectionMethods())('%s is deterministic under a seed and returns valid picks', async (name) => {
    const p = pool(200, 16, 3);
    const run = (seed: number) => runSelector(getSelector(name), p, { fraction: 0.2 }, {}, { seed });
    const a = await run(7);
    const b = await run(7);
    expect(Array.from(a.indices)).toEqual(Array.from(b.indices));
    if (name === 'graft') {
      // MaxVol picks at most rank(X_b) ≤ d = 16 rows per batch (two batches here): |S| ≈ N·f only.
      expect(a.indices.length).toBe(32);
    } else expect(a.indices.length).toBe(40);
  });
});

describe('uniform random (B1)', () => {
  it('exact size, no duplicates, different seeds differ', async () => {
    const p = pool(1000, 4, 2);
    const a = await runSelector(getSelector('random'), p, { count: 100 }, {}, { seed: 1 });
    const b = await runSelector(getSelector('random'), p, { count: 100 }, {}, { seed: 2 });
    expect(new Set(a.indices).size).toBe(100);
    expect(Array.from(a.indices)).not.toEqual(Array.from(b.indices));
  });

  it('stratified: exact per-class counts; each item kept with frequency f over many seeds (within 3σ)', async () => {
    const labels = Int32Array.from({ length: 60 }, (_, i) => (i < 40 ? 0 : i < 55 ? 1 : 2));
    const input = { n: 60, dim: 1, labels };
    const hits = new Float64Array(60);
    const seeds = 1000;
    for (let seed = 0; seed < seeds; seed++) {
      const s = await runSelector(
        getSelector('random'),
        input,
        { count: 12 },
        { stratified: true, weights: true },
        { seed },
      );
      const perClass = [0, 0, 0];
      for (const i of s.indices) {
        perClass[labels[i]!]! += 1;
        hits[i]! += 1;
      }
      expect(perClass).toEqual(Array.from(allocateBudget([40, 15, 5], 12)));
      if (seed === 0) expect(s.weights![0]).toBeCloseTo(40 / 8);
    }
    const quotas = allocateBudget([40, 15, 5], 12);
    hits.forEach((h, i) => {
      const c = labels[i]!;
      const f = quotas[c]! / [40, 15, 5][c]!;
      const sigma = Math.sqrt(seeds * f * (1 - f));
      expect(Math.abs(h - seeds * f)).toBeLessThanOrEqual(3 * sigma + 1);
    });
  });

  it('largest-remainder rounding sums to the budget', () => {
    expect(Array.from(allocateBudget([40, 15, 5], 12))).toEqual([8, 3, 1]);
    expect(Array.from(allocateBudget([1, 1, 1], 2))).toEqual([1, 1, 0]);
    const a = allocateBudget([7, 11, 13, 17], 10);
    expect(a.reduce((x, y) => x + y, 0)).toBe(10);
  });
});

describe('CLIP-score filter (B2)', () => {
  it('keeps the highest image–caption scores, so far fewer mismatched pairs than random', async () => {
    const p = pool(1000, 16, 4, 0.3);
    const s = await runSelector(getSelector('clip-score'), p, { fraction: 0.5 }, {}, { seed: 0 });
    const scores = clipScores(p.image!, p.text!, p.n, p.dim);
    const kept = new Set(s.indices);
    const minKept = Math.min(...Array.from(s.indices, (i) => scores[i]!));
    for (let i = 0; i < p.n; i++) if (!kept.has(i)) expect(scores[i]!).toBeLessThanOrEqual(minKept);
    const badKept = Array.from(s.indices).filter((i) => p.bad.has(i)).length / s.indices.length;
    expect(badKept).toBeLessThan(0.3 / 3);
  });

  it('is monotone in the budget and invariant to pool order', async () => {
    const p = pool(300, 8, 5);
    const small = await runSelector(getSelector('clip-score'), p, { count: 30 }, {}, { seed: 0 });
    const large = await runSelector(getSelector('clip-score'), p, { count: 90 }, {}, { seed: 0 });
    expect(Array.from(large.indices.slice(0, 30))).toEqual(Array.from(small.indices));
    // Reverse the pool: the same items (mapped back) are chosen.
    const perm = Array.from({ length: 300 }, (_, i) => 299 - i);
    const permute = (m: Float32Array) => {
      const out = new Float32Array(m.length);
      perm.forEach((src, dst) => out.set(m.subarray(src * 8, src * 8 + 8), dst * 8));
      return out;
    };
    const reversed = await runSelector(
      getSelector('clip-score'),
      { n: 300, dim: 8, image: permute(p.image!), text: permute(p.text!) },
      { count: 30 },
      {},
      { seed: 0 },
    );
    expect(new Set(Array.from(reversed.indices, (i) => perm[i]))).toEqual(new Set(small.indices));
  });

  it('threshold mode keeps exactly the pairs at or above τ', async () => {
    const p = pool(200, 8, 6);
    const scores = clipScores(p.image!, p.text!, p.n, p.dim);
    const s = await runSelector(
      getSelector('clip-score'),
      p,
      { count: 200 },
      { mode: 'threshold', threshold: 0.5 },
      { seed: 0 },
    );
    expect(s.indices.length).toBe(Array.from(scores).filter((v) => v >= 0.5).length);
  });
});
