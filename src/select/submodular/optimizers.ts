/**
 * Greedy maximisers over any SetFunction (apricot/submodlib style: functions give gains, optimizers
 * choose). Ties go to the lowest index in every optimizer.
 */
import { seededRandom } from '../../compute/random.js';
import { abortCheckpoint } from '../contract.js';
import type { SetFunction } from './facilityLocation.js';

export type OptimizerName = 'naive' | 'lazy' | 'stochastic';

export interface GreedyResult {
  picks: Int32Array;
  gains: Float64Array;
}

export interface OptimizeOptions {
  budget: number;
  /** Stochastic greedy's ε: each step samples ⌈(n/B)·ln(1/ε)⌉ candidates (B9). */
  epsilon?: number;
  seed?: number;
  /** Candidates allowed (default: all). */
  candidates?: ArrayLike<number>;
  signal?: AbortSignal;
  onStep?: (done: number, total: number) => void;
}

/**
 * Run the named greedy. Between picks it lets queued events run now and then (a SIGINT handler, a
 * cancel from the panel) and throws the signal's reason once the signal is aborted.
 */
export async function maximize(
  f: SetFunction,
  name: OptimizerName,
  o: OptimizeOptions,
): Promise<GreedyResult> {
  const steps = STEPS[name](f, o);
  const checkpoint = abortCheckpoint(o.signal);
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    await checkpoint();
  }
}

const STEPS: Record<OptimizerName, (f: SetFunction, o: OptimizeOptions) => Generator<void, GreedyResult>> = {
  naive: naiveSteps,
  lazy: lazySteps,
  stochastic: stochasticSteps,
};

/** Run a greedy to the end without yielding (small problems, tests). */
function drain(steps: Generator<void, GreedyResult>): GreedyResult {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/** Plain greedy: every step evaluates every remaining candidate. */
export function naiveGreedy(f: SetFunction, o: OptimizeOptions): GreedyResult {
  return drain(naiveSteps(f, o));
}

/** Lazy greedy (Minoux, B8); see {@link lazySteps}. */
export function lazyGreedy(f: SetFunction, o: OptimizeOptions): GreedyResult {
  return drain(lazySteps(f, o));
}

/** Stochastic greedy ("Lazier than lazy greedy", B9 / C8). */
export function stochasticGreedy(f: SetFunction, o: OptimizeOptions): GreedyResult {
  return drain(stochasticSteps(f, o));
}

function pool(f: SetFunction, o: OptimizeOptions): number[] {
  return o.candidates ? Array.from(o.candidates) : Array.from({ length: f.n }, (_, i) => i);
}

/** Plain greedy, one pick per step. */
function* naiveSteps(f: SetFunction, o: OptimizeOptions): Generator<void, GreedyResult> {
  const remaining = new Set(pool(f, o));
  const budget = Math.min(o.budget, remaining.size);
  const picks = new Int32Array(budget);
  const gains = new Float64Array(budget);
  for (let t = 0; t < budget; t++) {
    o.signal?.throwIfAborted();
    let best = -1;
    let bestGain = -Infinity;
    for (const j of remaining) {
      const g = f.gain(j);
      if (g > bestGain || (g === bestGain && j < best)) [best, bestGain] = [j, g];
    }
    f.commit(best);
    remaining.delete(best);
    picks[t] = best;
    gains[t] = bestGain;
    o.onStep?.(t + 1, budget);
    yield;
  }
  return { picks, gains };
}

/**
 * Lazy greedy (Minoux, B8): by submodularity a stale gain bounds the true gain from above, so pop the
 * largest stale gain, refresh it, and accept it if it still leads.
 */
function* lazySteps(f: SetFunction, o: OptimizeOptions): Generator<void, GreedyResult> {
  const heap = new MaxHeap();
  for (const j of pool(f, o)) heap.push(f.gain(j), j);
  const budget = Math.min(o.budget, heap.size);
  const picks = new Int32Array(budget);
  const gains = new Float64Array(budget);
  for (let t = 0; t < budget; t++) {
    o.signal?.throwIfAborted();
    for (;;) {
      const [, j] = heap.pop();
      const g = f.gain(j);
      if (heap.size === 0 || heap.beats(g, j)) {
        f.commit(j);
        picks[t] = j;
        gains[t] = g;
        break;
      }
      heap.push(g, j);
    }
    o.onStep?.(t + 1, budget);
    yield;
  }
  return { picks, gains };
}

/** Stochastic greedy, one pick per step. */
function* stochasticSteps(f: SetFunction, o: OptimizeOptions): Generator<void, GreedyResult> {
  const random = seededRandom(o.seed ?? 0);
  const remaining = pool(f, o);
  const budget = Math.min(o.budget, remaining.length);
  const sample = Math.max(1, Math.ceil((remaining.length / budget) * Math.log(1 / (o.epsilon ?? 0.1))));
  const picks = new Int32Array(budget);
  const gains = new Float64Array(budget);
  for (let t = 0; t < budget; t++) {
    o.signal?.throwIfAborted();
    const size = Math.min(sample, remaining.length);
    // Partial Fisher–Yates: the first `size` slots become a uniform sample of the remaining items.
    let bestSlot = -1;
    let bestGain = -Infinity;
    for (let s = 0; s < size; s++) {
      const r = s + Math.floor(random() * (remaining.length - s));
      [remaining[s], remaining[r]] = [remaining[r]!, remaining[s]!];
      const g = f.gain(remaining[s]!);
      if (g > bestGain || (g === bestGain && remaining[s]! < remaining[bestSlot]!))
        [bestSlot, bestGain] = [s, g];
    }
    const j = remaining[bestSlot]!;
    remaining[bestSlot] = remaining[remaining.length - 1]!;
    remaining.pop();
    f.commit(j);
    picks[t] = j;
    gains[t] = bestGain;
    o.onStep?.(t + 1, budget);
    yield;
  }
  return { picks, gains };
}

/** Binary max-heap of (gain, index); ties → lower index first. */
class MaxHeap {
  private gains: number[] = [];
  private items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  private above(a: number, b: number): boolean {
    return (
      this.gains[a]! > this.gains[b]! || (this.gains[a] === this.gains[b] && this.items[a]! < this.items[b]!)
    );
  }

  /** Whether (g, j) ranks at or above the current top. */
  beats(g: number, j: number): boolean {
    return g > this.gains[0]! || (g === this.gains[0] && j < this.items[0]!);
  }

  push(g: number, j: number): void {
    this.gains.push(g);
    this.items.push(j);
    let c = this.items.length - 1;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (!this.above(c, p)) break;
      this.swap(c, p);
      c = p;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.gains[0]!, this.items[0]!];
    const last = this.items.length - 1;
    this.swap(0, last);
    this.gains.pop();
    this.items.pop();
    let p = 0;
    for (;;) {
      const l = 2 * p + 1;
      const r = l + 1;
      let m = p;
      if (l < this.items.length && this.above(l, m)) m = l;
      if (r < this.items.length && this.above(r, m)) m = r;
      if (m === p) break;
      this.swap(p, m);
      p = m;
    }
    return top;
  }

  private swap(a: number, b: number): void {
    [this.gains[a], this.gains[b]] = [this.gains[b]!, this.gains[a]!];
    [this.items[a], this.items[b]] = [this.items[b]!, this.items[a]!];
  }
}
