/**
 * The filters (caption-filter, image-filter, exact-dedup, eval-dedup) through the selector contract:
 * each is checked as a property over random inputs — every kept item passes the rule, every dropped
 * item fails it — and eval-dedup against a brute-force nearest-neighbour search.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { writeNpy } from '../../src/embed/npy.js';
import {
  runSelector,
  SelectionInputError,
  type Budget,
  type SampleFacts,
  type SelectInput,
} from '../../src/select/contract.js';
import { describeMethods, getSelector } from '../../src/select/registry.js';
import { charCount, wordCount } from '../../src/select/selectors/captionFilter.js';
import { tempDir } from '../helpers.js';

const ALL: Budget = { fraction: 1 };

function facts(n: number, over: Partial<SampleFacts> = {}): SampleFacts {
  return {
    captions: over.captions ?? Array.from({ length: n }, (_, i) => `caption ${i}`),
    width: over.width ?? new Int32Array(n).fill(256),
    height: over.height ?? new Int32Array(n).fill(256),
    contentHash: over.contentHash ?? Array.from({ length: n }, (_, i) => `h${i}`),
  };
}

function input(samples: SampleFacts, extra: Partial<SelectInput> = {}): SelectInput {
  return { n: samples.captions.length, dim: 0, samples, ...extra };
}

async function run(method: string, inp: SelectInput, params: object, budget: Budget = ALL) {
  return runSelector(getSelector(method), inp, budget, params, { seed: 0 });
}

/** Kept and dropped positions of a selection over a pool of n. */
function split(indices: Int32Array, n: number): { kept: number[]; dropped: number[] } {
  const set = new Set(indices);
  const kept: number[] = [];
  const dropped: number[] = [];
  for (let i = 0; i < n; i++) (set.has(i) ? kept : dropped).push(i);
  return { kept, dropped };
}

/** Random captions: 0–12 words of 1–9 letters, with odd whitespace (tabs, newlines, padding). */
function randomCaptions(n: number, seed: number): string[] {
  const rnd = seededRandom(seed);
  const spaces = [' ', '  ', '\t', '\n', ' \u00a0'];
  return Array.from({ length: n }, () => {
    const words = Math.floor(rnd() * 13);
    const parts = Array.from({ length: words }, () =>
      Array.from({ length: 1 + Math.floor(rnd() * 9) }, () =>
        String.fromCodePoint(rnd() < 0.1 ? 0x1f600 + Math.floor(rnd() * 20) : 97 + Math.floor(rnd() * 26)),
      ).join(''),
    );
    const sep = () => spaces[Math.floor(rnd() * spaces.length)]!;
    return (
      (rnd() < 0.3 ? sep() : '') +
      parts.map((p, i) => (i ? sep() : '') + p).join('') +
      (rnd() < 0.3 ? sep() : '')
    );
  });
}

describe('filters are registry methods', () => {
  it('are listed as filters, with their parameter schemas', () => {
    const byName = new Map(describeMethods().map((m) => [m.name, m]));
    for (const name of ['caption-filter', 'image-filter', 'exact-dedup', 'eval-dedup'])
      expect(byName.get(name)?.kind, name).toBe('filter');
    expect(byName.get('clip-score')?.kind).toBeUndefined();
  });

  it('a filter whose result exceeds the budget is an error that says how many pass', async () => {
    const n = 20;
    const err = await run('image-filter', input(facts(n)), { minSide: 10 }, { count: 5 }).catch((e) => e);
    expect(err).toBeInstanceOf(SelectionInputError);
    expect((err as Error).message).toMatch(/keeps 20 of 20 items, more than the budget of 5/);
  });

  it('a filter without its catalog facts is refused before any work', async () => {
    await expect(run('caption-filter', { n: 3, dim: 0 }, { minWords: 1 })).rejects.toThrow(
      /needs the catalog/,
    );
  });
});

