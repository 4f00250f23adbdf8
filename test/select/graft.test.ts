import { describe, expect, it } from 'vitest';
import { dense, symmetricEigen } from '../../src/compute/linalg.js';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { runSelector } from '../../src/select/contract.js';
import {
  batchTargetNorm,
  chooseRank,
  factorBatches,
  fixedBatches,
  projectionCriteria,
  rankCriteria,
} from '../../src/select/graft/batches.js';
import { topEigenpairs } from '../../src/select/graft/eigen.js';
import {
  greedyMaxVol,
  pivotLogVolume,
  refineMaxVol,
  subsetLogVolume,
  type Factor,
} from '../../src/select/graft/maxvol.js';
import { innerProducts, type Matrix } from '../../src/select/kernels/similarity.js';
import {
  drawCandidateRanks,
  graft,
  graftRound,
  rankRange,
  unionPicks,
} from '../../src/select/selectors/graft.js';
import { gaussianClasses } from '../support/gaussianClasses.js';

const factorOptions = { refine: false, delta: 0.05 };

/** Top-r eigenvectors of the Gram of `x` (rows = samples) as a K × r factor: V_r of (G2). */
async function topFactor(x: Matrix, r: number): Promise<Factor> {
  const eigen = topEigenpairs(await innerProducts(x, x), x.rows, r);
  return { rows: x.rows, cols: r, data: eigen.vectors };
}

function randomRows(n: number, d: number, seed: number): Matrix {
  const normal = gaussian(seededRandom(seed));
  return { rows: n, cols: d, data: Float32Array.from({ length: n * d }, normal) };
}

/** Random residual-like gradients, n × c. */
function randomGradients(n: number, c: number, seed: number): Float32Array {
  const normal = gaussian(seededRandom(seed));
  return Float32Array.from({ length: n * c }, normal);
}

/** log det of the Gram of rows `ids` of x (their squared volume), in float64. */
function logDetGram(x: Matrix, ids: readonly number[]): number {
  const m = ids.length;
  const g = new Float64Array(m * m);
  for (let a = 0; a < m; a++)
    for (let b = 0; b < m; b++) {
      let s = 0;
      for (let q = 0; q < x.cols; q++) s += x.data[ids[a]! * x.cols + q]! * x.data[ids[b]! * x.cols + q]!;
      g[a * m + b] = s;
    }
  return subsetLogVolume({ rows: m, cols: m, data: g }, [...Array(m).keys()]);
}

