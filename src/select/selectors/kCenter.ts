/**
 * k-center greedy (Sener & Savarese 2018, baselines.md B5): start from one seeded random point, then
 * repeatedly add u* = argmax_i min_{j∈S} ‖x_i − x_j‖ and update the running minimum m_i. A
 * 2-approximation of the minimax covering radius. Distances are taken after an optional projection onto
 * the top principal components (baselines.md §5: 4–8× less work at d = 512).
 *
 * Lazy evaluation instead of one pass over all N items per pick: m_i only decreases, so a stale m_i is an
 * upper bound. Items sit in a max-heap by their bound; the top is brought up to date against the centres
 * it has not seen, and once it stays on top it is the exact argmax (the argument of lazy greedy). Every
 * SYNC_EVERY picks all bounds are made exact at once on the top-k kernel (a GEMM), which keeps the
 * per-item catch-up short. Picks are those of the plain loop. (baselines.md §5 also suggests
 * triangle-inequality pruning; in 64+ dimensions cluster radii are as large as centre distances and it
 * pruned < 2% of checks on our data, so the lazy form is used.)
 */
import { z } from 'zod';
import { twoRoundForm } from '../partitioned.js';
import { seededRandom } from '../../compute/random.js';
import { abortCheckpoint, SelectionInputError, type Selector } from '../contract.js';
import { gather, nearestByDistance, type Matrix } from '../kernels/similarity.js';
import { embeddingParam, pcaDimsParam, reducedVectorsOf } from './vectors.js';

const params = z.object({
  embedding: embeddingParam,
  dims: pcaDimsParam,
});

export const kCenter: Selector<z.infer<typeof params>> = {
  name: 'k-center',
  description: 'k-center greedy: cover the embedding space, farthest point first',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const x = await reducedVectorsOf(input, p.embedding, p.dims);
    const start = Math.floor(seededRandom(ctx.seed)() * x.rows);
    const cover = await kCenterGreedy(x, budget, start, {
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(ctx.progress ? { progress: ctx.progress } : {}),
    });
    // Score: distance of each item to its nearest centre (the covering radius is the maximum).
    const scores = Float32Array.from(cover.minSquared, (m) => Math.sqrt(Math.max(0, m)));
    const radius = scores.reduce((a, b) => Math.max(a, b), 0);
    return {
      indices: cover.indices,
      scores,
      reasons: kCenterReasons(cover, scores, radius),
      trace: [
        {
          stage: 'cover',
          message: `covering radius ${radius.toFixed(4)}; ${cover.lazyChecks.toLocaleString('en-US')} lazy checks`,
        },
      ],
    };
  },
  partitioned: twoRoundForm<z.infer<typeof params>>(
    (input, budget, p, ctx) => kCenter.select(input, budget, p, ctx),
    "k-center greedy again on the union of the partitions' centres (a composable coreset: Malkomes et al., NeurIPS 2015); each pick weighted by the items nearest to it",
  ),
};

export interface KCenterCover {
  indices: Int32Array;
  /** m_i², the squared distance of each item to its nearest centre. */
  minSquared: Float64Array;
  /** Items brought up to date between synchronisations (the work the lazy form does instead of N per pick). */
  lazyChecks: number;
  /** Distance of each pick to the centres before it when it was picked (the radius then); 0 for the start. */
  pickDistance: Float64Array;
}

const SYNC_EVERY = 256;

