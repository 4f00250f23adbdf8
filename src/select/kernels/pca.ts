/**
 * Principal-component projection for the O(N·B·d) sequential methods (k-center, herding): baselines.md §5
 * recommends cutting d to 64–128 first. Covariance and projection run on the MatMul kernel in row blocks,
 * so no centred copy of the N × d matrix is made.
 */
import { asDense, dense, matmul, symmetricEigen, tmatmul } from '../../compute/linalg.js';
import { rowsOf, type Matrix } from './similarity.js';

const BLOCK = 65_536;

/** Project rows onto the top `k` principal directions (uncentred scores: pairwise distances are what matter). */
export async function pcaProject(x: Matrix, k: number): Promise<{ projected: Matrix; explained: number }> {
  const d = x.cols;
  if (k >= d) return { projected: x, explained: 1 };
  const gram = dense(d, d);
  const mean = new Float64Array(d);
  for (let start = 0; start < x.rows; start += BLOCK) {
    const block = rowsOf(x, start, Math.min(x.rows, start + BLOCK));
    const b = asDense(block);
    const g = await tmatmul(b, b);
    for (let i = 0; i < g.data.length; i++) gram.data[i]! += g.data[i]!;
    for (let r = 0; r < block.rows; r++) for (let c = 0; c < d; c++) mean[c]! += block.data[r * d + c]!;
  }
  // Σ = XᵀX/n − μμᵀ.
  for (let c = 0; c < d; c++) mean[c]! /= x.rows;
  for (let r = 0; r < d; r++)
    for (let c = 0; c < d; c++) gram.data[r * d + c] = gram.data[r * d + c]! / x.rows - mean[r]! * mean[c]!;
  const eig = symmetricEigen(gram);
  const basis = dense(d, k);
  for (let r = 0; r < d; r++)
    for (let j = 0; j < k; j++) basis.data[r * k + j] = eig.vectors.data[r * d + j]!;
  const projected = new Float32Array(x.rows * k);
  for (let start = 0; start < x.rows; start += BLOCK) {
    const block = rowsOf(x, start, Math.min(x.rows, start + BLOCK));
    const p = await matmul(asDense(block), basis);
    projected.set(p.data, start * k);
  }
  const total = eig.values.reduce((a, b) => a + Math.max(b, 0), 0);
  const kept = eig.values.slice(0, k).reduce((a, b) => a + Math.max(b, 0), 0);
  return { projected: { rows: x.rows, cols: k, data: projected }, explained: total > 0 ? kept / total : 1 };
}
