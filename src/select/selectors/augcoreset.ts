/**
 * Augmentation coresets (augcoreset.md, Liu & Mirzasoleiman, NeurIPS 2022): which examples deserve the
 * expensive augmentation (strong image augmentation in the trainer, augmented re-embedding, caption
 * rewriting). The selector is CRAIG on last-layer gradients of un-augmented predictions (U2, U3):
 * per-class facility location with equal class budgets, submodlib's exp(−D/q) kernel, weights = cluster
 * sizes with empty clusters set to 1 (§8). `epochs` > 0 adds the reselection schedule every R epochs
 * (U2); each round says which training-set assembly (U4) it was chosen for.
 *
 * When augmented-view embeddings are loaded (`SelectInput.imageViews`), the trace reports the proxy's
 * measured (U1): the coreset's gradient error on augmented inputs next to random and max-loss sets.
 */
import { z } from 'zod';
import { seededRandom } from '../../compute/random.js';
import type { SelectInput, Selector, TraceEvent } from '../contract.js';
import { gather, type Matrix } from '../kernels/similarity.js';
import { proxyFeatures, proxyProblem, proxySignals, warmProxy } from '../proxy/problem.js';
import { headPass, type SoftmaxHead } from '../proxy/softmaxHead.js';
import { gradientCoresetParams, gradientMode } from './craig.js';
import { staticPerPartitionForm } from '../partitioned.js';

const assemblies = ['augment-only', 'train-and-augment', 'random-main'] as const;
export type Assembly = (typeof assemblies)[number];

const params = z.object({
  ...gradientCoresetParams,
  similarity: gradientCoresetParams.similarity.removeDefault().default('expKernel'),
  classBudget: gradientCoresetParams.classBudget.removeDefault().default('equal'),
  lag: gradientCoresetParams.lag.describe('R: reselect every R epochs (U2)'),
  assembly: z
    .enum(assemblies)
    .default('augment-only')
    .describe(
      'U4: M1 all N weak + strong copies of S; M2 weak S (weighted) + strong S; M3 random B weak + strong S',
    ),
});

type AugParams = z.infer<typeof params>;

export const augcoreset: Selector<AugParams> = {
  name: 'augcoreset',
  description: 'Augmentation coreset: which examples get strong augmentation (CRAIG on proxy gradients)',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const selection = await gradientMode(
      input,
      budget,
      {
        ...p,
        preconditioner: 'none',
        hessianPower: 1,
        damping: 1e-4,
        beta: 0.999,
      },
      ctx,
      { emptyClustersWeighOne: true, name: 'augcoreset' },
    );
    for (const round of selection.schedule?.rounds ?? [])
      round.info = { ...round.info, assembly: p.assembly };
    selection.trace.push({
      stage: 'assembly',
      message:
        `${p.assembly}: epoch size ${epochSize(p.assembly, input.n, selection.indices.length)}; ` +
        'augmented copies carry the original ids, weight 1 (normalise γ to mean 1 for the weighted weak copies of M2)',
    });
    if (input.imageViews)
      selection.trace.push(
        await measureAugmentedError(input, selection.indices, selection.weights!, p, ctx.seed),
      );
    return selection;
  },
  partitioned: staticPerPartitionForm<AugParams>(
    'augcoreset',
    (input, budget, p, ctx) => augcoreset.select(input, budget, p, ctx),
    'each partition picks its strongly augmented examples with its own proxy, warmed on its own items, at ' +
      'its share of the budget; the merge runs the method on the union to trim the rounding to B',
  ),
};

/** Items in one epoch under each assembly (U4): M1 N + B, M2 and M3 2B. */
export function epochSize(assembly: Assembly, n: number, b: number): number {
  return assembly === 'augment-only' ? n + b : 2 * b;
}

export interface EpochItem {
  index: number;
  augmented: boolean;
  weight: number;
}