describe('caption-filter', () => {
  it('keeps exactly the captions within every bound (random captions and bounds)', async () => {
    for (let trial = 0; trial < 12; trial++) {
      const rnd = seededRandom(100 + trial);
      const captions = randomCaptions(400, trial);
      const bound = (max: number) => (rnd() < 0.6 ? Math.floor(rnd() * max) : undefined);
      let [minWords, maxWords, minChars, maxChars] = [bound(6), bound(12), bound(30), bound(80)];
      if (minWords !== undefined && maxWords !== undefined && minWords > maxWords)
        [minWords, maxWords] = [maxWords, minWords];
      if (minChars !== undefined && maxChars !== undefined && minChars > maxChars)
        [minChars, maxChars] = [maxChars, minChars];
      const params = Object.fromEntries(
        Object.entries({ minWords, maxWords, minChars, maxChars }).filter(([, v]) => v !== undefined),
      );
      if (Object.keys(params).length === 0) params.minWords = 1;
      const s = await run('caption-filter', input(facts(captions.length, { captions })), params);
      // Oracle written independently of the filter's helpers.
      const passes = (c: string) => {
        const words = c.split(/\s+/).filter((w) => w.length > 0).length;
        const chars = Array.from(c.trim()).length;
        return (
          (params.minWords === undefined || words >= params.minWords) &&
          (params.maxWords === undefined || words <= params.maxWords) &&
          (params.minChars === undefined || chars >= params.minChars) &&
          (params.maxChars === undefined || chars <= params.maxChars)
        );
      };
      const { kept, dropped } = split(s.indices, captions.length);
      for (const i of kept) expect(passes(captions[i]!), `kept ${JSON.stringify(captions[i])}`).toBe(true);
      for (const i of dropped)
        expect(passes(captions[i]!), `dropped ${JSON.stringify(captions[i])}`).toBe(false);
      expect([...s.indices]).toEqual(kept); // pool order
    }
  });

  it('counts words across any whitespace and characters as code points', () => {
    expect(wordCount('  a\tb\n c  ')).toBe(3);
    expect(wordCount('   ')).toBe(0);
    expect(charCount(' 😀ab ')).toBe(3);
  });

  it('keeps the captions identified as the requested languages', async () => {
    const byLanguage: Record<string, string[]> = {
      en: [
        'a dog running on the beach',
        'red sports car parked outside',
        'two cats sleeping on a sofa',
        'fresh vegetables at the market',
      ],
      fr: [
        'un chien qui court sur la plage',
        'voiture de sport rouge garée dehors',
        'deux chats qui dorment sur le canapé',
        'légumes frais au marché',
      ],
      de: [
        'ein Hund läuft am Strand',
        'rotes Sportauto draußen geparkt',
        'zwei Katzen schlafen auf dem Sofa',
        'frisches Gemüse auf dem Markt',
      ],
      ru: [
        'собака бежит по пляжу',
        'две кошки спят на диване',
        'свежие овощи на рынке',
        'старый деревянный дом в лесу',
      ],
    };
    const captions = Object.values(byLanguage).flat();
    const language = Object.entries(byLanguage).flatMap(([l, cs]) => cs.map(() => l));
    const s = await run('caption-filter', input(facts(captions.length, { captions })), {
      languages: ['fr', 'ru'],
    });
    const kept = new Set(s.indices);
    const right = captions.filter((_, i) => kept.has(i) === ['fr', 'ru'].includes(language[i]!)).length;
    // A statistical identifier: allow one miss in 16.
    expect(right).toBeGreaterThanOrEqual(captions.length - 1);
    expect(s.trace.map((t) => t.message).join(' ')).toMatch(/not in fr\/ru/);
  });

  it('rejects an impossible request with a message naming it', async () => {
    const inp = input(facts(3));
    await expect(run('caption-filter', inp, {})).rejects.toThrow(/at least one of minWords/);
    await expect(run('caption-filter', inp, { minWords: 5, maxWords: 2 })).rejects.toThrow(
      /minWords 5 is above maxWords 2/,
    );
    await expect(run('caption-filter', inp, { languages: ['xx'] })).rejects.toThrow(/does not know xx/);
    await expect(run('caption-filter', inp, { languages: ['english'] })).rejects.toThrow(/ISO 639-1/);
    await expect(run('caption-filter', inp, { minWord: 2 })).rejects.toThrow(SelectionInputError);
  });
});

