/**
 * CRAIG (craig.md) and AdaCore (adacore.md) behind one selector.
 *
 * features mode (convex justification, §2): per class, facility location with s_ij = D_max − ‖x_i − x_j‖
 * (C5) on the embeddings, proportional budgets; static.
 * gradients mode (deep-net setting): a softmax proxy on the embeddings, warmed up; g_i = p_i − e_{y_i}
 * (C4) (or ĝ = [g; g ⊗ x] through the Gram trick); per class facility location on g (C3, C5/C6), weights
 * = cluster sizes (C7), equal budgets by default (step 1); classes merged round-robin (step 5).
 * With a preconditioner it is AdaCore: g is divided by the exponentially averaged Hessian diagonal
 * (A1, A3, A4) before the same facility location (A5, A6).
 * `epochs` > 0 adds the proxy-simulated schedule (step 7 / A7): reselect every `lag` epochs from all N,
 * train the proxy one segment on the weighted subset, one round per reselection.
 */
import { z } from 'zod';
import { asDense } from '../../compute/linalg.js';
import { kmeans } from '../../compute/kmeans.js';
import {
  itemRef,
  type Selection,
  type SelectContext,
  type SelectInput,
  type Selector,
  type TraceEvent,
} from '../contract.js';
import {
  classBudgets,
  mergeClassOrders,
  perClassCoreset,
  type ClassBudgetMode,
  type GradientSimilarity,
  type GradientSpace,
} from '../gradient/coreset.js';
import {
  CurvatureAverage,
  logitHessianDiagonal,
  meanDiagonal,
  precondition,
  type Preconditioner,
} from '../gradient/precondition.js';
import type { Matrix } from '../kernels/similarity.js';
import { describeClasses } from '../latentClasses.js';
import { proxyParams, proxyProblem, proxySignals, warmProxy, warmEpochsParam } from '../proxy/problem.js';
import { simulateRounds } from '../proxy/simulate.js';
import type { SoftmaxHead } from '../proxy/softmaxHead.js';
import { groupByLabel } from '../stratify.js';
import {
  quotaForm,
  scheduleMerge,
  staticPerPartitionForm,
  weightsByNearest,
  type GreediForm,
} from '../partitioned.js';
import { facilityParams, facilitySelect } from './facility.js';
import { embeddingParam, gather, vectorsOf } from './vectors.js';

export const gradientCoresetParams = {
  ...proxyParams(10),
  gradient: z
    .enum(['logits', 'lastLayer'])
    .default('logits')
    .describe('g = p − e_y (C4), or the last layer ĝ = [g; g ⊗ x] through the Gram trick'),
  similarity: z
    .enum(['maxMinusDist', 'expKernel'])
    .default('maxMinusDist')
    .describe("block max − distance (C5), or submodlib's exp(−D/q) (CREST / augmentation code)"),
  classBudget: z
    .enum(['auto', 'equal', 'proportional'])
    .default('auto')
    .describe('per-class budgets (step 1): auto = proportional in features mode, equal in gradients mode'),
  warmEpochs: warmEpochsParam,
  epochs: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('proxy epochs of the simulated schedule (0 = static selection from one checkpoint)'),
  lag: z.number().int().min(1).default(1).describe('reselect every lag epochs (step 7)'),
  optimizer: facilityParams.optimizer,
  epsilon: facilityParams.epsilon,
};

const params = z.object({
  mode: z
    .enum(['features', 'gradients'])
    .default('features')
    .describe('facility location on embeddings (convex, static) or on proxy gradients (deep nets)'),
  embedding: embeddingParam,
  pseudoClasses: z
    .number()
    .int()
    .min(1)
    .default(10)
    .describe('features mode: k-means clusters used as classes when there are no labels'),
  graph: facilityParams.mode.describe(
    'features mode: dense similarity blocks or a kNN graph for large classes',
  ),
  neighbors: facilityParams.neighbors,
  ...gradientCoresetParams,
  preconditioner: z
    .enum(['none', 'perExample', 'shared'])
    .default('none')
    .describe('AdaCore (A3): divide g by the averaged Hessian diagonal, per example or shared'),
  hessianPower: z.number().min(0).max(1).default(1).describe('AdaCore k (A4)'),
  damping: z.number().positive().default(1e-4).describe('AdaCore λ (A3)'),
  beta: z.number().min(0).lt(1).default(0.999).describe('AdaCore β, EMA of squared diagonals (A4)'),
});

