/** Helpers for the tests that drive the real single-node Slurm cluster (`npm run test:cluster`). */
import { execFileSync } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { ROOT } from './cli.js';

/** Run a Slurm command (sbatch, scontrol, scancel, sinfo) and return its trimmed stdout. */
export const slurm = (command: string, ...args: string[]) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** Every JobState= of `scontrol show job ID` (one per array task). */
export function jobStates(id: string): string[] {
  return [...slurm('scontrol', 'show', 'job', id).matchAll(/JobState=(\w+)/g)].map((m) => m[1]!);
}

export async function waitFor(what: string, done: () => boolean, seconds = 300): Promise<void> {
  const until = Date.now() + seconds * 1000;
  while (!done()) {
    if (Date.now() > until) throw new Error(`Slurm: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Whether every task of the job has reached a final state (COMPLETING is not one: the step is still being cleaned up). */
export const finished = (id: string) =>
  jobStates(id).every(
    (s) => !['PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED', 'REQUEUED'].includes(s),
  );

export interface CancelledArray {
  /** The job script (re-submit a task with `sbatch --array=I job`). */
  job: string;
  /** Path of a file beside the job's outputs. */
  out: (name: string) => string;
  /** Lets task 1 run when it is submitted again. */
  release: () => Promise<void>;
}

/**
 * A 3-task array whose tasks run `command "$SLURM_ARRAY_TASK_ID/3"` from the repository root; task 1
 * waits (as a long task would) until released and is `scancel`led in that wait once tasks 0 and 2
 * have COMPLETED. The caller checks what the finished tasks left, then re-submits task 1.
 */
export async function arrayWithTask1Cancelled(root: string, command: string): Promise<CancelledArray> {
  const released = path.join(root, 'release-task-1');
  const job = path.join(root, 'task.sbatch');
  await writeFile(
    job,
    [
      '#!/bin/bash',
      `cd ${JSON.stringify(ROOT)}`,
      `if [ "$SLURM_ARRAY_TASK_ID" = 1 ] && [ ! -e ${JSON.stringify(released)} ]; then sleep 600; fi`,
      `exec ${command} "$SLURM_ARRAY_TASK_ID/3"`,
      '',
    ].join('\n'),
  );
  await chmod(job, 0o755);
  const out = (name: string) => path.join(root, name);
  const array = slurm('sbatch', '--parsable', '--array=0-2', '-o', out('task-%A-%a.out'), job);
  await waitFor('tasks 0 and 2', () => ['_0', '_2'].every((t) => finished(array + t)));
  expect(jobStates(`${array}_0`)).toEqual(['COMPLETED']);
  expect(jobStates(`${array}_2`)).toEqual(['COMPLETED']);
  expect(jobStates(`${array}_1`)).toEqual(['RUNNING']);
  slurm('scancel', `${array}_1`);
  await waitFor('the cancelled task', () => finished(`${array}_1`));
  expect(jobStates(`${array}_1`)).toEqual(['CANCELLED']);
  return { job, out, release: () => writeFile(released, '') };
}
