/**
 * Reasons the selectors record for kept and dropped items (Selection.reasons), checked against facts
 * recomputed here from the same inputs: SemDeDup's "duplicate of" names an item at a cosine above its
 * cut, CRAIG's weight is the pick's weight and cluster, clip-score's score is the cosine, and so on.
 */
import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import {
  REASON_MAX,
  runSelector,
  type Budget,
  type Selection,
  type SelectInput,
  type Selector,
} from '../../src/select/contract.js';
import { getSelector } from '../../src/select/registry.js';
import { gaussianClasses } from '../support/gaussianClasses.js';

const N = 240;
const D = 16;

/**
 * Labelled unit image embeddings with 30 near-copies (rows 0–29 copied to rows 210–239 with a little
 * noise), and captions = image + noise, so clip-scores spread out.
 */
function pool(): SelectInput {
  const { x, labels } = gaussianClasses(N, D, 4, 7, 0.6);
  const normal = gaussian(seededRandom(11));
  const image = x.data;
  for (let c = 0; c < 30; c++) {
    const from = c;
    const to = N - 30 + c;
    for (let k = 0; k < D; k++) image[to * D + k] = image[from * D + k]! + 0.02 * normal();
    labels[to] = labels[from]!;
  }
  normaliseRows(image);
  const text = Float32Array.from(image, (v) => v + 0.25 * normal());
  normaliseRows(text);
  return { n: N, dim: D, image, text, labels };
}

function normaliseRows(m: Float32Array): void {
  for (let i = 0; i < m.length / D; i++) {
    const r = m.subarray(i * D, (i + 1) * D);
    const norm = Math.hypot(...r);
    for (let k = 0; k < D; k++) r[k]! /= norm;
  }
}

function dot(m: Float32Array, i: number, other: Float32Array, j: number): number {
  let s = 0;
  for (let k = 0; k < D; k++) s += m[i * D + k]! * other[j * D + k]!;
  return s;
}

const INPUT = pool();

async function run(method: string, budget: Budget, params: object = {}): Promise<Selection> {
  return runSelector(getSelector(method), INPUT, budget, params, { seed: 3 });
}

