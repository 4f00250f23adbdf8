/**
 * Synthetic unit embeddings for the scale benchmarks: 100 Gaussian clusters (d dims), captions = image +
 * noise with 20% shuffled, all L2-normalised. Same seeds in every worker so runs are comparable.
 */
import { gaussian, seededRandom } from '../src/compute/random.js';

export function syntheticEmbeddings(n: number, dim: number, withText: boolean) {
  const normal = gaussian(seededRandom(1));
  const centres = Array.from({ length: 100 }, () => Float32Array.from({ length: dim }, normal));
  const image = new Float32Array(n * dim);
  const text = new Float32Array(withText ? n * dim : 0);
  const rnd = seededRandom(2);
  for (let i = 0; i < n; i++) {
    const c = centres[i % 100]!;
    let s = 0;
    for (let k = 0; k < dim; k++) s += (image[i * dim + k] = c[k]! + 1.5 * normal()) ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let k = 0; k < dim; k++) image[i * dim + k]! *= inv;
  }
  for (let i = 0; withText && i < n; i++) {
    const src = rnd() < 0.2 ? Math.floor(rnd() * n) : i;
    let s = 0;
    for (let k = 0; k < dim; k++) s += (text[i * dim + k] = image[src * dim + k]! + 0.05 * normal()) ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let k = 0; k < dim; k++) text[i * dim + k]! *= inv;
  }
  return { image, text };
}