describe('image-filter', () => {
  it('keeps exactly the images within the side and aspect bounds (random sizes and bounds)', async () => {
    for (let trial = 0; trial < 12; trial++) {
      const rnd = seededRandom(200 + trial);
      const n = 500;
      const width = Int32Array.from({ length: n }, () => 1 + Math.floor(rnd() * 1200));
      const height = Int32Array.from({ length: n }, () => 1 + Math.floor(rnd() * 1200));
      const params: { minSide?: number; maxSide?: number; maxAspect?: number } = {};
      if (rnd() < 0.7) params.minSide = 1 + Math.floor(rnd() * 400);
      if (rnd() < 0.5) params.maxSide = (params.minSide ?? 1) + Math.floor(rnd() * 1000);
      if (rnd() < 0.7 || Object.keys(params).length === 0) params.maxAspect = 1 + rnd() * 3;
      // Planted boundary cases: exactly on each bound.
      if (params.minSide) width[0] = height[0] = params.minSide;
      if (params.maxSide) width[1] = height[1] = params.maxSide;
      if (params.maxAspect) [width[2], height[2]] = [Math.round(100 * params.maxAspect), 100];
      const s = await run('image-filter', input(facts(n, { width, height })), params);
      const passes = (i: number) => {
        const [w, h] = [width[i]!, height[i]!];
        return (
          (params.minSide === undefined || (w >= params.minSide && h >= params.minSide)) &&
          (params.maxSide === undefined || (w <= params.maxSide && h <= params.maxSide)) &&
          (params.maxAspect === undefined || Math.max(w / h, h / w) <= params.maxAspect)
        );
      };
      const { kept, dropped } = split(s.indices, n);
      expect(kept.length + dropped.length).toBe(n);
      for (const i of kept)
        expect(passes(i), `kept ${width[i]}×${height[i]} ${JSON.stringify(params)}`).toBe(true);
      for (const i of dropped)
        expect(passes(i), `dropped ${width[i]}×${height[i]} ${JSON.stringify(params)}`).toBe(false);
    }
  });

  it('rejects no bounds and crossed bounds', async () => {
    await expect(run('image-filter', input(facts(2)), {})).rejects.toThrow(/at least one of/);
    await expect(run('image-filter', input(facts(2)), { minSide: 500, maxSide: 100 })).rejects.toThrow(
      /above maxSide/,
    );
    await expect(run('image-filter', input(facts(2)), { maxAspect: 0.5 })).rejects.toThrow(
      SelectionInputError,
    );
  });
});

