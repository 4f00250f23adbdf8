/**
 * SAS (Joshi & Mirzasoleiman, ICML 2023), as specified in sas.md: inside every latent class, keep the
 * examples whose augmentations are most similar, in expectation, to the other examples of the class.
 *
 * - objective "rowsum" (default, what the official code computes, §3.3): rank each class by
 *   R_i = Σ_{j∈V_k} max(0, s_ij) and keep the top of every class;
 * - objective "graphcut" (the paper's form, §3.2): greedy on F_k(S) = Σ_{i∈V_k}Σ_{j∈S} s⁺_ij − Σ_{i,j∈S} s⁺_ij
 *   with gain Δ(e|S) = R_e − 2Σ_{j∈S} s⁺_ej − s⁺_ee, stopping when gains turn negative and filling by R.
 * s_ij is the cosine of image embeddings, or ⟨z̄_i, z̄_j⟩ of mean augmented-view embeddings when the
 * pool has them (diagonal excluded then, pitfall 5); "joint" adds caption similarity (our extension).
 * Classes above `pairwiseLimit` estimate R_i from a seeded sample of the class (unbiased, §4 [R]).
 */
import { z } from 'zod';
import { perPartitionForm } from '../partitioned.js';
import { seededRandom } from '../../compute/random.js';
import type { Selector, TraceEvent } from '../contract.js';
import { clampedProductSums } from '../kernels/clampedSums.js';
import { gather, type Matrix } from '../kernels/similarity.js';
import { describeClasses, latentClasses, latentClassParams } from '../latentClasses.js';
import { allocateBudget, interleaveByRank } from '../stratify.js';
import { sampleWithoutReplacement } from './random.js';
import { vectorsOf } from './vectors.js';

const params = z.object({
  ...latentClassParams,
  objective: z
    .enum(['rowsum', 'graphcut'])
    .default('rowsum')
    .describe('rowsum = the official code (rank by class row sums); graphcut = the paper’s objective'),
  similarity: z
    .enum(['image', 'joint'])
    .default('image')
    .describe('image similarity, or ½(image + caption similarity) (our multimodal extension)'),
  views: z
    .enum(['auto', 'off'])
    .default('auto')
    .describe('use mean augmented-view embeddings when the pool has them'),
  threshold: z
    .union([z.literal(0), z.literal('none')])
    .default(0)
    .describe('θ: negative similarities count as 0 (code), or none (then R_i = n_k⟨z_i, μ_k⟩)'),
  rounding: z
    .enum(['largest-remainder', 'floor'])
    .default('largest-remainder')
    .describe(
      'class budgets: largest remainder (exact total, ≥ 1 per class when possible) or the code’s floor',
    ),
  pairwiseLimit: z
    .number()
    .int()
    .min(2)
    .default(20_000)
    .describe('classes larger than this estimate row sums from a sample of the class'),
  sampleSize: z.number().int().min(16).default(8192).describe('class sample for the row-sum estimate'),
});

type Params = z.infer<typeof params>;

