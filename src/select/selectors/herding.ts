/**
 * Herding (Welling 2009; iCaRL's exemplar rule, baselines.md B6): p_t = argmin_{i∉S} ‖t·μ − Σ_{j∈S} x_j − x_i‖,
 * = argmax_i 2⟨t·μ − Σ_{j∈S} x_j, x_i⟩ − ‖x_i‖². Scores are kept incrementally: a_i = ⟨x_i, μ⟩ once,
 * c_i += ⟨x_i, x_p⟩ per pick; work is done in the top principal components (baselines.md §5). Per class when labels are given. (DeepCore takes
 * the argmax of the distance, the opposite rule; numbers are not comparable with it.)
 */
import { z } from 'zod';
import { abortCheckpoint, SelectionInputError, type Selector } from '../contract.js';
import { allocateBudget, groupByLabel } from '../stratify.js';
import { embeddingParam, pcaDimsParam, reducedVectorsOf } from './vectors.js';

const params = z.object({
  embedding: embeddingParam,
  perClass: z.boolean().default(false).describe('herd each class to its own mean (needs labels)'),
  dims: pcaDimsParam,
});

async function herd(
  x: Float32Array,
  d: number,
  members: number[],
  budget: number,
  signal?: AbortSignal,
): Promise<number[]> {
  const m = members.length;
  const mean = new Float64Array(d);
  for (const i of members) for (let k = 0; k < d; k++) mean[k]! += x[i * d + k]! / m;
  const a = new Float64Array(m);
  const c = new Float64Array(m);
  const sq = new Float64Array(m);
  members.forEach((i, t) => {
    for (let k = 0; k < d; k++) {
      a[t]! += x[i * d + k]! * mean[k]!;
      sq[t]! += x[i * d + k]! ** 2;
    }
  });
  const taken = new Uint8Array(m);
  const picks: number[] = [];
  const checkpoint = abortCheckpoint(signal);
  for (let step = 1; step <= Math.min(budget, m); step++) {
    await checkpoint();
    let best = -1;
    let bestScore = -Infinity;
    for (let t = 0; t < m; t++) {
      if (taken[t]) continue;
      const score = 2 * (step * a[t]! - c[t]!) - sq[t]!;
      if (score > bestScore) [best, bestScore] = [t, score];
    }
    // Only a NaN score loses every comparison (runSelector refuses non-finite embeddings first).
    if (best < 0)
      throw new SelectionInputError('herding: scores are not finite (NaN or infinite embeddings?)');
    taken[best] = 1;
    const p = members[best]!;
    picks.push(p);
    members.forEach((i, t) => {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += x[i * d + k]! * x[p * d + k]!;
      c[t]! += dot;
    });
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
    for (const [c, g] of groups.entries())
      for (const i of await herd(x.data, x.cols, g, quotas[c]!, ctx.signal)) indices.push(i);
    return {
      indices: Int32Array.from(indices),
      trace: [{ stage: 'herd', message: `${groups.length} group(s)` }],
    };
  },
};
