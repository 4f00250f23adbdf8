/**
 * Hostile and unlucky exports (issue 22, cases 5 and 6 and the killed export of "Smaller"): an export
 * never deletes or replaces what it did not write, accounts for every pick (the same tar catalogued
 * by two datasets included), and a kill -9 at any point (`export.staged`, `export.moving`) is finished
 * by running the same command again, ending byte-identical to an uninterrupted export.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { addDataset, Catalog } from '../../src/curate/api.js';
import { exportSelection } from '../../src/curate/export/index.js';
import { saveSelection } from '../../src/curate/selections.js';
import { WebDatasetReader } from '../../src/embed/readers/webdataset.js';
import { MINI, readAll, tempDir } from '../helpers.js';
import { captureCli } from '../support/cli.js';

const { curate, stderr } = captureCli();
const ROOT = path.resolve(import.meta.dirname, '../..');

let workspace: string;
let entry: string;
let data: string;
/** member name → bytes of the two copied shards, to check exported images. */
const originals = new Map<string, Buffer>();

/** Every file below `dir` (relative path → bytes), hidden ones and folders' contents included. */
async function tree(dir: string): Promise<Map<string, Buffer>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
  return new Map(await Promise.all(files.map(async (f) => [f, await readFile(path.join(dir, f))] as const)));
}

/** provenance.json without its wall-clock fields. */
function provenance(bytes: Buffer): unknown {
  const p = JSON.parse(bytes.toString('utf8')) as { export: Record<string, unknown> };
  delete p.export.exportedAt;
  delete p.export.seconds;
  return p;
}

async function expectSameExport(actual: string, expected: string, extra: string[] = []): Promise<void> {
  const a = await tree(actual);
  const b = await tree(expected);
  expect([...a.keys()]).toEqual([...new Set([...b.keys(), ...extra])].sort());
  for (const [name, bytes] of b) {
    if (name === 'provenance.json') expect(provenance(a.get(name)!)).toEqual(provenance(bytes));
    else expect(a.get(name)!.equals(bytes), `${name} differs from the uninterrupted export`).toBe(true);
  }
}

function exportArgs(out: string, format = 'webdataset', ...more: string[]): string[] {
  return ['-w', workspace, 'export', '--selection', 'all', '--format', format, '--out', out, ...more];
}

/**
 * The CLI in a child process, killed at `killAt` (CURATE_KILL_AT). Asynchronous so this worker's event
 * loop stays free for vitest's RPC while the child runs.
 */
async function killedExport(args: string[], killAt: string): Promise<void> {
  const env = { ...process.env, CURATE_KILL_AT: killAt };
  const { signal, stderr } = await new Promise<{ signal: NodeJS.Signals | null; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: ROOT, env });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill('SIGTERM'), 120_000);
      child.on('error', reject);
      child.on('close', (_code, sig) => {
        clearTimeout(timer);
        resolve({ signal: sig, stderr: err });
      });
    },
  );
  expect(signal, `the export should die at ${killAt}:\n${stderr}`).toBe('SIGKILL');
}

beforeAll(async () => {
  const scratch = await tempDir({ forFile: true });
  entry = path.join(scratch, 'curate-entry.mts');
  await writeFile(
    entry,
    `import { main } from ${JSON.stringify(path.join(ROOT, 'src/curate/cli/main.ts'))};\n` +
      'process.exitCode = await main(process.argv);\n',
  );
  data = path.join(scratch, 'data');
  await mkdir(data);
  for (const shard of ['mini-000.tar', 'mini-001.tar'])
    await copyFile(path.join(MINI, 'wds', shard), path.join(data, shard));
  for (const s of (await readAll(new WebDatasetReader([path.join(data, 'mini-000.tar')]))).samples)
    originals.set(s.location.member!, await s.image());
  for (const s of (await readAll(new WebDatasetReader([path.join(data, 'mini-001.tar')]))).samples)
    originals.set(s.location.member!, await s.image());

  // The same tar in two datasets: `init x.tar`, then a glob that matches it too.
  workspace = path.join(scratch, 'ws');
  const catalog = await Catalog.open(workspace);
  try {
    await addDataset(catalog, 'mini-000.tar', { cwd: data });
    await addDataset(catalog, 'mini-*.tar', { cwd: data });
    const rows = await catalog.rows<{ id: bigint }>('SELECT id FROM samples ORDER BY id');
    expect(rows).toHaveLength(240);
    // Interleave the two datasets' copies of each member in pick order.
    const indices = Int32Array.from(rows.keys()).sort((a, b) => (a % 80) - (b % 80) || a - b);
    await saveSelection(catalog, workspace, {
      name: 'all',
      method: 'hand',
      params: {},
      seed: 1,
      budget: { requested: String(indices.length), count: indices.length },
      selection: { indices, weights: Float32Array.from(indices, (_, t) => 1 + (t % 3)), trace: [] },
      poolIds: BigInt64Array.from(rows, (r) => r.id),
      encoder: { name: 'test', fingerprint: 'x' },
      seconds: 0,
    });
  } finally {
    catalog.close();
  }
}, 120_000);

