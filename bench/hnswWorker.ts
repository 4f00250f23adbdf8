/**
 * HNSW build at scale in a fresh process:  hnswWorker.ts <n> <dim>  → one JSON line
 * Builds the index with the workspace defaults (M = 16, efConstruction = 200), then measures query time
 * and recall@10 of 200 item queries against the exact top-k kernel.
 */
import { HnswIndex } from '../src/select/index/hnsw.js';
import { gather, topKInnerProduct } from '../src/select/kernels/similarity.js';
import { syntheticEmbeddings } from './synthetic.js';

const [nText, dimText] = process.argv.slice(2);
const n = Number(nText);
const dim = Number(dimText);
const { image } = syntheticEmbeddings(n, dim, false);
const vectors = { data: image, rows: n, cols: dim };
const started = performance.now();
const index = HnswIndex.build(vectors, {}, (done) => {
  if (done % 100_000 === 0)
    console.error(`${done} added, ${((performance.now() - started) / 1000).toFixed(0)} s`);
});
const buildSeconds = (performance.now() - started) / 1000;
const queries = gather(
  vectors,
  Array.from({ length: 200 }, (_, i) => Math.floor((i * n) / 200)),
);
const exact = await topKInnerProduct(queries, vectors, 10);
const queryStarted = performance.now();
let hits = 0;
for (let q = 0; q < queries.rows; q++) {
  const found = new Set(index.query(queries.data.subarray(q * dim, (q + 1) * dim), 10).map((x) => x.index));
  for (let j = 0; j < 10; j++) if (found.has(exact.indices[q * 10 + j]!)) hits++;
}
const queryMs = (performance.now() - queryStarted) / queries.rows;
console.log(
  JSON.stringify({
    n,
    dim,
    buildSeconds,
    queryMs,
    recallAt10: hits / (queries.rows * 10),
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    matrixMiB: (n * dim * 4) / 2 ** 20,
  }),
);
