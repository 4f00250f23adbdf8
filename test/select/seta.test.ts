import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { runSelector, type SelectInput, type Selection } from '../../src/select/contract.js';
import { warmProxy } from '../../src/select/proxy/problem.js';
import { simulateSeta, windowSelection, type EpochView } from '../../src/select/seta/simulate.js';
import {
  isAnnealed,
  keepRatio,
  keptCount,
  kmeans1d,
  lossGroups,
  middleWindow,
  roundHalfEven,
  savedRatio,
  windowAt,
  windowWidth,
} from '../../src/select/seta/window.js';
import { seta } from '../../src/select/selectors/seta.js';
import { gaussianClasses } from '../support/gaussianClasses.js';

/** 1-based groups kept at round t (the spec's worked-example notation). */
const keptGroups = (t: number, groups: number, scale: number) => {
  const w = windowAt(t, groups, windowWidth(groups, scale));
  return Array.from({ length: w.width }, (_, g) => w.start + g + 1);
};

/** Labelled toy pool with a share of labels flipped to another class (the "mismatched pairs"). */
function plantedPool(n: number, flipShare: number, seed: number) {
  const { x, labels } = gaussianClasses(n, 16, 5, seed, 1.5);
  const random = seededRandom(seed + 1);
  const flipped = new Uint8Array(n);
  const noisy = labels.slice();
  for (let i = 0; i < n; i++) {
    if (random() < flipShare) {
      noisy[i] = (labels[i]! + 1 + Math.floor(random() * 4)) % 5;
      flipped[i] = 1;
    }
  }
  const input: SelectInput = { n, dim: 16, image: x.data, labels: noisy };
  return { input, flipped, x, labels: noisy };
}

const share = (ids: ArrayLike<number>, flag: Uint8Array) => {
  let c = 0;
  for (let t = 0; t < ids.length; t++) c += flag[ids[t]!]!;
  return c / ids.length;
};

function chiSquare(counts: number[], expected: number[]): number {
  return counts.reduce((s, c, g) => s + (c - expected[g]!) ** 2 / expected[g]!, 0);
}

/** Counts of `kept` per score quintile of the pool (quintiles of `scores`). */
function quintileCounts(scores: Float32Array, kept: ArrayLike<number>): number[] {
  const order = Array.from(scores.keys()).sort((a, b) => scores[a]! - scores[b]! || a - b);
  const quintile = new Int32Array(scores.length);
  order.forEach((i, r) => (quintile[i] = Math.floor((5 * r) / scores.length)));
  const counts = [0, 0, 0, 0, 0];
  for (let t = 0; t < kept.length; t++) counts[quintile[kept[t]!]!]!++;
  return counts;
}

