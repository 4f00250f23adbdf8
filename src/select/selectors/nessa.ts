/**
 * NeSSA-style per-shard streaming selection (nessa.md §2–§3, our design [R]; NeSSA = Prakriya et al.,
 * HotStorage 2023, a systems paper: it adds no objective, so nothing here reproduces its hardware numbers).
 *
 * 1. Proxy: one linear softmax head warmed on the whole pool (craig.md pitfall: never select on an
 *    untrained proxy), then g_i = p_i − e_{y_i} (C4) for every item in one kernel pass; optionally the
 *    last-layer form ĝ = [g; g ⊗ h] through the Gram trick. NeSSA refreshes a proxy copy near storage; here
 *    the proxy is trained once, and the selection inside a shard reads only that shard's rows of g (and h).
 * 2. Shards: the pool's shard ids, or virtual partitions p(i) = hash(uid) mod m (N5), processed one at a
 *    time in ascending shard id, so the dense working set is bounded by the largest shard (§5).
 * 3. Shard budgets k_s by largest remainder, Σ k_s = B exactly (N2).
 * 4. Per shard, CRAIG per class with proportional class budgets (§7 pitfall), weights = cluster sizes (N3).
 * 5. Optional GreeDi merge round (N4): κ·k_s candidates per shard, then per-class weighted facility
 *    location over the union with the first-round γ as multiplicities, keeping exactly B.
 * 6. Two-tier byte accounting (N1) in the trace.
 *
 * Where CRAIG loses mass, Σγ = N is restored (N3): the ceil class budgets are trimmed to the exact budget
 * (craig.md step 1), and a trimmed pick's whole cluster then goes to the kept pick nearest to it, in its class
 * when the class kept one, else anywhere in the shard. By the triangle inequality the (C2) bound stays valid,
 * growing by γ_j·D(j, kept). Items of a shard whose budget rounds to 0 go to their nearest final pick.
 */
import { z } from 'zod';
import {
  SelectionInputError,
  type SelectContext,
  type SelectInput,
  type Selection,
  type Selector,
  type TraceEvent,
} from '../contract.js';
import {
  implicitNorms,
  nearestTargets,
  perClassCoreset,
  type ClassBudgetMode,
  type CoresetOptions,
  type GradientSpace,
} from '../gradient/coreset.js';
import type { Matrix } from '../kernels/similarity.js';
import { describeClasses, type LatentClasses } from '../latentClasses.js';
import {
  dataMovement,
  defaultPartitionCount,
  describeDataMovement,
  groupShards,
  shardBudgets,
  virtualPartitions,
  type Shard,
} from '../nessa/shards.js';
import { proxyParams, proxyProblem, proxySignals, warmProxy, warmEpochsParam } from '../proxy/problem.js';
import { interleaveByRank } from '../stratify.js';
import { perPartitionForm } from '../partitioned.js';

export const nessaParams = z.object({
  ...proxyParams(10),
  warmEpochs: warmEpochsParam,
  gradient: z
    .enum(['logits', 'lastLayer'])
    .default('logits')
    .describe('g = p − e_y (CRAIG code), or the last-layer ĝ = [g; g ⊗ h] through the Gram trick'),
  similarity: z
    .enum(['maxMinusDist', 'expKernel'])
    .default('maxMinusDist')
    .describe('s_ij = block max − D_ij (C5), or submodlib’s exp(−D_ij/q)'),
  optimizer: z.enum(['naive', 'lazy', 'stochastic']).default('lazy').describe('greedy maximiser'),
  epsilon: z.number().gt(0).lt(1).default(0.01).describe('stochastic greedy ε (C8)'),
  partitions: z
    .enum(['shards', 'virtual'])
    .default('shards')
    .describe('ground sets: the pool’s shards (virtual when the pool has none), or hash(uid) mod m (N5)'),
  partitionCount: z
    .union([z.literal('auto'), z.number().int().min(1)])
    .default('auto')
    .describe('m virtual partitions (auto = ⌈N / 50,000⌉)'),
  merge: z
    .boolean()
    .default(false)
    .describe('GreeDi merge round (N4): κ·k_s candidates per shard, global weighted greedy keeps B'),
  mergeFactor: z.number().min(1).default(2).describe('κ: candidates per shard = ⌈κ·k_s⌉ (2–4)'),
  mergeClassBudget: z
    .enum(['proportional', 'equal'])
    .default('proportional')
    .describe('class budgets of the merge round (inside shards they are always proportional)'),
});

export type NessaParams = z.infer<typeof nessaParams>;

export interface ShardReport {
  id: number;
  size: number;
  /** k_s (N2). */
  budget: number;
  /** Picks the shard contributed to the output (its candidates when merging). */
  picks: number;
  /** Σγ of the shard's picks (= size, N3). */
  weight: number;
}

