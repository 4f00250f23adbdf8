/**
 * SeTa (Zhou, Gao & Wang, CVPR 2025; seta.md): per epoch, random pruning to ⌊κN⌋ (S1–S2), 1-D k-means
 * of the candidates' latest losses into G difficulty groups (S4), and a window of w groups sliding
 * easy → hard over the rounds (S5); past δ·E, plain random ⌊κN⌋ ("partial annealing", S6).
 *
 * SeTa is dynamic: its output is `schedule`, one round per proxy epoch, simulated on the softmax proxy
 * trained from scratch (scores start at 3.0, S3; stale for samples not trained on, seta.md §8). The
 * proxy's loss is the difficulty signal: by default the cross-modal one (caption embedding → image
 * (pseudo-)class, seta.md §2 [R]), so the hardest group gathers mismatched pairs.
 *
 * Budget B. `pruneRatio: 'budget'` (default) picks κ so that a window round would keep B if the G groups
 * were equal-sized: κ = B·G/(N·w), clamped by (S1) to [0.1, 1]. k-means groups on skewed losses are not
 * equal, so rounds vary around that (the trace gives their range and the realised saved ratio, S7). (The official scripts use 0.1 for CIFAR, where G = 5 and
 * window 0.9 keep ≈ 0.72N, and 0 for ImageNet; a number sets it directly.) There is no static SeTa subset
 * (§4): `indices` is the labelled static analogue "random ⌊κN⌋ minus the extreme loss groups at one
 * checkpoint": the pool's losses under the final proxy in G groups (S4), the groups of the middle
 * window ⌊(s − 1)/2⌋ (for G = 5, w = 4: all but the hardest), a seeded random B of them (κ_B = B/|window|;
 * fewer when the window holds fewer than B).
 */
import { z } from 'zod';
import { quotaForm, scheduleMerge } from '../partitioned.js';
import { seededRandom } from '../../compute/random.js';
import { SelectionInputError, type SelectInput, type Selector, type TraceEvent } from '../contract.js';
import type { Matrix } from '../kernels/similarity.js';
import { describeClasses, type LatentClasses } from '../latentClasses.js';
import { proxyParams, proxyProblem, proxySignals, warmProxy } from '../proxy/problem.js';
import { shuffle, simulateSeta, thresholdText } from '../seta/simulate.js';
import {
  keepRatio,
  keptCount,
  lossGroups,
  middleWindow,
  roundHalfEven,
  windowPositions,
} from '../seta/window.js';

export const setaParams = z.object({
  ...proxyParams(10),
  clusters: z
    .union([z.literal('auto'), z.number().int().min(2)])
    .default('auto')
    .describe('k-means pseudo-classes when the pool has no labels (auto = N/3000, at least 10)'),
  features: z
    .enum(['auto', 'caption', 'image', 'joint'])
    .default('auto')
    .describe(
      'proxy input: caption embeddings → image (pseudo-)class (cross-modal loss, docs/methods/common.md#cross-modal-proxy), image, ' +
        'or (x + t)/‖x + t‖; auto = caption when the pool has caption embeddings, else image',
    ),
  pruneRatio: z
    .union([z.literal('budget'), z.number().min(0).max(1)])
    .default('budget')
    .describe(
      'random-prune fraction (S1, κ = min(1, max(0.1, 1 − r))); budget = choose κ so a window round ' +
        'keeps about B (official: 0.1 CIFAR, 0 ImageNet)',
    ),
  groups: z.number().int().min(1).default(5).describe('G, loss groups per epoch (S4; CIFAR script 5)'),
  windowScale: z
    .number()
    .gt(0)
    .max(1)
    .default(0.9)
    .describe('w = round(G·scale), half to even (S5; CIFAR script 0.9 → w = 4 of 5)'),
  delta: z
    .number()
    .min(0)
    .max(1)
    .default(0.875)
    .describe('δ: epochs e > δ·E sample a random ⌊κN⌋ instead (S6)'),
  epochs: z.number().int().min(1).default(20).describe('E, proxy epochs of the simulated run'),
  refreshEvery: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('recompute every pool loss after every k-th epoch (0 = off: stale scores, as the code)'),
});

export type SetaParams = z.infer<typeof setaParams>;

