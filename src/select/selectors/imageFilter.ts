/**
 * Image-size filter, the image half of DataComp-style basic filtering (Gadre et al. 2023): keep an item when
 * min(w, h) ≥ minSide, max(w, h) ≤ maxSide and max(w, h) / min(w, h) ≤ maxAspect. Sizes are those the
 * catalog read from the image header at `init`, after EXIF rotation. Every bound is optional and
 * inclusive; everything that passes is kept, in pool order.
 */
import { z } from 'zod';
import { filterForm } from '../partitioned.js';
import { SelectionInputError, type Selector } from '../contract.js';
import { items, keepPassing } from '../filters/keep.js';

const params = z.object({
  minSide: z.number().int().min(1).optional().describe('shortest side in pixels at least (e.g. 200)'),
  maxSide: z.number().int().min(1).optional().describe('longest side in pixels at most'),
  maxAspect: z.number().min(1).optional().describe('longer side / shorter side at most (e.g. 3)'),
});
type Params = z.infer<typeof params>;

export const imageFilter: Selector<Params> = {
  name: 'image-filter',
  description: 'filter: keep images with a minimum side, maximum side and maximum aspect ratio',
  params,
  needs: ['samples'],
  kind: 'filter',
  async select(input, budget, p) {
    if (p.minSide === undefined && p.maxSide === undefined && p.maxAspect === undefined)
      throw new SelectionInputError('image-filter needs at least one of minSide, maxSide, maxAspect');
    if (p.minSide !== undefined && p.maxSide !== undefined && p.minSide > p.maxSide)
      throw new SelectionInputError(`image-filter: minSide ${p.minSide} is above maxSide ${p.maxSide}`);
    const { width, height } = input.samples!;
    const dropped = { small: 0, large: 0, aspect: 0 };
    const reasons = new Map<number, string>();
    const fail = (i: number, reason: string) => (reasons.set(i, reason), false);
    const pass = (i: number) => {
      const short = Math.min(width[i]!, height[i]!);
      const long = Math.max(width[i]!, height[i]!);
      const size = `${width[i]}×${height[i]}`;
      if (p.minSide !== undefined && short < p.minSide)
        return (dropped.small++, fail(i, `${size}: shorter side ${short} below minSide ${p.minSide}`));
      if (p.maxSide !== undefined && long > p.maxSide)
        return (dropped.large++, fail(i, `${size}: longer side ${long} above maxSide ${p.maxSide}`));
      if (p.maxAspect !== undefined && long / short > p.maxAspect)
        return (
          dropped.aspect++,
          fail(i, `${size}: aspect ${(long / short).toFixed(2)} above maxAspect ${p.maxAspect}`)
        );
      return true;
    };
    const selection = keepPassing('image-filter', pass, input.n, budget, []);
    selection.reasons = reasons;
    selection.trace.unshift({
      stage: 'images',
      message: `dropped ${items(dropped.small)} below minSide, ${items(dropped.large)} above maxSide, ${items(dropped.aspect)} above maxAspect`,
    });
    return selection;
  },
  partitioned: filterForm((input, budget, p, ctx) => imageFilter.select(input, budget, p, ctx)),
};
