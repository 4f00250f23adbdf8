/**
 * Data-diet scores (Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021) on the
 * softmax proxy, averaged over `runs` independently seeded proxies:
 *   EL2N_i  = E_θ ‖p_θ(x_i) − e_{y_i}‖₂, after a few epochs of training (the paper: early in training);
 *   GraNd_i = E_θ ‖∇_θ ℓ_i‖₂ = E_θ ‖p_θ(x_i) − e_{y_i}‖₂ · √(‖x_i‖² + 1) for the linear head's weights and
 *   bias. The paper scores GraNd at initialisation; for a linear head at initialisation p ≈ uniform and
 *   the score is the same for every unit x, so the default here is after one epoch.
 * Keeps the B highest-scoring (hardest) examples after skipping the top `skipHardest` fraction: at small
 * budgets the paper keeps a window offset from the hardest end, and for image–caption data the very
 * hardest are largely mismatched pairs.
 */
import { z } from 'zod';
import { SelectionInputError, type Selector } from '../contract.js';
import { topKInnerProduct, type Matrix } from '../kernels/similarity.js';
import { describeClasses, type LatentClasses } from '../latentClasses.js';
import { proxyFeatures, proxyParams, proxyProblem, proxySignals, warmProxy } from '../proxy/problem.js';
import type { SoftmaxHead } from '../proxy/softmaxHead.js';

function difficultyParams(epochs: number) {
  return z.object({
    ...proxyParams(10),
    runs: z.number().int().min(1).default(4).describe('independently seeded proxies averaged'),
    epochs: z.number().int().min(0).default(epochs).describe('proxy training epochs before scoring'),
    skipHardest: z
      .number()
      .min(0)
      .lt(1)
      .default(0)
      .describe('fraction of the pool, from the hardest end, left out before keeping the top B'),
  });
}

type DifficultyParams = z.infer<ReturnType<typeof difficultyParams>>;

/** EL2N / GraNd of every row under trained heads, averaged (the score of the module comment). */
async function difficultyScores(
  score: 'el2n' | 'grand',
  heads: readonly SoftmaxHead[],
  features: Matrix,
  assignment: Int32Array,
): Promise<Float32Array> {
  const n = features.rows;
  const scores = new Float32Array(n);
  for (const head of heads) {
    const k = head.classes;
    const { residuals } = await proxySignals(head, features, assignment);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += residuals[i * k + c]! ** 2;
      let x2 = 0;
      if (score === 'grand')
        for (let j = 0; j < features.cols; j++) x2 += features.data[i * features.cols + j]! ** 2;
      scores[i]! += Math.sqrt(s * (score === 'grand' ? x2 + 1 : 1)) / heads.length;
    }
  }
  return scores;
}

/** `runs` seeded heads trained on `features` (a pool, or the partitioned form's pool sample). */
async function trainHeads(
  features: Matrix,
  assignment: Int32Array,
  k: number,
  p: DifficultyParams,
  seed: number,
  signal?: AbortSignal,
): Promise<SoftmaxHead[]> {
  const sgd = { lr: p.lr, momentum: p.momentum, weightDecay: p.weightDecay, batchSize: p.batchSize };
  const heads: SoftmaxHead[] = [];
  for (let run = 0; run < p.runs; run++) {
    signal?.throwIfAborted();
    heads.push((await warmProxy(features, assignment, k, p.epochs, sgd, seed + 7919 * run, signal)).head);
  }
  return heads;
}

/** Pool items the partitioned form's proxies are trained on (a seeded sample, the same in every task). */
const PROXY_SAMPLE = 50_000;

/** What the partitioned form's tasks share: the proxies and how a partition's items get their classes. */
interface SharedProxy {
  source: LatentClasses['source'];
  /** k-means classes: the classes' mean features (unit), to assign a partition's items to the nearest. */
  centroids?: number[];
  heads: Array<{ classes: number; dim: number; weight: number[]; bias: number[] }>;
}

