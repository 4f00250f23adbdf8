/**
 * CREST (Yang, Kang & Mirzasoleiman, ICML 2023), proxy-simulated schedule (crest.md §4): the whole CREST
 * loop runs on the linear softmax proxy with the run's step budget, and every selection becomes one
 * schedule round of P mini-batch coresets (indices, raw γ, coreset id per pick).
 *
 * Budget: B/N is `train_frac`, a fraction of full-data training *steps* (crest.md §3), not a subset
 * size; the run has epochs × ⌈B/m⌉ steps. Difficulty is the proxy's, not the target model's.
 * CREST has no meaningful static subset (§4): `indices` holds the items the simulated run trained on
 * most (Σ weight × steps), at most B of them, and `scores` that exposure for every item.
 */
import { z } from 'zod';
import { quotaForm, scheduleMerge } from '../partitioned.js';
import type { Selector, TraceEvent } from '../contract.js';
import { crestLoop, stepsPerEpoch } from '../crest/loop.js';
import { describeClasses } from '../latentClasses.js';
import { proxyParams, proxyProblem } from '../proxy/problem.js';

const params = z.object({
  // K ≤ m (crest.md §8): 64 pseudo-classes for m = 128.
  ...proxyParams(64),
  batchSize: z
    .number()
    .int()
    .min(1)
    .default(128)
    .describe('m: mini-batch coreset size = proxy training batch (code default 128)'),
  epochs: z
    .number()
    .int()
    .min(2)
    .default(10)
    .describe('epochs of the simulated run (epoch 0 is the full-data warm-up)'),
  randomSubsetSize: z
    .number()
    .gt(0)
    .max(1)
    .default(0.01)
    .describe('ρ: each random subset holds ⌈ρN/C⌉ items per class (R1)'),
  minSubsetBatches: z
    .number()
    .min(0)
    .default(4)
    .describe(
      'our floor for small pools: a random subset holds at least this many mini-batches (CIFAR ratio ≈ 3.9; 0 = the code)',
    ),
  coresets: z.number().int().min(1).default(5).describe('P: mini-batch coresets at the first selection'),
  checkInterval: z
    .number()
    .int()
    .min(1)
    .default(1)
    .describe('T₁: steps between checks at the first selection'),
  batchNumMul: z.number().positive().default(5).describe('(R7): P = min(T₁ · batchNumMul, steps per epoch)'),
  intervalMul: z.number().positive().default(1).describe('(R7): T₁ = ⌈κ₀/κ_t · intervalMul⌉'),
  checkThresh: z
    .number()
    .min(0)
    .default(0.1)
    .describe('τ: reselect when |L_true − F̃(δ)| > τ·L_true (R6; tune per dataset)'),
  dropLearned: z.boolean().default(false).describe('drop learned examples from the pool (R8)'),
  watchInterval: z.number().int().min(1).default(5).describe('(R8) loss ring slots, one per epoch'),
  dropInterval: z.number().int().min(1).default(20).describe('(R8) apply dropping every this many epochs'),
  dropThresh: z.number().min(0).default(0.1).describe('(R8) an example is learned when its loss ≤ this'),
  minTrainSize: z
    .number()
    .min(0)
    .max(1)
    .default(0.8)
    .describe('(R8) apply a smaller pool only if it keeps more than this fraction of N'),
  similarity: z
    .enum(['expKernel', 'maxMinusDist'])
    .default('expKernel')
    .describe(
      'facility-location similarity: exp(−D/q) as CREST’s submodlib (docs/methods/crest.md#choices-and-differences-from-the-paper), or CRAIG’s max − D',
    ),
  gradient: z
    .enum(['logits', 'lastLayer'])
    .default('logits')
    .describe('gradient proxy: p − e_y (code), or the last-layer gradient [g; g⊗x] via the Gram trick'),
});

type Params = z.infer<typeof params>;

export const crest: Selector<Params> = {
  name: 'crest',
  description:
    'CREST: schedule of mini-batch coresets from random subsets, reselected when a quadratic loss model fails (budget = fraction of training steps)',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const { features, classes } = await proxyProblem(input, p, ctx.seed, 'crest');
    const trace: TraceEvent[] = [{ stage: 'classes', message: describeClasses(classes) }];
    const nonEmpty = classes.members.filter((c) => c.length > 0).length;
    if (nonEmpty > p.batchSize)
      trace.push({
        stage: 'classes',
        message: `${nonEmpty} classes > m = ${p.batchSize}: every mini-batch coreset holds at least one item per class (keep K ≤ m: docs/methods/crest.md#classes-and-batch-size)`,
      });
    const trainFraction = budget / input.n;
    const totalSteps = p.epochs * stepsPerEpoch(input.n, trainFraction, p.batchSize);
    const progress = ctx.progress;
    const run = await crestLoop(features, classes.assignment, classes.k, {
      ...p,
      trainFraction,
      sgd: { lr: p.lr, momentum: p.momentum, weightDecay: p.weightDecay },
      seed: ctx.seed,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(progress ? { onSelection: (e: { step: number }) => progress(e.step, totalSteps) } : {}),
    });

    const ranked = Array.from(run.exposure.keys())
      .filter((i) => run.exposure[i]! > 0)
      .sort((a, b) => run.exposure[b]! - run.exposure[a]! || a - b)
      .slice(0, budget);
    const rounds = run.schedule.rounds;
    const byCheck = rounds.filter((r) => r.info?.ended === 'check').length;
    trace.push(
      {
        stage: 'budget',
        message: `train_frac = B/N = ${budget}/${input.n}: ${run.stepsPerEpoch} steps per epoch × ${p.epochs} epochs = ${run.steps} steps of m = ${p.batchSize}; progress [0, ${(run.warmupSteps / run.steps).toFixed(3)}) is the full-data warm-up (no round)`,
      },
      {
        stage: 'schedule',
        message: `${rounds.length} selections (${byCheck} by a failed check, τ = ${p.checkThresh}), ${run.checks} checks on ∪V_p, ${run.perClassSubset} per class in each random subset; pool ${run.poolSize}/${input.n}`,
      },
      {
        stage: 'static',
        message: `CREST has no static subset (docs/methods/crest.md#output; use CRAIG for one): indices = the ${ranked.length} items the simulated proxy run trained on most (weight × steps), scores = that exposure; difficulty is the proxy's, not the target model's`,
      },
    );
    return {
      indices: Int32Array.from(ranked),
      scores: Float32Array.from(run.exposure),
      schedule: run.schedule,
      trace,
    };
  },
  partitioned: quotaForm(
    (input, budget, p, ctx) => crest.select(input, budget, p, ctx),
    scheduleMerge('CREST'),
  ),
};
