/**
 * Blocked similarity kernels on onnxruntime: S = Q·Bᵀ computed tile by tile, each tile reduced on the
 * kernel itself (TopK, ReduceMax) so JavaScript only merges k candidates per row and tile; the self kNN
 * (X against itself) has the kernel keep only the entries that reach running thresholds, serving both
 * ends of every pair (selfTopK). Tiles are sized so one S tile stays below ~64 MB whatever N is.
 */
import { GraphBuilder } from '../../compute/onnxGraph.js';
import { createSession, Tensor, type Session } from '../../compute/ort.js';

export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

const TILE_ELEMENTS = 16 * 1024 * 1024;

let topkSession: Promise<Session> | undefined;
let productSession: Promise<Session> | undefined;

/** q [m,d], b [n,d], k [1] → values, indices [m, k] of the k largest q·bᵀ per row. */
function topkGraph(): Promise<Session> {
  topkSession ??= (async () => {
    const g = new GraphBuilder('tile_topk');
    const q = g.input('q', 'float32', ['m', 'd']);
    const b = g.input('b', 'float32', ['n', 'd']);
    const k = g.input('k', 'int64', [1]);
    const s = g.op('MatMul', [q, g.op('Transpose', [b], { perm: [1, 0] })]);
    g.node('TopK', [s, k], { axis: 1, largest: 1, sorted: 1 }, ['values', 'indices']);
    g.output('values', 'float32', ['m', 'k']);
    g.output('indices', 'int64', ['m', 'k']);
    return (await createSession(g.toBytes())).session;
  })();
  return topkSession;
}

/** q [m,d], b [n,d] → s = q·bᵀ [m,n]. */
export function productGraph(): Promise<Session> {
  productSession ??= (async () => {
    const g = new GraphBuilder('tile_product');
    const q = g.input('q', 'float32', ['m', 'd']);
    const b = g.input('b', 'float32', ['n', 'd']);
    g.op('MatMul', [q, g.op('Transpose', [b], { perm: [1, 0] })], {}, 's');
    g.output('s', 'float32', ['m', 'n']);
    return (await createSession(g.toBytes())).session;
  })();
  return productSession;
}

export function rowsOf(m: Matrix, start: number, end: number): Matrix {
  return { rows: end - start, cols: m.cols, data: m.data.subarray(start * m.cols, end * m.cols) };
}

/** Rows `ids` of m, copied into a new matrix. */
export function gather(m: Matrix, ids: ArrayLike<number>): Matrix {
  const data = new Float32Array(ids.length * m.cols);
  for (let t = 0; t < ids.length; t++)
    data.set(m.data.subarray(ids[t]! * m.cols, (ids[t]! + 1) * m.cols), t * m.cols);
  return { rows: ids.length, cols: m.cols, data };
}

export interface TopK {
  k: number;
  /** [rows × k] base indices, best first; -1 when fewer than k candidates. */
  indices: Int32Array;
  values: Float32Array;
}

/**
 * For every row of `queries`, the k rows of `base` with the largest inner product (cosine for unit
 * vectors). With `excludeSelf` (queries = base), an item is not its own neighbour.
 */
