/**
 * Read throughput and memory of the read → catalog step on the shared CIFAR-10 caption shards
 * (falls back to the bundled demo shards when ../shared is absent). Streaming means peak RSS must not
 * grow with the number of shards: compare 1 shard, all 11, and all 11 four times over (4 datasets).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeSection } from './results.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '../shared/data/cifar10-captions');
const useShared = existsSync(SHARED);
const shardDir = useShared ? SHARED : path.join(ROOT, 'data/demo');
const one = useShared ? 'train-00000.tar.gz' : 'cifar10-captions-0000.tar.gz';
const all = useShared ? 'train-{00000..00010}.tar.gz' : 'cifar10-captions-{0000..0001}.tar.gz';

interface Run {
  samples: number;
  issues: number;
  seconds: number;
  peakRssMiB: number;
  heapUsedMiB: number;
}

function measure(mode: 'stream' | 'catalog', specs: string[]): Run {
  const workspace = path.join(scratch, `ws-${Math.random().toString(36).slice(2)}`);
  const args = mode === 'catalog' ? [mode, workspace, ...specs] : [mode, ...specs];
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench/readWorker.ts'), ...args],
    {
      encoding: 'utf8',
    },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as Run;
}

const scratch = await mkdtemp(path.join(tmpdir(), 'clipcurate-bench-'));
try {
  // Four copies of the shard folder under different names: four datasets whose keys clash (namespaced).
  const copies: string[] = [];
  for (let i = 0; i < 4; i++) {
    const dir = path.join(scratch, `copy${i}`);
    await mkdir(dir);
    for (const s of [...Array(useShared ? 11 : 2).keys()]) {
      const name = useShared
        ? `train-${String(s).padStart(5, '0')}.tar.gz`
        : `cifar10-captions-000${s}.tar.gz`;
      await symlink(path.join(shardDir, name), path.join(dir, name));
    }
    copies.push(path.join(dir, all));
  }
  const cases: Array<[string, string[]]> = [
    [`1 shard (${one})`, [path.join(shardDir, one)]],
    [`all shards (${all})`, [path.join(shardDir, all)]],
    ['all shards x4 (4 datasets)', copies],
  ];
  const rows: string[] = [];
  const raw: Record<string, Run> = {};
  for (const mode of ['stream', 'catalog'] as const) {
    for (const [label, specs] of cases) {
      const run = measure(mode, specs);
      raw[`${mode}: ${label}`] = run;
      const rate = Math.round(run.samples / run.seconds).toLocaleString('en-US');
      const cells = [
        mode === 'stream' ? 'read + check' : 'read + check + catalog',
        label,
        run.samples.toLocaleString('en-US'),
      ];
      cells.push(
        String(run.issues),
        run.seconds.toFixed(1),
        rate,
        run.peakRssMiB.toFixed(0),
        run.heapUsedMiB.toFixed(0),
      );
      rows.push(`| ${cells.join(' | ')} |`);
      console.log(mode, label, run);
    }
  }
  const ratio = (mode: string) =>
    (raw[`${mode}: ${cases[2]![0]}`]!.peakRssMiB / raw[`${mode}: ${cases[0]![0]}`]!.peakRssMiB).toFixed(2);
  const scale = (raw[`stream: ${cases[2]![0]}`]!.samples / raw[`stream: ${cases[0]![0]}`]!.samples).toFixed(
    0,
  );
  await writeSection(
    'read',
    [
      '## Read → catalog',
      '',
      `Data: ${useShared ? '../shared/data/cifar10-captions (gzip WebDataset shards)' : 'bundled demo shards (../shared absent)'}. ` +
        'Each row is a fresh process: stream the shards, check every image (magic bytes, end marker, header via image-size), ' +
        'write the DuckDB catalog. Peak RSS is the process maximum.',
      '',
      '| path | input | samples | issues | seconds | samples/s | peak RSS MiB | JS heap at end MiB |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
      ...rows,
      '',
      `Peak RSS, largest input / 1 shard, for ${scale}x the samples: readers ${ratio('stream')}, with the catalog ${ratio('catalog')}. ` +
        'The readers stream (their memory does not depend on the input size); the catalog path adds DuckDB, whose ' +
        'working set grows with the size of the catalog it merges into (key de-duplication over all samples), not with the stream.',
    ].join('\n'),
    raw,
  );
} finally {
  await rm(scratch, { recursive: true, force: true });
}
