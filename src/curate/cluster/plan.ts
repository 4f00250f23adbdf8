/**
 * `curate cluster submit`: one sharded step (embed or a partitioned select) as N array-job tasks plus
 * a finishing run, for any engine. The plan says, engine-neutrally, which command each task runs (the
 * step's own arguments plus `--shard I/N` or `--partition I/N`) and which the finishing run runs
 * (`embed` alone, or `select … --partitions N`); src/curate/cluster/slurm.ts and k8s.ts render it.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { partitionedFormOf } from '../../select/partitioned.js';
import { getSelector, partitionedMethods } from '../../select/registry.js';
import { PACKAGE_ROOT } from '../../embed/env.js';

export type ClusterStep = 'embed' | 'select';

/** A cluster request that cannot be carried out as asked (exit code 2 in the CLI). */
export class ClusterInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterInputError';
  }
}

export interface ClusterPlan {
  step: ClusterStep;
  tasks: number;
  /** Absolute workspace path, as the cluster's nodes see it (a shared filesystem). */
  workspace: string;
  /** The step's own arguments (after `embed` / `select`), without any task flag. */
  args: string[];
  /** How the nodes run curate (`node …/bin/curate.js` of this install unless told otherwise). */
  curate: string;
  /** Where the scripts, outputs and the plan record go: `<workspace>/cluster/<stamp>-<step>/`. */
  dir: string;
  /** The folder `cluster submit` ran in: jobs start there, so relative paths in the arguments still hold. */
  cwd: string;
}

/** Flags a task or the finishing run sets itself: given by the user they would contradict the plan. */
const OWN_FLAGS = ['--shard', '--partition', '--partitions', '-w', '--workspace'];

/** The step and its arguments from what follows `--`, checked before anything is written or submitted. */
export function parseStep(words: readonly string[]): { step: ClusterStep; args: string[] } {
  const [step, ...args] = words;
  if (step !== 'embed' && step !== 'select')
    throw new ClusterInputError(
      `cluster submit runs \`embed …\` or \`select …\` after --, not ${step === undefined ? 'nothing' : `'${step}'`}`,
    );
  const own = args.find((a) => OWN_FLAGS.includes(a.split('=')[0]!));
  if (own)
    throw new ClusterInputError(`cluster submit sets ${own} itself: leave it out of the step's arguments`);
  if (step === 'select') {
    const at = args.findIndex((a) => a === '--method');
    const method = at >= 0 ? args[at + 1] : args.find((a) => a.startsWith('--method='))?.slice(9);
    if (!method)
      throw new ClusterInputError(
        'cluster submit -- select needs --method (a method with a partitioned form)',
      );
    const selector = partitionedFormOf(getSelector(method), partitionedMethods());
    if (selector.kind !== 'filter' && !args.some((a) => a === '--budget' || a.startsWith('--budget=')))
      throw new ClusterInputError('cluster submit -- select needs --budget');
  }
  return { step, args };
}

/** The default way nodes run curate: this Node binary and this install's bin/curate.js. */
export function defaultCurateCommand(): string {
  return `${shellQuote(process.execPath)} ${shellQuote(path.join(PACKAGE_ROOT, 'bin', 'curate.js'))}`;
}

export async function makePlan(o: {
  workspace: string;
  tasks: number;
  words: readonly string[];
  curate?: string;
  now?: Date;
}): Promise<ClusterPlan> {
  const { step, args } = parseStep(o.words);
  const workspace = path.resolve(o.workspace);
  const stamp = (o.now ?? new Date()).toISOString().replace(/[:.]/g, '-');
  const dir = path.join(workspace, 'cluster', `${stamp}-${step}`);
  await mkdir(dir, { recursive: true });
  return {
    step,
    tasks: o.tasks,
    workspace,
    args,
    curate: o.curate ?? defaultCurateCommand(),
    dir,
    cwd: process.cwd(),
  };
}

/** The command line of task `index` (a shell expression such as "$SLURM_ARRAY_TASK_ID"). */
export function taskCommand(plan: ClusterPlan, index: string): string {
  const flag = plan.step === 'embed' ? '--shard' : '--partition';
  return `${base(plan)} ${flag} "${index}/${plan.tasks}"`;
}

/** The finishing run's command line: registers (embed) or merges (select) what the tasks wrote. */
export function finishCommand(plan: ClusterPlan): string {
  return plan.step === 'embed' ? base(plan) : `${base(plan)} --partitions ${plan.tasks}`;
}

function base(plan: ClusterPlan): string {
  return [plan.curate, '-w', shellQuote(plan.workspace), plan.step, ...plan.args.map(shellQuote)].join(' ');
}

/** A word for /bin/sh: left bare when it is plainly safe, single-quoted otherwise. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
