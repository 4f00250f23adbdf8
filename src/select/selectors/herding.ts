/**
 * Herding (Welling 2009; iCaRL's exemplar rule, baselines.md B6): p_t = argmin_{i∉S} ‖t·μ − Σ_{j∈S} x_j − x_i‖,
 * = argmax_i 2⟨t·μ − Σ_{j∈S} x_j, x_i⟩ − ‖x_i‖². Work is done in the top principal components (baselines.md
 * §5). Per class when labels are given. (DeepCore takes the argmax of the distance, the opposite rule;
 * numbers are not comparable with it.)
 *
 * The target w_t = t·μ − Σ_{j∈S} x_j moves with every pick, so there is no lazy bound that prunes in 64
 * dimensions (a Cauchy–Schwarz bound on the change of a score is as large as the spread of the scores);
 * every step scores all items. Each step is one pass on the kernel instead of two in JavaScript: X·w_t
 * plus a bias (−‖x_i‖²/2, −∞ once taken) and a TopK of HERD_CANDIDATES, all in one graph. The candidates are
 * then re-scored in float64 with the plain loop's formula, 2(t·a_i − c_i) − ‖x_i‖² (a_i = ⟨x_i, μ⟩,
 * c_i = ⟨x_i, Σ_S x_j⟩), and the best one (lowest index on ties) is the pick, so picks are the plain loop's.
 * Where float32 cannot separate the candidates (their kernel scores within FLOAT32_MARGIN of each other),
 * that step scores every item in float64 instead.
 */
import { z } from 'zod';
import { GraphBuilder } from '../../embed/backends/onnxGraph.js';
import { createSession, Tensor, type Session } from '../../embed/backends/ort.js';
import { abortCheckpoint, SelectionInputError, type Selector } from '../contract.js';
import { gather } from '../kernels/similarity.js';
import { allocateBudget, groupByLabel } from '../stratify.js';
import { embeddingParam, pcaDimsParam, reducedVectorsOf } from './vectors.js';

const params = z.object({
  embedding: embeddingParam,
  perClass: z.boolean().default(false).describe('herd each class to its own mean (needs labels)'),
  dims: pcaDimsParam,
});

const HERD_CANDIDATES = 8;
/** Kernel scores closer than this (relative to the score scale) are re-checked over all items. */
const FLOAT32_MARGIN = 1e-4;

let stepSession: Promise<Session> | undefined;

/** x [n,d], w [d,1], bias [n,1], k [1] → values, indices [k,1] of the k largest x·w + bias. */
function herdStepGraph(): Promise<Session> {
  stepSession ??= (async () => {
    const g = new GraphBuilder('herd_step');
    const x = g.input('x', 'float32', ['n', 'd']);
    const w = g.input('w', 'float32', ['d', 1]);
    const bias = g.input('bias', 'float32', ['n', 1]);
    const k = g.input('k', 'int64', [1]);
    const score = g.op('Add', [g.op('MatMul', [x, w]), bias]);
    g.node('TopK', [score, k], { axis: 0, largest: 1, sorted: 1 }, ['values', 'indices']);
    g.output('values', 'float32', ['k', 1]);
    g.output('indices', 'int64', ['k', 1]);
    return (await createSession(g.toBytes())).session;
  })();
  return stepSession;
}

/** Herd `budget` rows of the row-major n × d matrix `x` (all of them candidates); returns row numbers in pick order. */
export async function herdRows(
  x: Float32Array,
  d: number,
  budget: number,
  signal?: AbortSignal,
): Promise<number[]> {
  const n = x.length / d;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mean[k]! += x[i * d + k]! / n;
  const a = new Float64Array(n);
  const sq = new Float64Array(n);
  const bias = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) {
      a[i]! += x[i * d + k]! * mean[k]!;
      sq[i]! += x[i * d + k]! ** 2;
    }
    bias[i] = -sq[i]! / 2;
  }
  const sum = new Float64Array(d); // Σ_{j∈S} x_j
  const taken = new Uint8Array(n);
  /** The plain loop's score: 2(t·a_i − c_i) − ‖x_i‖², c_i = ⟨x_i, Σ_S x_j⟩. */
  const exact = (i: number, step: number) => {
    let c = 0;
    for (let k = 0; k < d; k++) c += x[i * d + k]! * sum[k]!;
    return 2 * (step * a[i]! - c) - sq[i]!;
  };
  const session = await herdStepGraph();
  const xTensor = new Tensor('float32', x, [n, d]);
  const kk = Math.min(HERD_CANDIDATES, n);
  const kTensor = new Tensor('int64', BigInt64Array.of(BigInt(kk)), [1]);
  const w = new Float32Array(d);
  const picks: number[] = [];
  const checkpoint = abortCheckpoint(signal);
  for (let step = 1; step <= Math.min(budget, n); step++) {
    await checkpoint();
    for (let k = 0; k < d; k++) w[k] = step * mean[k]! - sum[k]!;
    const out = await session.run({
      x: xTensor,
      w: new Tensor('float32', w, [d, 1]),
      bias: new Tensor('float32', bias, [n, 1]),
      k: kTensor,
    });
    const values = out.values!.data as Float32Array;
    const indices = out.indices!.data as BigInt64Array;
    let best = -1;
    let bestScore = -Infinity;
    const consider = (i: number) => {
      if (taken[i]) return;
      const score = exact(i, step);
      if (score > bestScore || (score === bestScore && i < best)) [best, bestScore] = [i, score];
    };
    const live = Math.min(kk, n - step + 1);
    const scale = Math.max(1, Math.abs(values[0]!));
    if (live < kk || values[live - 1]! >= values[0]! - FLOAT32_MARGIN * scale || !Number.isFinite(values[0]!))
      for (let i = 0; i < n; i++) consider(i);
    else for (let j = 0; j < live; j++) consider(Number(indices[j]!));
    // Only a NaN score loses every comparison (runSelector refuses non-finite embeddings first).
    if (best < 0 || !Number.isFinite(bestScore))
      throw new SelectionInputError('herding: scores are not finite (NaN or infinite embeddings?)');
    taken[best] = 1;
    bias[best] = -Infinity;
    for (let k = 0; k < d; k++) sum[k]! += x[best * d + k]!;
    picks.push(best);
  }
  return picks;
}

export const herding: Selector<z.infer<typeof params>> = {
  name: 'herding',
  description: 'herding: the subset whose mean tracks the pool mean most closely',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const x = await reducedVectorsOf(input, p.embedding, p.dims);
    if (p.perClass && !input.labels) throw new Error('herding per class needs labels');
    const groups = p.perClass ? groupByLabel(input.labels!) : [Array.from({ length: x.rows }, (_, i) => i)];
    const quotas = allocateBudget(
      groups.map((g) => g.length),
      budget,
    );
    const indices: number[] = [];
    for (const [c, g] of groups.entries()) {
      // The whole pool is herded in place; a class is gathered into its own matrix first.
      const rows = groups.length === 1 ? x.data : gather(x, g).data;
      for (const r of await herdRows(rows, x.cols, quotas[c]!, ctx.signal)) indices.push(g[r]!);
    }
    return {
      indices: Int32Array.from(indices),
      trace: [{ stage: 'herd', message: `${groups.length} group(s)` }],
    };
  },
};
