/**
 * kill -9 at every named write point (src/io/failpoints.ts) of embed, index, select and export: the
 * killed command is run again and the workspace must end byte-identical to an uninterrupted run.
 *
 * One uninterrupted reference run is snapshotted after each step; each scenario copies the snapshot
 * before the step, runs the step in a child process with CURATE_KILL_AT set (it must die by SIGKILL),
 * runs it again normally, and compares every file the step writes with the reference. JSON files are
 * compared after removing wall-clock fields (createdAt, exportedAt, seconds, …); everything else byte
 * for byte.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/curate/catalog.js';
import { FAILPOINTS, type FailpointName } from '../../src/io/failpoints.js';
import { MINI, tempDir } from '../helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SPEC = path.join(MINI, 'wds', 'mini-{000..002}.tar');
const SELECTION = 'facility-location-25pct';
const EXPORT_DIR = 'export-out';

type Step = 'embed' | 'index' | 'select' | 'export';
const STEPS: Step[] = ['embed', 'index', 'select', 'export'];

/** The command of each step, and the workspace paths it writes. */
const STEP: Record<Step, { args: (ws: string) => string[]; writes: string[] }> = {
  embed: { args: () => ['embed', '--batch-size', '32'], writes: ['embeddings', 'encoders'] },
  index: { args: () => ['index'], writes: ['index'] },
  select: {
    args: () => [
      'select',
      '--method',
      'facility-location',
      '--budget',
      '25%',
      '--name',
      SELECTION,
      '--seed',
      '3',
    ],
    writes: [path.join('selections', SELECTION)],
  },
  export: {
    args: (ws) => [
      'export',
      '--selection',
      SELECTION,
      '--format',
      'webdataset',
      '--out',
      path.join(ws, EXPORT_DIR),
    ],
    writes: [EXPORT_DIR],
  },
};

/** Which step reaches each kill point, and which arrival to kill at (`#2`: after one shard is done). */
const SCENARIOS: Array<{ point: FailpointName; step: Step; at?: number }> = [
  { point: 'embed.offline-fit', step: 'embed' },
  { point: 'embed.store-meta', step: 'embed' },
  { point: 'embed.shard-written', step: 'embed', at: 2 },
  { point: 'embed.shard-renamed', step: 'embed', at: 2 },
  { point: 'index.written', step: 'index' },
  { point: 'select.staged', step: 'select' },
  { point: 'export.staged', step: 'export' },
  { point: 'export.moving', step: 'export' },
];

let scratch: string;
let entry: string;
/** Reference workspace snapshots: `before[step]` is the workspace just before that step ran. */
const before = {} as Record<Step, string>;
let reference: string;

interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The CLI in a child process. Asynchronous on purpose: a synchronous spawn would block this worker's
 * event loop for minutes, and vitest's worker RPC times out.
 */
function curate(ws: string, args: string[], killAt?: string): Promise<ChildResult> {
  const env = { ...process.env };
  delete env.CURATE_KILL_AT;
  if (killAt) env.CURATE_KILL_AT = killAt;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, '-w', ws, ...args], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 300_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

function mustSucceed(r: ChildResult, what: string): void {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status} (${r.signal}):\n${r.stderr}\n${r.stdout}`);
}

/** Wall-clock fields differ between any two runs; they are dropped before comparing JSON. */
const CLOCK_KEYS = /^(createdAt|exportedAt|startedAt|finishedAt|seconds|elapsed\w*|\w*Seconds|\w*Ms)$/;
function stripClock(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripClock);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => !CLOCK_KEYS.test(k))
        .map(([k, v]) => [k, stripClock(v)]),
    );
  return value;
}

/** Every file below `dir`, relative paths, sorted. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function expectSameFiles(actualDir: string, expectedDir: string): void {
  const names = files(expectedDir);
  expect(names.length, `reference has files in ${expectedDir}`).toBeGreaterThan(0);
  expect(files(actualDir), `files of ${actualDir}`).toEqual(names);
  for (const name of names) {
    const a = readFileSync(path.join(actualDir, name));
    const b = readFileSync(path.join(expectedDir, name));
    if (name.endsWith('.json')) {
      expect(stripClock(JSON.parse(a.toString('utf8'))), name).toEqual(
        stripClock(JSON.parse(b.toString('utf8'))),
      );
    } else {
      expect(a.equals(b), `${name} differs from the uninterrupted run`).toBe(true);
    }
  }
}

/** What the catalog says about embeddings (rows per sample), for the embed scenarios. */
async function embeddingRows(ws: string): Promise<unknown[]> {
  const catalog = await Catalog.open(ws);
  try {
    return await catalog.rows(`SELECT e.sample_id, e.shard, e."row" FROM embeddings e ORDER BY e.sample_id`);
  } finally {
    catalog.close();
  }
}

beforeAll(async () => {
  scratch = await tempDir({ forFile: true });
  entry = path.join(scratch, 'curate-entry.mts');
  writeFileSync(
    entry,
    `import { main } from ${JSON.stringify(path.join(ROOT, 'src/curate/cli/main.ts'))};\n` +
      'process.exitCode = await main(process.argv);\n',
  );
  reference = path.join(scratch, 'reference');
  mustSucceed(await curate(reference, ['init', SPEC]), 'init');
  for (const step of STEPS) {
    before[step] = path.join(scratch, `before-${step}`);
    cpSync(reference, before[step], { recursive: true });
    mustSucceed(await curate(reference, STEP[step].args(reference)), step);
  }
}, 600_000);

describe('kill -9 at every write point, then the same command again', () => {
  it('covers every kill point the code declares', () => {
    expect(new Set(SCENARIOS.map((s) => s.point))).toEqual(new Set(Object.keys(FAILPOINTS)));
  });

  it.each(SCENARIOS)(
    '$point ($step)',
    async ({ point, step, at }) => {
      const ws = path.join(scratch, `kill-${point}`);
      cpSync(before[step], ws, { recursive: true });
      const args = STEP[step].args(ws);
      const killed = await curate(ws, args, at ? `${point}#${at}` : point);
      expect(killed.signal, `${step} should die at ${point}:\n${killed.stderr}`).toBe('SIGKILL');
      mustSucceed(await curate(ws, args), `${step} after the kill`);
      for (const written of STEP[step].writes)
        expectSameFiles(path.join(ws, written), path.join(reference, written));
      if (step === 'embed') expect(await embeddingRows(ws)).toEqual(await embeddingRows(reference));
    },
    240_000,
  ); // an embed scenario runs the CLI twice, each fitting the offline encoder (~40 s on 2 busy cores)
});
