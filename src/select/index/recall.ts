/**
 * How good an approximate index's neighbours are: recall@k against exact search on a seeded sample of
 * the indexed items. Each sampled item is a query; its true neighbours are the k items of largest inner
 * product other than itself (the exact top-k kernel), and recall@k is the share of them the index
 * returns among its own k (itself left out too), over all queries.
 */
import { seededRandom } from '../../compute/random.js';
import { gather, topKInnerProduct, type Matrix } from '../kernels/similarity.js';
import type { Index } from './types.js';

/** `count` distinct row numbers below `n` (all of them when n ≤ count), drawn with `seed`, ascending. */
export function sampleRows(n: number, count: number, seed: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const rnd = seededRandom(seed);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(Math.floor(rnd() * n));
  return [...picked].sort((a, b) => a - b);
}

/**
 * Recall@k of `found` ([queries × k] approximate neighbours, -1 where fewer) against `exact`
 * ([queries × stride] exact neighbours best first, which may include the query item itself,
 * `sample[q]`): each query's truth is its first k exact neighbours other than itself.
 */
export function recallAt(
  found: Int32Array,
  exact: Int32Array,
  sample: readonly number[],
  k: number,
  stride: number,
): number {
  let hits = 0;
  let wanted = 0;
  sample.forEach((self, q) => {
    const truth = new Set<number>();
    for (let j = 0; j < stride && truth.size < k; j++) {
      const t = exact[q * stride + j]!;
      if (t >= 0 && t !== self) truth.add(t);
    }
    wanted += truth.size;
    for (let j = 0; j < k; j++) if (truth.has(found[q * k + j]!)) hits++;
  });
  return wanted === 0 ? 1 : hits / wanted;
}

export interface RecallReport {
  k: number;
  queries: number;
  recall: number;
  efSearch: number;
}

/**
 * Recall@k of `index` (built over `vectors`, item i = row i) at its own efSearch, on `queries` items
 * sampled with `seed`; exact search runs on the top-k kernel.
 */
export async function measureRecall(
  index: Index,
  vectors: Matrix,
  options: { k?: number; queries?: number; seed?: number } = {},
): Promise<RecallReport> {
  const k = options.k ?? 10;
  const sample = sampleRows(vectors.rows, options.queries ?? 200, options.seed ?? 0);
  const exact = await topKInnerProduct(gather(vectors, sample), vectors, k + 1);
  const approx = index.queryBatch(gather(vectors, sample), k + 1);
  const found = new Int32Array(sample.length * k).fill(-1);
  sample.forEach((self, q) => {
    let j = 0;
    for (let t = 0; t <= k && j < k; t++) {
      const idx = approx.indices[q * (k + 1) + t]!;
      if (idx >= 0 && idx !== self) found[q * k + j++] = idx;
    }
  });
  return {
    k,
    queries: sample.length,
    recall: recallAt(found, exact.indices, sample, k, k + 1),
    efSearch: index.efSearch,
  };
}
