/**
 * CRAIG in feature mode (craig.md §2–3, convex justification): per class, facility location with
 * s_ij = D_max − ‖x_i − x_j‖ (C5), greedy per class with proportional budgets ⌈B·N_c/N⌉ (step 1), weights
 * = cluster sizes (C7), classes merged round-robin in proportion to their budgets (step 5), the tail
 * trimmed to exactly B. Without labels, classes are k-means pseudo-labels.
 */
import { z } from 'zod';
import { kmeans } from '../../embed/backends/kmeans.js';
import { asDense } from '../../embed/backends/linalg.js';
import type { Selector } from '../contract.js';
import { groupByLabel } from '../stratify.js';
import { facilityParams, facilitySelect } from './facility.js';
import { embeddingParam, gather, vectorsOf } from './vectors.js';

const params = z.object({
  embedding: embeddingParam,
  pseudoClasses: z
    .number()
    .int()
    .min(1)
    .default(10)
    .describe('k-means clusters used as classes when there are no labels'),
  ...facilityParams,
});

export const craig: Selector<z.infer<typeof params>> = {
  name: 'craig',
  description: 'CRAIG coreset (feature mode): per-class facility location, weights = cluster sizes',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const x = vectorsOf(input, p.embedding);
    const labels =
      input.labels ??
      (
        await kmeans(asDense(x), Math.min(p.pseudoClasses, x.rows), {
          seed: ctx.seed,
        })
      ).assignment;
    const classes = groupByLabel(labels).filter((g) => g.length > 0);
    // Step 1: proportional per-class budgets, ceil(B·N_c/N) (their sum may exceed B by < C; trimmed below).
    const quotas = classes.map((g) => Math.min(g.length, Math.ceil((budget * g.length) / input.n)));
    const orders: Array<{ ids: number[]; weights: number[] }> = [];
    for (const [c, members] of classes.entries()) {
      const r = await facilitySelect(gather(x, members), quotas[c]!, {
        ...p,
        seed: ctx.seed + c,
        similarity: 'distance',
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
      orders.push({ ids: Array.from(r.picks, (local) => members[local]!), weights: Array.from(r.weights) });
    }
    // Step 5: round-robin merge, props_c = rint(quota_c / min quota) items of class c per turn.
    const minQuota = Math.max(1, Math.min(...quotas.filter((q) => q > 0)));
    const props = quotas.map((q) => Math.max(1, Math.round(q / minQuota)));
    const indices: number[] = [];
    const weights: number[] = [];
    const cursor = orders.map(() => 0);
    while (indices.length < budget && cursor.some((c, i) => c < orders[i]!.ids.length)) {
      orders.forEach((o, c) => {
        for (let t = 0; t < props[c]! && cursor[c]! < o.ids.length; t++, cursor[c]!++) {
          indices.push(o.ids[cursor[c]!]!);
          weights.push(o.weights[cursor[c]!]!);
        }
      });
    }
    return {
      indices: Int32Array.from(indices.slice(0, budget)),
      weights: Float32Array.from(weights.slice(0, budget)),
      trace: [
        {
          stage: 'per-class',
          message: `${classes.length} classes, quotas ${quotas.join(', ')}${input.labels ? '' : ' (k-means pseudo-labels)'}`,
        },
      ],
    };
  },
};
