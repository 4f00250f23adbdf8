/**
 * `curate cluster submit` without a cluster: the Slurm scripts it writes (--dry-run) are run by bash
 * as Slurm would run them (SLURM_ARRAY_TASK_ID set) and do the step; the Kubernetes files carry the
 * task index and the finishing run; bad requests are refused before anything is written. The real
 * submission is tested against Slurm in test/cluster/clusterSubmit.test.ts.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MINI, tempDir } from '../helpers.js';
import { captureCli, cliEntry, ROOT } from '../support/cli.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate, stderr } = captureCli();
const run = promisify(execFile);

async function planDir(ws: string): Promise<string> {
  const dirs = await readdir(path.join(ws, 'cluster'));
  return path.join(ws, 'cluster', dirs.sort().at(-1)!);
}

describe('curate cluster submit (scripts and refusals, no cluster)', () => {
  it('slurm --dry-run: the task and finishing scripts, run as Slurm runs them, embed the workspace', async () => {
    const root = await tempDir();
    const model = await writeTinyClip(path.join(root, 'tiny-clip'));
    const ws = path.join(root, 'ws');
    expect((await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-{000..001}.tar'))).code).toBe(0);
    const command = `${process.execPath} --import tsx ${await cliEntry()}`;
    const r = await curate(
      '-w',
      ws,
      'cluster',
      'submit',
      '--engine',
      'slurm',
      '--tasks',
      '2',
      '--dry-run',
      '--curate-command',
      command,
      '--',
      'embed',
      '--encoder',
      model,
    );
    expect(r.code, stderr()).toBe(0);
    expect(r.out).toContain('nothing submitted');
    const dir = await planDir(ws);
    const task = await readFile(path.join(dir, 'task.sbatch'), 'utf8');
    expect(task).toContain(`embed --encoder ${model} --shard "\${SLURM_ARRAY_TASK_ID}/2"`);
    const finish = await readFile(path.join(dir, 'finish.sbatch'), 'utf8');
    expect(finish).not.toContain('--shard');

    // What Slurm does: each array task runs the script with its index; then the finishing job.
    const env = (i?: number) => ({
      ...process.env,
      ...(i === undefined ? {} : { SLURM_ARRAY_TASK_ID: String(i) }),
    });
    const outputs = await Promise.all(
      [0, 1].map((i) => run('bash', [path.join(dir, 'task.sbatch')], { cwd: ROOT, env: env(i) })),
    );
    expect(outputs[0]!.stdout).toContain('task 0/2 done');
    expect(outputs[1]!.stdout).toContain('task 1/2 done');
    const done = await run('bash', [path.join(dir, 'finish.sbatch')], { cwd: ROOT, env: env() });
    expect(done.stdout).toContain('registered 2 shards written by array-job tasks');
  });

  it('k8s: an Indexed Job with the task index, a finishing Job and submit.sh that orders them', async () => {
    const ws = path.join(await tempDir(), 'ws');
    expect((await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-000.tar'))).code).toBe(0);
    const r = await curate(
      '-w',
      ws,
      'cluster',
      'submit',
      '--engine',
      'k8s',
      '--tasks',
      '4',
      '--gpus-per-task',
      '1',
      '--image',
      'registry.example/clipcurate:1',
      '--volume-claim',
      'curate-shared',
      '--',
      'select',
      '--method',
      'facility-location',
      '--budget',
      '1%',
    );
    expect(r.code, stderr()).toBe(0);
    const dir = await planDir(ws);
    const tasks = await readFile(path.join(dir, 'tasks-job.yaml'), 'utf8');
    expect(tasks).toContain('completionMode: Indexed');
    expect(tasks).toContain('completions: 4');
    expect(tasks).toContain('nvidia.com/gpu: 1');
    expect(tasks).toContain('claimName: "curate-shared"');
    expect(tasks).toContain(
      `curate -w ${path.resolve(ws)} select --method facility-location --budget 1% --partition \\"\${JOB_COMPLETION_INDEX}/4\\"`,
    );
    const finish = await readFile(path.join(dir, 'finish-job.yaml'), 'utf8');
    expect(finish).toContain('select --method facility-location --budget 1% --partitions 4');
    expect(finish).not.toContain('nvidia.com/gpu');
    const submit = (await readFile(path.join(dir, 'submit.sh'), 'utf8')).split('\n');
    const applyTasks = submit.findIndex((l) => l.includes('apply') && l.includes('tasks-job.yaml'));
    const wait = submit.findIndex((l) => l.includes('kubectl wait') && l.includes('-tasks'));
    const applyFinish = submit.findIndex((l) => l.includes('apply') && l.includes('finish-job.yaml'));
    expect(applyTasks).toBeGreaterThanOrEqual(0);
    expect(wait).toBeGreaterThan(applyTasks);
    expect(applyFinish).toBeGreaterThan(wait);
  });

  it('refuses a step it cannot shard, a flag it sets itself, and k8s without an image', async () => {
    const ws = path.join(await tempDir(), 'ws');
    expect((await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-000.tar'))).code).toBe(0);
    const submit = (...words: string[]) =>
      curate('-w', ws, 'cluster', 'submit', '--engine', 'slurm', '--tasks', '2', '--dry-run', '--', ...words);
    expect((await submit('index')).code).toBe(2);
    expect(stderr()).toContain("cluster submit runs `embed …` or `select …` after --, not 'index'");
    expect((await submit('embed', '--shard', '0/2')).code).toBe(2);
    expect(stderr()).toContain("cluster submit sets --shard itself: leave it out of the step's arguments");
    expect((await submit('select', '--budget', '10')).code).toBe(2);
    expect(stderr()).toContain('cluster submit -- select needs --method');
    expect((await submit('select', '--method', 'no-such-method', '--budget', '10')).code).toBe(2);
    expect(stderr()).toContain("unknown method 'no-such-method'");
    const k8s = await curate('-w', ws, 'cluster', 'submit', '--engine', 'k8s', '--tasks', '2', '--', 'embed');
    expect(k8s.code).toBe(2);
    expect(stderr()).toContain('--engine k8s needs --image and --volume-claim');
    // Nothing was written for the refused requests.
    expect(await readdir(path.join(ws, 'cluster')).catch(() => [])).toEqual([]);
  });
});
