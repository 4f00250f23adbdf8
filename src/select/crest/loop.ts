/**
 * The CREST loop (crest.md §3), simulated on the linear softmax proxy with the run's step budget
 * (crest.md §4, proxy-simulated schedule):
 *
 *  - budget: steps_per_epoch = ⌈⌊N·train_frac⌋ / m⌉, the run has epochs × steps_per_epoch steps;
 *  - epoch 0 is a warm-up on shuffled mini-batches of the full data; the first selection is at step
 *    steps_per_epoch;
 *  - at each selection: P stratified random subsets (R1), a mini-batch coreset of each by per-class
 *    facility location on g_i = p_i − e_{y_i} with equal class budgets summing to m (R2), their union
 *    with mean-1 weights (R3), the quadratic model on it (R4) and the (R7) update of T₁ and P;
 *  - then SGD on shuffled mini-batches of the union (R9), the displacement δ (R5), and every T₁ steps the
 *    check (R6) on ∪V_p only (crest.md §8: never a full-data forward); a failed check reselects;
 *  - optional learned-example dropping (R8).
 */
import { seededRandom } from '../../compute/random.js';
import type { Schedule, ScheduleRound } from '../contract.js';
import {
  classBudgets,
  facilityCoreset,
  mergeClassOrders,
  type Coreset,
  type GradientSimilarity,
  type GradientSpace,
} from '../gradient/coreset.js';
import { gather, type Matrix } from '../kernels/similarity.js';
import type { ProxyTraining } from '../proxy/problem.js';
import {
  freshSgdState,
  headPass,
  initHead,
  sgdUpdate,
  trainHead,
  type SoftmaxHead,
} from '../proxy/softmaxHead.js';
import {
  adaptiveSchedule,
  checkFires,
  displace,
  modelLoss,
  quadraticModel,
  zeroHeadVector,
  type HeadVector,
  type QuadraticModel,
} from './quadratic.js';

/** Which per-example gradient the facility location compares (crest.md §2, craig.md §2). */
export type CrestGradient = 'logits' | 'lastLayer';

export interface CrestOptions {
  /** m: mini-batch coreset size = training batch size. */
  batchSize: number;
  /** train_frac: fraction of full-data training steps (B/N). */
  trainFraction: number;
  epochs: number;
  /** ρ: random subset size as a fraction of N, stratified. */
  randomSubsetSize: number;
  /** Our floor for small pools: a random subset holds at least this many mini-batches (0 = off). */
  minSubsetBatches: number;
  /** P at the first selection. */
  coresets: number;
  /** T₁ at the first selection. */
  checkInterval: number;
  batchNumMul: number;
  intervalMul: number;
  /** τ. */
  checkThresh: number;
  dropLearned: boolean;
  watchInterval: number;
  dropInterval: number;
  dropThresh: number;
  /** min_train_size as a fraction of N. */
  minTrainSize: number;
  similarity: GradientSimilarity;
  gradient: CrestGradient;
  sgd: Omit<ProxyTraining, 'batchSize'>;
  seed: number;
  signal?: AbortSignal;
  /** Called at every selection, for inspection and tests. */
  onSelection?: (event: SelectionEvent) => void | Promise<void>;
}

export interface SelectionEvent {
  round: number;
  /** Step at which the selection happens. */
  step: number;
  /** The model the coresets were chosen for (do not mutate). */
  head: SoftmaxHead;
  /** 1 = in the pool the random subsets were drawn from. */
  pool: Uint8Array;
  subsets: Int32Array[];
  coresets: MinibatchCoreset[];
}

export interface MinibatchCoreset {
  /** S_p, item ids. */
  indices: Int32Array;
  /** Raw γ: Σ_{j∈S_p} γ_j = |V_p| (per class: the class's count in V_p). */
  weights: Float32Array;
}

export interface CrestRun {
  schedule: Schedule;
  /** Σ over training steps of the (mean-1) weight with which each item was in a coreset batch. */
  exposure: Float64Array;
  /** Steps trained, warm-up included (= epochs × steps_per_epoch). */
  steps: number;
  stepsPerEpoch: number;
  warmupSteps: number;
  checks: number;
  /** Checks that fired (reselections caused by (R6)). */
  fired: number;
  perClassSubset: number;
  /** Pool size at the end (< N only with learned-example dropping). */
  poolSize: number;
  head: SoftmaxHead;
}

/** steps_per_epoch = ⌈⌊N·train_frac⌋ / m⌉ (crest.md §3), at least 1. */
export function stepsPerEpoch(n: number, trainFraction: number, batchSize: number): number {
  return Math.max(1, Math.ceil(Math.floor(n * trainFraction + 1e-9) / batchSize));
}