describe('exact-dedup', () => {
  /** n items whose hashes form planted groups; returns the hashes and the groups. */
  function planted(n: number, seed: number): { hashes: string[]; groups: Map<string, number[]> } {
    const rnd = seededRandom(seed);
    const hashes = Array.from({ length: n }, (_, i) => `u${i}`);
    // Copies of earlier items, some copied several times (groups of 2 to 5).
    for (let i = 0; i < n; i++) if (rnd() < 0.25) hashes[i] = hashes[Math.floor(rnd() * n)]!;
    const groups = new Map<string, number[]>();
    hashes.forEach((h, i) => groups.set(h, [...(groups.get(h) ?? []), i]));
    return { hashes, groups };
  }

  it('keeps exactly one item per byte-identical group, the first in pool order', async () => {
    for (const seed of [1, 2, 3]) {
      const n = 600;
      const { hashes, groups } = planted(n, seed);
      const s = await run('exact-dedup', input(facts(n, { contentHash: hashes })), {});
      const kept = [...s.indices];
      expect(new Set(kept.map((i) => hashes[i])).size).toBe(kept.length); // no hash twice
      expect(kept.length).toBe(groups.size); // every hash once
      for (const members of groups.values()) expect(kept).toContain(Math.min(...members));
      const copies = n - groups.size;
      expect(s.trace[0]!.message).toContain(`${copies} items are byte-identical copies`);
      expect(s.trace[0]!.items).toHaveLength(copies);
    }
  });

  it('keep=clip-score keeps the copy whose caption agrees best with its image', async () => {
    const n = 300;
    const dim = 8;
    const { hashes, groups } = planted(n, 7);
    const normal = gaussian(seededRandom(8));
    const unit = (m: Float32Array) => {
      for (let i = 0; i < n; i++) {
        const r = m.subarray(i * dim, (i + 1) * dim);
        const s = Math.hypot(...r);
        r.forEach((v, k) => (r[k] = v / s));
      }
      return m;
    };
    const image = unit(Float32Array.from({ length: n * dim }, normal));
    const text = unit(Float32Array.from({ length: n * dim }, normal));
    const score = (i: number) => {
      let s = 0;
      for (let k = 0; k < dim; k++) s += image[i * dim + k]! * text[i * dim + k]!;
      return s;
    };
    const s = await run('exact-dedup', input(facts(n, { contentHash: hashes }), { dim, image, text }), {
      keep: 'clip-score',
    });
    const kept = new Set(s.indices);
    for (const members of groups.values()) {
      const best = members.reduce((b, i) => (score(i) > score(b) ? i : b));
      expect(kept.has(best)).toBe(true);
      expect(members.filter((i) => kept.has(i))).toHaveLength(1);
    }
  });

  it('refuses a pool catalogued without content hashes', async () => {
    const f = facts(4, { contentHash: ['a', null, 'a', 'b'] });
    await expect(run('exact-dedup', input(f), {})).rejects.toThrow(/1 item of the pool have no content hash/);
  });
});

