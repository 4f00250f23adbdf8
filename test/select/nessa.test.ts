import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { runSelector, type SelectInput, type Selection } from '../../src/select/contract.js';
import { perClassCoreset, type GradientSpace } from '../../src/select/gradient/coreset.js';
import type { Matrix } from '../../src/select/kernels/similarity.js';
import {
  dataMovement,
  describeDataMovement,
  groupShards,
  shardBudgets,
  virtualPartitions,
} from '../../src/select/nessa/shards.js';
import { nessa, nessaParams, nessaProxy, shardedCoreset } from '../../src/select/selectors/nessa.js';

/** Unit vectors around K random centres, class k = i mod K (equal class sizes when K divides n). */
function toy(n: number, d: number, K: number, seed: number, spread = 1): { x: Matrix; labels: Int32Array } {
  const random = seededRandom(seed);
  const normal = gaussian(random);
  const centres = Array.from({ length: K }, () => Array.from({ length: d }, normal));
  const data = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % K;
    const r = data.subarray(i * d, (i + 1) * d);
    for (let j = 0; j < d; j++)
      r[j] = centres[i % K]![j]! / Math.sqrt(d) + (spread * normal()) / Math.sqrt(d);
    const s = Math.hypot(...r);
    for (let j = 0; j < d; j++) r[j]! /= s;
  }
  return { x: { rows: n, cols: d, data }, labels };
}

const inputOf = (t: { x: Matrix; labels: Int32Array }, extra: Partial<SelectInput> = {}): SelectInput => ({
  n: t.x.rows,
  dim: t.x.cols,
  image: t.x.data,
  labels: t.labels,
  ...extra,
});

const sum = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);

/** Global facility location F(S) = Σ_i max_{j∈S} (D_max − D_ij) over the whole pool (C3, C5). */
function globalFacility(g: Matrix, picks: ArrayLike<number>): number {
  const q = g.cols;
  const dist = (i: number, j: number) => {
    let s = 0;
    for (let k = 0; k < q; k++) s += (g.data[i * q + k]! - g.data[j * q + k]!) ** 2;
    return Math.sqrt(s);
  };
  let dMax = 0;
  for (let i = 0; i < g.rows; i++) for (let j = 0; j < i; j++) dMax = Math.max(dMax, dist(i, j));
  let f = 0;
  for (let i = 0; i < g.rows; i++) {
    let best = 0;
    for (let t = 0; t < picks.length; t++) best = Math.max(best, dMax - dist(i, picks[t]!));
    f += best;
  }
  return f;
}