function sample(pool: ArrayLike<number>, size: number, random: () => number): number[] {
  const a = Array.from(pool);
  for (let i = 0; i < size; i++) {
    const j = i + Math.floor(random() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, size);
}

describe('GRAFT Fast MaxVol (graft.md G3, §7 tests 1–3)', () => {
  it('planted directions: rank r picks exactly one row per direction', async () => {
    // 4 orthonormal directions in R^16, each repeated 16 times with 1e-3 noise, shuffled into one batch.
    const r = 4;
    const k = 64;
    const d = 16;
    const normal = gaussian(seededRandom(5));
    const direction = Int32Array.from({ length: k }, (_, i) => (i * 7) % r);
    const x: Matrix = { rows: k, cols: d, data: new Float32Array(k * d) };
    for (let i = 0; i < k; i++) {
      for (let q = 0; q < d; q++) x.data[i * d + q] = 1e-3 * normal();
      x.data[i * d + direction[i]! * 3]! += 1; // directions e_0, e_3, e_6, e_9
    }
    const [factor] = await factorBatches(
      x,
      [Int32Array.from({ length: k }, (_, i) => i)],
      [r],
      factorOptions,
    );
    const picks = Array.from(factor!.picks.get(r)!);
    expect(picks).toHaveLength(r);
    expect(new Set(picks.map((i) => direction[i])).size).toBe(r);
    // The same through greedyMaxVol on V_r directly.
    const direct = greedyMaxVol(await topFactor(x, r));
    expect(new Set(Array.from(direct.pivots, (i) => direction[i])).size).toBe(r);
  });

  it('volume = product of pivots, above the median of 1,000 random r-subsets; refinement never lowers it', async () => {
    for (const [seed, r] of [
      [1, 6],
      [2, 10],
      [3, 3],
    ] as const) {
      const v = await topFactor(randomRows(40, 24, seed), r);
      const greedy = greedyMaxVol(v);
      expect(greedy.pivots).toHaveLength(r);
      const logVolume = subsetLogVolume(v, greedy.pivots);
      expect(logVolume).toBeCloseTo(pivotLogVolume(greedy.values), 9);
      const random = seededRandom(seed + 100);
      const volumes = Array.from({ length: 1000 }, () =>
        subsetLogVolume(
          v,
          sample(
            Array.from({ length: 40 }, (_, i) => i),
            r,
            random,
          ),
        ),
      ).sort((a, b) => a - b);
      expect(logVolume).toBeGreaterThan(volumes[500]!);

      const refined = refineMaxVol(v, greedy.pivots, { delta: 0.05 });
      const after = subsetLogVolume(v, refined.pivots);
      expect(after).toBeGreaterThanOrEqual(logVolume - 1e-12);
      expect(after - logVolume).toBeCloseTo(refined.logGain, 9);
      expect(new Set(refined.pivots).size).toBe(r);
      // Local optimality: no single-row swap grows the volume by more than 1 + δ (max|B_ij| ≤ 1 + δ).
      for (let i = 0; i < 40; i++)
        for (let j = 0; j < r; j++) {
          if (refined.pivots.includes(i)) continue;
          const swapped = Int32Array.from(refined.pivots);
          swapped[j] = i;
          expect(subsetLogVolume(v, swapped)).toBeLessThanOrEqual(after + Math.log(1.05) + 1e-9);
        }
    }
  });

  it('r = 1 picks argmax |V[:,1]|; V_rᵀV_r = I; eigenpairs agree with the full decomposition', async () => {
    const x = randomRows(50, 80, 7);
    const gram = await innerProducts(x, x);
    const r = 12;
    const eigen = topEigenpairs(gram, 50, r);
    const full = symmetricEigen(dense(50, 50, gram.slice()));
    for (let t = 0; t < 50; t++) expect(eigen.values[t]!).toBeCloseTo(full.values[t]!, 3);
    for (let a = 0; a < r; a++) {
      for (let b = 0; b < r; b++) {
        let dot = 0;
        for (let i = 0; i < 50; i++) dot += eigen.vectors[i * r + a]! * eigen.vectors[i * r + b]!;
        expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-5);
      }
      // Same eigenvector as ml-matrix's up to sign (the top eigenvalues of this Gram are separated).
      let dot = 0;
      for (let i = 0; i < 50; i++) dot += eigen.vectors[i * r + a]! * full.vectors.data[i * 50 + a]!;
      expect(Math.abs(dot)).toBeGreaterThan(0.999);
    }
    const v: Factor = { rows: 50, cols: r, data: eigen.vectors };
    let argmax = 0;
    for (let i = 1; i < 50; i++) if (Math.abs(v.data[i * r]!) > Math.abs(v.data[argmax * r]!)) argmax = i;
    expect(Array.from(greedyMaxVol(v, 1).pivots)).toEqual([argmax]);
    // Nested ranks: the greedy pivots of rank r are the first r pivots of rank r + 1.
    expect(Array.from(greedyMaxVol(v, 5).pivots)).toEqual(Array.from(greedyMaxVol(v, 6).pivots.slice(0, 5)));
  });
});

