/** Random unit-norm rows and a brute-force top-k over them, for testing the kNN indexes and kernels. */
import { gaussian, seededRandom } from '../../src/compute/random.js';
import type { Matrix } from '../../src/select/kernels/similarity.js';

export function unitRows(n: number, d: number, seed: number): Matrix {
  const normal = gaussian(seededRandom(seed));
  const data = Float32Array.from({ length: n * d }, normal);
  for (let i = 0; i < n; i++) {
    const r = data.subarray(i * d, (i + 1) * d);
    const s = Math.hypot(...r);
    for (let k = 0; k < d; k++) r[k]! /= s;
  }
  return { rows: n, cols: d, data };
}

/** The k rows most similar to row i (itself left out), by a plain loop over every row. */
export function bruteTopK(m: Matrix, i: number, k: number): number[] {
  const d = m.cols;
  const scores: Array<[number, number]> = [];
  for (let j = 0; j < m.rows; j++) {
    if (j === i) continue;
    let s = 0;
    for (let t = 0; t < d; t++) s += m.data[i * d + t]! * m.data[j * d + t]!;
    scores.push([s, j]);
  }
  return scores
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, j]) => j);
}