/** (R1): `perClass` items of each class drawn without replacement from its pool, capped at its size. */
export function stratifiedSubset(
  poolByClass: ReadonlyArray<ArrayLike<number>>,
  perClass: number,
  random: () => number,
): Int32Array {
  const out: number[] = [];
  for (const members of poolByClass) {
    const items = Array.from(members);
    const take = Math.min(perClass, items.length);
    for (let t = 0; t < take; t++) {
      const j = t + Math.floor(random() * (items.length - t));
      [items[t], items[j]] = [items[j]!, items[t]!];
      out.push(items[t]!);
    }
  }
  return Int32Array.from(out);
}

/** Sorted unique ids of the concatenated subsets (∪V_p). */
export function unionOf(subsets: ReadonlyArray<ArrayLike<number>>): Int32Array {
  const all = new Set<number>();
  for (const s of subsets) for (let t = 0; t < s.length; t++) all.add(s[t]!);
  return Int32Array.from(all).sort();
}

export interface CoresetSelection {
  /** ∪V_p, sorted. */
  union: Int32Array;
  /** Per-example loss of every union member under `head`, same order. */
  unionLosses: Float32Array;
  coresets: MinibatchCoreset[];
}

/**
 * (R2): p_i for ∪V_p in one pass; per subset, per-class facility location on g_i = p_i − e_{y_i}
 * (craig.md (C3)–(C7)) with equal class budgets ⌈m/C_p⌉ (shortfalls redistributed), not trimmed, so
 * Σγ over S_p = |V_p|.
 */
export async function minibatchCoresets(
  head: SoftmaxHead,
  features: Matrix,
  labels: Int32Array,
  subsets: ReadonlyArray<Int32Array>,
  batchSize: number,
  o: { similarity: GradientSimilarity; gradient: CrestGradient; seed: number; signal?: AbortSignal },
): Promise<CoresetSelection> {
  const union = unionOf(subsets);
  const local = new Map<number, number>();
  union.forEach((id, t) => local.set(id, t));
  const x = gather(features, union);
  const pass = await headPass(
    head,
    x,
    Int32Array.from(union, (i) => labels[i]!),
  );
  const space: GradientSpace = {
    g: { rows: union.length, cols: head.classes, data: pass.residuals },
    ...(o.gradient === 'lastLayer' ? { h: x } : {}),
  };
  const coresets: MinibatchCoreset[] = [];
  for (const [p, subset] of subsets.entries()) {
    const byClass = new Map<number, number[]>();
    for (const id of subset) {
      const c = labels[id]!;
      if (!byClass.has(c)) byClass.set(c, []);
      byClass.get(c)!.push(local.get(id)!);
    }
    const classes = [...byClass.keys()].sort((a, b) => a - b).map((c) => byClass.get(c)!);
    const quotas = classBudgets(
      classes.map((c) => c.length),
      batchSize,
      'equal',
    );
    const orders: Coreset[] = [];
    for (const [c, members] of classes.entries()) {
      o.signal?.throwIfAborted();
      orders.push(
        await facilityCoreset(space, members, quotas[c]!, {
          similarity: o.similarity,
          optimizer: 'lazy',
          epsilon: 0.9,
          seed: o.seed + 7919 * p + c,
        }),
      );
    }
    const total = quotas.reduce((a, b) => a + b, 0);
    const merged = mergeClassOrders(orders, total);
    coresets.push({ indices: Int32Array.from(merged.indices, (t) => union[t]!), weights: merged.weights });
  }
  return { union, unionLosses: pass.losses, coresets };
}

/** Per-example losses of the last `slots` epochs; −1 = not evaluated in that slot (R8). */
export interface LossRing {
  slots: number;
  n: number;
  /** slots × n. */
  values: Float32Array;
}

export function lossRing(slots: number, n: number): LossRing {
  return { slots, n, values: new Float32Array(slots * n).fill(-1) };
}

export function recordLosses(
  ring: LossRing,
  epoch: number,
  ids: ArrayLike<number>,
  losses: ArrayLike<number>,
): void {
  const base = (epoch % ring.slots) * ring.n;
  for (let t = 0; t < ids.length; t++) ring.values[base + ids[t]!] = losses[t]!;
}

/**
 * (R8): candidates = items whose loss exceeded `threshold` in at least one slot, plus never-evaluated
 * ones; class c takes its candidates only if they are more than `perClass`, else keeps its previous
 * pool; the result replaces the pool only if it holds more than `minTrainSize` items.
 */
