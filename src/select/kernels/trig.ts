/**
 * cos and sin of projections Y·Ω on onnxruntime (MatMul, Cos, Sin in one graph), and the empirical
 * characteristic function φ_Y(ω) = (1/|Y|) Σ_y exp(i⟨ω, y⟩) of a sample at many frequencies, streamed in
 * row tiles (FAST, fast.md §3.4).
 */
import { createSession, Tensor, type Session } from '../../compute/ort.js';
import { GraphBuilder } from '../../compute/onnxGraph.js';
import { rowsOf, type Matrix } from './similarity.js';

let session: Promise<Session> | undefined;
let sumSession: Promise<Session> | undefined;

/** y [m,d], w [d,f] → cos, sin [m,f] of y·w. */
function trigGraph(): Promise<Session> {
  session ??= (async () => {
    const g = new GraphBuilder('projected_trig');
    const y = g.input('y', 'float32', ['m', 'd']);
    const w = g.input('w', 'float32', ['d', 'f']);
    const u = g.op('MatMul', [y, w]);
    g.op('Cos', [u], {}, 'cos');
    g.op('Sin', [u], {}, 'sin');
    g.output('cos', 'float32', ['m', 'f']);
    g.output('sin', 'float32', ['m', 'f']);
    return (await createSession(g.toBytes())).session;
  })();
  return session;
}

/** y [m,d], w [d,f] → column sums of cos and sin of y·w, [f] each (the m × f tables never leave the kernel). */
function trigSumGraph(): Promise<Session> {
  sumSession ??= (async () => {
    const g = new GraphBuilder('projected_trig_sum');
    const y = g.input('y', 'float32', ['m', 'd']);
    const w = g.input('w', 'float32', ['d', 'f']);
    const u = g.op('MatMul', [y, w]);
    const axis = g.ints([0]);
    g.op('ReduceSum', [g.op('Cos', [u]), axis], { keepdims: 0 }, 'cos');
    g.op('ReduceSum', [g.op('Sin', [u]), axis], { keepdims: 0 }, 'sin');
    g.output('cos', 'float32', ['f']);
    g.output('sin', 'float32', ['f']);
    return (await createSession(g.toBytes())).session;
  })();
  return sumSession;
}

/** Frequencies as a d × f matrix (column j = ω_j). */
export interface Frequencies {
  d: number;
  f: number;
  /** Row-major d × f. */
  data: Float32Array;
}

/** cos(Y·Ω) and sin(Y·Ω), m × f each. */
export async function projectedTrig(
  y: Matrix,
  omega: Frequencies,
): Promise<{ cos: Float32Array; sin: Float32Array }> {
  if (y.cols !== omega.d) throw new Error(`dimension mismatch: ${y.cols} vs ${omega.d}`);
  const out = await (
    await trigGraph()
  ).run({
    y: new Tensor('float32', y.data, [y.rows, y.cols]),
    w: new Tensor('float32', omega.data, [omega.d, omega.f]),
  });
  return { cos: out.cos!.data as Float32Array, sin: out.sin!.data as Float32Array };
}

/**
 * φ_Y(ω_j) = mean_y cos⟨ω_j, y⟩ + i·mean_y sin⟨ω_j, y⟩ for every column of Ω: each row tile is summed on
 * the kernel (float32, at most TILE_ROWS rows), the tiles' sums in float64.
 */
export async function characteristicFunction(
  y: Matrix,
  omega: Frequencies,
): Promise<{ re: Float64Array; im: Float64Array }> {
  const session = await trigSumGraph();
  const re = new Float64Array(omega.f);
  const im = new Float64Array(omega.f);
  const w = new Tensor('float32', omega.data, [omega.d, omega.f]);
  const tile = Math.min(TILE_ROWS, Math.max(1, Math.floor((8 * 1024 * 1024) / Math.max(1, omega.f))));
  for (let r0 = 0; r0 < y.rows; r0 += tile) {
    const block = rowsOf(y, r0, Math.min(y.rows, r0 + tile));
    const out = await session.run({ y: new Tensor('float32', block.data, [block.rows, block.cols]), w });
    const [cos, sin] = [out.cos!.data as Float32Array, out.sin!.data as Float32Array];
    for (let j = 0; j < omega.f; j++) {
      re[j]! += cos[j]!;
      im[j]! += sin[j]!;
    }
  }
  for (let j = 0; j < omega.f; j++) {
    re[j]! /= y.rows;
    im[j]! /= y.rows;
  }
  return { re, im };
}

/** Rows summed in float32 on the kernel before the float64 total (bounds the float32 rounding). */
const TILE_ROWS = 4096;
