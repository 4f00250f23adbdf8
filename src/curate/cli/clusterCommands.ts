/** `curate cluster submit | status`: a sharded step as an array job on Slurm or Kubernetes (src/curate/cluster/). */
import { Option, type Command } from 'commander';
import {
  describeStates,
  listSubmitted,
  makePlan,
  slurmStates,
  submitSlurm,
  waitForSlurm,
  writeK8s,
  writeSlurmScripts,
} from '../api.js';
import { workspaceOf } from './context.js';
import { integerOption, LIMITS, UsageError } from './options.js';

interface SubmitOptions {
  engine: 'slurm' | 'k8s';
  tasks: number;
  gpusPerTask?: number;
  slurmPartition?: string;
  time?: string;
  image?: string;
  volumeClaim?: string;
  curateCommand?: string;
  dryRun?: boolean;
  wait?: boolean;
}

export function registerClusterCommands(program: Command, out: (s: string) => void): void {
  const cluster = program
    .command('cluster')
    .description(
      'run embed or a partitioned select as an array job on Slurm or Kubernetes (docs/cluster.md)',
    );

  cluster
    .command('submit')
    .description(
      'write and submit N array-job tasks and the finishing run of one step: ' +
        'curate cluster submit --engine slurm --tasks 16 -- embed --encoder /models/clip',
    )
    .addOption(
      new Option('--engine <name>', 'slurm (submitted with sbatch) or k8s (files written)')
        .choices(['slurm', 'k8s'])
        .makeOptionMandatory(),
    )
    .addOption(
      integerOption(
        '--tasks <N>',
        'number of tasks (embed --shard I/N, select --partition I/N)',
        LIMITS.partitions,
      ).makeOptionMandatory(),
    )
    .addOption(integerOption('--gpus-per-task <G>', 'GPUs for each task', { min: 1, max: 64 }))
    .option('--slurm-partition <P>', 'Slurm partition (queue) for the jobs')
    .option('--time <limit>', 'Slurm time limit per job (e.g. 4:00:00)')
    .option('--image <ref>', 'k8s: container image with clipcurate installed (curate on its PATH)')
    .option('--volume-claim <name>', 'k8s: PersistentVolumeClaim holding the workspace (mounted at its path)')
    .option(
      '--curate-command <cmd>',
      'how the nodes run curate (default: this node and this install for Slurm, `curate` in the image for k8s)',
    )
    .option('--dry-run', 'write the scripts and print them; submit nothing')
    .option('--wait', 'Slurm: wait for the jobs and exit with their result')
    .argument('<step...>', 'after --: embed … or select … (the step and its own options)')
    .action(async (words: string[], o: SubmitOptions, cmd: Command) => {
      const workspace = workspaceOf(cmd);
      if (o.engine === 'k8s' && (!o.image || !o.volumeClaim))
        throw new UsageError('--engine k8s needs --image and --volume-claim');
      if (o.engine === 'k8s' && o.wait)
        throw new UsageError('--wait is for Slurm: with k8s, submit.sh waits (kubectl wait)');
      const plan = await makePlan({
        workspace,
        tasks: o.tasks,
        words,
        ...(o.curateCommand ? { curate: o.curateCommand } : o.engine === 'k8s' ? { curate: 'curate' } : {}),
      });
      if (o.engine === 'k8s') {
        const files = await writeK8s(plan, {
          image: o.image!,
          volumeClaim: o.volumeClaim!,
          ...(o.gpusPerTask ? { gpusPerTask: o.gpusPerTask } : {}),
        });
        out(`wrote ${files.tasks}\nwrote ${files.finish}\nwrote ${files.submit}\n`);
        out(
          `submit with: sh ${files.submit}   (applies the Indexed Job, waits for it, applies the finishing Job)\n`,
        );
        return;
      }
      const slurm = {
        ...(o.gpusPerTask ? { gpusPerTask: o.gpusPerTask } : {}),
        ...(o.slurmPartition ? { partition: o.slurmPartition } : {}),
        ...(o.time ? { time: o.time } : {}),
      };
      if (o.dryRun) {
        const scripts = await writeSlurmScripts(plan);
        out(`wrote ${scripts.task} (array task) and ${scripts.finish} (finishing job); nothing submitted\n`);
        return;
      }
      const submitted = await submitSlurm(plan, slurm);
      out(
        `submitted ${plan.step}: array job ${submitted.jobs.tasks} (${plan.tasks} tasks), finishing job ` +
          `${submitted.jobs.finish} (after every task succeeded); outputs in ${plan.dir}\n`,
      );
      if (!o.wait) return;
      const ok = await waitForSlurm(submitted, (line) => out(`${line}\n`));
      if (!ok)
        throw new Error(
          `the jobs did not all complete: see ${plan.dir}/task-*.out and finish.out; submit again to redo ` +
            'what failed (finished tasks find their work done)',
        );
    });

  cluster
    .command('status')
    .description('the array jobs submitted from this workspace, newest first, with their states')
    .action(async (_o: unknown, cmd: Command) => {
      const list = await listSubmitted(workspaceOf(cmd));
      if (list.length === 0) {
        out('nothing submitted from this workspace (curate cluster submit)\n');
        return;
      }
      for (const s of list) {
        out(`${s.submittedAt} ${s.step}, ${s.tasks} tasks (${s.engine}) — ${s.dir}\n`);
        out(`  array ${s.jobs.tasks}: ${describeStates(await slurmStates(s.jobs.tasks))}\n`);
        out(`  finishing ${s.jobs.finish}: ${describeStates(await slurmStates(s.jobs.finish))}\n`);
      }
    });
}
