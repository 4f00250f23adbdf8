/**
 * Latent classes for the methods that work per class (ClipCov, SAS, FAST, PDD): the dataset's labels,
 * zero-shot assignment to user-supplied class prompts (argmax cosine, clipcov.md §2 / sas.md §2), or
 * k-means on the unit embeddings (the specs' spherical k-means fallback; centroids renormalised).
 */
import { z } from 'zod';
import { kmeans } from '../compute/kmeans.js';
import { asDense } from '../compute/linalg.js';
import { SelectionInputError, type SelectInput } from './contract.js';
import { topKInnerProduct, type Matrix } from './kernels/similarity.js';
import { groupByLabel } from './stratify.js';

export const latentClassParams = {
  classes: z
    .enum(['auto', 'labels', 'zero-shot', 'kmeans'])
    .default('auto')
    .describe('latent classes: auto = zero-shot when class prompts are given, else labels, else k-means'),
  clusters: z
    .union([z.literal('auto'), z.number().int().min(1)])
    .default('auto')
    .describe('k-means clusters when classes come from k-means (auto = N/3000, at least 10)'),
};

export type LatentClassChoice = z.infer<typeof latentClassParams.classes>;

export interface LatentClasses {
  source: 'labels' | 'zero-shot' | 'kmeans';
  /** Class of every item, 0..k−1. */
  assignment: Int32Array;
  k: number;
  /** Members of each class in pool order (empty classes kept so ids line up). */
  members: number[][];
}

export function autoClusters(n: number): number {
  return Math.min(n, Math.max(10, Math.round(n / 3000)));
}

export async function latentClasses(
  input: SelectInput,
  choice: LatentClassChoice,
  clusters: number | 'auto',
  space: Matrix,
  seed: number,
  /** k-means (the `kmeans` source) fits its centroids on at most this many points per class, then assigns all. */
  pointsPerCentroid?: number,
): Promise<LatentClasses> {
  const source =
    choice !== 'auto' ? choice : input.classPrompts ? 'zero-shot' : input.labels ? 'labels' : 'kmeans';
  let assignment: Int32Array;
  if (source === 'labels') {
    if (!input.labels) throw new SelectionInputError('classes=labels but the pool has no labels');
    assignment = input.labels;
  } else if (source === 'zero-shot') {
    const prompts = input.classPrompts;
    if (!prompts) throw new SelectionInputError('classes=zero-shot needs class prompts (class names)');
    const k = prompts.names.length;
    if (prompts.embeddings.length !== k * space.cols)
      throw new SelectionInputError(
        `class prompt embeddings have ${prompts.embeddings.length / k} dimensions, the pool ${space.cols}`,
      );
    const best = await topKInnerProduct(space, { rows: k, cols: space.cols, data: prompts.embeddings }, 1);
    assignment = best.indices;
  } else {
    const k = clusters === 'auto' ? autoClusters(space.rows) : Math.min(clusters, space.rows);
    const sample = pointsPerCentroid === undefined ? {} : { pointsPerCentroid };
    assignment = (await kmeans(asDense(space), k, { seed, ...sample })).assignment;
  }
  const members = groupByLabel(assignment);
  return { source, assignment, k: members.length, members };
}

/** One line for traces and reports: where classes came from and how unbalanced they are. */
export function describeClasses(c: LatentClasses): string {
  const sizes = c.members.map((m) => m.length).filter((s) => s > 0);
  const sorted = [...sizes].sort((a, b) => a - b);
  return `${sizes.length} ${c.source} classes, sizes ${sorted[0]}–${sorted.at(-1)} (median ${sorted[sorted.length >> 1]})`;
}