export type CraigParams = z.infer<typeof params>;

/** What CRAIG and AdaCore share (each adds its own partitioned form). */
const craigSelector: Selector<CraigParams> = {
  name: 'craig',
  description:
    'CRAIG coreset: per-class facility location on embeddings or proxy gradients, weights = cluster sizes; ' +
    'preconditioner = AdaCore',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    return p.mode === 'features' && p.preconditioner === 'none'
      ? featureMode(input, budget, p, ctx)
      : gradientMode(input, budget, p, ctx);
  },
};

export const craig: Selector<CraigParams> = {
  ...craigSelector,
  partitioned: {
    merge:
      'features mode: CRAIG again on the union of the partitions’ candidates, each counted as the items it ' +
      'stands for (class quotas from those counts); gradients mode: each partition trains its own proxy on ' +
      'its items and keeps its gradient coreset as candidates, the merge runs gradient-mode CRAIG (a proxy ' +
      'trained on the union) on the union (plain GreeDi); weights: every item to its nearest pick in ' +
      'embedding space, since the partitions’ gradient spaces differ',
    // Weights: every item to its nearest pick (featureMode's γ leaves out the clusters of picks its
    // class quotas trimmed, and a merge round must see all of a partition's items).
    async local(input, want, p, seed, signal) {
      const ctx = { seed, ...(signal ? { signal } : {}) };
      const r = await partitionRun(input, want, p, ctx);
      return {
        indices: r.indices,
        weights: await weightsByNearest(vectorsOf(input, p.embedding), r.indices),
      };
    },
    async combine(input, multiplicity, budget, p, seed, signal) {
      const ctx = { seed, ...(signal ? { signal } : {}) };
      const r = await partitionRun(input, budget, p, ctx, multiplicity);
      const x = vectorsOf(input, p.embedding);
      return { indices: r.indices, weights: await weightsByNearest(x, r.indices, multiplicity) };
    },
    dynamic: {
      when: (p) => p.epochs > 0,
      form: quotaForm(
        (input, budget, p, ctx) => craigSelector.select(input, budget, p, ctx),
        scheduleMerge('CRAIG'),
      ),
    },
  } satisfies GreediForm<CraigParams>,
};

/**
 * One step of the partitioned run: features mode (with the rows' multiplicities in the merge), or the
 * static gradient-mode coreset, its proxy trained on the rows it is given. (A schedule, `epochs` > 0,
 * takes the form's `dynamic` path instead.)
 */
function partitionRun(
  input: SelectInput,
  budget: number,
  p: CraigParams,
  ctx: SelectContext,
  multiplicity?: Float64Array,
): Promise<Selection> {
  if (p.mode === 'features' && p.preconditioner === 'none')
    return featureMode(input, budget, p, ctx, multiplicity);
  return gradientMode(input, budget, p, ctx);
}

/** AdaCore: the same selector with the per-example preconditioner on (adacore.md §4). */
export const adacore: Selector<CraigParams> = {
  ...craigSelector,
  name: 'adacore',
  description: 'AdaCore (reconstructed): CRAIG on Hessian-preconditioned proxy gradients',
  params: params.extend({
    mode: params.shape.mode.removeDefault().default('gradients'),
    preconditioner: params.shape.preconditioner.removeDefault().default('perExample'),
  }) as unknown as z.ZodType<CraigParams>,
  partitioned: staticPerPartitionForm<CraigParams>(
    'adacore',
    (input, budget, p, ctx) => craigSelector.select(input, budget, p, ctx),
    'each partition runs AdaCore with its own proxy, warmed on its own items, at its share of the budget ' +
      '(per class inside it, as one process does per class of the pool); the merge runs AdaCore on the ' +
      'union to trim the rounding to B',
  ),
};

/**
 * Features mode; with `multiplicity` (a partitioned run's merge) each row counts as that many items:
 * class quotas follow the classes' summed multiplicities and facility location weighs each item by it.
 */