export interface ShardedCoreset {
  indices: Int32Array;
  /** Raw γ: Σ = N. */
  weights: Float32Array;
  shards: ShardReport[];
  /** Merge round: size of the candidate union. */
  candidates?: number;
  /** Trimmed picks whose cluster moved to a kept pick, over all rounds. */
  moved: number;
  /** Items of zero-budget shards given to their nearest final pick. */
  orphans: number;
}

export interface ShardedOptions extends Omit<CoresetOptions, 'multiplicity'> {
  merge: boolean;
  mergeFactor: number;
  mergeClassBudget: ClassBudgetMode;
  onShard?: (done: number, total: number) => void;
}

/**
 * Steps 3–5 on given gradients: `classOf` is the (pseudo-)class of every pool item, `shards` the ground
 * sets in processing order. Deterministic for a seed; the output order interleaves shards by greedy rank.
 */
export async function shardedCoreset(
  space: GradientSpace,
  classOf: Int32Array,
  classCount: number,
  shards: readonly Shard[],
  budget: number,
  o: ShardedOptions,
): Promise<ShardedCoreset> {
  const { merge, mergeFactor, mergeClassBudget, onShard, ...coreset } = o;
  // (N2) k_s by largest remainder; shards one at a time, the dense work bounded by the largest (§5).
  const budgets = shardBudgets(
    shards.map((s) => s.members.length),
    budget,
  );
  const reports: ShardReport[] = [];
  const orders: number[][] = [];
  const weightOf = new Map<number, number>();
  let moved = 0;
  const orphanItems: number[] = [];
  for (const [t, shard] of shards.entries()) {
    coreset.signal?.throwIfAborted();
    const k = budgets[t]!;
    const size = shard.members.length;
    if (k === 0) {
      orphanItems.push(...shard.members);
      reports.push({ id: shard.id, size, budget: 0, picks: 0, weight: 0 });
      onShard?.(t + 1, shards.length);
      continue;
    }
    // (N3) CRAIG per class inside the shard, proportional class budgets; (N4) κ·k_s when merging.
    const want = merge ? Math.min(size, Math.ceil(mergeFactor * k)) : k;
    const r = await perClassCoreset(
      space,
      byClass(shard.members, classOf, classCount),
      want,
      'proportional',
      {
        ...coreset,
        seed: coreset.seed + 104729 * shard.id,
      },
    );
    moved += r.moved;
    orders.push(Array.from(r.indices));
    r.indices.forEach((id, j) => weightOf.set(id, r.weights[j]!));
    reports.push({
      id: shard.id,
      size,
      budget: k,
      picks: r.indices.length,
      weight: r.weights.reduce((a, b) => a + b, 0),
    });
    onShard?.(t + 1, shards.length);
  }

  let indices: Int32Array;
  let weights: Float32Array;
  let candidates: number | undefined;
  if (!merge) {
    indices = interleaveByRank(orders);
    weights = Float32Array.from(indices, (id) => weightOf.get(id)!);
  } else {
    // (N4) Candidates in pool order (independent of shard order), first-round γ as multiplicities.
    const union = orders.flat().sort((a, b) => a - b);
    candidates = union.length;
    const multiplicity = new Float64Array(classOf.length);
    for (const id of union) multiplicity[id] = weightOf.get(id)!;
    const r = await perClassCoreset(space, byClass(union, classOf, classCount), budget, mergeClassBudget, {
      ...coreset,
      multiplicity,
    });
    moved += r.moved;
    indices = r.indices;
    weights = r.weights;
  }

  if (orphanItems.length > 0 && indices.length > 0) {
    const nearest = await nearestTargets(space, orphanItems, indices, classOf);
    for (const at of nearest) weights[at]! += 1;
  }
  return {
    indices,
    weights,
    shards: reports,
    ...(candidates !== undefined ? { candidates } : {}),
    moved,
    orphans: orphanItems.length,
  };
}

/** Members of each class (all `classCount` kept, so positions line up with the global class ids). */
function byClass(members: readonly number[], classOf: Int32Array, classCount: number): number[][] {
  const out: number[][] = Array.from({ length: classCount }, () => []);
  for (const i of members) out[classOf[i]!]!.push(i);
  return out;
}

