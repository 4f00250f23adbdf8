/**
 * Herding (Welling 2009; iCaRL's exemplar rule, baselines.md B6): p_t = argmin_{i∉S} ‖t·μ − Σ_{j∈S} x_j − x_i‖,
 * = argmax_i 2⟨t·μ − Σ_{j∈S} x_j, x_i⟩ − ‖x_i‖². Work is done in the top principal components (baselines.md
 * §5). Per class when labels are given. (DeepCore takes the argmax of the distance, the opposite rule;
 * numbers are not comparable with it.)
 *
 * The target w_t = t·μ − Σ_{j∈S} x_j moves with every pick, so there is no lazy bound that prunes in 64
 * dimensions (a Cauchy–Schwarz bound on the change of a score is as large as the spread of the scores);
 * every step scores all items. Each step is one pass on the kernel instead of two in JavaScript: X·w_t
 * plus a bias (−‖x_i‖²/2, −∞ once taken) and a TopK of the best candidates, all in one graph. The candidates
 * are then re-scored in float64 with the plain loop's formula, 2(t·a_i − c_i) − ‖x_i‖² (a_i = ⟨x_i, μ⟩,
 * c_i = ⟨x_i, Σ_S x_j⟩), and the best one (lowest index on ties) is the pick, so picks are the plain loop's:
 * an item outside the candidates scores at most the last candidate's kernel score plus the kernel's
 * rounding bound (floatBound), so when the best re-scored candidate beats that, nothing outside can.
 * Where it does not (a dense top of the score distribution, ties), the step asks the kernel for 8× more
 * candidates, and past 4,096 scores every item in float64.
 */
import { z } from 'zod';
import { twoRoundForm } from '../partitioned.js';
import { GraphBuilder } from '../../compute/onnxGraph.js';
import { createSession, Tensor, type Session } from '../../compute/ort.js';
import { abortCheckpoint, SelectionInputError, type Selector } from '../contract.js';
import { gather } from '../kernels/similarity.js';
import { allocateBudget, groupByLabel } from '../stratify.js';
import { embeddingParam, pcaDimsParam, reducedVectorsOf } from './vectors.js';

const params = z.object({
  embedding: embeddingParam,
  perClass: z.boolean().default(false).describe('herd each class to its own mean (needs labels)'),
  dims: pcaDimsParam,
});

const HERD_CANDIDATES = 64;
/** Beyond this many candidates a step re-scores every item in float64 instead. */
const MAX_CANDIDATES = 4096;
const FLOAT32_EPSILON = 2 ** -23;

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
  let maxNorm = 0;
  let maxBias = 0;
  for (let i = 0; i < n; i++) {
    maxNorm = Math.max(maxNorm, Math.sqrt(sq[i]!));
    maxBias = Math.max(maxBias, sq[i]! / 2);
  }
  const w = new Float32Array(d);
  const picks: number[] = [];
  const checkpoint = abortCheckpoint(signal);
  for (let step = 1; step <= Math.min(budget, n); step++) {
    await checkpoint();
    let wNorm = 0;
    for (let k = 0; k < d; k++) wNorm += (w[k] = step * mean[k]! - sum[k]!) ** 2;
    // |kernel score − exact score / 2| ≤ this: float32 rounding of w, of the bias and of the d-term
    // dot product (each term's error ≤ (d + 2)·ε·|x_ik w_k|, and Σ_k |x_ik w_k| ≤ ‖x_i‖‖w‖).
    const floatBound = (d + 3) * FLOAT32_EPSILON * (maxNorm * Math.sqrt(wNorm) + maxBias);
    let best = -1;
    let bestScore = -Infinity;
    const consider = (i: number) => {
      if (taken[i]) return;
      const score = exact(i, step);
      if (score > bestScore || (score === bestScore && i < best)) [best, bestScore] = [i, score];
    };
    const live = n - step + 1;
    let settled = false;
    for (let want = HERD_CANDIDATES; !settled && want <= MAX_CANDIDATES && want < live; want *= 8) {
      const out = await session.run({
        x: xTensor,
        w: new Tensor('float32', w, [d, 1]),
        bias: new Tensor('float32', bias, [n, 1]),
        k: new Tensor('int64', BigInt64Array.of(BigInt(want)), [1]),
      });
      const values = out.values!.data as Float32Array;
      const indices = out.indices!.data as BigInt64Array;
      [best, bestScore] = [-1, -Infinity];
      for (let j = 0; j < want; j++) consider(Number(indices[j]!));
      // Items outside the candidates score at most values[want − 1] + floatBound (kernel units: exact / 2).
      settled = best >= 0 && bestScore / 2 > values[want - 1]! + floatBound;
    }
    if (!settled) {
      [best, bestScore] = [-1, -Infinity];
      for (let i = 0; i < n; i++) consider(i);
    }
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
  partitioned: twoRoundForm<z.infer<typeof params>>(
    (input, budget, p, ctx) => herding.select(input, budget, p, ctx),
    "herding again on the union of the partitions' picks, towards the union's mean; each pick weighted by the items nearest to it",
  ),
};
