/**
 * Exact de-duplication: items whose image files are byte for byte the same (equal SHA-256 of the bytes,
 * computed at `init`) form a group, and one item per group is kept: the first in pool (catalog) order,
 * or with keep = clip-score the one whose caption agrees best with the image (⟨u_i, t_i⟩; ties → first).
 * Items without a copy are all kept. Unlike semdedup, no threshold: only identical files are duplicates.
 */
import { z } from 'zod';
import { itemRef, SelectionInputError, type Selection, type Selector } from '../contract.js';
import { filterForm } from '../partitioned.js';
import { items, keepPassing } from '../filters/keep.js';
import { clipScores } from './clipScore.js';

const params = z.object({
  keep: z
    .enum(['first', 'clip-score'])
    .default('first')
    .describe('which copy of a group survives: the first in catalog order, or the best CLIP score'),
});

/** Pool positions grouped by content hash, groups of two or more only, each in pool order. */
export function duplicateGroups(hashes: ReadonlyArray<string | null>): number[][] {
  const byHash = new Map<string, number[]>();
  hashes.forEach((h, i) => {
    if (h === null) return;
    const group = byHash.get(h);
    if (group) group.push(i);
    else byHash.set(h, [i]);
  });
  return [...byHash.values()].filter((g) => g.length > 1);
}

export const exactDedup: Selector<z.infer<typeof params>> = {
  name: 'exact-dedup',
  description: 'filter: keep one item of every group of byte-identical images (content hash)',
  params,
  needs: ['samples'],
  kind: 'filter',
  async select(input, budget, p) {
    const hashes = input.samples!.contentHash;
    const missing = hashes.reduce((k, h) => k + (h === null ? 1 : 0), 0);
    if (missing)
      throw new SelectionInputError(
        `exact-dedup: ${items(missing)} of the pool have no content hash (catalogued by a clipcurate ` +
          'version before content hashes): read the datasets into a new workspace with `curate init`',
      );
    const poolFirst = input.samples!.firstCopyInPool;
    if (poolFirst) return firstCopiesOfPool(poolFirst, hashes, input.n, budget, p.keep);
    let score: ((i: number) => number) | undefined;
    if (p.keep === 'clip-score') {
      if (!input.image || !input.text)
        throw new SelectionInputError('exact-dedup keep=clip-score needs image and text embeddings');
      const s = clipScores(input.image, input.text, input.n, input.dim);
      score = (i) => s[i]!;
    }
    const groups = duplicateGroups(hashes);
    const removed = new Uint8Array(input.n);
    const copies: number[] = [];
    const reasons = new Map<number, string>();
    for (const group of groups) {
      // Groups are in pool order, so the first maximum is the lowest position.
      const keeper = score ? group.reduce((best, i) => (score(i) > score(best) ? i : best)) : group[0]!;
      const why = score ? 'best CLIP score' : 'first in catalog order';
      reasons.set(keeper, `kept: ${why} of ${group.length} byte-identical copies`);
      for (const i of group)
        if (i !== keeper) {
          removed[i] = 1;
          copies.push(i);
          reasons.set(i, `byte-identical copy of ${itemRef(keeper)} (kept: ${why})`);
        }
    }
    copies.sort((a, b) => a - b);
    const selection = keepPassing('exact-dedup', (i) => removed[i] === 0, input.n, budget, [
      {
        stage: 'dedup',
        message:
          `${items(copies.length)} ${copies.length === 1 ? 'is a byte-identical copy' : 'are byte-identical copies'} ` +
          `of others (${groups.length} group${groups.length === 1 ? '' : 's'}); kept one per group (${p.keep})`,
        items: copies,
      },
    ]);
    return { ...selection, reasons };
  },
  partitioned: filterForm((input, budget, p, ctx) => exactDedup.select(input, budget, p, ctx)),
};

/**
 * A partition of a larger pool: the catalog said which items are the first of their content hash in
 * the whole pool, so each item is judged alone and the partitions together keep what one process keeps
 * with keep = first. keep = clip-score compares copies that can sit in other partitions: refused.
 */
function firstCopiesOfPool(
  first: Uint8Array,
  hashes: ReadonlyArray<string | null>,
  n: number,
  budget: number,
  keep: 'first' | 'clip-score',
): Selection {
  if (keep === 'clip-score')
    throw new SelectionInputError(
      'exact-dedup keep=clip-score compares copies that can sit in different partitions: run it without ' +
        '--partitions, or with keep=first',
    );
  const copies: number[] = [];
  const reasons = new Map<number, string>();
  for (let i = 0; i < n; i++) {
    if (first[i]) continue;
    copies.push(i);
    reasons.set(
      i,
      `byte-identical copy of an earlier sample of the pool (hash ${hashes[i]!.slice(0, 12)}…; kept: first in catalog order)`,
    );
  }
  const selection = keepPassing('exact-dedup', (i) => first[i] === 1, n, budget, [
    {
      stage: 'dedup',
      message: `${items(copies.length)} of this partition are byte-identical copies of earlier samples of the pool; kept the first of each (keep=first)`,
      items: copies,
    },
  ]);
  return { ...selection, reasons };
}
