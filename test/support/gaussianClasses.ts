import { gaussian, seededRandom } from '../../src/compute/random.js';

/**
 * Labelled toy embeddings: K Gaussian classes around random unit centres, rows renormalised to unit
 * length (like CLIP embeddings). `spread` is the noise norm relative to the (unit) centre.
 */
export function gaussianClasses(
  n: number,
  d: number,
  classes: number,
  seed: number,
  spread = 0.3,
): { x: { rows: number; cols: number; data: Float32Array }; labels: Int32Array } {
  const random = seededRandom(seed);
  const normal = gaussian(random);
  const centres = Array.from({ length: classes }, () => {
    const c = Float64Array.from({ length: d }, normal);
    const norm = Math.hypot(...c);
    return c.map((v) => v / norm);
  });
  const data = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = Math.floor(random() * classes);
    labels[i] = k;
    let norm = 0;
    for (let j = 0; j < d; j++) {
      const v = centres[k]![j]! + (spread * normal()) / Math.sqrt(d);
      data[i * d + j] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < d; j++) data[i * d + j]! /= norm;
  }
  return { x: { rows: n, cols: d, data }, labels };
}