describe('SeTa window arithmetic (S1, S5, S6, S7)', () => {
  it('follows the worked example for G = 5 and window scales 0.6, 0.9, 1.0', () => {
    expect(windowWidth(5, 0.6)).toBe(3);
    expect([1, 2, 3, 4].map((t) => keptGroups(t, 5, 0.6))).toEqual([
      [2, 3, 4],
      [3, 4, 5],
      [1, 2, 3],
      [2, 3, 4],
    ]);
    // 0.9: round(4.5) = 4 in Python (half to even), not Math.round's 5 — the window must stay on.
    expect(Math.round(4.5)).toBe(5);
    expect(windowWidth(5, 0.9)).toBe(4);
    expect([1, 2, 3, 4].map((t) => keptGroups(t, 5, 0.9))).toEqual([
      [2, 3, 4, 5], // drops the easiest
      [1, 2, 3, 4], // drops the hardest
      [2, 3, 4, 5],
      [1, 2, 3, 4],
    ]);
    for (let t = 0; t < 6; t++) expect(keptGroups(t, 5, 1)).toEqual([1, 2, 3, 4, 5]);
    // Round 0 keeps everything whatever the window (epoch-0 rule).
    expect(keptGroups(0, 5, 0.6)).toEqual([1, 2, 3, 4, 5]);
    expect([0.5, 1.5, 2.5, 3.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([0, 2, 2, 4, 2, 3]);
    expect(() => windowWidth(5, 0.05)).toThrow(RangeError);
    expect(middleWindow(5, 4)).toEqual({ start: 0, width: 4 }); // static analogue drops the hardest
    expect(middleWindow(5, 3)).toEqual({ start: 1, width: 3 }); // … or one group at each end
  });

  it('clamps the keep ratio, anneals after δ·E and books the saved ratio', () => {
    expect(keepRatio(0.95)).toBe(0.1);
    expect(keepRatio(0)).toBe(1);
    expect(keepRatio(0.1)).toBeCloseTo(0.9, 12);
    expect(keptCount(keepRatio(0.71), 100)).toBe(29); // 0.29·100 = 28.999… in floating point
    const annealed = Array.from({ length: 20 }, (_, e) => e).filter((e) => isAnnealed(e, 20, 0.875));
    expect(annealed).toEqual([17, 18, 19]); // 1-based epochs 18–20 > 17.5
    expect(savedRatio([100, 80, 50], 100, 3)).toBeCloseTo(70 / 300, 12);
  });
});

describe('SeTa difficulty groups (S4)', () => {
  it('exact 1-D k-means matches brute force on small random sets', () => {
    const random = seededRandom(3);
    const sse = (v: Float64Array, b: ArrayLike<number>) => {
      let total = 0;
      for (let g = 0; g + 1 < b.length; g++) {
        const part = v.subarray(b[g]!, b[g + 1]!);
        const m = part.reduce((s, x) => s + x, 0) / part.length;
        total += part.reduce((s, x) => s + (x - m) ** 2, 0);
      }
      return total;
    };
    for (let trial = 0; trial < 20; trial++) {
      const n = 8 + Math.floor(random() * 8);
      const v = Float64Array.from({ length: n }, () => random() ** 2 * 5).sort();
      let best = Infinity;
      for (let a = 1; a < n; a++)
        for (let b = a + 1; b < n; b++)
          for (let c = b + 1; c < n; c++) best = Math.min(best, sse(v, [0, a, b, c, n]));
      const bounds = kmeans1d(v, 4);
      expect(sse(v, bounds)).toBeCloseTo(best, 9);
      for (let g = 0; g < 4; g++) expect(bounds[g + 1]!).toBeGreaterThan(bounds[g]!);
    }
  });

  it('recovers five separated Gaussians of unequal sizes, sorted by mean; the kept set is the window', () => {
    const random = seededRandom(5);
    const normal = gaussian(random);
    const sizes = [300, 60, 200, 140, 100];
    const means = [4, 0.2, 1.5, 8, 6]; // deliberately unsorted
    const component: number[] = [];
    const values: number[] = [];
    sizes.forEach((m, c) => {
      for (let t = 0; t < m; t++) {
        component.push(c);
        values.push(means[c]! + 0.15 * normal());
      }
    });
    // Shuffle the candidates so nothing depends on their order.
    const perm = Array.from(values.keys()).sort(() => random() - 0.5);
    const scores = Float32Array.from(perm, (i) => values[i]!);
    const comp = Int32Array.from(perm, (i) => component[i]!);
    const groups = lossGroups(scores, 5);
    expect(groups.method).toBe('kmeans');
    const rankOfComponent = [...means.keys()].sort((a, b) => means[a]! - means[b]!);
    for (let g = 0; g < 5; g++) {
      const members = Array.from(groups.order.subarray(groups.bounds[g]!, groups.bounds[g + 1]!));
      expect(new Set(members.map((p) => comp[p]))).toEqual(new Set([rankOfComponent[g]]));
      expect(members).toHaveLength(sizes[rankOfComponent[g]!]!);
      expect(groups.means[g]!).toBeCloseTo(means[rankOfComponent[g]!]!, 1);
    }
    // Candidates are pool ids 1000 + position; round 2 of (G = 5, 0.6) keeps groups 3–5 exactly.
    const candidates = Int32Array.from(scores.keys(), (p) => 1000 + p);
    const pool = new Float32Array(1000 + scores.length);
    pool.set(scores, 1000);
    for (const [t, window] of [
      [2, [2, 3, 4]],
      [3, [0, 1, 2]],
      [0, [0, 1, 2, 3, 4]],
    ] as const) {
      const { kept } = windowSelection(candidates, pool, 5, 3, t);
      const wanted = new Set(window.map((g) => rankOfComponent[g]));
      const expected = Array.from(candidates).filter((_, p) => wanted.has(comp[p]!));
      expect([...kept].sort((a, b) => a - b)).toEqual(expected);
    }
  });

  it('special cases: G = 1 is one group, equal scores are G balanced chunks in list order', () => {
    const one = lossGroups(Float32Array.of(3, 1, 2), 1);
    expect(Array.from(one.bounds)).toEqual([0, 3]);
    const equal = lossGroups(new Float32Array(12).fill(3), 5);
    expect(equal.method).toBe('chunks');
    expect(Array.from(equal.bounds)).toEqual([0, 2, 4, 7, 9, 12]);
    expect(Array.from(equal.order)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });
});

describe('SeTa proxy simulation', () => {
  const { input, flipped, x, labels } = plantedPool(3000, 0.05, 11);
  const sgd = { lr: 2, momentum: 0.9, weightDecay: 1e-4, batchSize: 512 };

  async function simulate(options: { keep: number; width: number; epochs: number }, seed = 1) {
    const views: Array<EpochView & { snapshot: Float32Array }> = [];
    const proxy = await warmProxy(x, labels, 5, 0, sgd, seed);
    const run = await simulateSeta({
      features: x,
      labels,
      proxy,
      sgd,
      groups: 5,
      delta: 0.875,
      refreshEvery: 0,
      seed,
      ...options,
      onEpoch: (v) => views.push({ ...v, snapshot: v.scores.slice() }),
    });
    return { run, views };
  }

  it('epoch 0 keeps every group; window rounds keep a contiguous loss-rank interval; annealing ignores scores', async () => {
    const N = input.n;
    const { run, views } = await simulate({ keep: 0.6, width: 3, epochs: 16 });
    const size = keptCount(0.6, N);
    expect(views[0]!.kept).toHaveLength(size);
    expect(new Set(views[0]!.kept)).toEqual(new Set(views[0]!.candidates));
    expect(run.rounds[0]!.info).toMatchObject({ windowStart: 0, windowWidth: 5, annealed: 'no' });

    for (const v of views.filter((w) => !w.annealed && w.epoch > 0)) {
      // Independently of the grouping: kept = candidates whose scores lie in one rank interval.
      const inKept = new Set(v.kept);
      const ranked = Array.from(v.candidates).sort((a, b) => v.snapshot[a]! - v.snapshot[b]! || a - b);
      const positions = ranked.flatMap((i, r) => (inKept.has(i) ? [r] : []));
      expect(positions.at(-1)! - positions[0]! + 1).toBe(v.kept.length);
      expect(positions[0] === 0).toBe(v.window!.start === 0);
      expect(positions.at(-1) === ranked.length - 1).toBe(v.window!.start === 2);
    }

    // (S6): epochs 15, 16 (1-based) > 14: ⌊κN⌋ uniformly, whatever the scores. Pooled over both.
    const annealed = views.filter((v) => v.annealed);
    expect(annealed.map((v) => v.epoch)).toEqual([14, 15]);
    let chi = 0;
    for (const v of annealed) {
      expect(v.kept).toHaveLength(size);
      expect(new Set(v.kept).size).toBe(size);
      chi += chiSquare(
        quintileCounts(v.snapshot, v.kept),
        [1, 1, 1, 1, 1].map(() => (size * 1) / 5),
      );
    }
    // Two draws, 8 degrees of freedom: p = 0.001 at 26.1.
    expect(chi).toBeLessThan(26.1);
    // The same statistic on a window round is enormous (the test has power).
    const hard = views.find((v) => v.window?.start === 2)!;
    const windowChi = chiSquare(
      quintileCounts(hard.snapshot, hard.kept),
      [1, 1, 1, 1, 1].map(() => hard.kept.length / 5),
    );
    expect(windowChi).toBeGreaterThan(100);
    expect(run.savedRatio).toBeCloseTo(savedRatio(run.keptSizes, N, 16), 12);
  });

  it('keeps stale scores unless refreshEvery recomputes every loss', async () => {
    const stale = async (refreshEvery: number) => {
      const counts: number[] = [];
      const proxy = await warmProxy(x, labels, 5, 0, sgd, 1);
      await simulateSeta({
        ...{ features: x, labels, proxy, sgd, groups: 5, width: 4, delta: 0.875, seed: 1 },
        ...{ keep: 0.5, epochs: 3, refreshEvery },
        onEpoch: (v) => counts.push(v.scores.filter((s) => s === 3).length),
      });
      return counts;
    };
    const off = await stale(0);
    expect(off[0]).toBe(3000); // (S3) every score starts at 3.0
    expect(off[1]).toBe(1500); // only the 1,500 trained in epoch 0 were refreshed (§8)
    expect(await stale(1)).toEqual([3000, 0, 0]);
  });

  it('the planted mismatched labels form the hardest group, which most window rounds drop', async () => {
    // G = 5, w = 3: the hardest group is kept only at window start 2, so dropped in 2 of 3 rounds.
    const { views } = await simulate({ keep: 0.8, width: 3, epochs: 16 });
    // From epoch 3 on (before that, never-trained items' stale 3.0 can still form the top group, §8).
    const window = views.filter((v) => !v.annealed && v.epoch >= 3);
    const poolShare = share(Array.from(flipped.keys()), flipped);
    const precision = window.map((v) => {
      const hardest = v.groups!.order.subarray(v.groups!.bounds[4]!, v.groups!.bounds[5]!);
      return share(
        Array.from(hardest, (q) => v.candidates[q]!),
        flipped,
      );
    });
    console.log('hardest-group mismatch share per round', precision.map((p) => p.toFixed(2)).join(' '));
    for (const p of precision) expect(p).toBeGreaterThan(0.8);
    const dropping = window.filter((v) => v.window!.start < 2);
    expect(dropping.length).toBeGreaterThan(window.length / 2);

    const sel = await runSelector(
      seta,
      input,
      { fraction: 0.5 },
      { groups: 5, windowScale: 0.6, epochs: 16, features: 'image' },
      { seed: 2 },
    );
    const rounds = sel.schedule!.rounds;
    const shares = rounds.map((r) => share(r.indices, flipped));
    console.log(
      'planted: pool share',
      poolShare.toFixed(3),
      'kept shares by window start',
      rounds.map((r, t) => `${r.info!.windowStart ?? 'A'}:${shares[t]!.toFixed(3)}`).join(' '),
    );
    // Window start 0 drops the two hardest groups: the mismatched labels are mostly gone …
    rounds.forEach((r, t) => {
      if (t >= 2 && r.info!.windowStart === 0) expect(shares[t]!).toBeLessThan(0.5 * poolShare);
    });
    // … and annealing brings them back (seta.md §8).
    rounds.forEach((r, t) => {
      if (r.info!.annealed === 'yes') expect(shares[t]!).toBeGreaterThan(0.6 * poolShare);
    });
    expect(sel.trace.map((e) => e.stage)).toContain('static analogue');

    // The static analogue at the defaults (G = 5, w = 4: the middle window drops the hardest group)
    // holds fewer mismatched labels than a random subset of the same size (share = pool share ± 0.005).
    const defaults = await runSelector(seta, input, { fraction: 0.5 }, { features: 'image' }, { seed: 2 });
    console.log('static analogue share', share(defaults.indices, flipped).toFixed(3));
    expect(defaults.indices).toHaveLength(1500);
    expect(share(defaults.indices, flipped)).toBeLessThan(poolShare - 0.015);
  });

  it('slides easy → hard through runSelector, with valid, reproducible rounds and the reported saved ratio', async () => {
    const run = (seed: number, extra: object = {}) =>
      runSelector(
        seta,
        input,
        { count: 1200 },
        { groups: 5, windowScale: 0.6, epochs: 12, ...extra },
        { seed },
      );
    const a = await run(4);
    const b = await run(4);
    const c = await run(5);
    const rounds = a.schedule!.rounds;
    expect(a.schedule!.unit).toBe('epoch');
    expect(rounds).toHaveLength(12);
    rounds.forEach((r, e) => {
      expect(r.start).toBeCloseTo(e / 12, 12);
      expect(r.end).toBeCloseTo((e + 1) / 12, 12);
      expect(new Set(r.indices).size).toBe(r.indices.length);
      expect(r.indices.every((i) => i >= 0 && i < input.n)).toBe(true);
      expect(Array.from(r.indices)).toEqual(Array.from(b.schedule!.rounds[e]!.indices));
    });
    expect(Array.from(a.indices)).toEqual(Array.from(b.indices));
    expect(Array.from(c.schedule!.rounds[1]!.indices)).not.toEqual(Array.from(rounds[1]!.indices));

    // Window starts cycle 1, 2, 0, 1, … after the all-groups round 0, until annealing (epochs 12 > 10.5).
    const starts = rounds.map((r) => r.info!.windowStart ?? 'annealed');
    expect(starts).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 'annealed', 'annealed']);
    // The kept list's mean loss quantile rises with the window start: easy → hard.
    const meanQuantile = (start: number) => {
      const q = rounds.filter((r, t) => t > 0 && r.info!.windowStart === start);
      return q.reduce((s, r) => s + Number(r.info!.keptLossQuantile), 0) / q.length;
    };
    console.log(
      'keptLossQuantile by window start',
      [0, 1, 2].map((s) => meanQuantile(s).toFixed(3)),
    );
    expect(meanQuantile(0)).toBeLessThan(meanQuantile(1));
    expect(meanQuantile(1)).toBeLessThan(meanQuantile(2));

    // Budget → κ: B·G/(N·w) = 1200·5/(3000·3) = 2/3; annealed rounds keep ⌊κN⌋ = 2000.
    expect(rounds[11]!.indices).toHaveLength(2000);
    expect(a.indices.length).toBeLessThanOrEqual(1200);
    // (S7) as reported = Σ(N − |kept_e|)/(N·E) from the schedule itself.
    const expected = rounds.reduce((s, r) => s + input.n - r.indices.length, 0) / (input.n * 12);
    const reported = Number(/saved ratio \(S7\) ([0-9.]+)/.exec(traceText(a))![1]);
    expect(reported).toBeCloseTo(expected, 4);

    // Clamp through the selector: prune ratio 0.95 → κ = 0.1, 0 → κ = 1 (annealed rounds show ⌊κN⌋).
    const clampLow = await run(4, { pruneRatio: 0.95, epochs: 4, delta: 0.5 });
    const clampHigh = await run(4, { pruneRatio: 0, epochs: 4, delta: 0.5 });
    expect(clampLow.schedule!.rounds.map((r) => r.indices.length)).toContain(300);
    expect(clampLow.schedule!.rounds[3]!.indices).toHaveLength(300);
    expect(clampHigh.schedule!.rounds[0]!.indices).toHaveLength(3000);
    expect(clampHigh.schedule!.rounds[3]!.indices).toHaveLength(3000);
  });

  it('default cross-modal proxy: the loss flags swapped captions, an image-only proxy cannot', async () => {
    // Unlabelled pool, captions = image + noise, 6% of captions swapped to another item's caption.
    const n = 2000;
    const { x: images } = gaussianClasses(n, 16, 6, 21, 0.4);
    const random = seededRandom(22);
    const normal = gaussian(random);
    const text = new Float32Array(n * 16);
    const swapped = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const source = random() < 0.06 ? Math.floor(random() * n) : i;
      swapped[i] = source === i ? 0 : 1;
      let norm = 0;
      for (let j = 0; j < 16; j++) {
        const v = images.data[source * 16 + j]! + 0.1 * normal();
        text[i * 16 + j] = v;
        norm += v * v;
      }
      for (let j = 0; j < 16; j++) text[i * 16 + j]! /= Math.sqrt(norm);
    }
    const run = (features: string) =>
      runSelector(
        seta,
        { n, dim: 16, image: images.data, text },
        { fraction: 0.6 },
        { epochs: 8, clusters: 6, ...(features ? { features } : {}) },
        { seed: 3 },
      );
    const crossModal = await run('');
    const imageOnly = await run('image');
    expect(traceText(crossModal)).toContain('caption embeddings → image classes');
    expect(crossModal.indices).toHaveLength(1200);
    const aucCross = auc(crossModal.scores!, swapped);
    const aucImage = auc(imageOnly.scores!, swapped);
    console.log(
      'swapped-caption AUC of the final loss: cross-modal',
      aucCross.toFixed(3),
      'image',
      aucImage.toFixed(3),
    );
    expect(aucCross).toBeGreaterThan(0.85);
    expect(aucImage).toBeLessThan(0.6);
  });
});

/** P(score of a flagged item > score of an unflagged one). */
function auc(scores: Float32Array, flag: Uint8Array): number {
  const order = Array.from(scores.keys()).sort((a, b) => scores[a]! - scores[b]!);
  let rankSum = 0;
  let positives = 0;
  order.forEach((i, r) => {
    if (flag[i]) {
      rankSum += r + 1;
      positives++;
    }
  });
  const negatives = scores.length - positives;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

function traceText(s: Selection): string {
  return s.trace.map((e) => e.message).join('\n');
}