function difficultySelector(score: 'el2n' | 'grand', defaultEpochs: number, description: string) {
  const selector: Selector<DifficultyParams> = {
    name: score,
    description,
    params: difficultyParams(defaultEpochs),
    needs: ['image'],
    async select(input, budget, p, ctx) {
      const { features, classes } = await proxyProblem(input, p, ctx.seed, score);
      const heads = await trainHeads(features, classes.assignment, classes.k, p, ctx.seed, ctx.signal);
      const scores = await difficultyScores(score, heads, features, classes.assignment);
      const n = input.n;
      const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]! || a - b);
      const skip = Math.min(Math.floor(p.skipHardest * n), n - budget);
      return {
        indices: Int32Array.from(order.slice(skip, skip + budget)),
        scores,
        trace: [
          { stage: 'classes', message: describeClasses(classes) },
          {
            stage: 'scores',
            message: `${score} over ${p.runs} proxies after ${p.epochs} epochs; kept ranks ${skip + 1}–${skip + budget} (hardest first)`,
          },
        ],
      };
    },
    partitioned: {
      exact: true,
      merge:
        `${score} of every pair under proxies trained once on a seeded sample of ${PROXY_SAMPLE.toLocaleString('en-US')} ` +
        'pairs of the pool (the same proxies in every partition), then the B highest scores: exact for those ' +
        'proxies (one process trains them on the whole pool instead)',
      prepare: {
        sampleSize: PROXY_SAMPLE,
        async run(sample, p, seed, signal): Promise<SharedProxy> {
          if (p.skipHardest > 0)
            throw new SelectionInputError(
              `${score} --partitions keeps the B hardest: skipHardest needs the whole pool's ranks (run it in one process)`,
            );
          const { features, classes } = await proxyProblem(sample, p, seed, score);
          const heads = await trainHeads(features, classes.assignment, classes.k, p, seed, signal);
          const classSpace = p.features === 'caption' ? proxyFeatures(sample, 'image', score) : features;
          return {
            source: classes.source,
            ...(classes.source === 'kmeans'
              ? { centroids: Array.from(classMeans(classSpace, classes.assignment, classes.k)) }
              : {}),
            heads: heads.map((h) => ({
              classes: h.classes,
              dim: h.dim,
              weight: Array.from(h.weight),
              bias: Array.from(h.bias),
            })),
          };
        },
      },
      async local(input, want, p, _seed, _signal, shared) {
        const proxy = shared as SharedProxy;
        const features = proxyFeatures(input, p.features, score);
        const classSpace = p.features === 'caption' ? proxyFeatures(input, 'image', score) : features;
        const k = proxy.heads[0]!.classes;
        let assignment: Int32Array;
        if (proxy.source === 'labels') {
          if (!input.labels)
            throw new SelectionInputError(`${score}: classes=labels but the pool has no labels`);
          assignment = input.labels;
        } else {
          const centres =
            proxy.source === 'zero-shot'
              ? input.classPrompts!.embeddings
              : Float32Array.from(proxy.centroids!);
          assignment = (
            await topKInnerProduct(classSpace, { rows: k, cols: classSpace.cols, data: centres }, 1)
          ).indices;
        }
        const heads = proxy.heads.map((h) => ({
          classes: h.classes,
          dim: h.dim,
          weight: Float32Array.from(h.weight),
          bias: Float32Array.from(h.bias),
        }));
        const scores = await difficultyScores(score, heads, features, assignment);
        const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]! || a - b);
        const indices = Int32Array.from(order.slice(0, Math.min(want, input.n)));
        return { indices, keys: Float64Array.from(indices, (i) => scores[i]!) };
      },
    },
  };
  return selector;
}

/** Unit mean of each class's rows (k × d): the nearest-centroid rule for items outside the sample. */
function classMeans(x: Matrix, assignment: Int32Array, k: number): Float32Array {
  const sums = new Float64Array(k * x.cols);
  for (let i = 0; i < x.rows; i++)
    for (let j = 0; j < x.cols; j++) sums[assignment[i]! * x.cols + j]! += x.data[i * x.cols + j]!;
  const out = new Float32Array(k * x.cols);
  for (let c = 0; c < k; c++) {
    const row = sums.subarray(c * x.cols, (c + 1) * x.cols);
    const norm = Math.hypot(...row) || 1;
    row.forEach((v, j) => (out[c * x.cols + j] = v / norm));
  }
  return out;
}

export const el2n = difficultySelector(
  'el2n',
  2,
  'EL2N (Data Diet): keep the examples with the largest proxy error norm ‖p − e_y‖, averaged over seeds',
);

export const grand = difficultySelector(
  'grand',
  1,
  'GraNd (Data Diet): keep the examples with the largest expected proxy gradient norm',
);