export async function topKInnerProduct(
  queries: Matrix,
  base: Matrix,
  k: number,
  options: {
    excludeSelf?: boolean;
    onProgress?: (done: number, total: number) => void;
    signal?: AbortSignal;
  } = {},
): Promise<TopK> {
  if (queries === base && options.excludeSelf) return selfTopK(base, k, options);
  const session = await topkGraph();
  const d = queries.cols;
  const want = k + (options.excludeSelf ? 1 : 0);
  const qTile = Math.max(1, Math.min(queries.rows, 4096));
  const bTile = Math.max(want, Math.min(base.rows, Math.floor(TILE_ELEMENTS / qTile)));
  const indices = new Int32Array(queries.rows * k).fill(-1);
  const values = new Float32Array(queries.rows * k).fill(-Infinity);
  for (let q0 = 0; q0 < queries.rows; q0 += qTile) {
    options.signal?.throwIfAborted();
    const q = rowsOf(queries, q0, Math.min(queries.rows, q0 + qTile));
    const qT = new Tensor('float32', q.data, [q.rows, d]);
    const candidates: Array<{ offset: number; values: Float32Array; indices: BigInt64Array; kk: number }> =
      [];
    for (let b0 = 0; b0 < base.rows; b0 += bTile) {
      const b = rowsOf(base, b0, Math.min(base.rows, b0 + bTile));
      const kk = Math.min(want, b.rows);
      const out = await session.run({
        q: qT,
        b: new Tensor('float32', b.data, [b.rows, d]),
        k: new Tensor('int64', BigInt64Array.of(BigInt(kk)), [1]),
      });
      candidates.push({
        offset: b0,
        values: out.values!.data as Float32Array,
        indices: out.indices!.data as BigInt64Array,
        kk,
      });
    }
    // Merge the per-tile lists (each sorted) into the global top k of each row.
    for (let r = 0; r < q.rows; r++) {
      const self = q0 + r;
      const merged: Array<[number, number]> = [];
      for (const c of candidates) {
        for (let j = 0; j < c.kk; j++) {
          const idx = Number(c.indices[r * c.kk + j]!) + c.offset;
          if (options.excludeSelf && idx === self) continue;
          merged.push([c.values[r * c.kk + j]!, idx]);
        }
      }
      merged.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      for (let j = 0; j < Math.min(k, merged.length); j++) {
        values[self * k + j] = merged[j]![0];
        indices[self * k + j] = merged[j]![1];
      }
    }
    options.onProgress?.(Math.min(queries.rows, q0 + qTile), queries.rows);
  }
  return { k, indices, values };
}

/** Rows per tile of selfTopK: small enough that the triangle saves most of the square's products. */
const SELF_TILE = 2048;

let candidateSession: Promise<Session> | undefined;

/**
 * q [m,d], b [n,d], rowFloor [m,1], columnFloor [1,n] → the entries of s = q·bᵀ that reach their row's
 * or their column's floor: `at` [2, count] (row and column of each, row-major order) and `values` [count].
 * The comparison and the compaction run on the kernel, so JavaScript only sees the few entries that can
 * still enter a list instead of all m·n.
 */
function candidateGraph(): Promise<Session> {
  candidateSession ??= (async () => {
    const g = new GraphBuilder('tile_candidates');
    const q = g.input('q', 'float32', ['m', 'd']);
    const b = g.input('b', 'float32', ['n', 'd']);
    const rowFloor = g.input('rowFloor', 'float32', ['m', 1]);
    const columnFloor = g.input('columnFloor', 'float32', [1, 'n']);
    const s = g.op('MatMul', [q, g.op('Transpose', [b], { perm: [1, 0] })]);
    const reaches = g.op('Or', [
      g.op('GreaterOrEqual', [s, rowFloor]),
      g.op('GreaterOrEqual', [s, columnFloor]),
    ]);
    g.op('NonZero', [reaches], {}, 'at');
    g.op('GatherND', [s, g.op('Transpose', ['at'], { perm: [1, 0] })], {}, 'values');
    g.output('at', 'int64', [2, 'count']);
    g.output('values', 'float32', ['count']);
    return (await createSession(g.toBytes())).session;
  })();
  return candidateSession;
}

/**
 * Every row's k nearest other rows of x by inner product (the kNN graph of x): the same result as the
 * rectangular search, from the tiles on and above the diagonal only, since S = X·Xᵀ is symmetric. Each
 * off-diagonal tile serves both ends of its pairs, so the products cost about half as much.
 *
 * The diagonal tiles run first, reduced by TopK on the kernel, so every list is full before the
 * off-diagonal tiles come. Those return only the entries that reach their row's or their column's
 * current k-th best (the kernel compares and compacts; most entries are dismissed there), and each
 * survivor is offered to the ends whose lists it can still enter. Thresholds only rise, so an entry
 * below a tile's starting threshold could never have entered. Order: value descending, then index
 * ascending.
 */
