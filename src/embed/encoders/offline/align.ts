/**
 * A shared image–text space by linear CCA (Hotelling 1936), the closed-form linear analogue of CLIP's
 * contrastive alignment: whiten each side, take the SVD of the whitened cross-covariance, keep the top
 * directions. Projections are scaled by ρ_i^power so strongly correlated directions dominate the cosine.
 */
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import {
  centerRows,
  columnMeans,
  covariance,
  dense,
  matmul,
  symmetricEigen,
  tmatmul,
  whitening,
  type Dense,
} from '../../../compute/linalg.js';

export interface Alignment {
  /** x ↦ (x − meanA) · projA, and likewise for B. */
  meanA: Float64Array;
  projA: Dense;
  meanB: Float64Array;
  projB: Dense;
  /** Canonical correlations of the kept directions, descending. */
  correlations: Float64Array;
}

export interface AlignOptions {
  /** Whitened dimensions kept on each side before the SVD. */
  whitenedDim: number;
  /** Output dimension (number of canonical directions). */
  dim: number;
  /** Ridge added to each side's covariance, relative to its mean eigenvalue (regularised CCA). */
  ridge: number;
  /** Direction i is scaled by ρ_i^power (Gong et al. 2014 use 4): weak, noisy directions fade. */
  power: number;
}

export async function fitAlignment(a: Dense, b: Dense, options: AlignOptions): Promise<Alignment> {
  if (a.rows !== b.rows)
    throw new Error(`alignment needs paired rows (${a.rows} images, ${b.rows} captions)`);
  const meanA = columnMeans(a);
  const meanB = columnMeans(b);
  const ca = centerRows({ ...a, data: Float32Array.from(a.data) }, meanA);
  const cb = centerRows({ ...b, data: Float32Array.from(b.data) }, meanB);
  // Whitening W_a, W_b: (x − μ) W has identity covariance on the kept principal directions.
  const wa = whitening(
    symmetricEigen(await covariance(ca)),
    Math.min(options.whitenedDim, a.cols),
    options.ridge,
  );
  const wb = whitening(
    symmetricEigen(await covariance(cb)),
    Math.min(options.whitenedDim, b.cols),
    options.ridge,
  );
  const aw = await matmul(ca, wa);
  const bw = await matmul(cb, wb);
  // Whitened cross-covariance Σ_ab = A_wᵀ B_w / n = U S Vᵀ; U, V are the canonical directions, S the correlations.
  const cross = await tmatmul(aw, bw);
  const rows: number[][] = [];
  for (let r = 0; r < cross.rows; r++)
    rows.push(Array.from(cross.data.subarray(r * cross.cols, (r + 1) * cross.cols), (v) => v / a.rows));
  const svd = new SingularValueDecomposition(new Matrix(rows), { autoTranspose: true });
  const k = Math.min(options.dim, svd.diagonal.length);
  const correlations = Float64Array.from(svd.diagonal.slice(0, k));
  const pick = (m: Matrix): Dense => {
    const out = dense(m.rows, k);
    for (let r = 0; r < m.rows; r++)
      for (let j = 0; j < k; j++)
        out.data[r * k + j] = m.get(r, j) * Math.max(correlations[j]!, 0) ** options.power;
    return out;
  };
  return {
    meanA,
    projA: await matmul(wa, pick(svd.leftSingularVectors)),
    meanB,
    projB: await matmul(wb, pick(svd.rightSingularVectors)),
    correlations,
  };
}

/** Fold a centring and a projection into one affine map: x ↦ x·W + b with b = −mean·W. */
export function affine(mean: ArrayLike<number>, proj: Dense): { w: Dense; b: Float32Array<ArrayBuffer> } {
  const b = new Float32Array(proj.cols);
  for (let r = 0; r < proj.rows; r++)
    for (let j = 0; j < proj.cols; j++) b[j]! -= mean[r]! * proj.data[r * proj.cols + j]!;
  return { w: proj, b };
}
