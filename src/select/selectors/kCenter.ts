/**
 * k-center greedy (Sener & Savarese 2018, baselines.md B5): start from one seeded random point, then
 * repeatedly add u* = argmax_i min_{j∈S} ‖x_i − x_j‖ and update the running minimum. A 2-approximation of
 * the minimax covering radius. Distances are taken after an optional projection onto the top principal
 * components (baselines.md §5: 4–8× less work at d = 512), as ‖x_i‖² + ‖x_c‖² − 2⟨x_i, x_c⟩.
 */
import { z } from 'zod';
import { seededRandom } from '../../embed/backends/random.js';
import type { Selector } from '../contract.js';
import { embeddingParam, pcaDimsParam, reducedVectorsOf } from './vectors.js';

const params = z.object({
  embedding: embeddingParam,
  dims: pcaDimsParam,
});

export const kCenter: Selector<z.infer<typeof params>> = {
  name: 'k-center',
  description: 'k-center greedy: cover the embedding space, farthest point first',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const x = await reducedVectorsOf(input, p.embedding, p.dims);
    const { rows: n, cols: d } = x;
    const norm = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) norm[i]! += x.data[i * d + k]! ** 2;
    const minDist = new Float64Array(n).fill(Infinity); // m_i, squared
    const picked = new Uint8Array(n);
    const indices = new Int32Array(budget);
    let next = Math.floor(seededRandom(ctx.seed)() * n);
    for (let t = 0; t < budget; t++) {
      ctx.signal?.throwIfAborted();
      indices[t] = next;
      picked[next] = 1;
      // m_i ← min(m_i, ‖x_i − x_u*‖²): one pass of dot products with the new centre.
      const c = next * d;
      const cn = norm[next]!;
      let best = -1;
      let bestDist = -Infinity;
      for (let i = 0; i < n; i++) {
        let dot = 0;
        for (let k = 0, r = i * d; k < d; k++) dot += x.data[r + k]! * x.data[c + k]!;
        const dist = norm[i]! + cn - 2 * dot;
        if (dist < minDist[i]!) minDist[i] = dist;
        if (!picked[i] && minDist[i]! > bestDist) [best, bestDist] = [i, minDist[i]!];
      }
      next = best;
      if (t % 256 === 0) ctx.progress?.(t + 1, budget);
    }
    // Score: distance of each item to its nearest centre (the covering radius is the maximum).
    const scores = Float32Array.from(minDist, (m) => Math.sqrt(Math.max(0, m)));
    const radius = scores.reduce((a, b) => Math.max(a, b), 0);
    return { indices, scores, trace: [{ stage: 'cover', message: `covering radius ${radius.toFixed(4)}` }] };
  },
};
