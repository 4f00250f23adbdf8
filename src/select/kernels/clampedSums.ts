/**
 * Row and column sums of max(Q·Bᵀ, floor) without materialising Q·Bᵀ: MatMul, Max and ReduceSum per
 * tile on onnxruntime, accumulated in float64. ClipCov's cross-modal centrality and redundancy terms and
 * SAS's thresholded row sums are exactly this (floor = 0; floor = −∞ disables the threshold). Also
 * counts the negative products, which tells whether the threshold bites.
 */
import { createSession, Tensor, type Session } from '../../compute/ort.js';
import { GraphBuilder } from '../../compute/onnxGraph.js';
import { rowsOf, type Matrix } from './similarity.js';

const TILE_ELEMENTS = 16 * 1024 * 1024;
let session: Promise<Session> | undefined;

/** q [m,d], b [n,d], floor [1] → rows [m], cols [n], negatives [] of max(q·bᵀ, floor). */
function clampedSumsGraph(): Promise<Session> {
  session ??= (async () => {
    const g = new GraphBuilder('clamped_product_sums');
    const q = g.input('q', 'float32', ['m', 'd']);
    const b = g.input('b', 'float32', ['n', 'd']);
    const floor = g.input('floor', 'float32', [1]);
    const product = g.op('MatMul', [q, g.op('Transpose', [b], { perm: [1, 0] })]);
    const clamped = g.op('Max', [product, floor]);
    g.op('ReduceSum', [clamped, g.ints([1])], { keepdims: 0 }, 'rows');
    g.op('ReduceSum', [clamped, g.ints([0])], { keepdims: 0 }, 'cols');
    const zero = g.constant(Float32Array.of(0), []);
    const negative = g.op('Cast', [g.op('Less', [product, zero])], { to: 1 });
    g.op('ReduceSum', [negative], { keepdims: 0 }, 'negatives');
    g.output('rows', 'float32', ['m']);
    g.output('cols', 'float32', ['n']);
    g.output('negatives', 'float32', []);
    return (await createSession(g.toBytes())).session;
  })();
  return session;
}

export interface ClampedSums {
  /** Σ_j max(⟨q_i, b_j⟩, floor) per row of q. */
  rowSums: Float64Array;
  /** Σ_i max(⟨q_i, b_j⟩, floor) per row of b. */
  colSums: Float64Array;
  /** How many of the m·n products were negative. */
  negatives: number;
}

export async function clampedProductSums(
  q: Matrix,
  b: Matrix,
  floor: number,
  signal?: AbortSignal,
): Promise<ClampedSums> {
  if (q.cols !== b.cols) throw new Error(`dimension mismatch: ${q.cols} vs ${b.cols}`);
  const rowSums = new Float64Array(q.rows);
  const colSums = new Float64Array(b.rows);
  let negatives = 0;
  if (q.rows === 0 || b.rows === 0) return { rowSums, colSums, negatives };
  const g = await clampedSumsGraph();
  const qTile = Math.min(q.rows, 4096);
  const bTile = Math.max(1, Math.min(b.rows, Math.floor(TILE_ELEMENTS / qTile)));
  const floorTensor = new Tensor('float32', Float32Array.of(floor), [1]);
  for (let q0 = 0; q0 < q.rows; q0 += qTile) {
    signal?.throwIfAborted();
    const qt = rowsOf(q, q0, Math.min(q.rows, q0 + qTile));
    const qTensor = new Tensor('float32', qt.data, [qt.rows, q.cols]);
    for (let b0 = 0; b0 < b.rows; b0 += bTile) {
      const bt = rowsOf(b, b0, Math.min(b.rows, b0 + bTile));
      const out = await g.run({
        q: qTensor,
        b: new Tensor('float32', bt.data, [bt.rows, b.cols]),
        floor: floorTensor,
      });
      const rows = out.rows!.data as Float32Array;
      const cols = out.cols!.data as Float32Array;
      for (let i = 0; i < qt.rows; i++) rowSums[q0 + i]! += rows[i]!;
      for (let j = 0; j < bt.rows; j++) colSums[b0 + j]! += cols[j]!;
      negatives += (out.negatives!.data as Float32Array)[0]!;
    }
  }
  return { rowSums, colSums, negatives };
}
