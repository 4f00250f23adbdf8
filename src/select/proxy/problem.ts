/**
 * The proxy problem every proxy-based method shares (craig.md §2, pdd.md §2): features (image
 * embeddings, or image + caption), (pseudo-)classes, a softmax head warmed up on the pool, and the
 * per-example signals the methods read from it — losses and last-layer gradients g_i = p_i − e_{y_i}.
 */
import { z } from 'zod';
import { SelectionInputError, type SelectInput } from '../contract.js';
import type { Matrix } from '../kernels/similarity.js';
import { latentClasses, latentClassParams, type LatentClasses } from '../latentClasses.js';
import {
  freshSgdState,
  headPass,
  initHead,
  trainHead,
  type SgdState,
  type SoftmaxHead,
} from './softmaxHead.js';

export const proxyFeatureParam = z
  .enum(['image', 'joint', 'caption'])
  .default('image')
  .describe(
    'proxy features: image embeddings, (x + t)/‖x + t‖ of image and caption, or caption embeddings ' +
      'predicting the image (pseudo-)class (mismatched captions get large losses: docs/methods/common.md#cross-modal-proxy)',
  );

export type ProxyFeatures = z.infer<typeof proxyFeatureParam>;

/** Proxy epochs on the pool before the first selection (craig.md pitfall: an untrained proxy is nearly random). */
export const warmEpochsParam = z
  .number()
  .int()
  .min(0)
  .default(2)
  .describe('proxy epochs on the pool before the first selection');

/** Parameters of the proxy head and its SGD (the dynamic methods' simulated training). */
export const proxyTrainingParams = {
  lr: z.number().positive().default(2).describe('proxy SGD learning rate'),
  momentum: z.number().min(0).max(0.999).default(0.9),
  weightDecay: z.number().min(0).default(1e-4),
  batchSize: z.number().int().min(1).default(512).describe('proxy minibatch size'),
};

/** Classes, features and training of the proxy, for selectors that build one. */
export function proxyParams(defaultClusters: number) {
  return {
    ...latentClassParams,
    clusters: z
      .union([z.literal('auto'), z.number().int().min(2)])
      .default(defaultClusters)
      .describe('k-means pseudo-classes when the pool has no labels'),
    features: proxyFeatureParam,
    ...proxyTrainingParams,
  };
}

export interface ProxyTraining {
  lr: number;
  momentum: number;
  weightDecay: number;
  batchSize: number;
}

/** The proxy's features and (pseudo-)classes. */
export async function proxyProblem(
  input: SelectInput,
  p: {
    features: ProxyFeatures;
    classes: z.infer<typeof latentClassParams.classes>;
    clusters: number | 'auto';
  },
  seed: number,
  method: string,
): Promise<{ features: Matrix; classes: LatentClasses }> {
  const features = proxyFeatures(input, p.features, method);
  // The cross-modal proxy's classes come from the images; the others' from the features themselves.
  const classSpace = p.features === 'caption' ? proxyFeatures(input, 'image', method) : features;
  const classes = await latentClasses(input, p.classes, p.clusters, classSpace, seed);
  if (classes.k < 2)
    throw new SelectionInputError(`${method} needs at least 2 (pseudo-)classes for its proxy`);
  return { features, classes };
}

/** Image embeddings, caption embeddings, or their normalised sum (pdd.md §2). */
export function proxyFeatures(
  input: { n: number; dim: number; image?: Float32Array; text?: Float32Array },
  which: ProxyFeatures,
  method = 'proxy',
): Matrix {
  const { n, dim } = input;
  if (!input.image) throw new SelectionInputError(`${method} needs image embeddings`);
  if (which === 'image') return { rows: n, cols: dim, data: input.image };
  if (!input.text) throw new SelectionInputError(`${method} features=${which} needs caption embeddings`);
  if (which === 'caption') return { rows: n, cols: dim, data: input.text };
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = input.image[i * dim + j]! + input.text[i * dim + j]!;
      data[i * dim + j] = v;
      norm += v * v;
    }
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let j = 0; j < dim; j++) data[i * dim + j]! *= inv;
  }
  return { rows: n, cols: dim, data };
}

export interface WarmProxy {
  head: SoftmaxHead;
  state: SgdState;
  /** SGD steps taken so far (the warm-up's). */
  steps: number;
}

/**
 * A seeded head trained `epochs` epochs on the whole pool (craig.md pitfall: the first round on an
 * untrained proxy is nearly random — warm it first). epochs = 0 leaves θ_0.
 */
export async function warmProxy(
  features: Matrix,
  labels: Int32Array,
  classCount: number,
  epochs: number,
  sgd: ProxyTraining,
  seed: number,
  signal?: AbortSignal,
): Promise<WarmProxy> {
  const head = initHead(classCount, features.cols, seed);
  const state = freshSgdState(head);
  const steps =
    epochs > 0
      ? await trainHead(
          head,
          { x: features, labels },
          { ...sgd, epochs, seed, ...(signal ? { signal } : {}) },
          state,
        )
      : 0;
  return { head, state, steps };
}

export interface ProxySignals {
  /** g_i = p_i − e_{y_i}, n × K row-major (craig.md C4). */
  residuals: Float32Array;
  /** Per-example cross-entropy. */
  losses: Float32Array;
  classes: number;
}

/** Per-example loss and logit gradient of every row under `head` (one kernel pass, tiled). */
export async function proxySignals(
  head: SoftmaxHead,
  x: Matrix,
  labels: ArrayLike<number>,
): Promise<ProxySignals> {
  const pass = await headPass(head, x, labels);
  return { residuals: pass.residuals, losses: pass.losses, classes: head.classes };
}
