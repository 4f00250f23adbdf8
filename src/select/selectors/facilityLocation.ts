/**
 * Facility location on embeddings (baselines.md B7): F(S) = Σ_i max_{j∈S} s_ij — the subset that best
 * represents the pool. Dense s = cosine − min; sparse s = max(0, cosine) on a kNN graph. Weights are
 * cluster sizes (C7).
 */
import { z } from 'zod';
import type { GreediForm } from '../partitioned.js';
import { itemRef, type Selector } from '../contract.js';
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
      reasons: facilityReasons(r.picks, r.gains, r.weights, r.owner),
      trace: [
        { stage: 'greedy', message: `${r.mode} facility location, ${p.optimizer} greedy, ${budget} picks` },
      ],
    };
  },
  partitioned: {
    merge:
      'weighted facility location on the union of the partitions’ candidates, each counted as the items it stands for',
    async local(input, want, p, seed, signal) {
      const r = await facilitySelect(vectorsOf(input, p.embedding), want, {
        ...p,
        seed,
        similarity: 'cosine',
        ...(signal ? { signal } : {}),
      });
      return { indices: r.picks, weights: r.weights };
    },
    async combine(input, multiplicity, budget, p, seed, signal) {
      const r = await facilitySelect(vectorsOf(input, p.embedding), budget, {
        ...p,
        seed,
        similarity: 'cosine',
        multiplicity,
        ...(signal ? { signal } : {}),
      });
      return { indices: r.picks, weights: r.weights };
    },
  } satisfies GreediForm<z.infer<typeof params>>,
};

/** A pick: its marginal gain, when it was picked and how many items it stands for; others: their pick. */
function facilityReasons(
  picks: Int32Array,
  gains: Float64Array,
  weights: Float32Array,
  owner: Int32Array,
): Map<number, string> {
  const reasons = new Map<number, string>();
  owner.forEach((o, i) => {
    if (o >= 0 && o !== i) reasons.set(i, `represented by pick ${itemRef(o)}`);
  });
  picks.forEach((i, t) =>
    reasons.set(i, `gain ${gains[t]!.toPrecision(3)} at pick ${t + 1}, stands for ${weights[t]} items`),
  );
  return reasons;
}