async function featureMode(
  input: SelectInput,
  budget: number,
  p: CraigParams,
  ctx: SelectContext,
  multiplicity?: Float64Array,
): Promise<Selection> {
  const x = vectorsOf(input, p.embedding);
  const labels =
    input.labels ??
    (await kmeans(asDense(x), Math.min(p.pseudoClasses, x.rows), { seed: ctx.seed })).assignment;
  const classes = groupByLabel(labels).filter((g) => g.length > 0);
  const mode: ClassBudgetMode = p.classBudget === 'equal' ? 'equal' : 'proportional';
  const sizes = classes.map((g) =>
    multiplicity ? g.reduce((sum, i) => sum + multiplicity[i]!, 0) : g.length,
  );
  const quotas = classBudgets(sizes, budget, mode).map((q, c) => Math.min(q, classes[c]!.length));
  const orders = [];
  const owner = new Int32Array(x.rows).fill(-1);
  for (const [c, members] of classes.entries()) {
    const r = await facilitySelect(gather(x, members), quotas[c]!, {
      mode: p.graph,
      neighbors: p.neighbors,
      optimizer: p.optimizer,
      epsilon: p.epsilon,
      seed: ctx.seed + c,
      similarity: 'distance',
      ...(multiplicity ? { multiplicity: Float64Array.from(members, (i) => multiplicity[i]!) } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    orders.push({ picks: Array.from(r.picks, (local) => members[local]!), weights: r.weights });
    r.owner.forEach((o, local) => (owner[members[local]!] = o < 0 ? -1 : members[o]!));
  }
  const merged = mergeClassOrders(orders, budget);
  return {
    ...merged,
    reasons: craigReasons(merged, labels, owner),
    trace: [
      {
        stage: 'per-class',
        message: `${classes.length} classes, quotas ${quotas.join(', ')}${input.labels ? '' : ' (k-means pseudo-labels)'}`,
      },
    ],
  };
}

export type GradientModeParams = z.infer<z.ZodObject<typeof gradientCoresetParams>> & {
  preconditioner: Preconditioner;
  hessianPower: number;
  damping: number;
  beta: number;
};

/** The gradient-mode run, shared with the augmentation-coreset selector. */
export async function gradientMode(
  input: SelectInput,
  budget: number,
  p: GradientModeParams,
  ctx: SelectContext,
  options: { emptyClustersWeighOne?: boolean; name?: string } = {},
): Promise<Selection> {
  const name = options.name ?? (p.preconditioner === 'none' ? 'craig' : 'adacore');
  const { features, classes } = await proxyProblem(input, p, ctx.seed, name);
  const labels = classes.assignment;
  const sgd = { lr: p.lr, momentum: p.momentum, weightDecay: p.weightDecay, batchSize: p.batchSize };
  const proxy = await warmProxy(features, labels, classes.k, p.warmEpochs, sgd, ctx.seed, ctx.signal);
  const curvature = new CurvatureAverage({ beta: p.beta, power: p.hessianPower, damping: p.damping });
  const classBudget: ClassBudgetMode = p.classBudget === 'proportional' ? 'proportional' : 'equal';
  const trace: TraceEvent[] = [
    { stage: 'classes', message: describeClasses(classes) },
    { stage: 'proxy', message: `warmed ${p.warmEpochs} epochs (${proxy.steps} SGD steps)` },
  ];

  const selectFrom = async (head: SoftmaxHead, round: number) => {
    const signals = await proxySignals(head, features, labels);
    const space = await gradientSpace(signals.residuals, labels, classes.k, features, p, curvature);
    const coreset = await perClassCoreset(space, classes.members, budget, classBudget, {
      similarity: p.similarity as GradientSimilarity,
      optimizer: p.optimizer,
      epsilon: p.epsilon,
      seed: ctx.seed + 104729 * round,
      ...(options.emptyClustersWeighOne ? { emptyClustersWeighOne: true } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    const norms = rowNorms(space.g);
    return { coreset, signals, norms };
  };

  const first = await selectFrom(proxy.head, 0);
  trace.push(
    {
      stage: 'round 0',
      message:
        `per-class budgets (${classBudget}) ${first.coreset.quotas.join(', ')}; ` +
        `‖${p.preconditioner === 'none' ? 'g' : 'u'}‖ ${quantiles(first.norms)}; ` +
        `mean proxy loss ${mean(first.signals.losses).toFixed(3)}`,
    },
    {
      stage: 'weights',
      message: 'weights are raw γ (cluster sizes, Σ = class size); a minibatch trainer uses w = γ·|S|/Σγ',
    },
  );
  let schedule: Selection['schedule'];
  if (p.epochs > 0) {
    let latest = first;
    schedule = await simulateRounds(
      { features, labels, proxy, sgd, epochs: p.epochs, every: p.lag, seed: ctx.seed, ...signalOf(ctx) },
      async (head, round) => {
        latest = round === 0 ? first : await selectFrom(head, round);
        return {
          indices: latest.coreset.indices,
          weights: latest.coreset.weights,
          info: { meanLoss: mean(latest.signals.losses), medianNorm: median(latest.norms) },
        };
      },
    );
    trace.push({
      stage: 'schedule',
      message: `${schedule.rounds.length} rounds over ${p.epochs} proxy epochs (reselect every ${p.lag}); final mean proxy loss ${mean(latest.signals.losses).toFixed(3)}`,
    });
  }
  return {
    indices: first.coreset.indices,
    weights: first.coreset.weights,
    reasons: craigReasons(first.coreset, labels),
    ...(schedule ? { schedule } : {}),
    trace,
  };
}

/** g (C4), preconditioned into u (A3) for AdaCore, and the head inputs for the last-layer Gram trick. */
async function gradientSpace(
  residuals: Float32Array,
  labels: Int32Array,
  k: number,
  features: Matrix,
  p: GradientModeParams,
  curvature: CurvatureAverage,
): Promise<GradientSpace> {
  let g = residuals;
  if (p.preconditioner !== 'none') {
    const diagonal = logitHessianDiagonal(residuals, labels, k);
    curvature.update(p.preconditioner === 'shared' ? meanDiagonal(diagonal, k) : diagonal);
    g = precondition(residuals, curvature.value(), k, p.damping);
  }
  return {
    g: { rows: labels.length, cols: k, data: g },
    ...(p.gradient === 'lastLayer' ? { h: features } : {}),
  };
}

function rowNorms(m: Matrix): Float64Array {
  const out = new Float64Array(m.rows);
  for (let i = 0; i < m.rows; i++) {
    let s = 0;
    for (let c = 0; c < m.cols; c++) s += m.data[i * m.cols + c]! ** 2;
    out[i] = Math.sqrt(s);
  }
  return out;
}

function quantiles(v: Float64Array): string {
  const s = Float64Array.from(v).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toPrecision(3);
  return `p10 ${at(0.1)}, median ${at(0.5)}, p90 ${at(0.9)}`;
}

function median(v: Float64Array): number {
  return Float64Array.from(v).sort()[v.length >> 1]!;
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return v.length ? s / v.length : 0;
}

function signalOf(ctx: SelectContext): { signal?: AbortSignal } {
  return ctx.signal ? { signal: ctx.signal } : {};
}

/**
 * A pick: the size of the cluster it represents, which is its weight γ; with the per-item owners
 * (features mode), every other item: the pick that represents it, or that its pick was cut by the budget.
 */
function craigReasons(
  picked: { indices: Int32Array; weights: Float32Array },
  labels: Int32Array,
  owner?: Int32Array,
): Map<number, string> {
  const reasons = new Map<number, string>();
  const kept = new Set(picked.indices);
  owner?.forEach((o, i) => {
    if (o < 0 || kept.has(i)) return;
    if (o === i) reasons.set(i, `a pick of class ${labels[i]}, cut by the budget when classes merged`);
    else
      reasons.set(
        i,
        kept.has(o)
          ? `represented by pick ${itemRef(o)} (class ${labels[i]})`
          : `its cluster's pick ${itemRef(o)} was cut by the budget (class ${labels[i]})`,
      );
  });
  picked.indices.forEach((i, t) => {
    const w = Number(picked.weights[t]!.toFixed(3));
    reasons.set(i, `class ${labels[i]}: cluster of ${w}, weight ${w}`);
  });
  return reasons;
}
