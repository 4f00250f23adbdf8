/**
 * `curate select --partition I/N` as a real Slurm job array: 3 partition tasks and an `afterok`
 * finishing job (`--partitions 3`) give the picks of the in-process partitioned run; one task is
 * cancelled with `scancel` while it runs and re-submitted on its own, and only its partition is
 * computed again.
 */
import { cp, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSelection, partitionsDir } from '../../src/curate/api.js';
import { MINI, tempDir } from '../helpers.js';
import { captureCli, cliEntry, ROOT } from '../support/cli.js';
import { arrayWithTask1Cancelled, finished, jobStates, slurm, waitFor } from '../support/slurm.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate } = captureCli();

const SELECT = ['select', '--method', 'facility-location', '--budget', '10%', '--seed', '3', '--name', 'fl'];

describe('curate select --partition on a real Slurm cluster', () => {
  it('array of 3 + afterok merge = the in-process partitioned run; a scancelled task redoes only its partition', async () => {
    expect(slurm('sinfo', '-h', '-o', '%T')).toMatch(/idle|mixed|allocated/);
    const root = await tempDir();
    const model = await writeTinyClip(path.join(root, 'tiny-clip'));
    const inProcess = path.join(root, 'in-process');
    expect((await curate('-w', inProcess, 'init', path.join(MINI, 'wds/mini-{000..002}.tar'))).code).toBe(0);
    expect((await curate('-w', inProcess, 'embed', '--encoder', model)).code).toBe(0);
    const ws = path.join(root, 'slurm');
    await cp(inProcess, ws, { recursive: true });
    expect((await curate('-w', inProcess, ...SELECT, '--partitions', '3')).code).toBe(0);

    const entry = await cliEntry();
    const curateCommand = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(entry)} -w ${JSON.stringify(ws)}`;
    const args = SELECT.map((a) => JSON.stringify(a)).join(' ');
    const { job, out, release } = await arrayWithTask1Cancelled(root, `${curateCommand} ${args} --partition`);

    const dir = path.join(partitionsDir(ws), (await readdir(partitionsDir(ws)))[0]!);
    expect((await readdir(dir)).sort()).toEqual(['partition-0-of-3.json', 'partition-2-of-3.json']);
    const mtimes = await Promise.all(
      ['partition-0-of-3.json', 'partition-2-of-3.json'].map(
        async (f) => (await stat(path.join(dir, f))).mtimeMs,
      ),
    );

    await release();
    const again = slurm('sbatch', '--parsable', '--array=1', '-o', out('task-%A-%a.out'), job);
    const finish = slurm(
      'sbatch',
      '--parsable',
      `--dependency=afterok:${again}`,
      '-o',
      out('finish.out'),
      '--wrap',
      `cd ${JSON.stringify(ROOT)} && exec ${curateCommand} ${args} --partitions 3`,
    );
    await waitFor('the re-submitted task', () => finished(`${again}_1`));
    expect(jobStates(`${again}_1`)).toEqual(['COMPLETED']);
    expect(await readFile(out(`task-${again}-1.out`), 'utf8')).toMatch(
      /task 1\/3: \d+ candidates from 80 items/,
    );
    await waitFor('the finishing job', () => finished(finish));
    expect(jobStates(finish)).toEqual(['COMPLETED']);
    const finishOut = await readFile(out('finish.out'), 'utf8');
    expect(finishOut).toContain('0 computed in this run, 3 reused');
    for (const [i, f] of ['partition-0-of-3.json', 'partition-2-of-3.json'].entries())
      expect((await stat(path.join(dir, f))).mtimeMs).toBe(mtimes[i]);

    const [a, b] = await Promise.all([loadSelection(inProcess, 'fl'), loadSelection(ws, 'fl')]);
    expect(b.keys).toEqual(a.keys);
    expect(b.weights).toEqual(a.weights);
  });
});