describe('GRAFT gradient criterion (G5–G7, §7 test 4)', () => {
  it('e(P) < 1e-6 when the target lies in the span, and equals the least-squares residual otherwise', () => {
    const normal = gaussian(seededRandom(11));
    const q = 7;
    const items = Array.from({ length: 4 }, () => Float64Array.from({ length: q }, normal));
    const gramOf = (vs: Float64Array[]) => {
      const m = vs.length;
      const g = new Float64Array(m * m);
      for (let a = 0; a < m; a++)
        for (let b = 0; b < m; b++) g[a * m + b] = vs[a]!.reduce((s, x, i) => s + x * vs[b]![i]!, 0);
      return g;
    };
    const dots = (t: Float64Array) =>
      Float64Array.from(items, (v) => v.reduce((s, x, i) => s + x * t[i]!, 0));
    const norm2 = (t: Float64Array) => t.reduce((s, x) => s + x * x, 0);
    // In the span of the first three: residual 0 from prefix 3 on.
    const inSpan = Float64Array.from(
      { length: q },
      (_, i) => 2 * items[0]![i]! - items[1]![i]! + 0.5 * items[2]![i]!,
    );
    const e = projectionCriteria(gramOf(items), dots(inSpan), norm2(inSpan), [1, 2, 3, 4], 'error');
    expect(e[0]!).toBeGreaterThan(0.1);
    expect(e[1]!).toBeGreaterThan(0.1);
    expect(e[2]!).toBeLessThan(1e-6);
    expect(e[3]!).toBeLessThan(1e-6);
    expect(chooseRank(e, 'error', norm2(inSpan))).toBe(2); // smallest of the tied prefixes 3 and 4
    // A generic target: compare with the explicit Gram–Schmidt residual.
    const target = Float64Array.from({ length: q }, normal);
    const residual = Float64Array.from(target);
    const basis: Float64Array[] = [];
    for (const v of items.slice(0, 3)) {
      const u = Float64Array.from(v);
      for (const b of basis) {
        const dot = u.reduce((s, x, i) => s + x * b[i]!, 0);
        u.forEach((_, i) => (u[i]! -= dot * b[i]!));
      }
      const n = Math.sqrt(norm2(u));
      basis.push(u.map((x) => x / n));
    }
    for (const b of basis) {
      const dot = residual.reduce((s, x, i) => s + x * b[i]!, 0);
      residual.forEach((_, i) => (residual[i]! -= dot * b[i]!));
    }
    const generic = projectionCriteria(gramOf(items), dots(target), norm2(target), [3], 'error');
    expect(generic[0]!).toBeCloseTo(Math.sqrt(norm2(residual)), 9);
    // Alignment: a cos, 1 for a target equal to the sum of the picks.
    const sum = Float64Array.from({ length: q }, (_, i) => items.reduce((s, v) => s + v[i]!, 0));
    expect(projectionCriteria(gramOf(items), dots(sum), norm2(sum), [4], 'alignment')[0]!).toBeCloseTo(1, 9);
  });

  it('tie rule → smallest r; with logits and r > C every candidate ties, ĝ breaks the tie (§8)', async () => {
    expect(chooseRank(Float64Array.of(0.5, 0.5, 0.7), 'error', 1)).toBe(0);
    expect(chooseRank(Float64Array.of(0.7, 0.5, 0.5), 'error', 1)).toBe(1);
    expect(chooseRank(Float64Array.of(0.2, 0.9, 0.9), 'alignment', 1)).toBe(1);

    const x = randomRows(64, 32, 21);
    const members = Int32Array.from({ length: 64 }, (_, i) => i);
    const candidates = [4, 5, 6];
    const [factor] = await factorBatches(x, [members], candidates, factorOptions);
    const classes = 3;
    const g = randomGradients(64, classes, 22);
    const logitsNorm = await batchTargetNorm(x, g, classes, members, 'logits');
    const logits = rankCriteria(factor!, g, classes, logitsNorm, candidates, 'logits', 'error');
    for (const e of logits) expect(e).toBeLessThan(1e-6 * Math.sqrt(logitsNorm));
    expect(chooseRank(logits, 'error', logitsNorm)).toBe(0);
    const headNorm = await batchTargetNorm(x, g, classes, members, 'lastLayer');
    const head = rankCriteria(factor!, g, classes, headNorm, candidates, 'lastLayer', 'error');
    for (const e of head) expect(e).toBeGreaterThan(1e-3 * Math.sqrt(headNorm));
    // Nested picks: the residual can only shrink as r grows.
    expect(head[2]!).toBeLessThanOrEqual(head[1]! + 1e-9);
    expect(head[1]!).toBeLessThanOrEqual(head[0]! + 1e-9);
  });

  it('ḡ_b in the span of the picks’ gradients → e(P) < 1e-6 through the batch Gram form', async () => {
    const x = randomRows(48, 32, 31);
    const members = Int32Array.from({ length: 48 }, (_, i) => 47 - i); // local ≠ global ids
    const [factor] = await factorBatches(x, [members], [2, 3], factorOptions);
    const picks3 = Array.from(factor!.picks.get(3)!, (j) => members[j]!);
    const classes = 8;
    const g = randomGradients(48, classes, 32);
    // Every other gradient of the batch = a combination of the three picks' gradients.
    const random = seededRandom(33);
    for (let i = 0; i < 48; i++) {
      if (picks3.includes(i)) continue;
      const w = picks3.map(() => random() * 2 - 1);
      for (let c = 0; c < classes; c++)
        g[i * classes + c] = picks3.reduce((s, j, t) => s + w[t]! * g[j * classes + c]!, 0);
    }
    const norm = await batchTargetNorm(x, g, classes, members, 'logits');
    const e = rankCriteria(factor!, g, classes, norm, [2, 3], 'logits', 'error');
    expect(e[0]!).toBeGreaterThan(1e-3);
    expect(e[1]!).toBeLessThan(1e-6);
  });
});

