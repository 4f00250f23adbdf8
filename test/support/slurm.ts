/** Helpers for the tests that drive the real single-node Slurm cluster (`npm run test:cluster`). */
import { execFileSync } from 'node:child_process';

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
