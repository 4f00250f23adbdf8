/**
 * GRAFT (graft.md; Jha, Phan, Dibo & Leplat 2025): per fixed batch, the MaxVol rows of the batch's top-r
 * right singular vectors, with r chosen per batch by how well the picks' proxy gradients reproduce the
 * batch gradient.
 *
 *  (G1) one seeded permutation cut into batches of K (`batchSize`), never reshuffled;
 *  (G2)–(G3) V_r of every batch and its MaxVol picks, computed once for every rank a round may try;
 *  (G4)–(G5) per round, from the proxy's gradients: e(P) in the Gram form (ĝ = [g; g ⊗ x] by default,
 *  so e(P) is not 0 for every r > C, §8) or the alignment a(P);
 *  (G6) candidate ranks drawn per round from [⌊ρ − ρf⌋, ⌊ρ + ρf⌋), ρ = K·f, f = B/N;
 *  (G7) r*_b = argmin e (argmax a), ties → smallest r; the subset is the union of the batches' picks.
 *  (G8) `epochs` > 0: the proxy-simulated schedule, one round every `selectIter` epochs; only the
 *  gradient part is recomputed.
 *
 * Budget: |union| ≈ N·f but not exactly B. Picks are listed round-robin by pivot position (every batch's
 * first pivot, then every batch's second, … in batch order); if the union exceeds B (ranks above ρ, or
 * K·f < 1 where every batch still takes one row) the tail of that order is cut, i.e. the latest pivots
 * go first. No weights: GRAFT trains uniformly on its subset (§8).
 * mode = 'maxvol' is the feature-only ablation (§4 c): fixed r = K·f per batch (largest-remainder
 * rounding over the batches, so Σ r_b = B), no proxy, static.
 */
import { z } from 'zod';
import { perPartitionForm, quotaForm, scheduleMerge } from '../partitioned.js';
import { seededRandom } from '../../compute/random.js';
import type { Selection, SelectContext, SelectInput, Selector, TraceEvent } from '../contract.js';
import {
  batchTargetNorm,
  chooseRank,
  factorBatches,
  fixedBatches,
  rankCriteria,
  type BatchFactor,
  type Criterion,
  type GradientForm,
} from '../graft/batches.js';
import type { Matrix } from '../kernels/similarity.js';
import { describeClasses } from '../latentClasses.js';
import {
  proxyFeatures,
  proxyParams,
  proxyProblem,
  proxySignals,
  warmProxy,
  type ProxyTraining,
  warmEpochsParam,
} from '../proxy/problem.js';
import { simulateRounds } from '../proxy/simulate.js';
import type { SoftmaxHead } from '../proxy/softmaxHead.js';
import { allocateBudget } from '../stratify.js';

// `batchSize` is GRAFT's K here; the proxy's SGD minibatch becomes `proxyBatchSize`.
const { batchSize: proxyBatchSize, ...proxyFields } = proxyParams(10);

const params = z.object({
  mode: z
    .enum(['graft', 'maxvol'])
    .default('graft')
    .describe('graft = gradient-chosen rank per batch; maxvol = feature-only ablation, fixed r = K·f'),
  batchSize: z
    .number()
    .int()
    .min(1)
    .default(128)
    .describe('K: fixed batch of the per-batch decomposition and MaxVol (G1; package README 128)'),
  criterion: z
    .enum(['error', 'alignment'])
    .default('error')
    .describe('(G5) least-squares residual of the batch gradient on the picks, or cosine alignment'),
  gradient: z
    .enum(['lastLayer', 'logits'])
    .default('lastLayer')
    .describe(
      'ĝ = [g; g ⊗ x] through the Gram trick, or g = p − e_y (e(P) = 0 for every r > C: docs/methods/graft.md#choices-and-differences-from-the-paper)',
    ),
  maxCandidates: z
    .number()
    .int()
    .min(1)
    .default(3)
    .describe('(G6) at most this many candidate ranks per round'),
  refine: z
    .boolean()
    .default(false)
    .describe('(G3) classic maxvol swaps after the greedy pivoting (volume never decreases)'),
  refineDelta: z.number().positive().default(0.05).describe('refinement stops when max|B_ij| ≤ 1 + δ'),
  warmEpochs: warmEpochsParam,
  epochs: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('proxy epochs of the simulated schedule (G8; 0 = static subset from one checkpoint)'),
  selectIter: z.number().int().min(1).default(25).describe('epochs between selection rounds (G8)'),
  ...proxyFields,
  proxyBatchSize: proxyBatchSize.describe('proxy SGD minibatch size'),
});