describe('NeSSA shard budgets, virtual partitions and byte accounting (nessa.md N1, N2, N5)', () => {
  it('splits the budget by largest remainder: Σ k_s = B, k_s ≤ N_s, |k_s − f·N_s| < 1, ties → lower shard', () => {
    expect(Array.from(shardBudgets([3, 3, 3], 2))).toEqual([1, 1, 0]);
    // Exact shares 1.25, .25, .25, .25: the leftover unit goes to the lowest of four equal remainders.
    expect(Array.from(shardBudgets([5, 1, 1, 1], 2))).toEqual([2, 0, 0, 0]);
    // Shares .3, 1.3, 8.1, .3: three equal remainders, though in floating point 1.3 − 1 > 0.3.
    expect(Array.from(shardBudgets([3, 13, 81, 3], 10))).toEqual([1, 1, 8, 0]);
    const random = seededRandom(5);
    for (let trial = 0; trial < 50; trial++) {
      const sizes = Array.from(
        { length: 1 + Math.floor(random() * 20) },
        () => 1 + Math.floor(random() * 500),
      );
      const n = sum(sizes);
      const b = 1 + Math.floor(random() * n);
      const k = shardBudgets(sizes, b);
      expect(sum(k)).toBe(b);
      k.forEach((ks, s) => {
        expect(ks).toBeLessThanOrEqual(sizes[s]!);
        expect(Math.abs(ks - (b * sizes[s]!) / n)).toBeLessThan(1);
      });
    }
  });

  it('virtual partition sizes lie within 3σ of N/m, and a uid keeps its partition wherever it sits', () => {
    const n = 100_000;
    for (const m of [2, 7, 20]) {
      const p = virtualPartitions(n, m);
      const counts = new Array<number>(m).fill(0);
      for (const s of p) counts[s]! += 1;
      const sigma = Math.sqrt(n * (1 / m) * (1 - 1 / m));
      for (const c of counts) expect(Math.abs(c - n / m)).toBeLessThan(3 * sigma);
    }
    const uids = Array.from({ length: 5000 }, (_, i) => `shard-${i % 13}/sample-${i}.jpg`);
    const before = virtualPartitions(uids.length, 6, uids);
    const order = Array.from(uids.keys()).reverse();
    const after = virtualPartitions(
      uids.length,
      6,
      order.map((i) => uids[i]!),
    );
    order.forEach((i, t) => expect(after[t]).toBe(before[i]));
    const counts = new Array<number>(6).fill(0);
    for (const s of before) counts[s]! += 1;
    for (const c of counts) expect(Math.abs(c - 5000 / 6)).toBeLessThan(3 * Math.sqrt((5000 * 5) / 36));
  });

  it('accounts tier-1 reads and tier-2 moves (N1): saving = N·tier2 / (N·tier1 + B·tier2)', () => {
    // 1,000 items, d = 512 fp32 (2 KiB), 100 KiB payloads, 10% selected: 1 / (0.1 + 2/100) = 8.33x.
    const payload = new Float64Array(1000).fill(100 * 1024);
    const picks = Array.from({ length: 100 }, (_, i) => i * 10);
    const m = dataMovement({ n: 1000, dim: 512, picks, payloadBytes: payload });
    expect(m.tier1Read).toBe(2_048_000);
    expect(m.tier2Selected).toBe(10_240_000);
    expect(m.tier2Pool).toBe(102_400_000);
    expect(m.moved).toBe(12_288_000);
    expect(m.savingFactor!).toBeCloseTo(1 / (0.1 + 2048 / 102400), 10);
    expect(dataMovement({ n: 1000, dim: 512, picks, payloadBytes: payload, matrices: 2 }).tier1Read).toBe(
      4_096_000,
    );
    // Unequal payloads: only the picks' bytes count.
    payload[0] = 1_000_000;
    expect(dataMovement({ n: 1000, dim: 512, picks: [0, 1], payloadBytes: payload }).tier2Selected).toBe(
      1_000_000 + 102_400,
    );
    const unknown = dataMovement({ n: 1000, dim: 512, picks });
    expect(unknown).toMatchObject({ tier1Read: 2_048_000, tier2Selected: null, savingFactor: null });
    expect(describeDataMovement(unknown)).toContain('tier 2 bytes unknown');
  });
});

