/**
 * Facility location on embeddings (baselines.md B7): F(S) = Σ_i max_{j∈S} s_ij — the subset that best
 * represents the pool. Dense s = cosine − min; sparse s = max(0, cosine) on a kNN graph. Weights are
 * cluster sizes (C7).
 */
import { z } from 'zod';
import type { Selector } from '../contract.js';
import { facilityParams, facilitySelect } from './facility.js';
import { embeddingParam, vectorsOf } from './vectors.js';

const params = z.object({ embedding: embeddingParam, ...facilityParams });

export const facilityLocation: Selector<z.infer<typeof params>> = {
  name: 'facility-location',
  description: 'most representative subset: greedy facility location on embeddings, weights = cluster sizes',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const x = vectorsOf(input, p.embedding);
    const r = await facilitySelect(x, budget, {
      ...p,
      seed: ctx.seed,
      similarity: 'cosine',
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    return {
      indices: r.picks,
      gains: r.gains,
      weights: r.weights,
      trace: [
        { stage: 'greedy', message: `${r.mode} facility location, ${p.optimizer} greedy, ${budget} picks` },
      ],
    };
  },
};