describe('every pick is written or skipped with a reason (case 6)', () => {
  it('the same tar in two datasets: all 240 picks are exported, skipped is empty', async () => {
    const catalog = await Catalog.open(workspace);
    try {
      const out = path.join(await tempDir(), 'out');
      const report = await exportSelection(catalog, workspace, 'all', {
        format: 'webdataset',
        out,
        shardSize: 100,
      });
      expect(report.skipped).toEqual([]);
      expect(report.samples).toBe(240);
      const shards = report.files.filter((f) => f.name.endsWith('.tar')).map((f) => path.join(out, f.name));
      const { samples } = await readAll(new WebDatasetReader(shards));
      expect(samples).toHaveLength(240);
      const keys = new Set<string>();
      for (const s of samples) {
        const factsMember = s.members!.find((m) => m.name.endsWith('.curate.json'))!;
        const facts = JSON.parse(factsMember.bytes.toString('utf8')) as {
          key: string;
          source: { member: string };
        };
        const source = facts.source.member;
        keys.add(facts.key);
        expect((await s.image()).equals(originals.get(source)!), `${s.key} from ${source}`).toBe(true);
      }
      expect(keys.size).toBe(240);
    } finally {
      catalog.close();
    }
  }, 60_000);
});

describe('--overwrite never deletes or replaces files the export did not write (case 5)', () => {
  it("the user's manifest.csv, keys.txt, schedule.jsonl and folders survive; clashes are refused", async () => {
    const out = path.join(await tempDir(), 'out');
    await mkdir(path.join(out, '.clipcurate-export-mine'), { recursive: true });
    const mine: Record<string, string> = {
      'manifest.csv': 'my,own\n1,2\n',
      'keys.txt': 'my keys\n',
      'schedule.jsonl': '{"mine":true}\n',
      'notes.md': 'notes',
      '.clipcurate-export-mine/kept.txt': 'a folder with the staging prefix, but not ours',
    };
    for (const [name, text] of Object.entries(mine)) await writeFile(path.join(out, name), text);
    const expectMineIntact = async (except: string[] = []) => {
      for (const [name, text] of Object.entries(mine))
        if (!except.includes(name)) expect(await readFile(path.join(out, name), 'utf8'), name).toBe(text);
    };

    // Not empty, no --overwrite: refused as before.
    expect((await curate(...exportArgs(out))).code).toBe(2);
    expect(stderr()).toMatch(/is not empty/);
    // Overwrite, no clash: written alongside.
    const first = await curate(...exportArgs(out, 'webdataset', '--overwrite', '--shard-size', '100'));
    expect(first.code, stderr()).toBe(0);
    await expectMineIntact();
    expect((await readdir(out)).filter((n) => n.endsWith('.tar'))).toHaveLength(3);
    // A clash with a file of the user: refused, before anything is written, naming the file.
    for (const [format, taken] of [
      ['keys', 'keys.txt'],
      ['csv', 'manifest.csv'],
    ] as const) {
      const r = await curate(...exportArgs(out, format, '--overwrite'));
      expect(r.code).toBe(2);
      expect(stderr()).toContain(
        `holds ${taken}, which this export would replace but no earlier export wrote`,
      );
      expect(stderr()).not.toMatch(/\n\s+at /);
      await expectMineIntact();
      expect((await readdir(out)).filter((n) => n.startsWith('.clipcurate-export-'))).toEqual([
        '.clipcurate-export-mine',
      ]);
    }
    // The user moves keys.txt away: a keys export replaces the previous export's files, not theirs.
    await writeFile(path.join(out, '..', 'keys.txt'), await readFile(path.join(out, 'keys.txt')));
    await (await import('node:fs/promises')).rm(path.join(out, 'keys.txt'));
    const keys = await curate(...exportArgs(out, 'keys', '--overwrite'));
    expect(keys.code, stderr()).toBe(0);
    await expectMineIntact(['keys.txt']);
    expect((await readdir(out)).sort()).toEqual(
      [
        '.clipcurate-export-mine',
        'keys.txt',
        'manifest.csv',
        'notes.md',
        'provenance.json',
        'schedule.jsonl',
        'weights.txt',
      ].sort(),
    );
    // The user edits the export's keys.txt: it is theirs now, and a later export leaves it alone.
    await writeFile(path.join(out, 'keys.txt'), 'edited by hand\n');
    const again = await curate(...exportArgs(out, 'webdataset', '--overwrite'));
    expect(again.code, stderr()).toBe(0);
    expect(await readFile(path.join(out, 'keys.txt'), 'utf8')).toBe('edited by hand\n');
    await expectMineIntact(['keys.txt']);
    expect(await readdir(out)).toContain('selection-000000.tar');
  }, 60_000);
});

