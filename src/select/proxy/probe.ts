/**
 * The linear-probe evaluator every benchmark (and `curate compare`) uses: a softmax head trained on a
 * (weighted) subset's embeddings by full-batch gradient descent with momentum — deterministic, no
 * minibatch noise between methods — and its accuracy on a held-out split.
 */
import type { Matrix } from '../kernels/similarity.js';
import {
  accuracyFromResiduals,
  headPass,
  initHead,
  trainHead,
  type SoftmaxHead,
  type TrainingData,
} from './softmaxHead.js';

export interface ProbeOptions {
  /** Classes (default: 1 + the largest label seen in train or test). */
  classes?: number;
  steps?: number;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
}

export interface ProbeResult {
  accuracy: number;
  /** Mean held-out cross-entropy. */
  loss: number;
  head: SoftmaxHead;
}

export const PROBE_DEFAULTS = { steps: 300, lr: 2, momentum: 0.9, weightDecay: 1e-4 } as const;

export async function linearProbe(
  train: TrainingData,
  test: { x: Matrix; labels: ArrayLike<number> },
  o: ProbeOptions = {},
): Promise<ProbeResult> {
  const { steps, lr, momentum, weightDecay } = { ...PROBE_DEFAULTS, ...o };
  if (train.x.rows === 0) throw new Error('linear probe: the training subset is empty');
  const classes = o.classes ?? 1 + Math.max(largest(train.labels), largest(test.labels));
  // Zero init: the probe's result must not depend on a seed.
  const head = initHead(classes, train.x.cols, 0, 0);
  await trainHead(head, train, {
    lr,
    momentum,
    weightDecay,
    batchSize: train.x.rows,
    epochs: steps,
    seed: 0,
  });
  const pass = await headPass(head, test.x, test.labels);
  let loss = 0;
  for (const l of pass.losses) loss += l;
  return {
    accuracy: accuracyFromResiduals(pass.residuals, test.labels, classes),
    loss: test.labels.length ? loss / test.labels.length : 0,
    head,
  };
}

function largest(values: ArrayLike<number>): number {
  let m = -1;
  for (let i = 0; i < values.length; i++) m = Math.max(m, values[i]!);
  return m;
}