export const sas: Selector<Params> = {
  name: 'sas',
  description: 'SAS: per latent class, the examples whose augmentations are most similar to the class',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const { n } = input;
    const useViews = p.views === 'auto' && input.imageViews !== undefined;
    // z_i: image embeddings or their augmented-view means; "joint" = [z_i; t_i]/√2, so ⟨·,·⟩ = ½(s^I + s^T).
    const z = vectorsOf(useViews ? { ...input, image: input.imageViews! } : input, p.similarity);
    const classes = await latentClasses(
      input,
      p.classes === 'auto' && input.labels ? 'labels' : p.classes,
      p.clusters,
      { rows: n, cols: input.dim, data: input.image! },
      ctx.seed,
    );
    const trace: TraceEvent[] = [
      { stage: 'classes', message: describeClasses(classes) },
      {
        stage: 'similarity',
        message: `${p.objective} objective on ${useViews ? 'mean augmented-view' : 'stored'} ${p.similarity} embeddings`,
      },
    ];
    const sizes = classes.members.map((m) => m.length);
    const quotas = classBudgets(sizes, budget, p.rounding);
    const floor = p.threshold === 0 ? 0 : -Infinity;
    const rowSum = new Float64Array(n);
    const orders: number[][] = [];
    let negatives = 0;
    let pairs = 0;
    for (const [k, members] of classes.members.entries()) {
      ctx.signal?.throwIfAborted();
      if (members.length === 0) {
        orders.push([]);
        continue;
      }
      const zk = gather(z, members);
      const r = await classRowSums(zk, floor, useViews, p, ctx.seed + k, ctx.signal);
      negatives += r.negatives;
      pairs += r.pairs;
      members.forEach((i, a) => (rowSum[i] = r.sums[a]!));
      const byRowSum = members.map((_, a) => a).sort((a, b) => r.sums[b]! - r.sums[a]! || a - b);
      const local =
        p.objective === 'rowsum'
          ? byRowSum.slice(0, quotas[k]!)
          : await graphCut(zk, r.sums, byRowSum, quotas[k]!, floor, useViews, trace, k, ctx.signal);
      orders.push(local.map((a) => members[a]!));
      ctx.progress?.(k + 1, classes.k);
    }
    if (pairs > 0)
      trace.push({
        stage: 'threshold',
        message: `${((100 * negatives) / pairs).toFixed(2)}% of same-class similarities are negative${p.threshold === 0 ? ' (set to 0)' : ''}`,
      });
    const indices = interleaveByRank(orders);
    // Score = mean similarity to the class (R_i / n_k), comparable across classes.
    const scores = Float32Array.from(rowSum, (r, i) => r / sizes[classes.assignment[i]!]!);
    return { indices, scores, trace };
  },
  partitioned: perPartitionForm<Params>(
    (input, budget, p, ctx) => sas.select(input, budget, p, ctx),
    'each partition runs SAS for its share of the budget (latent classes of its own items); the merge runs SAS on the union to trim the rounding to B',
  ),
};

/** Per-class budgets (§3.3, pitfall 6): largest remainder with at least one per non-empty class when the budget allows, or floor. */
function classBudgets(sizes: number[], budget: number, rounding: Params['rounding']): Int32Array {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (rounding === 'floor') return Int32Array.from(sizes, (s) => Math.floor((budget * s) / total));
  const quotas = allocateBudget(sizes, budget);
  const nonEmpty = sizes.filter((s) => s > 0).length;
  if (budget < nonEmpty) return quotas;
  for (let k = 0; k < sizes.length; k++) {
    if (sizes[k]! === 0 || quotas[k]! > 0) continue;
    // Take one from the class whose quota is most above one per member share.
    let donor = -1;
    for (let c = 0; c < sizes.length; c++)
      if (quotas[c]! > 1 && (donor < 0 || quotas[c]! / sizes[c]! > quotas[donor]! / sizes[donor]!)) donor = c;
    if (donor < 0) break;
    quotas[donor]!--;
    quotas[k] = 1;
  }
  return quotas;
}

/**
 * R_i = Σ_{j∈V_k} s⁺_ij (§3.3 step 1). Exact on the clamped-sum kernel up to `pairwiseLimit` members;
 * beyond, (n_k/m)·Σ over a seeded sample of m members (unbiased for the row sum). Without a threshold,
 * R_i = ⟨z_i, Σ_j z_j⟩ directly. The diagonal is dropped for augmented-view means (pitfall 5).
 */
