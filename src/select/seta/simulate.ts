/**
 * SeTa's per-epoch sampling, simulated on the softmax proxy (seta.md §3–4): the score array starts at
 * 3.0 (S3); each epoch draws a fresh random ⌊κN⌋ (S2), groups its scores by 1-D k-means (S4), keeps the
 * sliding window of groups (S5) — or, past δ·E, a plain random ⌊κN⌋ (S6) — trains the proxy one epoch on
 * the kept list (weight 1 each: no InfoBatch rescaling) and refreshes the losses of the samples it
 * trained on. Everyone else keeps a stale score (seta.md §8), unless `refreshEvery` recomputes all.
 */
import { seededRandom } from '../../compute/random.js';
import type { ScheduleRound } from '../contract.js';
import { gather, type Matrix } from '../kernels/similarity.js';
import { proxySignals, type ProxyTraining, type WarmProxy } from '../proxy/problem.js';
import { headPass, trainHead } from '../proxy/softmaxHead.js';
import {
  isAnnealed,
  keptCount,
  lossGroups,
  savedRatio,
  windowAt,
  type LossGroups,
  type Window,
} from './window.js';

/** (S3) Every score starts here, so never-trained samples tend to sit in a hard group. */
export const INITIAL_SCORE = 3;

export interface SetaSettings {
  /** κ (S1). */
  keep: number;
  /** G (S4). */
  groups: number;
  /** w (S5). */
  width: number;
  /** δ (S6). */
  delta: number;
  /** E, proxy epochs of the simulated run. */
  epochs: number;
  /** Recompute every pool loss after every k-th epoch (0 = only the trained samples' losses). */
  refreshEvery: number;
}

export interface SetaSimulation extends SetaSettings {
  features: Matrix;
  labels: Int32Array;
  /** The proxy, trained in place (seta starts from an untrained one: warm epochs 0). */
  proxy: WarmProxy;
  sgd: ProxyTraining;
  seed: number;
  signal?: AbortSignal;
  /** Called after each epoch's selection and before its training (tests and inspection). */
  onEpoch?: (view: EpochView) => void;
}

export interface EpochView {
  epoch: number;
  annealed: boolean;
  /** The scores the selection read (live array: copy it to keep it). */
  scores: Float32Array;
  /** R_t, the random ⌊κN⌋ (S2). */
  candidates: Int32Array;
  /** Groups of the candidates' scores (positions into `candidates`); absent when annealed. */
  groups?: LossGroups;
  window?: Window;
  /** The epoch's shuffled index list. */
  kept: Int32Array;
}

export interface SetaRun {
  rounds: ScheduleRound[];
  /** The score array after the last epoch. */
  scores: Float32Array;
  keptSizes: number[];
  /** (S7) realised Σ(N − |kept_e|)/(N·E). */
  savedRatio: number;
  /** Pool items never trained on during the run. */
  neverTrained: number;
}

