/**
 * Dense linear algebra for fitting: every O(n·d·k) product runs on onnxruntime's MatMul (BLAS-grade,
 * 100–380 GFLOP/s here), small decompositions (d ≤ ~1000) on ml-matrix.
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { GraphBuilder } from './onnxGraph.js';
import { createSession, Tensor, type Session } from './ort.js';

/** A row-major dense matrix. */
export interface Dense {
  rows: number;
  cols: number;
  data: Float32Array<ArrayBuffer>;
}

export function dense(
  rows: number,
  cols: number,
  data: Float32Array<ArrayBuffer> = new Float32Array(rows * cols),
): Dense {
  if (data.length !== rows * cols)
    throw new Error(`matrix data has ${data.length} values, expected ${rows}×${cols}`);
  return { rows, cols, data };
}

/**
 * A Dense view of a row-major float32 matrix, without copying. (Dense's `ArrayBuffer` typing only rules
 * out shared memory, which clipcurate never allocates; copying a 1M × 512 matrix to satisfy it cost 2 GB.)
 */
export function asDense(m: { rows: number; cols: number; data: Float32Array }): Dense {
  return dense(m.rows, m.cols, m.data as Float32Array<ArrayBuffer>);
}

type ProductSessions = Promise<{ matmul: Session; tmatmul: Session }>;
const products = new Map<'float32' | 'float64', ProductSessions>();

/** Two cached sessions with symbolic shapes: A·B and Aᵀ·B, in float32 or float64. */
function sessions(type: 'float32' | 'float64' = 'float32'): ProductSessions {
  let cached = products.get(type);
  if (!cached) {
    cached = (async () => {
      const mm = new GraphBuilder('matmul');
      mm.op('MatMul', [mm.input('a', type, ['m', 'k']), mm.input('b', type, ['k', 'n'])], {}, 'c');
      mm.output('c', type, ['m', 'n']);
      const tm = new GraphBuilder('tmatmul');
      const at = tm.op('Transpose', [tm.input('a', type, ['k', 'm'])], { perm: [1, 0] });
      tm.op('MatMul', [at, tm.input('b', type, ['k', 'n'])], {}, 'c');
      tm.output('c', type, ['m', 'n']);
      const [matmul, tmatmul] = await Promise.all([createSession(mm.toBytes()), createSession(tm.toBytes())]);
      return { matmul: matmul.session, tmatmul: tmatmul.session };
    })();
    products.set(type, cached);
  }
  return cached;
}

/**
 * A·B in float64 (A m × k, B k × n, row-major), or Aᵀ·B with `transposeA` (A k × m): for products whose
 * float32 rounding would matter, such as the Gram matrices of an orthonormalisation.
 */
export async function matmul64(
  a: Float64Array,
  aShape: [number, number],
  b: Float64Array,
  bCols: number,
  transposeA = false,
): Promise<Float64Array> {
  const [aRows, aCols] = aShape;
  const inner = transposeA ? aRows : aCols;
  if (a.length !== aRows * aCols || b.length !== inner * bCols)
    throw new Error(
      `matmul64 shapes ${aRows}×${aCols}${transposeA ? 'ᵀ' : ''} · ${b.length / bCols}×${bCols}`,
    );
  const s = await sessions('float64');
  const out = await (transposeA ? s.tmatmul : s.matmul).run({
    a: new Tensor('float64', a, [aRows, aCols]),
    b: new Tensor('float64', b, [inner, bCols]),
  });
  return out.c!.data as Float64Array;
}

/** A·B. */
export async function matmul(a: Dense, b: Dense): Promise<Dense> {
  if (a.cols !== b.rows) throw new Error(`matmul shapes ${a.rows}×${a.cols} · ${b.rows}×${b.cols}`);
  const { matmul: s } = await sessions();
  const out = await s.run({
    a: new Tensor('float32', a.data, [a.rows, a.cols]),
    b: new Tensor('float32', b.data, [b.rows, b.cols]),
  });
  return dense(a.rows, b.cols, out.c!.data as Float32Array<ArrayBuffer>);
}

/** Aᵀ·B (cross-products and Gram matrices without materialising the transpose). */
export async function tmatmul(a: Dense, b: Dense): Promise<Dense> {
  if (a.rows !== b.rows) throw new Error(`tmatmul shapes (${a.rows}×${a.cols})ᵀ · ${b.rows}×${b.cols}`);
  const { tmatmul: s } = await sessions();
  const out = await s.run({
    a: new Tensor('float32', a.data, [a.rows, a.cols]),
    b: new Tensor('float32', b.data, [b.rows, b.cols]),
  });
  return dense(a.cols, b.cols, out.c!.data as Float32Array<ArrayBuffer>);
}

