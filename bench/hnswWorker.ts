/**
 * One kNN-index candidate at scale in a fresh process → one JSON line on stdout:
 *   hnswWorker.ts <n> <dim> [candidate] [efSearch,…]
 * candidate: `hnswlib` (default; M = 16, efConstruction = 200, one thread),
 * `hnswlib-sharded` (two worker threads each build hnswlib over half the rows; a query searches both
 * shards and merges), `usearch-f32`, `usearch-f16` (M = 16, efConstruction = 200, every core); a
 * `-m32` suffix (`hnswlib-m32`, `usearch-f16-m32`) builds with M = 32.
 * The build runs once; recall@10 (self excluded, against the exact top-k kernel) and single-query time
 * are measured on 200 sampled items at each efSearch (default 64). Data: bench/synthetic.ts.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { HnswIndex } from '../src/select/index/hnsw.js';
import { sampleRows, recallAt } from '../src/select/index/recall.js';
import type { Neighbour } from '../src/select/index/types.js';
import { UsearchIndex } from '../src/select/index/usearch.js';
import { gather, topKInnerProduct, type Matrix } from '../src/select/kernels/similarity.js';
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
for (const f of [file, `${file}.0`, `${file}.1`])
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
 * hnswlib over `shards` row ranges, each built in its own worker thread (the vectors shared, not
 * copied) and saved; the searcher loads every shard and merges their top k by similarity.
 */
async function shardedHnswlib(shards: number): Promise<Searcher> {
  const shared = new Float32Array(new SharedArrayBuffer(image.byteLength));
  shared.set(image);
  const bounds = Array.from({ length: shards + 1 }, (_, s) => Math.floor((s * n) / shards));
  // An eval worker is CommonJS and cannot load TypeScript: it calls hnswlib-node directly.
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const hnswlib = require('hnswlib-node');
    const { data, dim, start, end, file } = workerData;
    const index = new hnswlib.HierarchicalNSW('ip', dim);
    index.initIndex(end - start, 16, 200, 100);
    for (let i = start; i < end; i++) index.addPoint(Array.from(data.subarray(i * dim, (i + 1) * dim)), i - start);
    index.writeIndexSync(file);
    parentPort.postMessage('done');`;
  await Promise.all(
    bounds.slice(0, -1).map(
      (start, s) =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(code, {
            eval: true,
            workerData: { data: shared, dim, start, end: bounds[s + 1], file: `${file}.${s}` },
          });
          w.once('message', () => resolve());
          w.once('error', reject);
        }),
    ),
  );
  await stat(`${file}.0`).then((s) => s.size);
  return async (ef) => {
    const parts = await Promise.all(
      bounds.slice(0, -1).map((_, s) => HnswIndex.load(`${file}.${s}`, dim, ef)),
    );
    return (v, k) =>
      parts
        .flatMap((p, s) =>
          p.query(v, k).map((h) => ({ index: h.index + bounds[s]!, similarity: h.similarity })),
        )
        .sort((a, b) => b.similarity - a.similarity || a.index - b.index)
        .slice(0, k);
  };
}
