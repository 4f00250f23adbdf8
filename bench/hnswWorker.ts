/**
 * One kNN-index candidate at scale in a fresh process → one JSON line on stdout:
 *   hnswWorker.ts <n> <dim> [candidate] [efSearch,…]
 * candidate: `hnswlib` (default; M = 16, efConstruction = 200, one thread),
 * `hnswlib-sharded` (the tool's ShardedHnswIndex: two worker threads each build hnswlib over every
 * other row; a query searches both shards and merges), `usearch-f32`, `usearch-f16` (M = 16, efConstruction = 200, every core); a
 * `-m32` suffix (`hnswlib-m32`, `usearch-f16-m32`) builds with M = 32.
 * The build runs once; recall@10 (self excluded, against the exact top-k kernel) and single-query time
 * are measured on 200 sampled items at each efSearch (default 64). Data: bench/synthetic.ts.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { HnswIndex } from '../src/select/index/hnsw.js';
import { sampleRows, recallAt } from '../src/select/index/recall.js';
import { ShardedHnswBuilder, ShardedHnswIndex, shardFiles } from '../src/select/index/shardedHnsw.js';
import type { Neighbour } from '../src/select/index/types.js';
import { UsearchIndex } from '../src/select/index/usearch.js';
import { gather, rowsOf, topKInnerProduct, type Matrix } from '../src/select/kernels/similarity.js';
import { syntheticEmbeddings } from './synthetic.js';

const [nText, dimText, candidate = 'hnswlib', efText = '64'] = process.argv.slice(2);
const n = Number(nText);
const dim = Number(dimText);
const efs = efText.split(',').map(Number);
const K = 10;

const { image } = syntheticEmbeddings(n, dim, false);
const vectors: Matrix = { data: image, rows: n, cols: dim };
const dir = await mkdtemp(path.join(tmpdir(), 'index-bench-'));
const file = path.join(dir, 'index');
const rssBefore = process.memoryUsage().rss;
const progress = (done: number) => {
  if (done % 100_000 === 0)
    console.error(`${candidate}: ${done} added, ${((performance.now() - started) / 1000).toFixed(0)} s`);
};

type Searcher = (ef: number) => Promise<(v: Float32Array, k: number) => Neighbour[]>;
const started = performance.now();
const cpuStarted = process.cpuUsage();
let searcherAt: Searcher;
let threads = 1;
// `-m32` at the end of a name: M = 32 instead of 16.
const m = candidate.endsWith('-m32') ? 32 : 16;
const base = candidate.replace(/-m32$/, '');
if (base === 'hnswlib') {
  const index = HnswIndex.build(vectors, { m, efConstruction: 200 }, progress);
  await index.save(file);
  searcherAt = async (ef) => {
    const loaded = await HnswIndex.load(file, dim, ef);
    return (v, k) => loaded.query(v, k);
  };
} else if (base === 'hnswlib-sharded') {
  threads = 2;
  searcherAt = await shardedHnswlib(2);
} else if (base === 'usearch-f32' || base === 'usearch-f16') {
  threads = availableParallelism();
  const precision = base === 'usearch-f32' ? 'f32' : 'f16';
  const index = UsearchIndex.build(vectors, { m, precision, threads }, progress);
  await index.save(file);
  searcherAt = async (ef) => {
    const loaded = await UsearchIndex.load(file, dim, { precision, efSearch: ef, threads: 1 });
    return (v, k) => loaded.query(v, k);
  };
} else {
  throw new Error(`unknown candidate ${candidate}`);
}
const buildSeconds = (performance.now() - started) / 1000;
// CPU seconds of the build (all threads): on a busy machine wall time says more about the neighbours.
const cpu = process.cpuUsage(cpuStarted);
const buildCpuSeconds = (cpu.user + cpu.system) / 1e6;
const rssAfterBuild = process.memoryUsage().rss;
let fileBytes = 0;
for (const f of [file, ...shardFiles(`${file}.hnsw`, threads)])
  fileBytes += await stat(f).then(
    (s) => s.size,
    () => 0,
  );
const fileMiB = fileBytes / 2 ** 20;

const sample = sampleRows(n, 200, 7);
const exact = await topKInnerProduct(gather(vectors, sample), vectors, K + 1);
const perEf = [];
for (const ef of efs) {
  const search = await searcherAt(ef);
  const found = new Int32Array(sample.length * K);
  const t0 = performance.now();
  sample.forEach((row, q) => {
    const hits = search(vectors.data.subarray(row * dim, (row + 1) * dim), K + 1)
      .filter((h) => h.index !== row)
      .slice(0, K);
    hits.forEach((h, j) => (found[q * K + j] = h.index));
  });
  const queryMs = (performance.now() - t0) / sample.length;
  perEf.push({ efSearch: ef, queryMs, recallAt10: recallAt(found, exact.indices, sample, K, K + 1) });
}
await rm(dir, { recursive: true, force: true });
const best = perEf[0]!;
console.log(
  JSON.stringify({
    candidate,
    n,
    dim,
    threads,
    buildSeconds,
    buildCpuSeconds,
    // The first efSearch's figures, under the names bench/select1m.ts reads.
    queryMs: best.queryMs,
    recallAt10: best.recallAt10,
    perEf,
    indexFileMiB: fileMiB,
    buildRssGrowthMiB: (rssAfterBuild - rssBefore) / 2 ** 20,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    matrixMiB: (n * dim * 4) / 2 ** 20,
  }),
);

/**
 * The tool's own sharded index (ShardedHnswBuilder, what `curate index` builds): `shards` worker
 * threads each build hnswlib over every shards-th row, fed in blocks of 100,000 rows; a query searches
 * every shard and merges.
 */
async function shardedHnswlib(shards: number): Promise<Searcher> {
  const builder = new ShardedHnswBuilder(dim, n, shards, { m, efConstruction: 200 }, (done) =>
    progress(done),
  );
  try {
    for (let start = 0; start < n; start += 100_000)
      await builder.add(rowsOf(vectors, start, Math.min(n, start + 100_000)));
    await builder.save(`${file}.hnsw`, 64);
  } finally {
    await builder.close();
  }
  return async (ef) => {
    const loaded = await ShardedHnswIndex.load(shardFiles(`${file}.hnsw`, shards), dim, ef);
    return (v, k) => loaded.query(v, k);
  };
}
