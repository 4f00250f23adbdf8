/**
 * One selector on synthetic unit embeddings in a fresh process (peak RSS is this run's):
 *   selectWorker.ts <method> <n> <dim> <budget fraction>  → one JSON line
 * Data: bench/synthetic.ts.
 */
import { runSelector } from '../src/select/contract.js';
import { syntheticEmbeddings } from './synthetic.js';
import { resolveMethod } from './variants.js';

const [method, nText, dimText, fractionText] = process.argv.slice(2);
const n = Number(nText);
const dim = Number(dimText);
const { selector, params } = resolveMethod(method!);
// Caption embeddings only for the methods that read them, so peak RSS reflects what the method needs.
const needsText = selector.needs.includes('text');
const { image, text } = syntheticEmbeddings(n, dim, needsText);
const started = performance.now();
const s = await runSelector(
  selector,
  { n, dim, image, ...(needsText ? { text } : {}) },
  { fraction: Number(fractionText) },
  params,
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
    // The embedding matrices the method reads: image, plus captions for the methods that need them.
    matrixMiB: ((needsText ? 2 : 1) * n * dim * 4) / 2 ** 20,
  }),
);
