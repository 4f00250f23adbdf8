/**
 * The Slurm engine of `curate cluster submit`: the plan as a job array (task I = SLURM_ARRAY_TASK_ID)
 * and a finishing job that runs once every task has succeeded (`--dependency=afterok`, and
 * `--kill-on-invalid-dep=yes` so that a failed task cancels it instead of leaving it pending forever).
 * The scripts, the tasks' output files and `submitted.json` stay in the plan's folder.
 */
import { execFile } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ClusterInputError, finishCommand, shellQuote, taskCommand, type ClusterPlan } from './plan.js';
import { writeSubmitted, type Submitted } from './records.js';

const run = promisify(execFile);

export interface SlurmOptions {
  gpusPerTask?: number;
  /** Slurm partition (queue) for every job. */
  partition?: string;
  /** Time limit per job, in Slurm's format (`4:00:00`). */
  time?: string;
}

function script(plan: ClusterPlan, command: string, what: string): string {
  return [
    '#!/bin/bash',
    `# ${what}: written by \`curate cluster submit\` (${plan.step}, ${plan.tasks} tasks)`,
    'set -eo pipefail',
    `cd ${shellQuote(plan.cwd)}`,
    `exec ${command}`,
    '',
  ].join('\n');
}

/** Write task.sbatch and finish.sbatch; returns their paths. */
export async function writeSlurmScripts(plan: ClusterPlan): Promise<{ task: string; finish: string }> {
  const task = path.join(plan.dir, 'task.sbatch');
  const finish = path.join(plan.dir, 'finish.sbatch');
  await writeFile(task, script(plan, taskCommand(plan, '${SLURM_ARRAY_TASK_ID}'), 'one array task'));
  await writeFile(finish, script(plan, finishCommand(plan), 'the finishing job'));
  await Promise.all([chmod(task, 0o755), chmod(finish, 0o755)]);
  return { task, finish };
}

/** The sbatch options shared by both jobs. */
function common(o: SlurmOptions): string[] {
  return [...(o.partition ? ['--partition', o.partition] : []), ...(o.time ? ['--time', o.time] : [])];
}

async function sbatch(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('sbatch', ['--parsable', ...args], { encoding: 'utf8' });
    return stdout.trim().split(';')[0]!; // "<id>[;<cluster>]"
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new ClusterInputError(
        'sbatch not found: run this on a Slurm login node (or use --dry-run to write the scripts only)',
      );
    throw new ClusterInputError(`sbatch failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

export async function submitSlurm(plan: ClusterPlan, o: SlurmOptions): Promise<Submitted> {
  const scripts = await writeSlurmScripts(plan);
  const array = await sbatch([
    `--array=0-${plan.tasks - 1}`,
    `--job-name=curate-${plan.step}`,
    '--output',
    path.join(plan.dir, 'task-%a.out'),
    ...(o.gpusPerTask ? [`--gpus-per-task=${o.gpusPerTask}`] : []),
    ...common(o),
    scripts.task,
  ]);
  const finish = await sbatch([
    `--dependency=afterok:${array}`,
    '--kill-on-invalid-dep=yes',
    `--job-name=curate-${plan.step}-finish`,
    '--output',
    path.join(plan.dir, 'finish.out'),
    ...common(o),
    scripts.finish,
  ]);
  const submitted: Submitted = {
    engine: 'slurm',
    step: plan.step,
    tasks: plan.tasks,
    jobs: { tasks: array, finish },
    dir: plan.dir,
    submittedAt: new Date().toISOString(),
  };
  await writeSubmitted(submitted);
  return submitted;
}

/** States a job ends in (COMPLETING is not one: the step is still being cleaned up). */
const FINAL = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
]);

/** Each task's (or the job's) state from `scontrol show job`, or undefined once Slurm has forgotten the job. */
export async function slurmStates(id: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await run('scontrol', ['show', 'job', id], { encoding: 'utf8' });
    return [...stdout.matchAll(/JobState=(\w+)/g)].map((m) => m[1]!);
  } catch {
    return undefined; // "Invalid job id": purged MinJobAge after it ended
  }
}

/** "3 COMPLETED", "2 COMPLETED, 1 FAILED", or "no longer known to Slurm". */
export function describeStates(states: string[] | undefined): string {
  if (!states) return 'no longer known to Slurm (ended a while ago: see the output files)';
  const counts = new Map<string, number>();
  for (const s of states) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
}

/**
 * Wait until the finishing job has ended (it is cancelled when a task fails); `onChange` hears every
 * new state line. Resolves true when the finishing job COMPLETED.
 */
export async function waitForSlurm(
  submitted: Submitted,
  onChange: (line: string) => void,
  pollMs = 2000,
): Promise<boolean> {
  let last = '';
  for (;;) {
    const tasks = await slurmStates(submitted.jobs.tasks);
    const finish = await slurmStates(submitted.jobs.finish);
    const line = `tasks: ${describeStates(tasks)}; finishing job: ${describeStates(finish)}`;
    if (line !== last) onChange((last = line));
    if (!finish) return false;
    if (finish.every((s) => FINAL.has(s))) return finish.every((s) => s === 'COMPLETED');
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
