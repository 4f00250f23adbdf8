/**
 * The Kubernetes engine of `curate cluster submit`: the plan as an Indexed Job (task I =
 * JOB_COMPLETION_INDEX, each index retried on its own with backoffLimitPerIndex) and a finishing Job,
 * plus `submit.sh`, which applies the first, waits for it to complete and applies the second
 * (Kubernetes has no dependencies between Jobs). Nothing is applied from here: the files are for the
 * cluster's users, who run `sh submit.sh` where kubectl reaches their cluster.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { finishCommand, shellQuote, taskCommand, type ClusterPlan } from './plan.js';

export interface K8sOptions {
  /** Container image with clipcurate installed (the nodes run `curate` from it). */
  image: string;
  /** PersistentVolumeClaim holding the workspace, mounted at the workspace's path. */
  volumeClaim: string;
  gpusPerTask?: number;
}

/** A DNS-1123 name from the plan folder (lowercase, '-', at most 63 characters). */
function jobName(plan: ClusterPlan, suffix: string): string {
  const stamp = path
    .basename(plan.dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-');
  return `curate-${stamp}`.slice(0, 63 - suffix.length).replace(/-+$/, '') + suffix;
}

function podSpec(plan: ClusterPlan, o: K8sOptions, command: string, gpus: number | undefined): string[] {
  return [
    '  template:',
    '    spec:',
    '      restartPolicy: Never',
    '      containers:',
    `        - name: curate-${plan.step}`,
    `          image: ${JSON.stringify(o.image)}`,
    `          command: ["sh", "-c", ${JSON.stringify(command)}]`,
    ...(gpus ? ['          resources:', '            limits:', `              nvidia.com/gpu: ${gpus}`] : []),
    '          volumeMounts:',
    `            - { name: workspace, mountPath: ${JSON.stringify(plan.workspace)} }`,
    '      volumes:',
    `        - { name: workspace, persistentVolumeClaim: { claimName: ${JSON.stringify(o.volumeClaim)} } }`,
  ];
}

export interface K8sFiles {
  tasks: string;
  finish: string;
  submit: string;
}

export async function writeK8s(plan: ClusterPlan, o: K8sOptions): Promise<K8sFiles> {
  const taskName = jobName(plan, '-tasks');
  const finishName = jobName(plan, '-finish');
  const tasks = [
    'apiVersion: batch/v1',
    'kind: Job',
    `metadata: { name: ${taskName} }`,
    'spec:',
    '  completionMode: Indexed',
    `  completions: ${plan.tasks}`,
    `  parallelism: ${plan.tasks}`,
    '  backoffLimitPerIndex: 3 # a failed pod is retried for its own index only',
    `  maxFailedIndexes: 0`,
    ...podSpec(plan, o, taskCommand(plan, '${JOB_COMPLETION_INDEX}'), o.gpusPerTask),
    '',
  ].join('\n');
  const finish = [
    'apiVersion: batch/v1',
    'kind: Job',
    `metadata: { name: ${finishName} }`,
    'spec:',
    '  backoffLimit: 3',
    ...podSpec(plan, o, finishCommand(plan), undefined),
    '',
  ].join('\n');
  const files: K8sFiles = {
    tasks: path.join(plan.dir, 'tasks-job.yaml'),
    finish: path.join(plan.dir, 'finish-job.yaml'),
    submit: path.join(plan.dir, 'submit.sh'),
  };
  const submit = [
    '#!/bin/sh',
    `# ${plan.step} on Kubernetes, ${plan.tasks} tasks: written by \`curate cluster submit --engine k8s\``,
    'set -e',
    `kubectl apply -f ${shellQuote(files.tasks)}`,
    `kubectl wait --for=condition=complete --timeout=-1s job/${taskName}`,
    `kubectl apply -f ${shellQuote(files.finish)}`,
    `kubectl wait --for=condition=complete --timeout=-1s job/${finishName}`,
    '',
  ].join('\n');
  await writeFile(files.tasks, tasks);
  await writeFile(files.finish, finish);
  await writeFile(files.submit, submit, { mode: 0o755 });
  return files;
}
