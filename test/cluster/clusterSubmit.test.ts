/**
 * `curate cluster submit --engine slurm --wait` against the real single-node Slurm: the embed step as
 * a 3-task array plus its finishing job gives the embeddings of one process, and `curate cluster
 * status` reports the jobs; a failing task cancels the finishing job and --wait exits non-zero.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MINI, tempDir } from '../helpers.js';
import { captureCli, cliEntry } from '../support/cli.js';
import { slurm } from '../support/slurm.js';
import { storeContents } from '../support/stores.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate, stderr } = captureCli();

describe('curate cluster submit on a real Slurm cluster', () => {
  it('embeds as an array + finishing job (--wait), reports them in status, and fails loudly when a task fails', async () => {
    expect(slurm('sinfo', '-h', '-o', '%T')).toMatch(/idle|mixed|allocated/);
    const root = await tempDir();
    const model = await writeTinyClip(path.join(root, 'tiny-clip'));
    const spec = path.join(MINI, 'wds/mini-{000..002}.tar');
    const single = path.join(root, 'single');
    const ws = path.join(root, 'cluster');
    for (const w of [single, ws]) expect((await curate('-w', w, 'init', spec)).code).toBe(0);
    expect((await curate('-w', single, 'embed', '--encoder', model)).code).toBe(0);
    const command = `${process.execPath} --import tsx ${await cliEntry()}`;

    const submit = (...words: string[]) =>
      curate(
        '-w',
        ws,
        'cluster',
        'submit',
        '--engine',
        'slurm',
        '--tasks',
        '3',
        '--wait',
        '--curate-command',
        command,
        '--',
        ...words,
      );
    const r = await submit('embed', '--encoder', model);
    expect(r.code, stderr()).toBe(0);
    const [, array, finish] = /array job (\d+) \(3 tasks\), finishing job (\d+)/.exec(r.out) ?? [];
    expect(array && finish, r.out).toBeTruthy();
    expect(r.out).toContain('tasks: 3 COMPLETED; finishing job: 1 COMPLETED');
    expect(await storeContents(ws)).toEqual(await storeContents(single));

    const status = await curate('-w', ws, 'cluster', 'status');
    expect(status.out).toContain(`array ${array}: 3 COMPLETED`);
    expect(status.out).toContain(`finishing ${finish}: 1 COMPLETED`);

    // A model folder that does not exist: every task fails, the finishing job is cancelled, --wait says so.
    const bad = await submit('embed', '--encoder', path.join(root, 'no-such-model'));
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/finishing job: 1 CANCELLED/);
    expect(stderr()).toContain('the jobs did not all complete');
  });
});
