/**
 * k-center greedy (Sener & Savarese 2018, baselines.md B5): start from one seeded random point, then
 * repeatedly add u* = argmax_i min_{j∈S} ‖x_i − x_j‖ and update the running minimum. A 2-approximation of
 * the minimax covering radius. On unit vectors ‖x_i − x_j‖² = 2 − 2⟨x_i, x_j⟩, so the running minimum
 * distance is kept as the running maximum cosine.
 */
import { z } from 'zod';
import { seededRandom } from '../../embed/backends/random.js';
import type { Selector } from '../contract.js';
import { embeddingParam, vectorsOf } from './vectors.js';

const params = z.object({ embedding: embeddingParam });

export const kCenter: Selector<z.infer<typeof params>> = {
  name: 'k-center',
  description: 'k-center greedy: cover the embedding space, farthest point first',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const x = vectorsOf(input, p.embedding);
    const { rows: n, cols: d } = x;
    const maxCos = new Float32Array(n).fill(-Infinity);
    const picked = new Uint8Array(n);
    const indices = new Int32Array(budget);
    let next = Math.floor(seededRandom(ctx.seed)() * n);
    for (let t = 0; t < budget; t++) {
      ctx.signal?.throwIfAborted();
      indices[t] = next;
      picked[next] = 1;
      // m_i ← min(m_i, ‖x_i − x_u*‖): one pass of dot products with the new centre.
      const c = next * d;
      let best = -1;
      let bestCos = Infinity;
      for (let i = 0; i < n; i++) {
        let dot = 0;
        for (let k = 0, r = i * d; k < d; k++) dot += x.data[r + k]! * x.data[c + k]!;
        if (dot > maxCos[i]!) maxCos[i] = dot;
        if (!picked[i] && maxCos[i]! < bestCos) [best, bestCos] = [i, maxCos[i]!];
      }
      next = best;
      if (t % 256 === 0) ctx.progress?.(t + 1, budget);
    }
    // Score: distance of each item to its nearest centre (the covering radius is the maximum).
    const scores = Float32Array.from(maxCos, (cos) => Math.sqrt(Math.max(0, 2 - 2 * cos)));
    const radius = scores.reduce((a, b) => Math.max(a, b), 0);
    return { indices, scores, trace: [{ stage: 'cover', message: `covering radius ${radius.toFixed(4)}` }] };
  },
};
