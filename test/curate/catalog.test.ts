import { copyFile, mkdir, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addDataset, Catalog, type IngestProgress } from '../../src/curate/api.js';
import { MINI, MINI_COUNT, tempDir } from '../helpers.js';

async function keysOf(catalog: Catalog): Promise<string[]> {
  const rows = await catalog.rows<{ key: string }>('SELECT key FROM samples ORDER BY id');
  return rows.map((r) => r.key);
}

/** Three shards copied into a folder the test may change. */
async function copiedShards(): Promise<string> {
  const dir = await tempDir();
  for (const i of ['000', '001', '002'])
    await copyFile(path.join(MINI, `wds/mini-${i}.tar`), path.join(dir, `mini-${i}.tar`));
  return dir;
}

describe('catalog', () => {
  it('persists samples with source, caption, image facts and metadata', async () => {
    const workspace = await tempDir();
    let catalog = await Catalog.open(workspace);
    await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
    catalog.close();
    catalog = await Catalog.open(workspace); // reopened from disk
    const [row] = await catalog.rows<Record<string, unknown>>(
      `SELECT key, file, member, caption, image_format, width, height, image_bytes,
              metadata->>'caption_kind' AS kind, (metadata->>'cls')::INTEGER AS cls
       FROM samples WHERE key = 'train000001'`,
    );
    const caption = (await readFile(path.join(MINI, 'folder/frog/train000001.txt'), 'utf8')).trim();
    expect(row).toMatchObject({
      key: 'train000001',
      file: path.join(MINI, 'wds/mini-000.tar'),
      member: 'train000001.jpg',
      image_format: 'jpeg',
      width: 32,
      height: 32,
    });
    expect(row!.image_bytes).toBeGreaterThan(100);
    expect(['clean', 'mismatched', 'generic']).toContain(row!.kind);
    expect(row!.caption).toBe(caption);
    expect((await catalog.summary()).samples).toBe(MINI_COUNT);
    catalog.close();
  });

  it('re-reading the same dataset is idempotent: nothing is read again, ids and counts stay', async () => {
    const catalog = await Catalog.open(await tempDir());
    const first = await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
    const ids = await catalog.rows<{ id: bigint }>('SELECT id FROM samples ORDER BY id');
    const again = await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
    expect(first).toMatchObject({ partsRead: 3, samples: MINI_COUNT });
    expect(again).toMatchObject({ partsRead: 0, partsUnchanged: 3, samplesRead: 0, samples: MINI_COUNT });
    expect(await catalog.rows<{ id: bigint }>('SELECT id FROM samples ORDER BY id')).toEqual(ids);
    expect((await catalog.summary()).datasets).toHaveLength(1);
    catalog.close();
  });

  it('a second dataset appends; keys that clash are namespaced with its name, and all keys stay unique', async () => {
    const catalog = await Catalog.open(await tempDir());
    await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
    const csv = await addDataset(catalog, 'manifest.csv', { cwd: MINI });
    const folder = await addDataset(catalog, 'folder', { cwd: MINI });
    expect(csv.samples).toBe(MINI_COUNT);
    const keys = await keysOf(catalog);
    expect(keys).toHaveLength(3 * MINI_COUNT);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toContain('train000000');
    expect(keys).toContain(`${csv.dataset.name}/train000000`);
    // Folder keys (`cat/train000003`) clash with nothing, so they stay as the source names them.
    expect(folder.dataset.name).toBe('folder');
    expect(keys.filter((k) => k.startsWith('folder/'))).toEqual([]);
    catalog.close();
  });

  it('resumes an interrupted read: finished parts are kept and not read again', async () => {
    const dir = await copiedShards();
    const catalog = await Catalog.open(await tempDir());
    const abort = new AbortController();
    const onProgress = (p: IngestProgress) => {
      if (p.partIndex === 1 && p.samples > 20) abort.abort(new Error('stop'));
    };
    await expect(
      addDataset(catalog, 'mini-*.tar', { cwd: dir, signal: abort.signal, onProgress }),
    ).rejects.toThrow('stop');
    const partial = await catalog.summary();
    expect(partial.samples).toBe(80);
    expect(partial.datasets[0]!.parts).toBe(1);

    const resumed = await addDataset(catalog, 'mini-*.tar', { cwd: dir });
    expect(resumed).toMatchObject({ partsRead: 2, partsUnchanged: 1, samplesRead: 160, samples: MINI_COUNT });
    const keys = await keysOf(catalog);
    expect(new Set(keys).size).toBe(MINI_COUNT);
    catalog.close();
  });

  it('re-reads a changed part, replacing its samples and issues, and forgets removed parts', async () => {
    const dir = await copiedShards();
    const catalog = await Catalog.open(await tempDir());
    await addDataset(catalog, 'mini-*.tar', { cwd: dir });

    const changed = path.join(dir, 'mini-001.tar');
    await truncate(changed, 30_000);
    await utimes(changed, new Date(), new Date(Date.now() + 5_000));
    for (let run = 0; run < 2; run++) {
      const report = await addDataset(catalog, 'mini-*.tar', { cwd: dir });
      expect(report.partsRead).toBe(run === 0 ? 1 : 0);
      expect(report.samples).toBeLessThan(MINI_COUNT);
      expect(report.samples).toBeGreaterThan(160);
      // The truncation is reported once, not once per run.
      expect(report.issues).toEqual([{ kind: 'truncated-archive', severity: 'error', count: 1 }]);
    }

    await rm(path.join(dir, 'mini-002.tar'));
    const removed = await addDataset(catalog, 'mini-*.tar', { cwd: dir });
    expect(removed.partsRemoved).toBe(1);
    const rows = await catalog.rows<{ part: string; n: number }>(
      'SELECT part, count(*)::INTEGER AS n FROM samples GROUP BY part ORDER BY part',
    );
    expect(rows.map((r) => path.basename(r.part))).toEqual(['mini-000.tar', 'mini-001.tar']);
    expect(rows[0]!.n).toBe(80);
    catalog.close();
  });

  it('records names that a brace range gives but that do not exist, and reads the rest', async () => {
    const catalog = await Catalog.open(await tempDir());
    const report = await addDataset(catalog, 'wds/mini-{000..003}.tar', { cwd: MINI });
    expect(report.samples).toBe(MINI_COUNT);
    const missing = await catalog.rows<{ file: string; kind: string }>('SELECT file, kind FROM issues');
    expect(missing).toEqual([{ file: path.join(MINI, 'wds/mini-003.tar'), kind: 'missing-file' }]);
    catalog.close();
  });

  it('a folder dataset notices added files', async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, 'imgs'));
    await copyFile(path.join(MINI, 'folder/frog/train000003.jpg'), path.join(dir, 'imgs/a.jpg'));
    await writeFile(path.join(dir, 'imgs/a.txt'), 'a cat');
    const catalog = await Catalog.open(await tempDir());
    expect((await addDataset(catalog, 'imgs', { cwd: dir })).samples).toBe(1);
    await copyFile(path.join(MINI, 'folder/frog/train000003.jpg'), path.join(dir, 'imgs/b.jpg'));
    await writeFile(path.join(dir, 'imgs/b.txt'), 'another cat');
    const again = await addDataset(catalog, 'imgs', { cwd: dir });
    expect(again).toMatchObject({ partsRead: 1, samples: 2 });
    catalog.close();
  });
});

describe('catalog across processes', () => {
  it('a second process on the same workspace waits, then gets a clear "busy" error naming the holder', async () => {
    const { execFileSync } = await import('node:child_process');
    const workspace = await tempDir();
    const catalog = await Catalog.open(workspace);
    const script = `import('${path.resolve('src/curate/catalog.ts')}').then(m => m.Catalog.open(process.argv[1], { lockWaitMs: 1000 }))
      .then(() => console.log('opened'), (e) => console.log(e.message))`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script, workspace], {
      encoding: 'utf8',
    });
    expect(out).toContain(`the workspace is busy: `);
    expect(out).toContain(`(PID ${process.pid}) holds ${path.join(workspace, 'catalog.duckdb')}`);
    expect(out).toMatch(/retried for 1(\.\d)? s/);
    catalog.close();
  });
});