export type GraftParams = z.infer<typeof params>;

export const graft: Selector<GraftParams> = {
  name: 'graft',
  description:
    'GRAFT: Fast MaxVol rows of each fixed batch, rank per batch chosen by proxy-gradient approximation',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    return p.mode === 'maxvol' ? maxvolMode(input, budget, p, ctx) : graftMode(input, budget, p, ctx);
  },
  partitioned: {
    ...perPartitionForm<GraftParams>(
      (input, budget, p, ctx) => graft.select(input, budget, p, ctx),
      'each partition runs GRAFT at its share of the budget (its own fixed batches and, in graft mode, its ' +
        'own proxy), as one process runs it batch by batch; the merge runs GRAFT on the union to trim the ' +
        'rounding to B',
    ),
    dynamic: {
      when: (p) => p.mode !== 'maxvol' && p.epochs > 0,
      form: quotaForm((input, budget, p, ctx) => graft.select(input, budget, p, ctx), scheduleMerge('GRAFT')),
    },
  },
};

/** (G6) The integers in [⌊ρ − ρf⌋, ⌊ρ + ρf⌋) within 1..K, ρ = K·f; empty → [max(1, ⌊ρ⌋)] ([R]). */
export function rankRange(fraction: number, batchSize: number): number[] {
  const rho = batchSize * fraction;
  const range: number[] = [];
  const high = Math.min(batchSize + 1, Math.floor(rho + rho * fraction));
  for (let r = Math.max(1, Math.floor(rho - rho * fraction)); r < high; r++) range.push(r);
  return range.length > 0 ? range : [Math.min(batchSize, Math.max(1, Math.floor(rho)))];
}

/** (G6) `count` ranks of the range without replacement, ascending. */
export function drawCandidateRanks(range: readonly number[], count: number, random: () => number): number[] {
  const pool = range.slice();
  const take = Math.min(count, pool.length);
  for (let i = 0; i < take; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, take).sort((a, b) => a - b);
}

export interface RoundPicks {
  /** Rank used per batch (r*_b, or the fixed r_b of maxvol). */
  ranks: Int32Array;
  /** Per batch, global ids of P_{r_b} in pivot order. */
  picks: Int32Array[];
  /** |pivot| of each pick, aligned with `picks`. */
  pivots: Float64Array[];
  /** e(P_{r*_b}) or a(P_{r*_b}) per batch (NaN for maxvol). */
  values: Float64Array;
}

function batchPicks(factor: BatchFactor, r: number): { picks: Int32Array; pivots: Float64Array } {
  const local = factor.picks.get(r);
  if (!local) return { picks: new Int32Array(0), pivots: new Float64Array(0) };
  return { picks: Int32Array.from(local, (j) => factor.members[j]!), pivots: factor.pivots.get(r)! };
}

/** (G4)–(G7) for one round: the same factors, this round's gradients and candidate ranks. */
export async function graftRound(
  features: Matrix,
  residuals: Float32Array,
  classes: number,
  factors: readonly BatchFactor[],
  candidates: readonly number[],
  form: GradientForm,
  criterion: Criterion,
  signal?: AbortSignal,
): Promise<RoundPicks> {
  const out: RoundPicks = {
    ranks: new Int32Array(factors.length),
    picks: [],
    pivots: [],
    values: new Float64Array(factors.length),
  };
  for (const [b, factor] of factors.entries()) {
    signal?.throwIfAborted();
    const normSq = await batchTargetNorm(features, residuals, classes, factor.members, form);
    const values = rankCriteria(factor, residuals, classes, normSq, candidates, form, criterion);
    const best = chooseRank(values, criterion, normSq);
    const r = candidates[best]!;
    const chosen = batchPicks(factor, r);
    out.ranks[b] = r;
    out.values[b] = values[best]!;
    out.picks.push(chosen.picks);
    out.pivots.push(chosen.pivots);
  }
  return out;
}