export function dropLearnedPool(
  ring: LossRing,
  labels: Int32Array,
  previous: Uint8Array,
  threshold: number,
  perClass: number,
  minTrainSize: number,
): { pool: Uint8Array; applied: boolean } {
  const n = ring.n;
  // The ring stores float32: compare in float32, so a loss of exactly `threshold` counts as learned.
  const limit = Math.fround(threshold);
  const candidate = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let evaluated = false;
    let hard = false;
    for (let s = 0; s < ring.slots; s++) {
      const v = ring.values[s * n + i]!;
      if (v >= 0) evaluated = true;
      if (v > limit) hard = true;
    }
    candidate[i] = hard || !evaluated ? 1 : 0;
  }
  const classCount = labels.reduce((m, c) => Math.max(m, c + 1), 0);
  const candidates = new Int32Array(classCount);
  for (let i = 0; i < n; i++) if (candidate[i]) candidates[labels[i]!]!++;
  const pool = new Uint8Array(n);
  let size = 0;
  for (let i = 0; i < n; i++) {
    pool[i] = candidates[labels[i]!]! > perClass ? candidate[i]! : previous[i]!;
    size += pool[i]!;
  }
  return size > minTrainSize ? { pool, applied: true } : { pool: previous, applied: false };
}

function membersByClass(labels: Int32Array, classCount: number, pool: Uint8Array): number[][] {
  const out: number[][] = Array.from({ length: classCount }, () => []);
  labels.forEach((c, i) => {
    if (pool[i]) out[c]!.push(i);
  });
  return out;
}

function norm(v: HeadVector): number {
  let t = 0;
  for (const a of v.weight) t += a * a;
  for (const a of v.bias) t += a * a;
  return Math.sqrt(t);
}

const mean = (a: ArrayLike<number>) => {
  let t = 0;
  for (let i = 0; i < a.length; i++) t += a[i]!;
  return a.length ? t / a.length : 0;
};