describe('GRAFT batches and rounds (G1, G6–G8, §7 tests 5–6)', () => {
  const { x } = gaussianClasses(1000, 24, 6, 41);
  const classes = 6;
  const g = randomGradients(1000, classes, 42);

  it('fixed batches partition the pool; every pick lies in its batch; |union| = Σ ranks before the trim', async () => {
    const batches = fixedBatches(1000, 64, 9);
    expect(batches.map((b) => b.length)).toEqual([...Array(15).fill(64), 40]);
    expect(new Set(batches.flatMap((b) => Array.from(b))).size).toBe(1000);
    expect(fixedBatches(1000, 64, 9)).toEqual(batches);
    const candidates = [5, 6, 7];
    const factors = await factorBatches(x, batches, candidates, factorOptions);
    const round = await graftRound(x, g, classes, factors, candidates, 'lastLayer', 'error');
    let sum = 0;
    round.picks.forEach((picks, b) => {
      const inBatch = new Set(batches[b]);
      for (const id of picks) expect(inBatch.has(id)).toBe(true);
      expect(picks).toHaveLength(round.ranks[b]!);
      expect(candidates).toContain(round.ranks[b]!);
      sum += round.ranks[b]!;
    });
    const union = unionPicks(round, 1000);
    expect(union.total).toBe(sum);
    expect(union.indices).toHaveLength(sum);
    expect(new Set(union.indices).size).toBe(sum);
    // Trim: keeps every batch's first pivot before any second pivot.
    const trimmed = unionPicks(round, 20);
    expect(trimmed.indices).toHaveLength(20);
    expect(trimmed.trimmed).toBe(sum - 20);
    expect(Array.from(trimmed.indices.slice(0, 16))).toEqual(round.picks.map((p) => p[0]!));
  });

  it('two rounds with the same gradients give the same subset (factors reused, no reshuffle)', async () => {
    const batches = fixedBatches(1000, 64, 9);
    const factors = await factorBatches(x, batches, [4, 5, 6], factorOptions);
    const a = await graftRound(x, g, classes, factors, [4, 5, 6], 'lastLayer', 'alignment');
    const b = await graftRound(x, g, classes, factors, [4, 5, 6], 'lastLayer', 'alignment');
    expect(unionPicks(b, 1000).indices).toEqual(unionPicks(a, 1000).indices);
    expect(b.ranks).toEqual(a.ranks);
    const refactored = await factorBatches(x, fixedBatches(1000, 64, 9), [4, 5, 6], factorOptions);
    const c = await graftRound(x, g, classes, refactored, [4, 5, 6], 'lastLayer', 'alignment');
    expect(unionPicks(c, 1000).indices).toEqual(unionPicks(a, 1000).indices);
  });

  it('candidate ranks (G6): the range around ρ = K·f, draws without replacement, the ρ < 1 fallback', () => {
    expect(rankRange(0.1, 128)).toEqual([11, 12, 13]);
    expect(rankRange(0.25, 128)).toEqual(Array.from({ length: 16 }, (_, i) => 24 + i));
    expect(rankRange(0.004, 128)).toEqual([1]);
    expect(rankRange(1, 16)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    const drawn = drawCandidateRanks(rankRange(0.25, 128), 3, seededRandom(1));
    expect(drawn).toHaveLength(3);
    expect(new Set(drawn).size).toBe(3);
    expect(drawn).toEqual([...drawn].sort((a, b) => a - b));
    for (const r of drawn) expect(r >= 24 && r < 40).toBe(true);
  });
});

describe('GRAFT through the Selector contract', () => {
  const { x, labels } = gaussianClasses(3000, 32, 10, 51);
  const input = { n: 3000, dim: 32, image: x.data, labels };

  /** Σ over batches of log det Gram(picks in the batch), against the mean over random same-size sets. */
  function volumeAdvantage(indices: Int32Array, seed: number, k: number) {
    const chosen = new Set(indices);
    const random = seededRandom(99);
    let selected = 0;
    let baseline = 0;
    let wins = 0;
    const batches = fixedBatches(3000, k, seed);
    for (const batch of batches) {
      const picks = Array.from(batch).filter((i) => chosen.has(i));
      if (picks.length < 2) continue;
      const own = logDetGram(x, picks);
      const draws = Array.from({ length: 20 }, () => logDetGram(x, sample(batch, picks.length, random)));
      selected += own;
      baseline += draws.reduce((a, b) => a + b, 0) / draws.length;
      if (own > [...draws].sort((a, b) => a - b)[10]!) wins++;
    }
    return { selected, baseline, wins, batches: batches.length };
  }

  it('picks rows of larger volume than random ones, deterministically, within the budget', async () => {
    const params = { batchSize: 64 };
    const a = await runSelector(graft, input, { fraction: 0.1 }, params, { seed: 3 });
    const b = await runSelector(graft, input, { fraction: 0.1 }, params, { seed: 3 });
    expect(Array.from(a.indices)).toEqual(Array.from(b.indices));
    expect(a.indices.length).toBeLessThanOrEqual(300);
    expect(a.indices.length).toBeGreaterThan(250);
    expect(a.weights).toBeUndefined();
    const v = volumeAdvantage(a.indices, 3, 64);
    expect(v.selected).toBeGreaterThan(v.baseline);
    expect(v.wins).toBeGreaterThan(0.8 * v.batches);
    expect(a.trace.map((e) => e.stage)).toEqual(
      expect.arrayContaining(['batches', 'factors', 'round 0', 'weights']),
    );
    const c = await runSelector(graft, input, { fraction: 0.1 }, params, { seed: 4 });
    expect(Array.from(c.indices)).not.toEqual(Array.from(a.indices));
  });

  it('maxvol ablation fills the budget exactly with fixed ranks and also beats random volume', async () => {
    const s = await runSelector(graft, input, { count: 250 }, { mode: 'maxvol', batchSize: 64 }, { seed: 5 });
    expect(s.indices).toHaveLength(250);
    const v = volumeAdvantage(s.indices, 5, 64);
    expect(v.selected).toBeGreaterThan(v.baseline);
    expect(s.trace.find((e) => e.stage === 'ranks')!.message).toContain('r=5×');
  });

  it('small budgets (K·f < 1): one row per batch, trimmed to B', async () => {
    const s = await runSelector(graft, input, { count: 7 }, {}, { seed: 6 });
    expect(s.indices).toHaveLength(7);
    expect(s.trace.find((e) => e.stage === 'round 0')!.message).toMatch(/union of 24 picks.*trimmed 17/);
    const batches = fixedBatches(3000, 128, 6);
    // The kept picks are the first pivots of the first 7 batches.
    s.indices.forEach((id, t) => expect(batches[t]!.includes(id)).toBe(true));
  });

  it('schedule: one round per selectIter epochs, each within the budget; refinement and alignment run', async () => {
    const s = await runSelector(
      graft,
      input,
      { fraction: 0.2 },
      { epochs: 4, selectIter: 2, batchSize: 64, criterion: 'alignment', refine: true },
      { seed: 8 },
    );
    const rounds = s.schedule!.rounds;
    expect(rounds.map((r) => [r.start, r.end])).toEqual([
      [0, 0.5],
      [0.5, 1],
    ]);
    for (const r of rounds) {
      expect(r.indices.length).toBeLessThanOrEqual(600);
      expect(r.weights).toBeUndefined();
      expect(String(r.info!.candidates).split(',')).toHaveLength(3);
    }
    expect(Array.from(s.indices)).toEqual(Array.from(rounds[0]!.indices));
    expect(s.scores).toHaveLength(3000);
  });
});