describe('eval-dedup', () => {
  /** A pool of unit vectors and an evaluation set holding noisy copies of some pool items. */
  function contaminated(n: number, m: number, dim: number, seed: number) {
    const normal = gaussian(seededRandom(seed));
    const rnd = seededRandom(seed + 1);
    const unitRows = (data: Float32Array, rows: number) => {
      for (let i = 0; i < rows; i++) {
        const r = data.subarray(i * dim, (i + 1) * dim);
        const s = Math.hypot(...r);
        r.forEach((v, k) => (r[k] = v / s));
      }
      return data;
    };
    const pool = unitRows(Float32Array.from({ length: n * dim }, normal), n);
    const evalSet = new Float32Array(m * dim);
    for (let j = 0; j < m; j++) {
      const source = rnd() < 0.5 ? Math.floor(rnd() * n) : -1;
      const noise = 0.02 + 0.3 * rnd();
      for (let k = 0; k < dim; k++)
        evalSet[j * dim + k] = (source >= 0 ? pool[source * dim + k]! : normal()) + noise * normal();
    }
    // Not normalised: the loader must scale rows itself (a .npy from elsewhere need not be unit).
    for (let i = 0; i < evalSet.length; i++) evalSet[i]! *= 3;
    return { pool, evalSet };
  }

  function bruteForceDistance(pool: Float32Array, evalSet: Float32Array, n: number, m: number, dim: number) {
    const norms = Array.from({ length: m }, (_, j) => {
      let s = 0;
      for (let k = 0; k < dim; k++) s += evalSet[j * dim + k]! ** 2;
      return Math.sqrt(s);
    });
    return Array.from({ length: n }, (_, i) => {
      let best = -Infinity;
      for (let j = 0; j < m; j++) {
        let dot = 0;
        for (let k = 0; k < dim; k++) dot += pool[i * dim + k]! * evalSet[j * dim + k]!;
        best = Math.max(best, dot / norms[j]!);
      }
      return 1 - best;
    });
  }

  it('drops exactly the items within the distance of an evaluation image (brute force, several tiles)', async () => {
    const dir = await tempDir();
    // 5,000 × 4,500 spans two query tiles and two base tiles of the kernel.
    for (const [n, m, dim, t] of [
      [300, 60, 16, 0.05],
      [5000, 4500, 8, 0.02],
    ] as const) {
      const { pool, evalSet } = contaminated(n, m, dim, n);
      const file = path.join(dir, `eval-${n}.npy`);
      await writeNpy(file, 'float32', evalSet, dim);
      const s = await run('eval-dedup', { n, dim, image: pool }, { against: file, maxDistance: t });
      const truth = bruteForceDistance(pool, evalSet, n, m, dim);
      const kept = new Set(s.indices);
      let near = 0;
      let checked = 0;
      for (let i = 0; i < n; i++) {
        if (truth[i]! <= t) near++;
        if (Math.abs(truth[i]! - t) < 1e-5) continue; // float32 kernel vs float64 oracle at the edge
        checked++;
        expect(kept.has(i), `item ${i} at distance ${truth[i]}`).toBe(truth[i]! > t);
        expect(s.scores![i]).toBeCloseTo(truth[i]!, 4);
      }
      expect(near).toBeGreaterThan(0); // the test plants contamination
      expect(near).toBeLessThan(n);
      expect(checked).toBeGreaterThan(n - 5);
    }
  });

  it('reads a workspace or embeddings folder and refuses a mismatched encoder or width', async () => {
    const dir = await tempDir();
    const dim = 4;
    const store = path.join(dir, 'eval-ws', 'embeddings');
    await mkdir(store, { recursive: true });
    await writeFile(
      path.join(store, 'store.json'),
      JSON.stringify({ encoder: { name: 'enc-a', fingerprint: 'fp-a', dim }, dtype: 'float32' }),
    );
    await writeNpy(path.join(store, 'd1-x.image.npy'), 'float32', Float32Array.of(1, 0, 0, 0), dim);
    await writeNpy(path.join(store, 'd1-y.image.npy'), 'float32', Float32Array.of(0, 1, 0, 0), dim);
    const image = Float32Array.of(1, 0, 0, 0, 0, 0, 1, 0, 0, 0.999, 0.0447, 0);
    const pool = { n: 3, dim, image };
    for (const against of [path.join(dir, 'eval-ws'), store]) {
      const s = await run(
        'eval-dedup',
        { ...pool, encoder: { name: 'enc-a', fingerprint: 'fp-a' } },
        { against },
      );
      expect([...s.indices]).toEqual([1]); // item 0 equals an eval row, item 2 is within 0.1 of the other
    }
    await expect(
      run('eval-dedup', { ...pool, encoder: { name: 'enc-b', fingerprint: 'fp-b' } }, { against: store }),
    ).rejects.toThrow(/embedded with enc-a, the pool with enc-b/);
    const wide = path.join(dir, 'wide.npy');
    await writeNpy(wide, 'float32', new Float32Array(10).fill(1), 5);
    await expect(run('eval-dedup', pool, { against: wide })).rejects.toThrow(
      /5-wide embeddings, the pool 4-wide/,
    );
    const zero = path.join(dir, 'zero.npy');
    await writeNpy(zero, 'float32', Float32Array.of(1, 0, 0, 0, 0, 0, 0, 0), dim);
    await expect(run('eval-dedup', pool, { against: zero })).rejects.toThrow(
      /row 1 of .*zero\.npy has zero length/,
    );
    await expect(run('eval-dedup', pool, { against: path.join(dir, 'nope.npy') })).rejects.toThrow(
      /does not exist/,
    );
    await expect(run('eval-dedup', pool, { against: dir })).rejects.toThrow(/neither a .npy file/);
  });
});
