/**
 * `curate embed --shard I/N`: N task processes embed their slices of one workspace at the same time
 * (real child processes, the catalog open read-only in each), one task is killed after writing its
 * shard and re-run, and the finishing `curate embed` registers the tasks' shards. The result is
 * compared byte for byte with a workspace embedded by one process.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Catalog, embeddingsDir } from '../../src/curate/api.js';
import { TASK_RECORDS } from '../../src/curate/taskRecords.js';
import { MINI, tempDir } from '../helpers.js';
import { captureCli, spawnCli } from '../support/cli.js';
import { storeContents } from '../support/stores.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate, stderr } = captureCli();

/** (sample key, row in its shard's part) for every embedded sample: what the catalog records. */
async function embeddedRows(ws: string): Promise<string[]> {
  const catalog = await Catalog.open(ws, { readOnly: true });
  try {
    const rows = await catalog.rows<{ key: string; part: string; row: number }>(
      `SELECT s.key, e.part, e."row" FROM embeddings e JOIN samples s ON s.id = e.sample_id ORDER BY s.key`,
    );
    return rows.map((r) => `${r.key} ${path.basename(r.part)} ${r.row}`);
  } finally {
    catalog.close();
  }
}

describe('curate embed --shard I/N (array-job tasks on one workspace)', () => {
  it('three concurrent tasks, one killed and re-run, then the finishing embed: identical to one process', async () => {
    const root = await tempDir();
    const model = await writeTinyClip(path.join(root, 'tiny-clip'));
    const spec = path.join(MINI, 'wds/mini-{000..002}.tar');
    const single = path.join(root, 'single');
    const sharded = path.join(root, 'sharded');
    for (const ws of [single, sharded]) expect((await curate('-w', ws, 'init', spec)).code).toBe(0);
    expect((await curate('-w', single, 'embed', '--encoder', model)).code).toBe(0);

    // Task 2 is killed right after its shard is renamed into place, before its task record is written.
    const tasks = await Promise.all(
      [0, 1, 2].map((i) =>
        spawnCli(
          ['-w', sharded, 'embed', '--encoder', model, '--shard', `${i}/3`],
          i === 2 ? { CURATE_KILL_AT: 'embed.shard-renamed' } : {},
        ),
      ),
    );
    expect(tasks.map((t) => t.code)).toEqual([0, 0, null]);
    expect(tasks[2]!.signal).toBe('SIGKILL');
    expect(tasks[0]!.out).toContain('shards: 1 written, 0 already done');
    expect(tasks[0]!.out).toContain('task 0/3 done');
    // The tasks wrote files only: the catalog records no embedding yet.
    expect(await embeddedRows(sharded)).toEqual([]);
    const records = path.join(embeddingsDir(sharded), TASK_RECORDS);
    expect((await readdir(records)).length).toBe(2);
    expect((await curate('-w', sharded, 'status')).out).toContain(
      '2 shards written by array-job tasks are not registered yet',
    );
    const before = await Promise.all(
      (await readdir(records)).map(async (f) => [f, (await stat(path.join(records, f))).mtimeMs]),
    );

    // Re-submitted, task 2 redoes its own part; task 0 run again finds its part done.
    const again = await spawnCli(['-w', sharded, 'embed', '--encoder', model, '--shard', '2/3']);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('shards: 1 written, 0 already done');
    const rerun0 = await spawnCli(['-w', sharded, 'embed', '--encoder', model, '--shard', '0/3']);
    expect(rerun0.out).toContain('shards: 0 written, 1 already done');
    for (const [file, mtime] of before)
      expect((await stat(path.join(records, file as string))).mtimeMs).toBe(mtime);

    // The finishing run registers the three shards and embeds nothing.
    const finish = await curate('-w', sharded, 'embed', '--encoder', model);
    expect(finish.code, stderr()).toBe(0);
    expect(finish.out).toContain(
      'shards: 0 written, 3 already done; registered 3 shards written by array-job tasks',
    );
    expect(await readdir(records)).toEqual([]);

    const [a, b] = [await storeContents(single), await storeContents(sharded)];
    expect(Object.keys(b)).toHaveLength(6);
    expect(b).toEqual(a);
    expect(await embeddedRows(sharded)).toEqual(await embeddedRows(single));
    expect((await curate('-w', sharded, 'select', '--method', 'random', '--budget', '10%')).code).toBe(0);
  });

  it('refuses a malformed slice, naming the expected form', async () => {
    const ws = await tempDir();
    expect((await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-000.tar'))).code).toBe(0);
    for (const bad of ['3/3', '1', '2/0', 'a/b']) {
      expect((await curate('-w', ws, 'embed', '--shard', bad)).code).toBe(2);
      expect(stderr()).toContain('expected I/N with 0 ≤ I < N');
    }
  });
});