async function selfTopK(
  x: Matrix,
  k: number,
  options: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal },
): Promise<TopK> {
  const n = x.rows;
  const d = x.cols;
  const keep = Math.min(k, Math.max(0, n - 1));
  const best = new RunningTopK(n, keep, k);
  const threshold = new Float32Array(n).fill(-Infinity);
  const tiles = Math.ceil(n / SELF_TILE);
  const tile = (t: number) => rowsOf(x, t * SELF_TILE, Math.min(n, (t + 1) * SELF_TILE));
  const matrix = (m: Matrix) => new Tensor('float32', m.data, [m.rows, d]);
  if (keep === 0) return best.result();
  const topk = await topkGraph();
  for (let t = 0; t < tiles; t++) {
    options.signal?.throwIfAborted();
    const a = tile(t);
    const a0 = t * SELF_TILE;
    const kk = Math.min(keep + 1, a.rows); // one more: the row itself is among them
    const out = await topk.run({
      q: matrix(a),
      b: matrix(a),
      k: new Tensor('int64', BigInt64Array.of(BigInt(kk)), [1]),
    });
    const values = out.values!.data as Float32Array;
    const indices = out.indices!.data as BigInt64Array;
    for (let r = 0; r < a.rows; r++) {
      for (let j = 0; j < kk; j++) {
        const c = Number(indices[r * kk + j]!);
        if (c !== r) best.offer(a0 + r, values[r * kk + j]!, a0 + c);
      }
      threshold[a0 + r] = best.worst(a0 + r);
    }
  }
  const candidates = await candidateGraph();
  for (let ti = 0; ti < tiles; ti++) {
    const a = tile(ti);
    const a0 = ti * SELF_TILE;
    for (let tj = ti + 1; tj < tiles; tj++) {
      options.signal?.throwIfAborted();
      const b = tile(tj);
      const b0 = tj * SELF_TILE;
      const out = await candidates.run({
        q: matrix(a),
        b: matrix(b),
        rowFloor: new Tensor('float32', threshold.slice(a0, a0 + a.rows), [a.rows, 1]),
        columnFloor: new Tensor('float32', threshold.slice(b0, b0 + b.rows), [1, b.rows]),
      });
      offerCandidates(
        out.at!.data as BigInt64Array,
        out.values!.data as Float32Array,
        a0,
        b0,
        best,
        threshold,
      );
    }
    options.onProgress?.(Math.min(n, (ti + 1) * SELF_TILE), n);
  }
  return best.result();
}

/** Offers each surviving entry (row a0 + r, column b0 + c) to the ends whose lists it can still enter. */
function offerCandidates(
  at: BigInt64Array,
  values: Float32Array,
  a0: number,
  b0: number,
  best: RunningTopK,
  threshold: Float32Array,
): void {
  const count = values.length;
  for (let e = 0; e < count; e++) {
    const value = values[e]!;
    const row = a0 + Number(at[e]!);
    const column = b0 + Number(at[count + e]!);
    if (value >= threshold[row]!) {
      best.offer(row, value, column);
      threshold[row] = best.worst(row);
    }
    if (value >= threshold[column]!) {
      best.offer(column, value, row);
      threshold[column] = best.worst(column);
    }
  }
}

/** Per row, the k best (value, index) candidates offered so far: value descending, then index ascending (merges top-k lists of several blocks). */
export class RunningTopK {
  private readonly values: Float32Array;
  private readonly indices: Int32Array;
  private readonly filled: Int32Array;

  constructor(
    private readonly rows: number,
    private readonly keep: number,
    private readonly k: number,
  ) {
    this.values = new Float32Array(rows * k).fill(-Infinity);
    this.indices = new Int32Array(rows * k).fill(-1);
    this.filled = new Int32Array(rows);
  }

