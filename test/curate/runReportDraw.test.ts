/**
 * The report's sample grids draw the left-out samples they show without copying the pool: the draw must
 * be the same seeded partial Fisher–Yates over the left-out ids (in pool order) that a copy would give.
 */
import { describe, expect, it } from 'vitest';
import { seededLeftOut } from '../../src/curate/runReport.js';
import { seededRandom } from '../../src/compute/random.js';

/** The draw as written over a copied list of left-out ids. */
function byCopy(poolIds: number[], chosen: number[], size: number, seed: number): number[] {
  const taken = new Set(chosen);
  const left = poolIds.filter((id) => !taken.has(id));
  const random = seededRandom(seed);
  for (let i = 0; i < Math.min(size, left.length); i++) {
    const j = i + Math.floor(random() * (left.length - i));
    [left[i], left[j]] = [left[j]!, left[i]!];
  }
  return left.slice(0, size);
}

describe('seededLeftOut', () => {
  it('draws what a shuffled copy of the left-out ids gives: chosen at the ends, in runs, absent from the pool', () => {
    const random = seededRandom(5);
    for (const [n, k, size] of [
      [1000, 100, 12],
      [50, 40, 12],
      [30, 0, 12],
      [20, 15, 12],
      [500, 499, 3],
    ] as const) {
      // Pool ids out of order and not contiguous; chosen ids include a run, the first and last rows,
      // and ids the pool does not hold (a merge's pool holds only candidates).
      const poolIds = Array.from({ length: n }, (_, i) => 7 * ((i * 37) % n) + 3);
      const chosen = new Set<number>([poolIds[0]!, poolIds[n - 1]!, -1, 99_999]);
      for (let i = 10; i < 15 && chosen.size < k + 2; i++) chosen.add(poolIds[i]!);
      while (chosen.size < k + 2 && chosen.size < n + 2) chosen.add(poolIds[Math.floor(random() * n)]!);
      for (const seed of [0, 1, 42]) {
        const got = seededLeftOut(poolIds, [...chosen], size, seed);
        expect(got, `n ${n}, ${chosen.size} chosen, seed ${seed}`).toEqual(
          byCopy(poolIds, [...chosen], size, seed),
        );
        expect(got.every((id) => !chosen.has(id))).toBe(true);
        expect(new Set(got).size).toBe(got.length);
      }
    }
  });
});