describe('kill -9 during an export, then the same command again (Smaller: killed export)', () => {
  let reference: string;

  beforeAll(async () => {
    reference = path.join(await tempDir({ forFile: true }), 'reference');
    const r = await curate(...exportArgs(reference, 'webdataset', '--shard-size', '50'));
    expect(r.code, stderr()).toBe(0);
    expect((await readdir(reference)).filter((n) => n.endsWith('.tar'))).toHaveLength(5);
  }, 60_000);

  it.each([
    { at: 'export.staged', what: 'after the first shard is staged' },
    { at: 'export.staged#3', what: 'after three shards are staged' },
    { at: 'export.moving', what: 'after the first file is moved into place' },
  ])(
    'killed $what ($at): the rerun finishes it, byte-identical',
    async ({ at }) => {
      const out = path.join(await tempDir(), 'out');
      const args = exportArgs(out, 'webdataset', '--shard-size', '50');
      await killedExport(args, at);
      // The kill left a staging folder (and maybe moved files): the same command is not refused.
      expect((await readdir(out)).some((n) => n.startsWith('.clipcurate-export-'))).toBe(true);
      const r = await curate(...args);
      expect(r.code, stderr()).toBe(0);
      await expectSameExport(out, reference);
    },
    60_000,
  );

  it('killed while moving over a previous export: a different command is refused, the same one finishes', async () => {
    const out = path.join(await tempDir(), 'out');
    await mkdir(out);
    await writeFile(path.join(out, 'notes.md'), 'mine');
    expect((await curate(...exportArgs(out, 'keys', '--overwrite'))).code, stderr()).toBe(0);
    const args = exportArgs(out, 'webdataset', '--shard-size', '50', '--overwrite');
    await killedExport(args, 'export.moving#1');
    // Half moved: old keys.txt gone or not, some shards in place. Another request must not take it over.
    const other = await curate(...exportArgs(out, 'csv'));
    expect(other.code).toBe(2);
    expect(stderr()).toMatch(
      /cut short while moving into place .*--format webdataset.*run that command again/,
    );
    // The same request finishes it even without --overwrite, even when that run is killed too.
    const same = exportArgs(out, 'webdataset', '--shard-size', '50');
    await killedExport(same, 'export.staged#2');
    const r = await curate(...same);
    expect(r.code, stderr()).toBe(0);
    await expectSameExport(out, reference, ['notes.md']);
    expect(await readFile(path.join(out, 'notes.md'), 'utf8')).toBe('mine');
  }, 60_000);
});