export interface Union {
  /** Global ids, round-robin by pivot position over batches, at most `budget`. */
  indices: Int32Array;
  /** |pivot| per kept pick, aligned with `indices`. */
  pivots: Float64Array;
  /** Σ_b |P_b| before the trim. */
  total: number;
  trimmed: number;
}

/**
 * ∪_b P_b (G7) in round-robin pivot order; the tail beyond `budget` is cut (latest pivots first, then
 * latest batches).
 */
export function unionPicks(round: Pick<RoundPicks, 'picks' | 'pivots'>, budget: number): Union {
  const ids: number[] = [];
  const values: number[] = [];
  const longest = round.picks.reduce((a, p) => Math.max(a, p.length), 0);
  for (let t = 0; t < longest; t++)
    round.picks.forEach((p, b) => {
      if (t < p.length) {
        ids.push(p[t]!);
        values.push(round.pivots[b]![t]!);
      }
    });
  const kept = Math.min(budget, ids.length);
  return {
    indices: Int32Array.from(ids.slice(0, kept)),
    pivots: Float64Array.from(values.slice(0, kept)),
    total: ids.length,
    trimmed: ids.length - kept,
  };
}

function pivotScores(n: number, union: Union): Float32Array {
  const scores = new Float32Array(n);
  union.indices.forEach((id, t) => (scores[id] = union.pivots[t]!));
  return scores;
}

function signalOf(ctx: SelectContext): { signal?: AbortSignal } {
  return ctx.signal ? { signal: ctx.signal } : {};
}

function rankHistogram(ranks: Int32Array): string {
  const counts = new Map<number, number>();
  for (const r of ranks) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([r, c]) => `r=${r}×${c}`)
    .join(', ');
}

function batchesLine(batches: readonly Int32Array[], budget: number, n: number, k: number): string {
  const f = budget / n;
  return (
    `${batches.length} fixed batches of K=${k} (last ${batches.at(-1)?.length ?? 0}); ` +
    `f = B/N = ${f.toPrecision(3)}, ρ = K·f = ${(k * f).toPrecision(3)}`
  );
}

function factorLine(factors: readonly BatchFactor[], p: GraftParams): string {
  const ranks = factors.map((f) => f.rank).sort((a, b) => a - b);
  return (
    `V_r from the eigenvectors of X_b X_bᵀ (numerical rank ${ranks[0]}–${ranks.at(-1)}); ` +
    `greedy MaxVol pivoting${p.refine ? `, refined to max|B| ≤ ${1 + p.refineDelta}` : ''}`
  );
}

function unionLine(union: Union, budget: number): string {
  return (
    `union of ${union.total} picks for a budget of ${budget}` +
    (union.trimmed > 0 ? `; trimmed ${union.trimmed} (latest pivots first, then latest batches)` : '')
  );
}

