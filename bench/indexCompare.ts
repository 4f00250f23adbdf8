/**
 * kNN-index candidates on the same synthetic data (bench/synthetic.ts), each in a fresh process
 * (bench/hnswWorker.ts): build seconds, recall@10 against exact search on 200 sampled items and
 * single-query time at several efSearch, index file size and peak RSS. Writes the "index-compare"
 * section of bench/RESULTS.md.
 *   indexCompare.ts [n=100000] [dim=512] [candidates=usearch-f16,usearch-f32,hnswlib-sharded,hnswlib]
 *                   [efSearch=64,128,256]
 *   indexCompare.ts from FILE…  (write the section from recorded hnswWorker.ts output lines)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { log, ROOT } from './data.js';
import { previousResults, writeSection } from './results.js';

const [nText = '100000', dimText = '512', candidatesText, efText = '64,128,256'] = process.argv.slice(2);
const candidates = (candidatesText ?? 'usearch-f16,usearch-f32,hnswlib-sharded,hnswlib').split(',');

interface Row {
  candidate: string;
  n: number;
  dim: number;
  threads: number;
  buildSeconds: number;
  buildCpuSeconds?: number;
  perEf: Array<{ efSearch: number; queryMs: number; recallAt10: number }>;
  indexFileMiB: number;
  peakRssMiB: number;
  matrixMiB: number;
  loadAverage?: number[];
}

const fromFiles = process.argv[2] === 'from' ? process.argv.slice(3) : undefined;
const recorded = fromFiles?.map((f) => JSON.parse(readFileSync(f, 'utf8').trim().split('\n').at(-1)!) as Row);
const name = `index-compare-${recorded ? recorded[0]!.n : nText}`;
let rows: Row[] = (await previousResults<Row[]>(name)) ?? [];
if (recorded) {
  for (const r of recorded) rows = [...rows.filter((x) => x.candidate !== r.candidate), r];
  await write(rows);
} else {
  for (const candidate of candidates) {
    const loadBefore = os.loadavg();
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'bench', 'hnswWorker.ts'), nText, dimText, candidate, efText],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
    );
    const r = {
      ...(JSON.parse(out.trim().split('\n').at(-1)!) as Row),
      loadAverage: [loadBefore[0]!, os.loadavg()[0]!],
    };
    log(r);
    rows = [...rows.filter((x) => x.candidate !== candidate), r];
    await write(rows);
  }
}

async function write(rows: Row[]): Promise<void> {
  const { n, dim } = rows[0]!;
  const cell = (x: Row, i: number, text: () => string) => (i === 0 ? text() : '');
  await writeSection(
    name,
    [
      `### kNN index candidates at N = ${n.toLocaleString('en-US')} (d = ${dim}, bench/synthetic.ts data)`,
      '',
      '| candidate | threads | build s (wall) | build CPU s | efSearch | recall@10 (200 queries) | query ms | index file MiB | peak RSS MiB | load avg |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      ...rows.flatMap((x) =>
        x.perEf.map(
          (e, i) =>
            `| ${cell(x, i, () => x.candidate)} | ${cell(x, i, () => String(x.threads))} | ${cell(x, i, () => x.buildSeconds.toFixed(0))} | ${cell(x, i, () => x.buildCpuSeconds?.toFixed(0) ?? '')} | ${e.efSearch} | ${e.recallAt10.toFixed(3)} | ${e.queryMs.toFixed(2)} | ${cell(x, i, () => x.indexFileMiB.toFixed(0))} | ${cell(x, i, () => x.peakRssMiB.toFixed(0))} | ${cell(x, i, () => x.loadAverage?.map((l) => l.toFixed(1)).join(' → ') ?? '')} |`,
        ),
      ),
      '',
      'M = 16, efConstruction = 200 unless the name says `-m32`. Recall@10: each sampled item queries the index; its ten exact ' +
        "neighbours (itself excluded) come from the top-k kernel. hnswlib-sharded: the tool's `ShardedHnswIndex` (two worker " +
        'threads each build hnswlib over every other row, a query searches both shards and merges; before 2026-12-04 a bench-only ' +
        "copy over the two halves of the rows). usearch: the tool's own `UsearchIndex` build (the first " +
        '50,000 items one at a time, since a threaded add mislinks tight clusters, the rest with a batch `add` on every core), ' +
        'vectors stored as float32 or float16. Wall times depend on how busy the machine was (load average, 2 cores); build CPU ' +
        'seconds (all threads) do much less. Query ms: one query at a time, one thread.',
    ].join('\n'),
    rows,
  );
}
