/**
 * CLIP-score filtering, DataComp (baselines.md B2): s_i = ⟨u_i, t_i⟩. `budget` mode keeps exactly the B
 * highest (ties → lowest index), the budgeted form the spec allows; `threshold` mode keeps s_i ≥ τ, best
 * first, at most B. (DataComp's own `get_threshold` keeps ⌊f·N⌋ + 1 items plus ties, one more than B.)
 */
import { z } from 'zod';
import type { SelectInput, Selector } from '../contract.js';
import type { Ranked } from '../partitioned.js';

const params = z.object({
  mode: z.enum(['budget', 'threshold']).default('budget').describe('top B, or everything above a threshold'),
  threshold: z
    .number()
    .min(-1)
    .max(1)
    .optional()
    .describe('τ for threshold mode (e.g. 0.28 for LAION-2B with B/32)'),
});

export function clipScores(image: Float32Array, text: Float32Array, n: number, dim: number): Float32Array {
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = i * dim; k < (i + 1) * dim; k++) s += image[k]! * text[k]!;
    scores[i] = s;
  }
  return scores;
}

/** Positions sorted by score, highest first; ties keep the lower index first. */
export function descendingOrder(scores: Float32Array): Int32Array {
  const order = Int32Array.from(scores, (_, i) => i);
  return order.sort((a, b) => scores[b]! - scores[a]! || a - b);
}

export const clipScore: Selector<z.infer<typeof params>> = {
  name: 'clip-score',
  description: 'keep the pairs whose image and caption agree most (DataComp CLIP-score filter)',
  params,
  needs: ['image', 'text'],
  async select(input, budget, p) {
    const scores = clipScores(input.image!, input.text!, input.n, input.dim);
    const order = descendingOrder(scores);
    let keep = budget;
    if (p.mode === 'threshold') {
      if (p.threshold === undefined) throw new Error('clip-score threshold mode needs a threshold');
      const below = order.findIndex((i) => scores[i]! < p.threshold!);
      keep = below < 0 ? input.n : below;
    }
    keep = Math.min(keep, budget);
    return {
      indices: order.slice(0, keep),
      scores,
      reasons: clipScoreReasons(scores, order, keep, p.mode === 'threshold' ? p.threshold! : undefined),
      trace: [
        {
          stage: 'filter',
          message: `kept ${keep} with CLIP score ≥ ${scores[order[keep - 1]!]!.toFixed(4)}`,
        },
      ],
    };
  },
  partitioned: {
    exact: true,
    merge: 'the highest CLIP scores of the union of every partition’s best: exactly the single run’s picks',
    local: (input, want, p) => new Promise((resolve) => resolve(best(input, want, p))),
  },
};

/** The `want` highest scores (at or above the threshold in threshold mode), best first, with their scores. */
function best(input: SelectInput, want: number, p: z.infer<typeof params>): Ranked {
  const scores = clipScores(input.image!, input.text!, input.n, input.dim);
  const order = descendingOrder(scores);
  let keep = Math.min(want, input.n);
  if (p.mode === 'threshold') {
    if (p.threshold === undefined) throw new Error('clip-score threshold mode needs a threshold');
    const below = order.findIndex((i) => scores[i]! < p.threshold!);
    if (below >= 0) keep = Math.min(keep, below);
  }
  const indices = order.slice(0, keep);
  return { indices, keys: Float64Array.from(indices, (i) => scores[i]!) };
}

/**
 * One reason per pool item: its score against the cut (the threshold, or the last kept score when the
 * budget decides), and for items above a threshold that the budget still left out, that it did.
 */
function clipScoreReasons(
  scores: Float32Array,
  order: Int32Array,
  keep: number,
  threshold: number | undefined,
): Map<number, string> {
  const f = (v: number) => v.toFixed(4);
  const cut = threshold ?? scores[order[keep - 1]!]!;
  const cutName = threshold === undefined ? `the budget's cut ${f(cut)}` : `threshold ${f(cut)}`;
  const reasons = new Map<number, string>();
  order.forEach((i, rank) => {
    const s = scores[i]!;
    if (rank < keep) reasons.set(i, `score ${f(s)} ≥ ${cutName} (rank ${rank + 1})`);
    else if (threshold !== undefined && s >= threshold)
      reasons.set(i, `score ${f(s)} ≥ threshold ${f(threshold)} but beyond the budget of ${keep}`);
    else if (s >= cut) reasons.set(i, `score ${f(s)} ties the budget's cut; ties keep lower positions`);
    else
      reasons.set(
        i,
        `score ${f(s)} below ${threshold === undefined ? "the budget's cut" : 'the threshold'} ${f(cut)}`,
      );
  });
  return reasons;
}