export async function simulateSeta(o: SetaSimulation): Promise<SetaRun> {
  const n = o.features.rows;
  const random = seededRandom(o.seed);
  const scores = new Float32Array(n).fill(INITIAL_SCORE);
  const trained = new Uint8Array(n);
  const pool = Int32Array.from({ length: n }, (_, i) => i);
  const size = keptCount(o.keep, n);
  const rounds: ScheduleRound[] = [];
  const keptSizes: number[] = [];
  // t counts pruning calls (the official SeTa.iterations); annealed epochs do not advance it.
  let t = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    o.signal?.throwIfAborted();
    const annealed = isAnnealed(epoch, o.epochs, o.delta);
    const candidates = randomSubset(pool, size, random); // (S2), or (S6)'s random ⌊κN⌋
    let kept = candidates;
    let groups: LossGroups | undefined;
    let window: Window | undefined;
    if (!annealed) {
      ({ groups, window, kept } = windowSelection(candidates, scores, o.groups, o.width, t++));
      if (kept.length === 0) kept = Int32Array.of(Math.floor(random() * n));
      shuffle(kept, random);
    }
    o.onEpoch?.({ epoch, annealed, scores, candidates, kept, ...(groups ? { groups, window } : {}) });
    rounds.push({
      start: epoch / o.epochs,
      end: (epoch + 1) / o.epochs,
      indices: kept,
      info: roundInfo(annealed, kept, candidates.length, groups, window),
    });
    keptSizes.push(kept.length);

    // One proxy epoch on the kept list, then the losses of what it trained on (S3). The code records
    // each loss in the sample's own forward pass mid-epoch; trainHead exposes no per-batch losses, so
    // they come from one pass over the same rows after the epoch (the latest head).
    const x = gather(o.features, kept);
    const y = Int32Array.from(kept, (i) => o.labels[i]!);
    o.proxy.steps += await trainHead(
      o.proxy.head,
      { x, labels: y },
      { ...o.sgd, epochs: 1, seed: o.seed + 7919 * (epoch + 1), ...(o.signal ? { signal: o.signal } : {}) },
      o.proxy.state,
    );
    if (o.refreshEvery > 0 && (epoch + 1) % o.refreshEvery === 0) {
      scores.set((await proxySignals(o.proxy.head, o.features, o.labels)).losses);
    } else {
      const { losses } = await headPass(o.proxy.head, x, y);
      kept.forEach((i, j) => (scores[i] = losses[j]!));
    }
    for (const i of kept) trained[i] = 1;
  }
  let neverTrained = 0;
  for (const seen of trained) neverTrained += 1 - seen;
  return { rounds, scores, keptSizes, savedRatio: savedRatio(keptSizes, n, o.epochs), neverTrained };
}

/**
 * (S4)–(S5) for round t: group the candidates' scores, keep the window's groups. The kept list comes
 * out easy → hard (the caller shuffles it).
 */
export function windowSelection(
  candidates: Int32Array,
  scores: ArrayLike<number>,
  groupCount: number,
  width: number,
  round: number,
): { groups: LossGroups; window: Window; kept: Int32Array } {
  const groups = lossGroups(
    Float32Array.from(candidates, (i) => scores[i]!),
    groupCount,
  );
  const window = windowAt(round, groupCount, width);
  const from = groups.bounds[window.start]!;
  const to = groups.bounds[window.start + window.width]!;
  const kept = Int32Array.from(groups.order.subarray(from, to), (p) => candidates[p]!);
  return { groups, window, kept };
}

/** Group loss thresholds, window, and where the kept list sits in the candidates' loss ranking. */
function roundInfo(
  annealed: boolean,
  kept: Int32Array,
  candidates: number,
  groups: LossGroups | undefined,
  window: Window | undefined,
): Record<string, number | string> {
  const info: Record<string, number | string> = { annealed: annealed ? 'yes' : 'no', kept: kept.length };
  if (!groups || !window) return info;
  const g = groups.upper.length;
  const from = groups.bounds[window.start]!;
  const to = groups.bounds[window.start + window.width]!;
  return {
    ...info,
    windowStart: window.start,
    windowWidth: window.width,
    grouping: groups.method,
    thresholds: thresholdText(groups.upper),
    groupSizes: Array.from({ length: g }, (_, k) => groups.bounds[k + 1]! - groups.bounds[k]!).join(','),
    // Mean loss rank of the kept list among the candidates, as a quantile: 0.5 = centred, lower = easier.
    keptLossQuantile: to > from && candidates > 1 ? (from + to - 1) / 2 / (candidates - 1) : 0.5,
  };
}

/** The G − 1 loss thresholds between groups: group g (0 = easiest) holds the scores ≤ threshold g. */
export function thresholdText(upper: Float64Array): string {
  return Array.from(upper.subarray(0, upper.length - 1), (v) => v.toPrecision(4)).join(',');
}

/**
 * Uniform random m-subset in random order: a partial Fisher–Yates on the persistent `pool` permutation
 * (any permutation state gives a uniform draw), O(m) per call.
 */
export function randomSubset(pool: Int32Array, m: number, random: () => number): Int32Array {
  const n = pool.length;
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(random() * (n - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, m);
}

export function shuffle(a: Int32Array, random: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}