describe('NeSSA-style per-shard selection (nessa.md §3, §6)', () => {
  const pool = toy(1000, 16, 5, 1);

  it('one shard ⇒ the global per-class CRAIG on the same gradients (indices and weights)', async () => {
    const p = nessaParams.parse({});
    const { space, classes } = await nessaProxy(inputOf(pool), p, { seed: 3 });
    const o = { similarity: p.similarity, optimizer: p.optimizer, epsilon: p.epsilon, seed: 3 };
    const oneShard = inputOf(pool, { shards: new Int32Array(1000) });

    // B = 100: class budgets ⌈100·200/1000⌉ = 20 sum to B, nothing is trimmed.
    const global = await perClassCoreset(space, classes.members, 100, 'proportional', o);
    const a = await runSelector(nessa, oneShard, { count: 100 }, {}, { seed: 3 });
    expect(Array.from(a.indices)).toEqual(Array.from(global.indices));
    expect(Array.from(a.weights!)).toEqual(Array.from(global.weights));
    expect(sum(a.weights!)).toBe(1000);
    // No shard ids and one virtual partition: the same.
    const v = await runSelector(nessa, inputOf(pool), { count: 100 }, { partitionCount: 1 }, { seed: 3 });
    expect(Array.from(v.indices)).toEqual(Array.from(global.indices));

    // B = 97: the ⌈·⌉ class budgets overshoot, 3 picks are trimmed and their clusters move onto kept
    // picks, so Σγ = N still.
    const trimmed = await perClassCoreset(space, classes.members, 97, 'proportional', o);
    const b = await runSelector(nessa, oneShard, { count: 97 }, {}, { seed: 3 });
    expect(trimmed.moved).toBe(3);
    expect(Array.from(b.indices)).toEqual(Array.from(trimmed.indices));
    expect(Array.from(b.weights!)).toEqual(Array.from(trimmed.weights));
    expect(sum(b.weights!)).toBe(1000);
  });

  it('Σ k_s = B, k_s ≤ N_s, weights sum to N_s per shard and N overall; deterministic under a seed', async () => {
    const n = 1500;
    const data = toy(n, 16, 5, 2);
    // Crawl-ordered shards of uneven sizes, plus a one-item shard whose budget rounds to 0.
    const bounds = [0, 120, 400, 460, 900, 1180, 1499, 1500];
    const shards = new Int32Array(n);
    for (let s = 0; s + 1 < bounds.length; s++) shards.fill(10 * s, bounds[s], bounds[s + 1]);
    const input = inputOf(data, { shards });
    const a = await runSelector(nessa, input, { fraction: 0.1 }, {}, { seed: 7 });
    const again = await runSelector(nessa, input, { fraction: 0.1 }, {}, { seed: 7 });
    expect(Array.from(again.indices)).toEqual(Array.from(a.indices));
    expect(Array.from(again.weights!)).toEqual(Array.from(a.weights!));

    expect(a.indices).toHaveLength(150);
    const k = shardBudgets(
      groupShards(shards).map((s) => s.members.length),
      150,
    );
    expect(sum(k)).toBe(150);
    const extra: number[] = [];
    for (const [t, shard] of groupShards(shards).entries()) {
      const picks = Array.from(a.indices.keys()).filter((j) => shards[a.indices[j]!] === shard.id);
      expect(picks).toHaveLength(k[t]!);
      expect(k[t]!).toBeLessThanOrEqual(shard.members.length);
      // Σγ = N_s, plus the one-item shard's item wherever its nearest pick is.
      if (k[t]! > 0) extra.push(sum(picks.map((j) => a.weights![j]!)) - shard.members.length);
    }
    expect(k[6]).toBe(0); // the one-item shard
    expect(extra.every((e) => e === 0 || e === 1)).toBe(true);
    expect(sum(extra)).toBe(1);
    expect(sum(a.weights!)).toBe(n);
    expect(a.trace.find((e) => e.stage === 'weights')!.message).toContain('1 items of zero-budget shards');

    // The merge round also keeps exactly B with Σγ = N.
    const merged = await runSelector(nessa, input, { fraction: 0.1 }, { merge: true }, { seed: 7 });
    expect(merged.indices).toHaveLength(150);
    expect(sum(merged.weights!)).toBe(n);
  });

  it('last-layer gradients, stochastic greedy and the merge round still give exactly B picks with Σγ = N', async () => {
    const shards = Int32Array.from({ length: 1000 }, (_, i) => i % 3);
    const params = { gradient: 'lastLayer', optimizer: 'stochastic', merge: true, mergeFactor: 3 };
    const r = await runSelector(nessa, inputOf(pool, { shards }), { count: 77 }, params, { seed: 2 });
    expect(r.indices).toHaveLength(77);
    expect(sum(r.weights!)).toBe(1000);
    expect(r.trace.find((e) => e.stage === 'merge')!.message).toContain('GreeDi round');
  });

  it('merge round: fewer cross-shard duplicates and a higher global facility location than the union', async () => {
    // Gradients in R^8: 4 shards, each with 120 own points and exact copies of 80 shared points (the same
    // item crawled into every shard). One class.
    const q = 8;
    const normal = gaussian(seededRandom(11));
    const point = () => Array.from({ length: q }, normal);
    const shared = Array.from({ length: 80 }, point);
    const rows: number[][] = [];
    const shardOf: number[] = [];
    for (let s = 0; s < 4; s++) {
      rows.push(...shared, ...Array.from({ length: 120 }, point));
      shardOf.push(...new Array<number>(200).fill(s));
    }
    const n = rows.length;
    const g: Matrix = { rows: n, cols: q, data: Float32Array.from(rows.flat()) };
    const space: GradientSpace = { g };
    const classOf = new Int32Array(n);
    const shards = groupShards(shardOf);
    const base = { similarity: 'maxMinusDist', optimizer: 'lazy', epsilon: 0.01, seed: 1 } as const;
    const options = { ...base, mergeFactor: 3, mergeClassBudget: 'proportional' } as const;
    const union = await shardedCoreset(space, classOf, 1, shards, 60, { ...options, merge: false });
    const merged = await shardedCoreset(space, classOf, 1, shards, 60, { ...options, merge: true });
    const duplicates = (picks: Int32Array) => {
      const seen = new Set<string>();
      let d = 0;
      for (const i of picks) {
        const key = rows[i]!.join(',');
        if (seen.has(key)) d++;
        seen.add(key);
      }
      return d;
    };
    expect(union.indices).toHaveLength(60);
    expect(merged.indices).toHaveLength(60);
    expect(merged.candidates).toBe(180);
    expect(sum(union.weights)).toBe(n);
    expect(sum(merged.weights)).toBe(n);
    const fUnion = globalFacility(g, union.indices);
    const fMerged = globalFacility(g, merged.indices);
    const random = seededRandom(2);
    let fRandom = 0;
    for (let r = 0; r < 20; r++) {
      const ids = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [ids[i], ids[j]] = [ids[j]!, ids[i]!];
      }
      fRandom = Math.max(fRandom, globalFacility(g, ids.slice(0, 60)));
    }
    console.log(
      `duplicates union ${duplicates(union.indices)}, merged ${duplicates(merged.indices)}; ` +
        `F union ${fUnion.toFixed(1)}, merged ${fMerged.toFixed(1)}, best of 20 random ${fRandom.toFixed(1)}`,
    );
    expect(duplicates(merged.indices)).toBeLessThan(duplicates(union.indices));
    expect(fMerged).toBeGreaterThan(fUnion);
    expect(fMerged).toBeGreaterThan(fRandom);
  });

  it('virtual partitions: the result does not depend on the physical shard ids or their order', async () => {
    const data = toy(1200, 16, 4, 4);
    const crawl = Int32Array.from({ length: 1200 }, (_, i) => Math.floor(i / 100));
    const permutation = [7, 2, 11, 0, 5, 9, 1, 10, 3, 8, 6, 4];
    const permuted = Int32Array.from(crawl, (s) => permutation[s]!);
    const params = { partitions: 'virtual', partitionCount: 3 };
    const runs: Selection[] = [];
    for (const shards of [crawl, permuted, undefined])
      runs.push(
        await runSelector(nessa, inputOf(data, shards ? { shards } : {}), { count: 120 }, params, {
          seed: 5,
        }),
      );
    for (const r of runs.slice(1)) {
      expect(Array.from(r.indices)).toEqual(Array.from(runs[0]!.indices));
      expect(Array.from(r.weights!)).toEqual(Array.from(runs[0]!.weights!));
    }
    expect(runs[0]!.trace.find((e) => e.stage === 'shards')!.message).toContain(
      '3 ground sets from 3 virtual',
    );
    // Physical shards, by contrast, are the ground sets when asked for.
    const physical = await runSelector(
      nessa,
      inputOf(data, { shards: crawl }),
      { count: 120 },
      {},
      { seed: 5 },
    );
    expect(physical.trace.find((e) => e.stage === 'shards')!.message).toContain('12 ground sets');
  });

  it('reports the data movement of its picks, or says tier 2 is unknown', async () => {
    const payloadBytes = Float64Array.from({ length: 1000 }, (_, i) => 50_000 + 37 * i);
    const r = await runSelector(nessa, inputOf(pool, { payloadBytes }), { count: 50 }, {}, { seed: 1 });
    const expected = dataMovement({ n: 1000, dim: 16, picks: r.indices, payloadBytes });
    expect(expected.tier2Selected).toBe(sum(Array.from(r.indices, (i) => payloadBytes[i]!)));
    expect(r.trace.find((e) => e.stage === 'data movement')!.message).toBe(describeDataMovement(expected));
    const bare = await runSelector(nessa, inputOf(pool), { count: 50 }, {}, { seed: 1 });
    expect(bare.trace.find((e) => e.stage === 'data movement')!.message).toContain('62.50 KiB (64000 bytes)');
    expect(bare.trace.find((e) => e.stage === 'data movement')!.message).toContain('tier 2 bytes unknown');
  });
});
