/**
 * How good an approximate index's neighbours are: recall@k against exact search on a seeded sample of
 * the indexed items. Each sampled item is a query; its true neighbours are the k items of largest inner
 * product other than itself (the exact top-k kernel), and recall@k is the share of them the index
 * returns among its own k (itself left out too), over all queries.
 */
import { seededRandom } from '../../compute/random.js';
import { RunningTopK, topKInnerProduct, type Matrix } from '../kernels/similarity.js';
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
  const probe = new RecallProbe(vectors.rows, options);
  probe.collect(vectors, 0);
  await probe.search(vectors, 0);
  return probe.recallOf(index);
}

/**
 * The sampled queries of a recall measurement and their exact neighbours, gathered over a pool read
 * block by block (items numbered in the order the blocks come): `collect` every block to take the
 * sampled items' vectors, then `search` every block for their exact neighbours; `recallOf` then
 * scores an index over the same items (as often as needed: the exact part is done once).
 *
 * The sample is drawn among `expectedRows` items; items the pool turned out not to have (rows left
 * out as non-finite) are dropped from it.
 */
export class RecallProbe {
  readonly k: number;
  private readonly sample: number[];
  private readonly queryData: Float32Array[] = [];
  private positions: number[] = [];
  private exact: RunningTopK | undefined;

  constructor(expectedRows: number, options: { k?: number; queries?: number; seed?: number } = {}) {
    this.k = options.k ?? 10;
    this.sample = sampleRows(expectedRows, options.queries ?? 200, options.seed ?? 0);
  }

  /** Take the sampled items among this block's rows (item numbers firstRow, firstRow + 1, …). */
  collect(block: Matrix, firstRow: number): void {
    for (const item of this.sample) {
      if (item < firstRow || item >= firstRow + block.rows) continue;
      const row = item - firstRow;
      this.positions.push(item);
      this.queryData.push(block.data.slice(row * block.cols, (row + 1) * block.cols));
    }
  }

  /** Offer this block's rows as exact neighbours of the collected queries. */
  async search(block: Matrix, firstRow: number): Promise<void> {
    const queries = this.queries();
    if (queries.rows === 0 || block.rows === 0) return;
    this.exact ??= new RunningTopK(queries.rows, this.k + 1, this.k + 1);
    const top = await topKInnerProduct(queries, block, this.k + 1);
    for (let q = 0; q < queries.rows; q++)
      for (let j = 0; j < top.k; j++) {
        const at = top.indices[q * top.k + j]!;
        if (at >= 0) this.exact.offer(q, top.values[q * top.k + j]!, firstRow + at);
      }
  }

  /** Recall@k of an index over the same items, at its own efSearch. */
  recallOf(index: Index): RecallReport {
    const { k } = this;
    const queries = this.queries();
    const sample = this.positions;
    const exact = this.exact?.result().indices ?? new Int32Array(0);
    const approx = index.queryBatch(queries, k + 1);
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
      recall: recallAt(found, exact, sample, k, k + 1),
      efSearch: index.efSearch,
    };
  }

  private queries(): Matrix {
    const cols = this.queryData[0]?.length ?? 0;
    const data = new Float32Array(this.queryData.length * cols);
    this.queryData.forEach((row, q) => data.set(row, q * cols));
    return { rows: this.queryData.length, cols, data };
  }
}
