/** What `curate cluster submit` submitted, kept beside the scripts for `curate cluster status`. */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import type { ClusterStep } from './plan.js';

export interface Submitted {
  engine: 'slurm';
  step: ClusterStep;
  tasks: number;
  /** Engine job ids: the task array and the finishing job. */
  jobs: { tasks: string; finish: string };
  /** The plan's folder (scripts, outputs). */
  dir: string;
  submittedAt: string;
}

const FILE = 'submitted.json';

export async function writeSubmitted(s: Submitted): Promise<void> {
  await writeFileAtomic(path.join(s.dir, FILE), JSON.stringify(s, null, 1) + '\n');
}

/** Everything submitted from this workspace, newest first. */
export async function listSubmitted(workspace: string): Promise<Submitted[]> {
  const root = path.join(path.resolve(workspace), 'cluster');
  const dirs = (await readdir(root).catch(() => [] as string[])).sort().reverse();
  const out: Submitted[] = [];
  for (const d of dirs) {
    try {
      out.push(JSON.parse(await readFile(path.join(root, d, FILE), 'utf8')) as Submitted);
    } catch {
      // a --dry-run or k8s plan: nothing was submitted from here
    }
  }
  return out;
}