/**
 * The training set of one epoch (U4), for a trainer or a test: weak copies (augmented = false) and strong
 * copies (augmented = true) with their loss weights; γ normalised to mean 1 where the mode weighs.
 */
export function assembleEpoch(
  assembly: Assembly,
  n: number,
  coreset: { indices: ArrayLike<number>; weights: ArrayLike<number> },
  random: () => number = Math.random,
): EpochItem[] {
  const b = coreset.indices.length;
  const strong = Array.from(coreset.indices, (index) => ({ index, augmented: true, weight: 1 }));
  if (assembly === 'augment-only')
    return [...Array.from({ length: n }, (_, index) => ({ index, augmented: false, weight: 1 })), ...strong];
  if (assembly === 'train-and-augment') {
    let total = 0;
    for (let t = 0; t < b; t++) total += coreset.weights[t]!;
    const weak = Array.from(coreset.indices, (index, t) => ({
      index,
      augmented: false,
      weight: (coreset.weights[t]! * b) / total,
    }));
    return [...weak, ...strong];
  }
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const main = Array.from(order.subarray(0, b), (index) => ({ index, augmented: false, weight: 1 }));
  return [...main, ...strong];
}

/**
 * ‖Σ_V ∇ℓ_i − Σ_S γ_j ∇ℓ_j‖ of the proxy's last layer (weights and bias), on given inputs: the two sides
 * of (U1) when called with clean and augmented embeddings (augcoreset.md §2: exact for a linear head).
 */
export async function gradientError(
  head: SoftmaxHead,
  x: Matrix,
  labels: Int32Array,
  subset: ArrayLike<number>,
  weights: ArrayLike<number>,
): Promise<number> {
  const full = await headPass(head, x, labels, new Float32Array(x.rows).fill(1));
  const part = await headPass(
    head,
    gather(x, subset),
    Int32Array.from(subset, (i) => labels[i]!),
    Float32Array.from(weights),
  );
  let s = 0;
  for (let t = 0; t < full.gradWeight.length; t++) s += (full.gradWeight[t]! - part.gradWeight[t]!) ** 2;
  for (let t = 0; t < full.gradBias.length; t++) s += (full.gradBias[t]! - part.gradBias[t]!) ** 2;
  return Math.sqrt(s);
}

async function measureAugmentedError(
  input: SelectInput,
  picks: Int32Array,
  weights: Float32Array,
  p: AugParams,
  seed: number,
): Promise<TraceEvent> {
  const { features, classes } = await proxyProblem(input, p, seed, 'augcoreset');
  const sgd = { lr: p.lr, momentum: p.momentum, weightDecay: p.weightDecay, batchSize: p.batchSize };
  const { head } = await warmProxy(features, classes.assignment, classes.k, p.warmEpochs, sgd, seed);
  const augmented = proxyFeatures({ ...input, image: input.imageViews! }, p.features);
  const b = picks.length;
  const uniform = new Float32Array(b).fill(input.n / b);
  const random = seededRandom(seed + 1);
  const randomSet = Int32Array.from({ length: b }, () => Math.floor(random() * input.n));
  const losses = (await proxySignals(head, features, classes.assignment)).losses;
  const maxLoss = Int32Array.from(
    Array.from(losses.keys())
      .sort((a, c) => losses[c]! - losses[a]!)
      .slice(0, b),
  );
  const err = (x: Matrix, set: Int32Array, w: Float32Array) =>
    gradientError(head, x, classes.assignment, set, w);
  const row = async (set: Int32Array, w: Float32Array) =>
    `${(await err(features, set, w)).toPrecision(3)} → ${(await err(augmented, set, w)).toPrecision(3)}`;
  return {
    stage: 'U1',
    message:
      `proxy gradient error clean → augmented views: coreset ${await row(picks, weights)}; ` +
      `random ${await row(randomSet, uniform)}; max-loss ${await row(maxLoss, uniform)}`,
  };
}
