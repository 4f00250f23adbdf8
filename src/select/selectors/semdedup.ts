/**
 * SemDeDup (Abbas et al. 2023, baselines.md B4): k-means clusters on the embeddings; inside a cluster,
 * members are ordered by distance to the centroid, farthest first (`hard`; `easy` reverses); item j's
 * score M_j = max_{i before j} ⟨x_i, x_j⟩, and j is a duplicate when M_j > 1 − ε. The first member of
 * each cluster is always kept, and removal does not chain (an item near a removed item still goes).
 * With a budget and no ε, ε is calibrated to the budget: the B items with the smallest M_j are kept.
 */
import { z } from 'zod';
import { twoRoundForm } from '../partitioned.js';
import { kmeans } from '../../compute/kmeans.js';
import { asDense } from '../../compute/linalg.js';
import { itemRef, type Selector } from '../contract.js';
import { innerProducts } from '../kernels/similarity.js';
import { groupByLabel } from '../stratify.js';
import { embeddingParam, gather, vectorsOf } from './vectors.js';

const params = z.object({
  embedding: embeddingParam,
  epsilon: z
    .number()
    .min(0)
    .max(1)
    .optional()
    .describe('remove j when M_j > 1 − ε (default: calibrated to the budget)'),
  clusters: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('k-means clusters (default: about one per 1,000 items)'),
  keep: z
    .enum(['hard', 'easy'])
    .default('hard')
    .describe(
      'which member of a duplicate group survives: farthest from (hard) or nearest to (easy) the centroid',
    ),
});

/** The ε the trace measures a budget against: SemDeDup's near-duplicate threshold (cosine > 0.95). */
const NEAR_DUPLICATE_EPSILON = 0.05;

export const semdedup: Selector<z.infer<typeof params>> = {
  name: 'semdedup',
  description: 'semantic de-duplication: drop near-duplicates inside k-means clusters',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const x = vectorsOf(input, p.embedding);
    const k = Math.min(x.rows, p.clusters ?? Math.max(1, Math.round(x.rows / 1000)));
    const { assignment, centroids } = await kmeans(asDense(x), k, {
      seed: ctx.seed,
    });
    const score = new Float32Array(x.rows).fill(-1); // M_j; −1 for the first member of a cluster
    const nearest = new Int32Array(x.rows).fill(-1); // the earlier member i that gives M_j
    for (const [c, members] of groupByLabel(assignment).entries()) {
      if (members.length === 0) continue;
      const centre = centroids.data.subarray(c * x.cols, (c + 1) * x.cols);
      const norm = Math.hypot(...centre) || 1;
      const cos = new Map(
        members.map((i) => [
          i,
          x.data.subarray(i * x.cols, (i + 1) * x.cols).reduce((s, v, t) => s + v * centre[t]!, 0) / norm,
        ]),
      );
      // hard: farthest from the centroid first (lowest cosine); ties → lowest index.
      const order = [...members].sort(
        (a, b) => (p.keep === 'hard' ? cos.get(a)! - cos.get(b)! : cos.get(b)! - cos.get(a)!) || a - b,
      );
      const gram = await innerProducts(gather(x, order), gather(x, order));
      const m = order.length;
      for (let j = 1; j < m; j++) {
        let best = -Infinity;
        let at = -1;
        for (let i = 0; i < j; i++) if (gram[i * m + j]! > best) [best, at] = [gram[i * m + j]!, order[i]!];
        score[order[j]!] = best;
        nearest[order[j]!] = at;
      }
    }
    const candidates = Array.from({ length: x.rows }, (_, i) => i);
    const kept = (
      p.epsilon === undefined ? candidates : candidates.filter((i) => score[i]! <= 1 - p.epsilon!)
    )
      .sort((a, b) => score[a]! - score[b]! || a - b)
      .slice(0, budget);
    kept.sort((a, b) => a - b);
    const removed = x.rows - kept.length;
    const trace = [
      {
        stage: 'dedup',
        message: `${k} clusters; ${removed} of ${x.rows} removed${p.epsilon === undefined ? ' (ε calibrated to the budget)' : ` at ε = ${p.epsilon}`}`,
      },
    ];
    // A budget well below the pool makes the calibrated ε remove items that are not near-duplicates at
    // all: say how many, against what a usual threshold finds, so "removed as duplicates" is not misread.
    if (p.epsilon === undefined) {
      const threshold = 1 - NEAR_DUPLICATE_EPSILON;
      const found = score.reduce((n, m) => (m > threshold ? n + 1 : n), 0);
      if (removed > found)
        trace.push({
          stage: 'warning',
          message:
            `the budget forces removing ${removed - found} non-duplicates beyond the ${found} found at ` +
            `cosine > ${threshold} (ε = ${NEAR_DUPLICATE_EPSILON}); pass -p epsilon=${NEAR_DUPLICATE_EPSILON} ` +
            'and a budget of 100% to remove only near-duplicates',
        });
    }
    const reasons = semdedupReasons(kept, score, nearest, assignment, p.epsilon);
    return { indices: Int32Array.from(kept), scores: score, reasons, trace };
  },
  partitioned: twoRoundForm<z.infer<typeof params>>(
    (input, budget, p, ctx) => semdedup.select(input, budget, p, ctx),
    "SemDeDup again on the union of the partitions' least-duplicated items, so duplicates split across partitions meet there; a near-duplicate already removed inside its own partition is not compared again",
  ),
};

/**
 * Every item's reason: a kept cluster head is its cluster's representative; any other item names the
 * earlier member of its cluster it is most similar to (the i giving M_j) and the cut it met or missed.
 */
function semdedupReasons(
  kept: number[],
  score: Float32Array,
  nearest: Int32Array,
  cluster: Int32Array,
  epsilon: number | undefined,
): Map<number, string> {
  const f = (v: number) => v.toFixed(3);
  const isKept = new Uint8Array(score.length);
  for (const i of kept) isKept[i] = 1;
  // The cut: 1 − ε, or with a calibrated ε the largest M_j the budget kept.
  const cut = epsilon === undefined ? kept.reduce((c, i) => Math.max(c, score[i]!), -1) : 1 - epsilon;
  const cutName = epsilon === undefined ? `the budget's cut ${f(cut)}` : `1 − ε = ${f(cut)}`;
  const reasons = new Map<number, string>();
  for (let j = 0; j < score.length; j++) {
    const m = score[j]!;
    const other = itemRef(nearest[j]!);
    if (nearest[j]! < 0)
      reasons.set(
        j,
        isKept[j]
          ? `kept: cluster ${cluster[j]}'s representative`
          : `cluster ${cluster[j]}'s representative, beyond a budget below the cluster count`,
      );
    else if (isKept[j]) reasons.set(j, `kept: closest earlier member ${other} at cos ${f(m)} ≤ ${cutName}`);
    else if (epsilon !== undefined && m <= cut)
      reasons.set(j, `cos ${f(m)} to ${other} ≤ ${cutName}, but beyond the budget`);
    else {
      const what = m > 1 - NEAR_DUPLICATE_EPSILON || epsilon !== undefined ? 'duplicate of' : 'too close to';
      reasons.set(j, `${what} ${other} (cos ${f(m)} ≥ ${cutName})`);
    }
  }
  return reasons;
}