/** Step 1: the proxy problem, a warmed head and everyone's gradient proxies. */
export async function nessaProxy(
  input: SelectInput,
  p: NessaParams,
  ctx: SelectContext,
): Promise<{ space: GradientSpace; classes: LatentClasses; features: Matrix; meanGradientNorm: number }> {
  const { features, classes } = await proxyProblem(input, p, ctx.seed, 'nessa');
  const sgd = { lr: p.lr, momentum: p.momentum, weightDecay: p.weightDecay, batchSize: p.batchSize };
  const proxy = await warmProxy(
    features,
    classes.assignment,
    classes.k,
    p.warmEpochs,
    sgd,
    ctx.seed,
    ctx.signal,
  );
  const { residuals } = await proxySignals(proxy.head, features, classes.assignment);
  const g: Matrix = { rows: input.n, cols: classes.k, data: residuals };
  const norms = implicitNorms(g);
  const meanGradientNorm = norms.reduce((s, v) => s + Math.sqrt(v), 0) / Math.max(1, input.n);
  return {
    space: p.gradient === 'lastLayer' ? { g, h: features } : { g },
    classes,
    features,
    meanGradientNorm,
  };
}

/** Step 2: the ground sets, and where they came from. */
export function resolveShards(input: SelectInput, p: NessaParams): { shards: Shard[]; source: string } {
  if (p.partitions === 'shards' && input.shards) {
    if (input.shards.length !== input.n)
      throw new SelectionInputError(`${input.shards.length} shard ids for ${input.n} items`);
    return { shards: groupShards(input.shards), source: 'the pool’s shards' };
  }
  const m = Math.min(
    input.n,
    p.partitionCount === 'auto' ? defaultPartitionCount(input.n) : p.partitionCount,
  );
  const why = p.partitions === 'virtual' ? '' : ' (the pool has no shard ids)';
  return {
    shards: groupShards(virtualPartitions(input.n, m)),
    source: `${m} virtual partitions, fmix32(index) mod ${m}${why}`,
  };
}

export const nessa: Selector<NessaParams> = {
  name: 'nessa',
  description:
    'NeSSA-style per-shard selection: CRAIG per class inside each shard (or virtual partition), optional GreeDi merge, data-movement accounting',
  params: nessaParams,
  needs: ['image'],
  async select(input, budget, p, ctx): Promise<Selection> {
    const { space, classes, meanGradientNorm } = await nessaProxy(input, p, ctx);
    const { shards, source } = resolveShards(input, p);
    const r = await shardedCoreset(space, classes.assignment, classes.k, shards, budget, {
      similarity: p.similarity,
      optimizer: p.optimizer,
      epsilon: p.epsilon,
      seed: ctx.seed,
      merge: p.merge,
      mergeFactor: p.mergeFactor,
      mergeClassBudget: p.mergeClassBudget,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(ctx.progress ? { onShard: ctx.progress } : {}),
    });
    const sizes = r.shards.map((s) => s.size);
    const budgets = r.shards.map((s) => s.budget);
    const movement = dataMovement({
      n: input.n,
      dim: input.dim,
      picks: r.indices,
      ...(input.payloadBytes ? { payloadBytes: input.payloadBytes } : {}),
      matrices: p.features === 'joint' ? 2 : 1,
    });
    const trace: TraceEvent[] = [
      {
        stage: 'proxy',
        message: `${describeClasses(classes)}; head warmed ${p.warmEpochs} epochs on the whole pool; gradients ${p.gradient}, mean ‖g‖ ${meanGradientNorm.toFixed(4)}`,
      },
      {
        stage: 'shards',
        message: `${shards.length} ground sets from ${source}, processed one at a time by id; sizes ${Math.min(...sizes)}–${Math.max(...sizes)}, budgets k_s ${Math.min(...budgets)}–${Math.max(...budgets)} (Σ ${budgets.reduce((a, b) => a + b, 0)})`,
      },
      {
        stage: p.merge ? 'merge' : 'union',
        message: p.merge
          ? `GreeDi round: ${r.candidates} candidates (κ = ${p.mergeFactor}), per-class weighted facility location keeps ${r.indices.length} (${p.mergeClassBudget} class budgets)${source.includes('virtual') ? '' : '; its guarantee assumes randomly filled shards, use partitions=virtual for crawl-ordered ones'}`
          : `union of per-shard coresets, ${r.indices.length} picks interleaved by greedy rank`,
      },
      {
        stage: 'weights',
        message: `Σγ = ${r.weights.reduce((a, b) => a + b, 0)} (N = ${input.n}); ${r.moved} trimmed picks moved their clusters to the nearest kept pick; ${r.orphans} items of zero-budget shards went to their nearest pick`,
      },
      { stage: 'data movement', message: describeDataMovement(movement) },
    ];
    return { indices: r.indices, weights: r.weights, trace };
  },
  partitioned: perPartitionForm<NessaParams>(
    (input, budget, p, ctx) => nessa.select(input, budget, p, ctx),
    "each partition is one more group of NeSSA's shards: its own proxy, warmed on its own items, and CRAIG " +
      'per class inside each of its shards at its share of the budget; the merge runs NeSSA on the union to ' +
      'trim the rounding to B',
  ),
};