  offer(row: number, value: number, index: number): void {
    const { values, indices, keep } = this;
    if (keep === 0) return;
    const base = row * this.k;
    let at = this.filled[row]!;
    if (at === keep) {
      const lastValue = values[base + keep - 1]!;
      if (value < lastValue || (value === lastValue && index > indices[base + keep - 1]!)) return;
      at = keep - 1; // the last one drops out
    } else this.filled[row]!++;
    // Insertion: shift worse candidates one slot down.
    while (at > 0) {
      const v = values[base + at - 1]!;
      if (v > value || (v === value && indices[base + at - 1]! < index)) break;
      values[base + at] = v;
      indices[base + at] = indices[base + at - 1]!;
      at--;
    }
    values[base + at] = value;
    indices[base + at] = index;
  }

  /** The value a candidate must reach to enter the row's list: the k-th best so far, −∞ while the list is not full. */
  worst(row: number): number {
    return this.filled[row] === this.keep && this.keep > 0
      ? this.values[row * this.k + this.keep - 1]!
      : -Infinity;
  }

  result(): TopK {
    return { k: this.k, indices: this.indices, values: this.values };
  }
}

/**
 * For every query row, the k base rows nearest in Euclidean distance and the squared distances, best
 * first: ‖q − b‖² = ‖q‖² − 2(⟨q, b⟩ − ‖b‖²/2), so the top-k kernel runs on [q, 1]·[b, −‖b‖²/2]ᵀ. Queries
 * are augmented one tile at a time, so memory stays at the size of the base plus a tile.
 */
export async function nearestByDistance(
  queries: Matrix,
  base: Matrix,
  k: number,
  signal?: AbortSignal,
): Promise<{ k: number; indices: Int32Array; squared: Float64Array }> {
  const d = base.cols;
  const augmentedBase = new Float32Array(base.rows * (d + 1));
  for (let j = 0; j < base.rows; j++) {
    let norm = 0;
    for (let q = 0; q < d; q++) norm += (augmentedBase[j * (d + 1) + q] = base.data[j * d + q]!) ** 2;
    augmentedBase[j * (d + 1) + d] = -norm / 2;
  }
  const kk = Math.min(k, base.rows);
  const indices = new Int32Array(queries.rows * kk);
  const squared = new Float64Array(queries.rows * kk);
  const tileRows = 65_536;
  for (let r0 = 0; r0 < queries.rows; r0 += tileRows) {
    signal?.throwIfAborted();
    const tile = rowsOf(queries, r0, Math.min(queries.rows, r0 + tileRows));
    const augmented = new Float32Array(tile.rows * (d + 1));
    const norms = new Float64Array(tile.rows);
    for (let r = 0; r < tile.rows; r++) {
      for (let q = 0; q < d; q++) norms[r]! += (augmented[r * (d + 1) + q] = tile.data[r * d + q]!) ** 2;
      augmented[r * (d + 1) + d] = 1;
    }
    const best = await topKInnerProduct(
      { rows: tile.rows, cols: d + 1, data: augmented },
      { rows: base.rows, cols: d + 1, data: augmentedBase },
      kk,
    );
    indices.set(best.indices, r0 * kk);
    for (let i = 0; i < tile.rows * kk; i++)
      squared[r0 * kk + i] = Math.max(0, norms[Math.floor(i / kk)]! - 2 * best.values[i]!);
  }
  return { k: kk, indices, squared };
}

/** Dense block of inner products Q·Bᵀ (for small blocks: per-cluster Gram matrices, tests). */
export async function innerProducts(q: Matrix, b: Matrix): Promise<Float32Array> {
  const session = await productGraph();
  const out = await session.run({
    q: new Tensor('float32', q.data, [q.rows, q.cols]),
    b: new Tensor('float32', b.data, [b.rows, b.cols]),
  });
  return out.s!.data as Float32Array;
}