/** Greedy k-center from `start`, lazily evaluated; squared Euclidean distances throughout. */
export async function kCenterGreedy(
  x: Matrix,
  budget: number,
  start: number,
  options: { signal?: AbortSignal; progress?: (done: number, total: number) => void } = {},
): Promise<KCenterCover> {
  const { rows: n, cols: d, data } = x;
  const norm = new Float64Array(n);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) norm[i]! += data[i * d + k]! ** 2;
  const sqDist = (a: number, b: number) => {
    let dot = 0;
    for (let k = 0, ra = a * d, rb = b * d; k < d; k++) dot += data[ra + k]! * data[rb + k]!;
    return Math.max(0, norm[a]! + norm[b]! - 2 * dot);
  };
  const minSquared = new Float64Array(n).fill(Infinity); // m_i², exact against centres [0, seen[i])
  const seen = new Int32Array(n);
  const indices = new Int32Array(budget);
  const pickDistance = new Float64Array(budget);
  const heap = new MaxHeap(minSquared);
  let synced = 0; // all items have seen centres [0, synced)
  let lazyChecks = 0;

  /** All items against centres [synced, upTo) at once on the kernel. */
  const sync = async (upTo: number) => {
    const centres = gather(x, indices.subarray(synced, upTo));
    const nearest = await nearestByDistance(x, centres, 1, options.signal);
    for (let i = 0; i < n; i++) {
      if (nearest.squared[i]! < minSquared[i]!) minSquared[i] = nearest.squared[i]!;
      seen[i] = upTo;
    }
    synced = upTo;
    heap.rebuild();
  };

  indices[0] = start;
  for (let i = 0; i < n; i++) {
    minSquared[i] = sqDist(i, start);
    seen[i] = 1;
  }
  synced = 1;
  minSquared[start] = 0;
  heap.fill(n, start);
  const checkpoint = abortCheckpoint(options.signal);
  for (let t = 1; t < budget; t++) {
    await checkpoint();
    if (t - synced >= SYNC_EVERY) await sync(t);
    // u* = argmax_i m_i (B5): bring the top up to date until it stays on top.
    for (;;) {
      const top = heap.top();
      lazyChecks++;
      let m = minSquared[top]!;
      for (let j = seen[top]!; j < t; j++) m = Math.min(m, sqDist(top, indices[j]!));
      seen[top] = t;
      if (m === minSquared[top]) break;
      minSquared[top] = m;
      heap.siftDown(0);
      if (heap.top() === top) break;
    }
    const next = heap.pop();
    // A NaN distance compares false both ways and can leave the heap unordered or empty.
    if (next === undefined || !(minSquared[next]! >= 0))
      throw new SelectionInputError('k-center: distances are not finite (NaN or infinite embeddings?)');
    indices[t] = next;
    pickDistance[t] = Math.sqrt(minSquared[next]!);
    minSquared[next] = 0;
    if (t % 256 === 0) options.progress?.(t, budget);
  }
  // m_i ← min(m_i, ‖x_i − x_u*‖²) for every centre, so the scores are exact.
  if (synced < budget) await sync(budget);
  return { indices, minSquared, lazyChecks, pickDistance };
}

/** Max-heap of item ids by key (ties: lower id first), over a shared key array; top operations only. */
class MaxHeap {
  private ids = new Int32Array(0);
  private size = 0;
  constructor(private readonly keys: Float64Array) {}

  fill(n: number, except: number): void {
    this.ids = new Int32Array(n - 1);
    let j = 0;
    for (let i = 0; i < n; i++) if (i !== except) this.ids[j++] = i;
    this.size = j;
    this.rebuild();
  }

  rebuild(): void {
    for (let i = (this.size >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  top(): number {
    return this.ids[0]!;
  }

  pop(): number {
    const top = this.ids[0]!;
    this.ids[0] = this.ids[--this.size]!;
    this.siftDown(0);
    return top;
  }

  private above(a: number, b: number): boolean {
    const ka = this.keys[a]!;
    const kb = this.keys[b]!;
    return ka > kb || (ka === kb && a < b);
  }

  siftDown(position: number): void {
    const { ids, size } = this;
    let i = position;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) return;
      const r = l + 1;
      const child = r < size && this.above(ids[r]!, ids[l]!) ? r : l;
      if (!this.above(ids[child]!, ids[i]!)) return;
      [ids[i], ids[child]] = [ids[child]!, ids[i]!];
      i = child;
    }
  }
}

/** A pick: how far it was from the centres before it (the covering radius then); others: their distance. */
function kCenterReasons(cover: KCenterCover, distance: Float32Array, radius: number): Map<number, string> {
  const f = (v: number) => v.toFixed(3);
  const reasons = new Map<number, string>();
  distance.forEach((d, i) =>
    reasons.set(i, `${f(d)} from its nearest centre, within the radius ${f(radius)}`),
  );
  cover.indices.forEach((i, t) =>
    reasons.set(
      i,
      t === 0
        ? 'seeded random start'
        : `farthest point at pick ${t + 1}, radius ${f(cover.pickDistance[t]!)}`,
    ),
  );
  return reasons;
}