async function classRowSums(
  zk: Matrix,
  floor: number,
  dropDiagonal: boolean,
  p: Params,
  seed: number,
  signal?: AbortSignal,
): Promise<{ sums: Float64Array; negatives: number; pairs: number }> {
  const { rows: nk, cols: d, data } = zk;
  const sums = new Float64Array(nk);
  let negatives = 0;
  let pairs = 0;
  if (floor === -Infinity) {
    const total = new Float64Array(d);
    for (let i = 0; i < nk; i++) for (let q = 0; q < d; q++) total[q]! += data[i * d + q]!;
    for (let i = 0; i < nk; i++) for (let q = 0; q < d; q++) sums[i]! += data[i * d + q]! * total[q]!;
  } else if (nk <= p.pairwiseLimit) {
    const r = await clampedProductSums(zk, zk, floor, signal);
    sums.set(r.rowSums);
    [negatives, pairs] = [r.negatives, nk * nk];
  } else {
    const random = seededRandom(seed);
    const sample = sampleWithoutReplacement(
      Array.from({ length: nk }, (_, i) => i),
      Math.min(p.sampleSize, nk),
      random,
    ).sort((a, b) => a - b);
    const r = await clampedProductSums(zk, gather(zk, sample), floor, signal);
    for (let i = 0; i < nk; i++) sums[i] = (r.rowSums[i]! * nk) / sample.length;
    [negatives, pairs] = [r.negatives, nk * sample.length];
  }
  if (dropDiagonal)
    for (let i = 0; i < nk; i++) {
      let self = 0;
      for (let q = 0; q < d; q++) self += data[i * d + q]! ** 2;
      sums[i]! -= Math.max(floor, self);
    }
  return { sums, negatives, pairs };
}

/**
 * Lazy greedy on the graph cut F_k (§3.2). Gains only shrink (s⁺ ≥ 0), so stale gains are upper bounds
 * and lazy evaluation is exact. The penalty Σ_{j∈S} s⁺_ej grows by one kernel column per pick. When the
 * best gain turns negative (the cut is symmetric, so beyond ρ ≈ 0.5 it would prefer atypical examples),
 * the rest of the quota is filled by row sum.
 */
async function graphCut(
  zk: Matrix,
  rowSums: Float64Array,
  byRowSum: number[],
  quota: number,
  floor: number,
  dropDiagonal: boolean,
  trace: TraceEvent[],
  k: number,
  signal?: AbortSignal,
): Promise<number[]> {
  const { rows: nk, cols: d, data } = zk;
  const self = new Float64Array(nk);
  for (let i = 0; i < nk; i++) {
    let s = 0;
    for (let q = 0; q < d; q++) s += data[i * d + q]! ** 2;
    self[i] = Math.max(floor, s);
  }
  const penalty = new Float64Array(nk);
  const gain = (e: number) => rowSums[e]! + (dropDiagonal ? self[e]! : 0) - 2 * penalty[e]! - self[e]!;
  const chosen: number[] = [];
  const taken = new Uint8Array(nk);
  // Candidates by stale gain, best first (re-sorted lazily: only the head is re-evaluated).
  const stale = Float64Array.from({ length: nk }, (_, e) => gain(e));
  const queue = Array.from({ length: nk }, (_, e) => e).sort((a, b) => stale[b]! - stale[a]! || a - b);
  while (chosen.length < quota && queue.length > 0) {
    signal?.throwIfAborted();
    const e = queue[0]!;
    const fresh = gain(e);
    const next = queue[1];
    if (next !== undefined && (fresh < stale[next]! || (fresh === stale[next]! && next < e))) {
      stale[e] = fresh;
      queue.shift();
      insertSorted(queue, e, stale);
      continue;
    }
    if (fresh < 0) {
      trace.push({
        stage: 'graphcut',
        message: `class ${k}: gains negative after ${chosen.length} picks; rest filled by row sum`,
      });
      break;
    }
    queue.shift();
    chosen.push(e);
    taken[e] = 1;
    const column = await clampedProductSums(
      zk,
      { rows: 1, cols: d, data: data.subarray(e * d, (e + 1) * d) },
      floor,
      signal,
    );
    for (let i = 0; i < nk; i++) penalty[i]! += column.rowSums[i]!;
  }
  for (const e of byRowSum) {
    if (chosen.length >= quota) break;
    if (!taken[e]) chosen.push(e);
  }
  return chosen;
}

function insertSorted(queue: number[], e: number, key: Float64Array): void {
  let lo = 0;
  let hi = queue.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const m = queue[mid]!;
    if (key[m]! > key[e]! || (key[m] === key[e] && m < e)) lo = mid + 1;
    else hi = mid;
  }
  queue.splice(lo, 0, e);
}
