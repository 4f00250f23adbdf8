/**
 * De-duplication against an evaluation set (as DataComp removes pool images near its evaluation images,
 * so that a benchmark does not measure memorisation; Gadre et al. 2023): drop pool item i when
 * 1 − max_j ⟨u_i, e_j⟩ ≤ maxDistance over the evaluation set's unit image embeddings e_j, i.e. when some
 * evaluation image is within cosine distance maxDistance. The nearest evaluation image of every item is
 * found with the tiled top-k kernel (kernels/similarity.ts), so N × M stays off the JavaScript heap.
 * The evaluation set must be embedded with the pool's encoder: a store or workspace says which, and a
 * different one is an error; a bare `.npy` is only checked for its width.
 */
import { z } from 'zod';
import { filterForm } from '../partitioned.js';
import { SelectionInputError, type Selector } from '../contract.js';
import { loadEvalSet } from '../filters/evalSet.js';
import { items, keepPassing } from '../filters/keep.js';
import { topKInnerProduct } from '../kernels/similarity.js';

const params = z.object({
  against: z
    .string()
    .min(1)
    .describe('evaluation set: a .npy of image embeddings, an embeddings folder, or a workspace'),
  maxDistance: z
    .number()
    .min(0)
    .max(2)
    .default(0.1)
    .describe('drop an item within this cosine distance (1 − cos) of any evaluation image'),
});

export const evalDedup: Selector<z.infer<typeof params>> = {
  name: 'eval-dedup',
  description: 'filter: drop items whose image is near an image of an evaluation set',
  params,
  needs: ['image'],
  kind: 'filter',
  async select(input, budget, p, ctx) {
    const evalSet = await loadEvalSet(p.against);
    if (evalSet.cols !== input.dim)
      throw new SelectionInputError(
        `eval-dedup: ${evalSet.source} has ${evalSet.cols}-wide embeddings, the pool ${input.dim}-wide: ` +
          'embed the evaluation set with the same encoder',
      );
    if (evalSet.encoder && input.encoder && evalSet.encoder.fingerprint !== input.encoder.fingerprint)
      throw new SelectionInputError(
        `eval-dedup: ${evalSet.source} was embedded with ${evalSet.encoder.name}, the pool with ` +
          `${input.encoder.name}: embed the evaluation set with the pool's encoder`,
      );
    const nearest = await topKInnerProduct(
      { rows: input.n, cols: input.dim, data: input.image! },
      evalSet,
      1,
      {
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(ctx.progress ? { onProgress: ctx.progress } : {}),
      },
    );
    // Score: cosine distance to the nearest evaluation image (low = likely contamination).
    const distance = Float32Array.from(nearest.values, (cos) => 1 - cos);
    const near: number[] = [];
    distance.forEach((d, i) => {
      if (d <= p.maxDistance) near.push(i);
    });
    return keepPassing(
      'eval-dedup',
      (i) => distance[i]! > p.maxDistance,
      input.n,
      budget,
      [
        {
          stage: 'eval-dedup',
          message: `${items(near.length)} within cosine distance ${p.maxDistance} of the ${evalSet.rows} evaluation images of ${evalSet.source}`,
          items: near,
        },
      ],
      distance,
    );
  },
  partitioned: filterForm((input, budget, p, ctx) => evalDedup.select(input, budget, p, ctx)),
};