export const seta: Selector<SetaParams> = {
  name: 'seta',
  description:
    'SeTa: per epoch, random prune + loss groups with an easy → hard sliding window, annealed to random ' +
    '(dynamic: schedule on a proxy)',
  params: setaParams,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const n = input.n;
    const width = roundHalfEven(p.groups * p.windowScale);
    if (width < 1)
      throw new SelectionInputError(
        `seta: groups·windowScale = ${p.groups * p.windowScale} rounds to 0 groups`,
      );
    const budgetKeep = Math.min(1, (budget * p.groups) / (n * width));
    const keep = keepRatio(p.pruneRatio === 'budget' ? 1 - budgetKeep : p.pruneRatio);
    const { features, classes, view } = await setaProblem(input, p, ctx.seed);
    const labels = classes.assignment;
    const sgd = { lr: p.lr, momentum: p.momentum, weightDecay: p.weightDecay, batchSize: p.batchSize };
    // SeTa runs alongside training from its start: an untrained proxy, every score at 3.0 (S3).
    const proxy = await warmProxy(features, labels, classes.k, 0, sgd, ctx.seed, ctx.signal);
    const annealFrom = Math.floor(p.delta * p.epochs) + 1;
    const trace: TraceEvent[] = [
      { stage: 'classes', message: `${describeClasses(classes)}; proxy loss on ${view}` },
      {
        stage: 'settings',
        message:
          `κ = ${keep.toFixed(4)} (${p.pruneRatio === 'budget' ? `from budget ${budget}: B·G/(N·w) = ${budgetKeep.toFixed(4)}` : `prune ratio ${p.pruneRatio}`}` +
          `${p.pruneRatio === 'budget' && budgetKeep < keep ? ', raised to the 0.1 floor of (S1)' : ''}), ` +
          `G = ${p.groups}, w = ${width} (round half to even of ${p.groups}·${p.windowScale}), ` +
          `${windowPositions(p.groups, width)} window positions; annealing (random ⌊κN⌋) from epoch ` +
          `${annealFrom} of ${p.epochs}`,
      },
    ];

    const run = await simulateSeta({
      features,
      labels,
      proxy,
      sgd,
      keep,
      groups: p.groups,
      width,
      delta: p.delta,
      epochs: p.epochs,
      refreshEvery: p.refreshEvery,
      seed: ctx.seed,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(ctx.progress ? { onEpoch: ({ epoch }) => ctx.progress!(epoch, p.epochs) } : {}),
    });
    const windowed = run.keptSizes.filter((_, e) => run.rounds[e]!.info!.annealed === 'no');
    trace.push({
      stage: 'schedule',
      message:
        `${p.epochs} epoch rounds; realised saved ratio (S7) ${run.savedRatio.toFixed(4)} ` +
        `(Σ(N − |kept_e|)/(N·E)); window rounds keep ${Math.min(...windowed)}–${Math.max(...windowed)}` +
        `${windowed.length < p.epochs ? `, annealed rounds ${keptCount(keep, n)}` : ''}; ` +
        `${run.neverTrained} items never trained (score still 3.0)` +
        `${p.refreshEvery > 0 ? `; all losses refreshed every ${p.refreshEvery} epochs` : '; stale scores for the rest'}; ` +
        `${proxy.steps} proxy SGD steps`,
    });

    // The static analogue (§4): at the final checkpoint, the pool minus its extreme loss groups, randomly
    // pruned to B (a random prune with κ_B = B / |window|).
    const { losses } = await proxySignals(proxy.head, features, labels);
    const groups = lossGroups(losses, p.groups);
    const window = middleWindow(p.groups, width);
    const windowMembers = groups.order.slice(
      groups.bounds[window.start]!,
      groups.bounds[window.start + width]!,
    );
    shuffle(windowMembers, seededRandom(ctx.seed ^ 0x5e7a));
    const indices = windowMembers.slice(0, budget);
    trace.push({
      stage: 'static analogue',
      message:
        `indices are NOT a SeTa subset (SeTa has none, docs/methods/seta.md#output) but its static analogue: at the final ` +
        `proxy checkpoint the pool's loss groups ${window.start + 1}–${window.start + width} of ${p.groups} ` +
        `(${windowMembers.length} items; thresholds ${thresholdText(groups.upper)}), randomly pruned to ` +
        `${indices.length} (κ_B = ${Math.min(1, budget / Math.max(1, windowMembers.length)).toFixed(4)}); ` +
        `scores = final proxy losses`,
    });
    return {
      indices,
      scores: losses,
      schedule: { unit: 'epoch', total: p.epochs, rounds: run.rounds },
      trace,
    };
  },
  partitioned: quotaForm(
    (input, budget, p, ctx) => seta.select(input, budget, p, ctx),
    scheduleMerge('SeTa'),
  ),
};

/** The proxy problem with `auto` resolved: the cross-modal (caption) proxy when captions are loaded. */
async function setaProblem(
  input: SelectInput,
  p: SetaParams,
  seed: number,
): Promise<{ features: Matrix; classes: LatentClasses; view: string }> {
  const view = p.features === 'auto' ? (input.text ? 'caption' : 'image') : p.features;
  const { features, classes } = await proxyProblem(input, { ...p, features: view }, seed, 'seta');
  const source = view === 'caption' ? 'caption embeddings → image classes' : `${view} embeddings`;
  return { features, classes, view: source };
}
