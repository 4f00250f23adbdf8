/**
 * Partitioned selection on synthetic workspaces (`npm run bench:synth`: catalog + float16 store) through
 * the CLI, as a user runs it: `curate select --method M --budget 1% --partitions N` with N = n / 100,000,
 * each run in a fresh process, wall seconds and peak RSS from GNU time. The workspace is read partition
 * by partition, so memory should follow the partition size, not n; seconds per million should stay flat.
 * One single-process run at the largest n shows what the partitions get around.
 *   scale.ts [n,n,…] [--methods=a,b] [--keep] [--no-single]   (defaults 1000000,3000000; every
 *                                                                  partitioned method)
 * Workspaces go to $TMPDIR/clipcurate-scale-<n> and are removed afterwards unless --keep.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { partitionedMethods } from '../src/select/registry.js';
import { log, ROOT } from './data.js';
import { previousResults, previousTableRows, writeSection } from './results.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const sizes = (positional[0] ?? '1000000,3000000').split(',').map(Number);
const methodsArg = process.argv.find((a) => a.startsWith('--methods='));
const methods = methodsArg ? methodsArg.slice('--methods='.length).split(',') : partitionedMethods();
const keep = process.argv.includes('--keep');
const PARTITION = 100_000;

const entry = path.join(tmpdir(), 'clipcurate-scale-entry.mts');
await writeFile(
  entry,
  `import { main } from ${JSON.stringify(path.join(ROOT, 'src/curate/cli/main.ts'))};\nprocess.exitCode = await main(process.argv);\n`,
);

interface Row {
  n: number;
  method: string;
  partitions: number | null;
  seconds: number | null;
  peakRssMiB: number | null;
  outcome: string;
  /** Day the row was measured. */
  measured?: string;
}
const today = new Date().toISOString().slice(0, 10);

/** One CLI run under GNU time: wall seconds, peak RSS, and the last line it printed. */
function timed(args: string[]): { seconds: number; peakRssMiB: number; ok: boolean; last: string } {
  const r = spawnSync(
    '/usr/bin/time',
    ['-f', 'TIME %e %M', process.execPath, '--import', 'tsx', entry, ...args],
    {
      cwd: ROOT,
      encoding: 'utf8',
      maxBuffer: 64 * 2 ** 20,
    },
  );
  const [, seconds, kib] = /TIME ([\d.]+) (\d+)/.exec(r.stderr) ?? [];
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.trim() && !l.startsWith('TIME'));
  return {
    seconds: Number(seconds),
    peakRssMiB: Number(kib) / 1024,
    ok: r.status === 0,
    last: lines.filter((l) => !/^\s/.test(l)).at(-1) ?? '',
  };
}

/** The rows of this section as RESULTS.md shows them (bench/out/results.json is not committed). */
async function rowsInResults(): Promise<Row[]> {
  const number = (cell: string) => (cell === '–' ? null : Number(cell.replace(/,/g, '')));
  return (await previousTableRows('scale')).map(
    ([n, method, partitions, seconds, , rss, outcome, measured]) => ({
      n: Number(n!.replace(/,/g, '')),
      method: method!,
      partitions: partitions === 'one process' ? null : number(partitions!),
      seconds: number(seconds!),
      peakRssMiB: number(rss!),
      outcome: outcome!,
      measured: measured!,
    }),
  );
}

const rows: Row[] = [];
for (const n of sizes) {
  const ws = path.join(tmpdir(), `clipcurate-scale-${n}`);
  if (!existsSync(path.join(ws, 'catalog.duckdb'))) {
    const t = performance.now();
    execFileSync(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'bench/synth.ts'), '--n', String(n), '--out', ws],
      {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    log(`synthetic workspace of ${n} pairs in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  const partitions = Math.ceil(n / PARTITION);
  for (const method of methods) {
    const r = timed([
      '-w',
      ws,
      'select',
      '--method',
      method,
      '--budget',
      '1%',
      '--partitions',
      String(partitions),
    ]);
    log(n, method, partitions, r);
    rows.push({
      n,
      method,
      partitions,
      seconds: r.seconds,
      peakRssMiB: r.peakRssMiB,
      outcome: r.ok ? 'ok' : r.last,
      measured: today,
    });
  }
  if (n === Math.max(...sizes) && !process.argv.includes('--no-single')) {
    // The same request in one process, for contrast (it must hold the whole pool).
    const r = timed([
      '-w',
      ws,
      'select',
      '--method',
      'clip-score',
      '--budget',
      '1%',
      '--one-process',
      '--name',
      'single',
    ]);
    log(n, 'clip-score single process', r);
    rows.push({
      n,
      method: 'clip-score',
      partitions: null,
      seconds: r.ok ? r.seconds : null,
      peakRssMiB: r.peakRssMiB,
      outcome: r.ok ? 'ok' : r.last,
      measured: today,
    });
  }
  if (!keep) await rm(ws, { recursive: true, force: true });
}

// Rows of sizes this run left out are kept from earlier runs (each says when it was measured).
const measuredNow = (r: Row) =>
  rows.some((x) => x.n === r.n && x.method === r.method && x.partitions === r.partitions);
const earlier = ((await previousResults<Row[]>('scale')) ?? (await rowsInResults())).filter(
  (r) => !measuredNow(r),
);
rows.unshift(...earlier);
rows.sort((a, b) => a.n - b.n);

await writeSection(
  'scale',
  [
    '## Large pools: partitioned selection on synthetic workspaces',
    '',
    '`npm run bench:synth` workspaces (catalog + float16 store, d = 512), `curate select --method M --budget 1% --partitions N` with N = n / 100,000, fresh process each, GNU time.',
    '',
    '| pairs | method | partitions | seconds | s per million | peak RSS MiB | outcome | measured |',
    '|---:|---|---:|---:|---:|---:|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.n.toLocaleString('en-US')} | ${r.method} | ${r.partitions ?? 'one process'} | ${r.seconds?.toFixed(0) ?? '–'} | ${r.seconds === null ? '–' : (r.seconds / (r.n / 1e6)).toFixed(0)} | ${r.peakRssMiB?.toFixed(0) ?? '–'} | ${r.outcome.replace(/\|/g, '\\|').slice(0, 160)} | ${r.measured ?? '?'} |`,
    ),
    '',
    "Exact forms (random, clip-score) keep B candidates per partition but merge their scores and catalog ids only (since 2026-12-03; before, the merge loaded the N·B candidates' vectors: 5.4 GB at 3M). The two-round forms keep ⌈4·k_I⌉ candidates per partition and load their vectors for the merge: 4·B rows. The quota forms (seta, crest, pdd-synth; graft's default static subset is a two-round form) run the method in each partition at its quota of B and join the results without loading vectors for a merge; seta's joined schedule at 1M: 20 epoch rounds of 72k–100k keys (27.9 MB schedule.jsonl), crest's 33 rounds, 800 steps in all. pdd-synth's 1,182 s include about 2 minutes of other work on the machine.",
  ].join('\n'),
  rows,
);
