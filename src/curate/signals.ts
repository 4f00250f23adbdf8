/**
 * Export of the proxy's per-example signals (issue: "per-example loss and last-layer gradient export"):
 * a softmax head trained on the embeddings with labels or k-means pseudo-labels, then for every row
 *   losses.npy     n × 1  cross-entropy ℓ_i
 *   gradients.npy  n × K  g_i = p_i − e_{y_i}, the gradient w.r.t. the logits (craig.md C4); the
 *                         last layer's weight gradient is g_i ⊗ x_i and its bias gradient g_i
 *   signals.json   classes, where they came from, the (pseudo-)label of each row, training settings.
 * Rows are in the input's order (the catalog's, for workspace embeddings).
 */
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeNpy } from '../embed/npy.js';
import type { SelectInput } from '../select/contract.js';
import { proxyParams, proxyProblem, proxySignals, warmProxy } from '../select/proxy/problem.js';

export const signalOptions = z.object({
  ...proxyParams(10),
  epochs: z.number().int().min(0).default(2).describe('proxy epochs on the pool before the signals are read'),
  seed: z.number().int().default(0),
});

export interface SignalFiles {
  losses: string;
  gradients: string;
  meta: string;
  classes: number;
  meanLoss: number;
}

export async function writeProxySignals(
  dir: string,
  input: SelectInput,
  rawOptions: z.input<typeof signalOptions> = {},
): Promise<SignalFiles> {
  const o = signalOptions.parse(rawOptions);
  const { features, classes } = await proxyProblem(input, o, o.seed, 'signals');
  const sgd = { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay, batchSize: o.batchSize };
  const { head, steps } = await warmProxy(features, classes.assignment, classes.k, o.epochs, sgd, o.seed);
  const { residuals, losses } = await proxySignals(head, features, classes.assignment);
  await mkdir(dir, { recursive: true });
  const files = {
    losses: path.join(dir, 'losses.npy'),
    gradients: path.join(dir, 'gradients.npy'),
    meta: path.join(dir, 'signals.json'),
  };
  await writeNpy(files.losses, 'float32', losses, 1);
  await writeNpy(files.gradients, 'float32', residuals, classes.k);
  const meanLoss = losses.reduce((a, b) => a + b, 0) / losses.length;
  await writeFile(
    files.meta,
    JSON.stringify(
      {
        rows: input.n,
        classes: classes.k,
        classSource: classes.source,
        labels: Array.from(classes.assignment),
        proxy: { ...o, steps },
        meanLoss,
        gradients: 'p − e_y per row (logit gradient); weight gradient = g ⊗ x, bias gradient = g',
      },
      null,
      1,
    ),
  );
  return { ...files, classes: classes.k, meanLoss };
}