async function graftMode(
  input: SelectInput,
  budget: number,
  p: GraftParams,
  ctx: SelectContext,
): Promise<Selection> {
  const n = input.n;
  const k = Math.min(p.batchSize, n);
  const { features, classes } = await proxyProblem(input, p, ctx.seed, 'graft');
  const labels = classes.assignment;
  const sgd: ProxyTraining = {
    lr: p.lr,
    momentum: p.momentum,
    weightDecay: p.weightDecay,
    batchSize: p.proxyBatchSize,
  };
  const proxy = await warmProxy(features, labels, classes.k, p.warmEpochs, sgd, ctx.seed, ctx.signal);

  // (G6) candidate ranks of every round, drawn ahead so (G2)–(G3) run once for all of them (G8).
  const rounds = p.epochs > 0 ? Math.ceil(p.epochs / p.selectIter) : 1;
  const range = rankRange(budget / n, k);
  const perRound = Math.min(
    p.maxCandidates,
    Math.ceil(range.length / Math.max(1, Math.floor(p.epochs / p.selectIter))),
  );
  const random = seededRandom(ctx.seed + 1);
  const candidates = Array.from({ length: rounds }, () => drawCandidateRanks(range, perRound, random));

  const batches = fixedBatches(n, k, ctx.seed);
  const factors = await factorBatches(features, batches, candidates.flat(), {
    refine: p.refine,
    delta: p.refineDelta,
    ...signalOf(ctx),
    ...(ctx.progress ? { progress: ctx.progress } : {}),
  });

  const selectFrom = async (head: SoftmaxHead, round: number) => {
    const signals = await proxySignals(head, features, labels);
    const picks = await graftRound(
      features,
      signals.residuals,
      classes.k,
      factors,
      candidates[Math.min(round, rounds - 1)]!,
      p.gradient,
      p.criterion,
      ctx.signal,
    );
    return { picks, union: unionPicks(picks, budget) };
  };

  const first = await selectFrom(proxy.head, 0);
  const trace: TraceEvent[] = [
    { stage: 'classes', message: describeClasses(classes) },
    { stage: 'proxy', message: `warmed ${p.warmEpochs} epochs (${proxy.steps} SGD steps)` },
    {
      stage: 'batches',
      message:
        `${batchesLine(batches, budget, n, k)}; rank range ${range[0]}–${range.at(-1)}, ` +
        `${perRound} candidate ranks per round (G6), round 0: ${candidates[0]!.join(', ')}`,
    },
    { stage: 'factors', message: factorLine(factors, p) },
    {
      stage: 'round 0',
      message:
        `r*_b (${p.criterion} on ${p.gradient} gradients): ${rankHistogram(first.picks.ranks)}; ` +
        unionLine(first.union, budget),
    },
    { stage: 'weights', message: 'none: GRAFT trains uniformly on the subset' },
  ];

  let schedule: Selection['schedule'];
  if (p.epochs > 0) {
    schedule = await simulateRounds(
      {
        features,
        labels,
        proxy,
        sgd,
        epochs: p.epochs,
        every: p.selectIter,
        seed: ctx.seed,
        ...signalOf(ctx),
      },
      async (head, round) => {
        const chosen = round === 0 ? first : await selectFrom(head, round);
        const ranks = Array.from(chosen.picks.ranks);
        return {
          indices: chosen.union.indices,
          info: {
            candidates: (candidates[Math.min(round, rounds - 1)] ?? []).join(','),
            meanRank: ranks.reduce((a, r) => a + r, 0) / Math.max(1, ranks.length),
            picks: chosen.union.total,
            trimmed: chosen.union.trimmed,
          },
        };
      },
    );
    trace.push({
      stage: 'schedule',
      message:
        `${schedule.rounds.length} rounds over ${p.epochs} proxy epochs (every ${p.selectIter}); ` +
        'indices = round 0, the subset from the warm proxy checkpoint',
    });
  }
  return {
    indices: first.union.indices,
    scores: pivotScores(n, first.union),
    ...(schedule ? { schedule } : {}),
    trace,
  };
}

/** §4 (c): feature-only MaxVol, r_b = K·f rounded per batch by largest remainder (Σ r_b = B). */
async function maxvolMode(
  input: SelectInput,
  budget: number,
  p: GraftParams,
  ctx: SelectContext,
): Promise<Selection> {
  const n = input.n;
  const k = Math.min(p.batchSize, n);
  const features = proxyFeatures(input, p.features, 'graft');
  const batches = fixedBatches(n, k, ctx.seed);
  const ranks = allocateBudget(
    batches.map((b) => b.length),
    budget,
  );
  const factors = await factorBatches(
    features,
    batches,
    Array.from(ranks).filter((r) => r > 0),
    {
      refine: p.refine,
      delta: p.refineDelta,
      ...signalOf(ctx),
      ...(ctx.progress ? { progress: ctx.progress } : {}),
    },
  );
  const picks = factors.map((f, b) => batchPicks(f, ranks[b]!));
  const union = unionPicks({ picks: picks.map((x) => x.picks), pivots: picks.map((x) => x.pivots) }, budget);
  const trace: TraceEvent[] = [
    { stage: 'batches', message: batchesLine(batches, budget, n, k) },
    { stage: 'factors', message: factorLine(factors, p) },
    {
      stage: 'ranks',
      message: `fixed r_b = K·f (largest remainder): ${rankHistogram(ranks)}; ${unionLine(union, budget)}`,
    },
  ];
  if (p.epochs > 0) trace.push({ stage: 'schedule', message: 'maxvol is static: epochs/selectIter ignored' });
  return { indices: union.indices, scores: pivotScores(n, union), trace };
}