/** `{#i}` → i, the item a reason names. */
function refOf(reason: string): number {
  const m = /\{#(\d+)\}/.exec(reason);
  if (!m) throw new Error(`no item named in "${reason}"`);
  return Number(m[1]);
}

function numberAfter(reason: string, label: string): number {
  const m = new RegExp(`${label} (-?[0-9.]+)`).exec(reason);
  if (!m) throw new Error(`no "${label}" in "${reason}"`);
  return Number(m[1]);
}

function keptSet(s: Selection): Set<number> {
  return new Set(s.indices);
}

describe('reasons recorded by the selectors', () => {
  it('semdedup: a dropped item is a duplicate of an earlier item at a cosine above 1 − ε', async () => {
    const s = await run('semdedup', { fraction: 1 }, { epsilon: 0.05, clusters: 4 });
    const kept = keptSet(s);
    expect(kept.size).toBeLessThan(N); // the near-copies go
    for (let j = 0; j < N; j++) {
      const reason = s.reasons!.get(j)!;
      if (kept.has(j)) {
        expect(reason).toMatch(/^kept: /);
        continue;
      }
      expect(reason).toMatch(/^duplicate of \{#\d+\} \(cos [0-9.]+ ≥ 1 − ε = 0\.950\)$/);
      const other = refOf(reason);
      const cos = dot(INPUT.image!, j, INPUT.image!, other);
      expect(cos).toBeGreaterThanOrEqual(0.95);
      expect(numberAfter(reason, 'cos')).toBeCloseTo(cos, 3);
      expect(s.scores![j]).toBeCloseTo(cos, 5);
    }
  });

  it('semdedup with a calibrated ε: every dropped item is at least as close as the budget cut', async () => {
    const s = await run('semdedup', { count: 150 }, { clusters: 4 });
    const kept = keptSet(s);
    const cut = Math.max(...[...kept].map((i) => s.scores![i]!));
    for (let j = 0; j < N; j++) {
      if (kept.has(j)) continue;
      const reason = s.reasons!.get(j)!;
      expect(numberAfter(reason, "the budget's cut")).toBeCloseTo(cut, 3);
      const cos = dot(INPUT.image!, j, INPUT.image!, refOf(reason));
      expect(cos).toBeGreaterThanOrEqual(cut - 1e-6);
    }
  });

  it("craig: a pick's reason gives its selection weight, and that many items name it", async () => {
    const s = await run('craig', { count: 24 });
    const kept = keptSet(s);
    const representing = new Map<number, number>();
    for (const [i, reason] of s.reasons!) {
      if (kept.has(i)) continue;
      if (/^a pick of class \d+, cut by the budget/.test(reason)) continue;
      // Per-class quotas are rounded up, so a few picks go when the classes are merged.
      const trimmed = /^its cluster's pick \{#\d+\} was cut by the budget \(class \d+\)$/.test(reason);
      if (!trimmed) expect(reason).toMatch(/^represented by pick \{#\d+\} \(class \d+\)$/);
      const pick = refOf(reason);
      expect(kept.has(pick)).toBe(!trimmed);
      expect(INPUT.labels![pick]).toBe(INPUT.labels![i]);
      representing.set(pick, (representing.get(pick) ?? 0) + 1);
    }
    s.indices.forEach((i, t) => {
      const reason = s.reasons!.get(i)!;
      expect(numberAfter(reason, 'weight')).toBe(s.weights![t]);
      expect(numberAfter(reason, 'cluster of')).toBe(s.weights![t]);
      // The pick stands for itself and every item that names it.
      expect(1 + (representing.get(i) ?? 0)).toBe(s.weights![t]);
    });
  });

  it('clip-score: the score in each reason is the cosine of image and caption, against the cut', async () => {
    const s = await run('clip-score', { count: 60 });
    const kept = keptSet(s);
    const cut = Math.min(...[...kept].map((i) => dot(INPUT.image!, i, INPUT.text!, i)));
    expect(s.reasons!.size).toBe(N);
    for (const [i, reason] of s.reasons!) {
      const cos = dot(INPUT.image!, i, INPUT.text!, i);
      expect(numberAfter(reason, 'score')).toBeCloseTo(cos, 4);
      if (kept.has(i)) expect(reason).toMatch(/≥ the budget's cut/);
      else expect(cos).toBeLessThanOrEqual(cut + 1e-6);
    }
    const t = await run('clip-score', { fraction: 1 }, { mode: 'threshold', threshold: 0.9 });
    for (const [i, reason] of t.reasons!) {
      const above = dot(INPUT.image!, i, INPUT.text!, i) >= 0.9;
      expect(reason).toContain(above ? '≥ threshold 0.9000' : 'below the threshold 0.9000');
    }
  });

  it('facility-location: the gain at each pick, and every other item names its representing pick', async () => {
    const s = await run('facility-location', { count: 20 });
    const kept = keptSet(s);
    s.indices.forEach((i, t) => {
      const reason = s.reasons!.get(i)!;
      expect(reason).toContain(`at pick ${t + 1},`);
      // Three significant digits.
      expect(Math.abs(numberAfter(reason, 'gain') - s.gains![t]!)).toBeLessThan(5e-3 * s.gains![t]!);
      expect(numberAfter(reason, 'stands for')).toBe(s.weights![t]);
    });
    for (const [i, reason] of s.reasons!) if (!kept.has(i)) expect(kept.has(refOf(reason))).toBe(true);
  });

  it('k-center: each pick was the farthest point, at the distance its reason gives', async () => {
    const s = await run('k-center', { count: 12 }, { dims: 0 });
    const x = INPUT.image!;
    const distance = (a: number, b: number) => Math.sqrt(Math.max(0, 2 - 2 * dot(x, a, x, b)));
    expect(s.reasons!.get(s.indices[0]!)).toBe('seeded random start');
    for (let t = 1; t < s.indices.length; t++) {
      const centres = Array.from(s.indices.subarray(0, t));
      const nearest = (i: number) => Math.min(...centres.map((c) => distance(i, c)));
      const farthest = Math.max(...Array.from({ length: N }, (_, i) => nearest(i)));
      const radius = numberAfter(s.reasons!.get(s.indices[t]!)!, 'radius');
      expect(radius).toBeCloseTo(nearest(s.indices[t]!), 3);
      expect(radius).toBeCloseTo(farthest, 3);
    }
  });

  it('clipcov: every item has a reason; a pick names its class and its alignment ⟨u_i, t_i⟩', async () => {
    const s = await run('clipcov', { count: 40 }, { classes: 'labels' });
    expect(s.reasons!.size).toBe(N);
    const kept = keptSet(s);
    for (const [i, reason] of s.reasons!) {
      expect(reason.length).toBeLessThanOrEqual(REASON_MAX);
      expect(reason).toContain(`class ${INPUT.labels![i]}`);
      const alignment = Math.max(0, dot(INPUT.image!, i, INPUT.text!, i));
      expect(numberAfter(reason, 'alignment')).toBeCloseTo(alignment, 3);
      expect(reason.startsWith('not picked')).toBe(!kept.has(i));
    }
  });

  it('the filters give the failing test of each dropped item, and exact-dedup the copy it keeps', async () => {
    const captions = Array.from({ length: 6 }, (_, i) => 'word '.repeat(i + 1).trim());
    const samples = {
      captions,
      width: Int32Array.from([50, 300, 300, 900, 300, 300]),
      height: Int32Array.from([300, 300, 300, 300, 300, 300]),
      contentHash: ['a', 'b', 'a', 'c', 'b', 'd'],
    };
    const input: SelectInput = { n: 6, dim: 0, samples };
    const all = { fraction: 1 };
    const caption = await runSelector(
      getSelector('caption-filter'),
      input,
      all,
      { minWords: 3 },
      { seed: 0 },
    );
    expect(caption.reasons).toEqual(
      new Map([
        [0, '1 words, below minWords 3'],
        [1, '2 words, below minWords 3'],
      ]),
    );
    const image = await runSelector(
      getSelector('image-filter'),
      input,
      all,
      { minSide: 100, maxAspect: 2 },
      {
        seed: 0,
      },
    );
    expect(image.reasons!.get(0)).toBe('50×300: shorter side 50 below minSide 100');
    expect(image.reasons!.get(3)).toBe('900×300: aspect 3.00 above maxAspect 2');
    expect(image.reasons!.size).toBe(2);
    const dedup = await runSelector(getSelector('exact-dedup'), input, all, {}, { seed: 0 });
    expect(dedup.reasons!.get(2)).toBe('byte-identical copy of {#0} (kept: first in catalog order)');
    expect(dedup.reasons!.get(4)).toBe('byte-identical copy of {#1} (kept: first in catalog order)');
    expect(dedup.reasons!.get(0)).toMatch(/^kept: first in catalog order of 2/);
  });

  it('the contract refuses a reason for an item outside the pool or longer than the bound', async () => {
    const returning = (reasons: Map<number, string>): Selector => ({
      name: 'fixed',
      description: 'returns the given reasons',
      params: (getSelector('random') as Selector).params,
      needs: [],
      select: async () => ({ indices: Int32Array.from([0]), reasons, trace: [] }),
    });
    const go = (reasons: Map<number, string>) =>
      runSelector(returning(reasons), { n: 3, dim: 0 }, { count: 1 }, {}, { seed: 0 });
    await expect(go(new Map([[3, 'x']]))).rejects.toThrow(/reason for invalid item 3/);
    await expect(go(new Map([[1, 'x'.repeat(REASON_MAX + 1)]]))).rejects.toThrow(/longer than 120/);
    expect((await go(new Map([[1, 'dropped: fine']]))).reasons!.get(1)).toBe('dropped: fine');
  });
});
