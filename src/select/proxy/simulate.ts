/**
 * The proxy-simulated schedule of the dynamic methods (craig.md §4 (b), adacore.md §4, graft.md G8,
 * augcoreset.md U2): reselect from the current proxy, train it on the (weighted) subset until the next
 * reselection, repeat. One round per reselection, spans as fractions of the run.
 */
import type { Schedule, ScheduleRound } from '../contract.js';
import { gather, type Matrix } from '../kernels/similarity.js';
import type { ProxyTraining, WarmProxy } from './problem.js';
import { trainHead, type SoftmaxHead } from './softmaxHead.js';

export interface RoundChoice {
  indices: Int32Array;
  /** Raw γ; training uses them as w_j = γ_j·|S|/Σγ (mean 1, craig.md step 6). */
  weights?: Float32Array;
  info?: Record<string, number | string>;
}

export interface SimulationOptions {
  features: Matrix;
  labels: Int32Array;
  proxy: WarmProxy;
  sgd: ProxyTraining;
  /** Proxy epochs in the simulated run. */
  epochs: number;
  /** Reselect every this many epochs (`lag`, `select_iter`, R). */
  every: number;
  seed: number;
  signal?: AbortSignal;
}

export async function simulateRounds(
  o: SimulationOptions,
  choose: (head: SoftmaxHead, round: number, epoch: number) => Promise<RoundChoice>,
): Promise<Schedule> {
  const rounds: ScheduleRound[] = [];
  const d = o.features.cols;
  for (let epoch = 0, r = 0; epoch < o.epochs; epoch += o.every, r++) {
    o.signal?.throwIfAborted();
    const end = Math.min(o.epochs, epoch + o.every);
    const choice = await choose(o.proxy.head, r, epoch);
    rounds.push({
      start: epoch / o.epochs,
      end: end / o.epochs,
      indices: choice.indices,
      ...(choice.weights ? { weights: choice.weights } : {}),
      ...(choice.info ? { info: choice.info } : {}),
    });
    const subset = choice.indices;
    o.proxy.steps += await trainHead(
      o.proxy.head,
      {
        x: { rows: subset.length, cols: d, data: gather(o.features, subset).data },
        labels: Int32Array.from(subset, (i) => o.labels[i]!),
        ...(choice.weights ? { weights: choice.weights } : {}),
      },
      { ...o.sgd, epochs: end - epoch, seed: o.seed + r, ...(o.signal ? { signal: o.signal } : {}) },
      o.proxy.state,
    );
  }
  return { unit: 'epoch', total: o.epochs, rounds };
}
