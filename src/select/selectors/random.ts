/**
 * Uniform random selection (baselines.md B1): B indices without replacement by a partial Fisher–Yates
 * shuffle; `stratified` draws round(f·N_c) per class with largest-remainder rounding. Optional weights
 * N/B make weighted sums over the subset unbiased estimates of pool sums.
 */
import { z } from 'zod';
import { seededRandom } from '../../compute/random.js';
import { SelectionInputError, type SelectInput, type Selector } from '../contract.js';
import { fmix32 } from '../nessa/shards.js';
import type { Ranked } from '../partitioned.js';
import { allocateBudget, groupByLabel } from '../stratify.js';

const params = z.object({
  stratified: z.boolean().default(false).describe('draw per class (needs labels or pseudo-labels)'),
  weights: z.boolean().default(false).describe('attach weights N/B (per class N_c/B_c when stratified)'),
});

/** The first `k` items of a seeded partial Fisher–Yates shuffle of `items` (which it reorders). */
export function sampleWithoutReplacement(items: number[], k: number, random: () => number): number[] {
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (items.length - i));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items.slice(0, k);
}

export const random: Selector<z.infer<typeof params>> = {
  name: 'random',
  description: 'uniform random subset (plain or per class)',
  params,
  needs: [],
  async select(input, budget, p, ctx) {
    const rng = seededRandom(ctx.seed);
    if (!p.stratified) {
      const picks = sampleWithoutReplacement(
        Array.from({ length: input.n }, (_, i) => i),
        budget,
        rng,
      );
      return {
        indices: Int32Array.from(picks),
        ...(p.weights ? { weights: new Float32Array(budget).fill(input.n / budget) } : {}),
        reasons: new Map(picks.map((i) => [i, `drawn uniformly at random (seed ${ctx.seed})`])),
        trace: [
          { stage: 'sample', message: `${budget} of ${input.n} uniformly at random (seed ${ctx.seed})` },
        ],
      };
    }
    if (!input.labels) throw new Error('stratified random needs labels or pseudo-labels');
    const groups = groupByLabel(input.labels);
    const quotas = allocateBudget(
      groups.map((g) => g.length),
      budget,
    );
    const indices: number[] = [];
    const weights: number[] = [];
    const reasons = new Map<number, string>();
    groups.forEach((group, c) => {
      const picks = sampleWithoutReplacement([...group], quotas[c]!, rng);
      const why = `drawn at random in class ${c}: ${quotas[c]} of ${group.length} (seed ${ctx.seed})`;
      for (const i of picks) reasons.set(i, why);
      indices.push(...picks);
      weights.push(...picks.map(() => group.length / quotas[c]!));
    });
    return {
      indices: Int32Array.from(indices),
      ...(p.weights ? { weights: Float32Array.from(weights) } : {}),
      reasons,
      trace: [
        { stage: 'sample', message: `per-class quotas ${Array.from(quotas).join(', ')} (seed ${ctx.seed})` },
      ],
    };
  },
  partitioned: {
    exact: true,
    merge:
      'bottom-k sampling: every sample gets a key hashed from its catalog id and the seed, and the B ' +
      'smallest keys of the pool are kept, so the draw is the same for any number of partitions ' +
      '(a uniform draw, but not the one-process Fisher–Yates draw of the same seed)',
    local: (input, want, p, seed) => new Promise((resolve) => resolve(smallestKeys(input, want, p, seed))),
  },
};

/** The `want` items with the smallest hashed keys (ties by id), smallest first; order key = −hash. */
function smallestKeys(input: SelectInput, want: number, p: z.infer<typeof params>, seed: number): Ranked {
  if (p.stratified || p.weights)
    throw new SelectionInputError(
      'random --partitions draws plain uniform subsets: leave out stratified and weights',
    );
  if (!input.ids) throw new SelectionInputError('random --partitions needs the catalog ids of the pool');
  const ids = input.ids;
  const keys = Array.from(ids, (id) => sampleKey(id, seed));
  const order = Array.from({ length: input.n }, (_, i) => i).sort(
    (a, b) => keys[a]! - keys[b]! || (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0),
  );
  const indices = Int32Array.from(order.slice(0, Math.min(want, input.n)));
  return { indices, keys: Float64Array.from(indices, (i) => -keys[i]!) };
}

/** A 32-bit key of a sample id under a seed (MurmurHash3's finaliser over both halves of the id). */
export function sampleKey(id: bigint, seed: number): number {
  const low = Number(BigInt.asUintN(32, id));
  const high = Number(BigInt.asUintN(32, id >> 32n));
  return fmix32(fmix32(low ^ Math.imul(seed | 0, 0x9e3779b1)) ^ high);
}
