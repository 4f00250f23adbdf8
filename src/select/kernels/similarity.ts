/**
 * Blocked similarity kernels on onnxruntime: S = Q·Bᵀ computed tile by tile, each tile reduced on the
 * kernel itself (TopK, ReduceMax) so JavaScript only merges k candidates per row and tile. Tiles are sized
 * so one S tile stays below ~64 MB whatever N is.
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
let pairTopkSession: Promise<Session> | undefined;
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

/**
 * q [m,d], b [n,d], k [1] → the k largest of q·bᵀ per row (rowValues, rowIndices [m, k]) and per column
 * (columnValues, columnIndices [n, k]): one product serves both ends of every pair.
 */
function pairTopkGraph(): Promise<Session> {
  pairTopkSession ??= (async () => {
    const g = new GraphBuilder('tile_pair_topk');
    const q = g.input('q', 'float32', ['m', 'd']);
    const b = g.input('b', 'float32', ['n', 'd']);
    const k = g.input('k', 'int64', [1]);
    const s = g.op('MatMul', [q, g.op('Transpose', [b], { perm: [1, 0] })]);
    g.node('TopK', [s, k], { axis: 1, largest: 1, sorted: 1 }, ['rowValues', 'rowIndices']);
    // TopK along axis 0 is several times slower than along the contiguous axis: transpose first.
    const sT = g.op('Transpose', [s], { perm: [1, 0] });
    g.node('TopK', [sT, k], { axis: 1, largest: 1, sorted: 1 }, ['columnValues', 'columnIndices']);
    g.output('rowValues', 'float32', ['m', 'k']);
    g.output('rowIndices', 'int64', ['m', 'k']);
    g.output('columnValues', 'float32', ['n', 'k']);
    g.output('columnIndices', 'int64', ['n', 'k']);
    return (await createSession(g.toBytes())).session;
  })();
  return pairTopkSession;
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

/**
 * Every row's k nearest other rows of x by inner product (the kNN graph of x): the same result as the
 * rectangular search, from the tiles on and above the diagonal only, since S = X·Xᵀ is symmetric. Each
 * off-diagonal tile is reduced along both axes on the kernel, so the products cost about half as much.
 * Order: value descending, then index ascending.
 */
async function selfTopK(
  x: Matrix,
  k: number,
  options: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal },
): Promise<TopK> {
  const n = x.rows;
  const d = x.cols;
  const session = await pairTopkGraph();
  const best = new RunningTopK(n, Math.min(k, Math.max(0, n - 1)), k);
  const tiles = Math.ceil(n / SELF_TILE);
  let done = 0;
  for (let ti = 0; ti < tiles; ti++) {
    const a0 = ti * SELF_TILE;
    const a = rowsOf(x, a0, Math.min(n, a0 + SELF_TILE));
    const aT = new Tensor('float32', a.data, [a.rows, d]);
    for (let tj = ti; tj < tiles; tj++) {
      options.signal?.throwIfAborted();
      const b0 = tj * SELF_TILE;
      const b = tj === ti ? a : rowsOf(x, b0, Math.min(n, b0 + SELF_TILE));
      // On the diagonal each row also meets itself, hence one more candidate.
      const kk = Math.min(tj === ti ? k + 1 : k, a.rows, b.rows);
      const out = await session.run({
        q: aT,
        b: tj === ti ? aT : new Tensor('float32', b.data, [b.rows, d]),
        k: new Tensor('int64', BigInt64Array.of(BigInt(kk)), [1]),
      });
      const rowValues = out.rowValues!.data as Float32Array;
      const rowIndices = out.rowIndices!.data as BigInt64Array;
      for (let r = 0; r < a.rows; r++)
        for (let j = 0; j < kk; j++) {
          const other = b0 + Number(rowIndices[r * kk + j]!);
          if (other !== a0 + r) best.offer(a0 + r, rowValues[r * kk + j]!, other);
        }
      if (tj !== ti) {
        const columnValues = out.columnValues!.data as Float32Array;
        const columnIndices = out.columnIndices!.data as BigInt64Array;
        for (let c = 0; c < b.rows; c++)
          for (let j = 0; j < kk; j++)
            best.offer(b0 + c, columnValues[c * kk + j]!, a0 + Number(columnIndices[c * kk + j]!));
      }
    }
    done += a.rows;
    options.onProgress?.(done, n);
  }
  return best.result();
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