let inverseSession: Promise<Session> | undefined;

/**
 * A⁻¹ of a non-singular n × n float64 matrix on the kernel: onnxruntime's `com.microsoft` Inverse
 * (Eigen's partially pivoted LU), 2–3× faster than a JavaScript Cholesky inverse at n = 128.
 */
export async function inverse64(a: Float64Array, n: number): Promise<Float64Array> {
  inverseSession ??= (async () => {
    const g = new GraphBuilder('inverse64');
    const x = g.input('a', 'float64', ['n', 'n']);
    g.node('Inverse', [x], {}, ['inverse'], 'com.microsoft');
    g.output('inverse', 'float64', ['n', 'n']);
    return (await createSession(g.toBytes())).session;
  })();
  const out = await (await inverseSession).run({ a: new Tensor('float64', a, [n, n]) });
  return out.inverse!.data as Float64Array;
}

export function columnMeans(x: Dense): Float64Array {
  const mean = new Float64Array(x.cols);
  for (let r = 0; r < x.rows; r++) for (let c = 0; c < x.cols; c++) mean[c]! += x.data[r * x.cols + c]!;
  for (let c = 0; c < x.cols; c++) mean[c]! /= Math.max(1, x.rows);
  return mean;
}

/** Subtract a row vector from every row, in place. */
export function centerRows(x: Dense, mean: ArrayLike<number>): Dense {
  for (let r = 0; r < x.rows; r++) for (let c = 0; c < x.cols; c++) x.data[r * x.cols + c]! -= mean[c]!;
  return x;
}

/** Covariance of centred data, (XᵀX)/n, on the MatMul kernel. */
export async function covariance(centred: Dense): Promise<Dense> {
  const g = await tmatmul(centred, centred);
  const scale = 1 / Math.max(1, centred.rows);
  for (let i = 0; i < g.data.length; i++) g.data[i]! *= scale;
  return g;
}

export interface SymmetricEigen {
  /** Eigenvalues, descending. */
  values: Float64Array;
  /** Eigenvectors as columns, same order (d × d, row-major). */
  vectors: Dense;
}

export function symmetricEigen(m: Dense): SymmetricEigen {
  const rows: number[][] = [];
  for (let r = 0; r < m.rows; r++) {
    const row: number[] = [];
    // Symmetrise: float32 products are symmetric only up to rounding.
    for (let c = 0; c < m.cols; c++) row.push((m.data[r * m.cols + c]! + m.data[c * m.cols + r]!) / 2);
    rows.push(row);
  }
  const evd = new EigenvalueDecomposition(new Matrix(rows), { assumeSymmetric: true });
  const order = evd.realEigenvalues.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
  const d = m.rows;
  const vectors = dense(d, d);
  const ev = evd.eigenvectorMatrix;
  order.forEach(([, src], dst) => {
    for (let r = 0; r < d; r++) vectors.data[r * d + dst] = ev.get(r, src);
  });
  return { values: Float64Array.from(order, ([v]) => v), vectors };
}

/**
 * Whitening transform keeping the top `k` principal directions: W = V_k diag(1/sqrt(λ + ε)), so that
 * (x − mean)·W has identity covariance. ε (ridge, relative to the mean eigenvalue) tames tiny directions.
 */
export function whitening(eigen: SymmetricEigen, k: number, relativeRidge: number): Dense {
  const d = eigen.vectors.rows;
  const mean = eigen.values.reduce((s, v) => s + Math.max(v, 0), 0) / d;
  const ridge = relativeRidge * mean;
  const w = dense(d, k);
  for (let j = 0; j < k; j++) {
    const scale = 1 / Math.sqrt(Math.max(eigen.values[j]!, 0) + ridge);
    for (let r = 0; r < d; r++) w.data[r * k + j] = eigen.vectors.data[r * d + j]! * scale;
  }
  return w;
}

export function transpose(m: Dense): Dense {
  const t = dense(m.cols, m.rows);
  for (let r = 0; r < m.rows; r++)
    for (let c = 0; c < m.cols; c++) t.data[c * m.rows + r] = m.data[r * m.cols + c]!;
  return t;
}