/** The whole simulated run on (features, labels). */
export async function crestLoop(
  features: Matrix,
  labels: Int32Array,
  classCount: number,
  o: CrestOptions,
): Promise<CrestRun> {
  const n = features.rows;
  const d = features.cols;
  const m = o.batchSize;
  const spe = stepsPerEpoch(n, o.trainFraction, m);
  const total = o.epochs * spe;
  const nonEmpty = new Set(labels).size;
  // (R1) ⌈ρN/C⌉ per class; our floor keeps V_p larger than a mini-batch on small pools.
  const perClass = Math.max(
    1,
    Math.ceil(Math.max(o.randomSubsetSize * n, o.minSubsetBatches * m) / nonEmpty),
  );
  const minTrain = o.minTrainSize * n;
  const random = seededRandom(o.seed);

  const head = initHead(classCount, d, o.seed);
  const state = freshSgdState(head);
  // Epoch 0: ordinary shuffled mini-batches of the full data (the code trains on the full loader first).
  const warmupSteps = Math.min(spe, total);
  const warmed = await trainHead(
    head,
    { x: features, labels },
    {
      ...o.sgd,
      batchSize: m,
      epochs: Math.ceil((warmupSteps * Math.min(m, n)) / n),
      maxSteps: warmupSteps,
      seed: o.seed + 1,
      ...(o.signal ? { signal: o.signal } : {}),
    },
    state,
  );
  let step = warmed;

  let pool: Uint8Array = new Uint8Array(n).fill(1);
  let poolByClass = membersByClass(labels, classCount, pool);
  const ring = o.dropLearned ? lossRing(o.watchInterval, n) : undefined;
  let lastDropEpoch = -1;
  const exposure = new Float64Array(n);
  const rounds: ScheduleRound[] = [];
  let checkInterval = o.checkInterval;
  let coresetCount = o.coresets;
  let initialCurvature = 0;
  let checks = 0;
  let fired = 0;

  const xb = new Float32Array(m * d);
  const yb = new Int32Array(m);
  const sb = new Float32Array(m);

  while (step < total) {
    o.signal?.throwIfAborted();
    const epoch = Math.floor(step / spe);
    const subsets = Array.from({ length: coresetCount }, () =>
      stratifiedSubset(poolByClass, perClass, random),
    );
    const selection = await minibatchCoresets(head, features, labels, subsets, m, {
      similarity: o.similarity,
      gradient: o.gradient,
      seed: o.seed + 104_729 * rounds.length,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    await o.onSelection?.({ round: rounds.length, step, head, pool, subsets, coresets: selection.coresets });
    const poolSize = pool.reduce((a, b) => a + b, 0);
    let dropped = '';
    if (ring) {
      recordLosses(ring, epoch, selection.union, selection.unionLosses);
      if ((epoch + 1) % o.dropInterval === 0 && epoch !== lastDropEpoch) {
        // Applied once per qualifying epoch, at its first selection (the code repeats it at every
        // selection of that epoch); it shapes the pool of the next selections.
        lastDropEpoch = epoch;
        const next = dropLearnedPool(ring, labels, pool, o.dropThresh, perClass, minTrain);
        if (next.applied) {
          pool = next.pool;
          poolByClass = membersByClass(labels, classCount, pool);
        }
        dropped = next.applied ? `pool ${poolSize} → ${pool.reduce((a, b) => a + b, 0)}` : 'kept';
      }
    }

    // (R3): S = ∪S_p (a concatenation; overlapping picks stay separate entries), w = γ·|S|/Σγ.
    const picks: number[] = [];
    const gammas: number[] = [];
    const batchIds: number[] = [];
    selection.coresets.forEach((c, p) => {
      c.indices.forEach((id, t) => {
        picks.push(id);
        gammas.push(c.weights[t]!);
        batchIds.push(p);
      });
    });
    const gammaSum = gammas.reduce((a, b) => a + b, 0);
    const w = Float32Array.from(gammas, (g) => (g * picks.length) / gammaSum);
    const sx = gather(features, picks);
    const sy = Int32Array.from(picks, (i) => labels[i]!);
    const model: QuadraticModel = await quadraticModel(head, sx, sy, w);
    // (R7): κ₀ at the first selection; later selections set T₁ now and P for the next selection.
    if (rounds.length === 0) initialCurvature = model.curvature;
    else {
      const next = adaptiveSchedule(initialCurvature, model.curvature, o.intervalMul, o.batchNumMul, spe);
      checkInterval = next.checkInterval;
      coresetCount = next.coresets;
    }
    const usedCoresets = subsets.length;

    const ux = gather(features, selection.union);
    const uy = Int32Array.from(selection.union, (i) => labels[i]!);
    const delta = zeroHeadVector(head.classes, d);
    const order = Int32Array.from(picks.keys());
    let cursor = order.length;
    const startStep = step;
    let since = 0;
    let lastCheck: { trueLoss: number; approxLoss: number } | undefined;
    let ended: 'check' | 'budget' = 'budget';
    while (step < total) {
      o.signal?.throwIfAborted();
      if (cursor >= order.length) {
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        cursor = 0;
      }
      const rows = Math.min(m, order.length - cursor);
      for (let t = 0; t < rows; t++) {
        const e = order[cursor + t]!;
        xb.set(sx.data.subarray(e * d, (e + 1) * d), t * d);
        yb[t] = sy[e]!;
        // (R9): per-sample CE × w_j, then the mean over the batch.
        sb[t] = w[e]! / rows;
        exposure[picks[e]!]! += w[e]!;
      }
      cursor += rows;
      const g = await headPass(
        head,
        { rows, cols: d, data: xb.subarray(0, rows * d) },
        yb.subarray(0, rows),
        sb.subarray(0, rows),
      );
      displace(delta, g, o.sgd.lr); // (R5), before the update moves w
      sgdUpdate(head, g, state, o.sgd);
      step++;
      since++;
      if (since % checkInterval === 0 && step < total) {
        // (R6) on ∪V_p only, unweighted mean CE at the current w.
        checks++;
        const trueLoss = mean((await headPass(head, ux, uy)).losses);
        const approxLoss = modelLoss(model, delta);
        lastCheck = { trueLoss, approxLoss };
        if (checkFires(trueLoss, approxLoss, o.checkThresh)) {
          fired++;
          ended = 'check';
          break;
        }
      }
    }
    rounds.push({
      start: startStep / total,
      end: step / total,
      indices: Int32Array.from(picks),
      weights: Float32Array.from(gammas),
      batches: Int32Array.from(batchIds),
      info: {
        tau: o.checkThresh,
        checkInterval,
        coresets: usedCoresets,
        steps: step - startStep,
        ended,
        ...(lastCheck ? { lossTrue: lastCheck.trueLoss, lossModel: lastCheck.approxLoss } : {}),
        lossCoreset: model.loss,
        curvature: model.curvature,
        deltaNorm: norm(delta),
        randomSetSize: selection.union.length,
        poolSize,
        ...(dropped ? { dropLearned: dropped } : {}),
      },
    });
  }
  return {
    schedule: { unit: 'step', total, rounds },
    exposure,
    steps: step,
    stepsPerEpoch: spe,
    warmupSteps: warmed,
    checks,
    fired,
    perClassSubset: perClass,
    poolSize: pool.reduce((a, b) => a + b, 0),
    head,
  };
}
