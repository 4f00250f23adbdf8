/**
 * `curate embed --shard I/N` as a real Slurm job array (scripts/slurm-tools.sh starts a single-node
 * cluster: `npm run test:cluster`): a 3-task array and an `afterok` finishing job embed the fixture
 * byte-identically to one process; one task is cancelled with `scancel` while it runs and re-submitted
 * on its own, and only its part is embedded again.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { embeddingsDir } from '../../src/curate/api.js';
import { TASK_RECORDS } from '../../src/curate/taskRecords.js';
import { MINI, tempDir } from '../helpers.js';
import { captureCli, cliEntry, ROOT } from '../support/cli.js';
import { arrayWithTask1Cancelled, finished, jobStates, slurm, waitFor } from '../support/slurm.js';
import { storeContents } from '../support/stores.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate } = captureCli();

describe('curate embed --shard on a real Slurm cluster', () => {
  it('array of 3 + afterok finishing job; a scancelled task re-submitted redoes only its part', async () => {
    expect(slurm('sinfo', '-h', '-o', '%T')).toMatch(/idle|mixed|allocated/);
    const root = await tempDir();
    const model = await writeTinyClip(path.join(root, 'tiny-clip'));
    const spec = path.join(MINI, 'wds/mini-{000..002}.tar');
    const single = path.join(root, 'single');
    const ws = path.join(root, 'slurm');
    for (const w of [single, ws]) expect((await curate('-w', w, 'init', spec)).code).toBe(0);
    expect((await curate('-w', single, 'embed', '--encoder', model)).code).toBe(0);

    const entry = await cliEntry();
    const curateCommand = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(entry)} -w ${JSON.stringify(ws)}`;
    const { job, out, release } = await arrayWithTask1Cancelled(
      root,
      `${curateCommand} embed --encoder ${JSON.stringify(model)} --shard`,
    );

    const records = path.join(embeddingsDir(ws), TASK_RECORDS);
    const kept = await readdir(records);
    expect(kept).toHaveLength(2);
    const mtimes = await Promise.all(kept.map(async (f) => (await stat(path.join(records, f))).mtimeMs));

    // Re-submit task 1 alone; the finishing job depends on it (held until the records are checked).
    await release();
    const again = slurm('sbatch', '--parsable', '--array=1', '-o', out('task-%A-%a.out'), job);
    const finish = slurm(
      'sbatch',
      '--parsable',
      '--hold',
      `--dependency=afterok:${again}`,
      '-o',
      out('finish.out'),
      '--wrap',
      `cd ${JSON.stringify(ROOT)} && exec ${curateCommand} embed --encoder ${JSON.stringify(model)}`,
    );
    await waitFor('the re-submitted task', () => finished(`${again}_1`));
    expect(jobStates(`${again}_1`)).toEqual(['COMPLETED']);
    expect(await readFile(out(`task-${again}-1.out`), 'utf8')).toContain('shards: 1 written, 0 already done');
    // Only task 1's record is new: the other two tasks' records are untouched.
    expect((await readdir(records)).sort()).toEqual(
      [...kept, (await readdir(records)).find((f) => !kept.includes(f))!].sort(),
    );
    for (const [i, f] of kept.entries()) expect((await stat(path.join(records, f))).mtimeMs).toBe(mtimes[i]);
    expect(await readdir(records)).toHaveLength(3);

    slurm('scontrol', 'release', finish);
    await waitFor('the finishing job', () => finished(finish));
    expect(jobStates(finish)).toEqual(['COMPLETED']);
    const finishOut = await readFile(out('finish.out'), 'utf8');
    expect(finishOut).toContain(
      'shards: 0 written, 3 already done; registered 3 shards written by array-job tasks',
    );
    expect(await storeContents(ws)).toEqual(await storeContents(single));
  });
});
