/**
 * One selector on synthetic unit embeddings in a fresh process (peak RSS is this run's):
 *   selectWorker.ts <method> <n> <dim> <budget fraction>  → one JSON line
 * Data: 100 Gaussian clusters, captions = image + noise (20% shuffled), all L2-normalised.
 */
import { gaussian, seededRandom } from '../src/embed/backends/random.js';
import { runSelector } from '../src/select/contract.js';
import { getSelector } from '../src/select/registry.js';

const [method, nText, dimText, fractionText] = process.argv.slice(2);
const n = Number(nText);
const dim = Number(dimText);
const normal = gaussian(seededRandom(1));
const centres = Array.from({ length: 100 }, () => Float32Array.from({ length: dim }, normal));
const selector = getSelector(method!);
// Caption embeddings only for the methods that read them, so peak RSS reflects what the method needs.
const needsText = selector.needs.includes('text');
const image = new Float32Array(n * dim);
const text = new Float32Array(needsText ? n * dim : 0);
const rnd = seededRandom(2);
for (let i = 0; i < n; i++) {
  const c = centres[i % 100]!;
  let s = 0;
  for (let k = 0; k < dim; k++) s += (image[i * dim + k] = c[k]! + 1.5 * normal()) ** 2;
  const inv = 1 / Math.sqrt(s);
  for (let k = 0; k < dim; k++) image[i * dim + k]! *= inv;
}
for (let i = 0; needsText && i < n; i++) {
  const src = rnd() < 0.2 ? Math.floor(rnd() * n) : i;
  let s = 0;
  for (let k = 0; k < dim; k++) s += (text[i * dim + k] = image[src * dim + k]! + 0.05 * normal()) ** 2;
  const inv = 1 / Math.sqrt(s);
  for (let k = 0; k < dim; k++) text[i * dim + k]! *= inv;
}
const started = performance.now();
const s = await runSelector(
  selector,
  { n, dim, image, ...(needsText ? { text } : {}) },
  { fraction: Number(fractionText) },
  {},
  { seed: 0 },
);
const seconds = (performance.now() - started) / 1000;
console.log(
  JSON.stringify({
    method,
    n,
    dim,
    picks: s.indices.length,
    seconds,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    matrixMiB: (n * dim * 4) / 2 ** 20,
  }),
);
