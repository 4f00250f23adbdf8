/**
 * Manual review: a person accepts or rejects samples by key (from the VS Code panel or `curate review`).
 * Decisions live in the catalog table `reviews`, keyed by sample key rather than id so they survive a
 * re-read of the dataset. Every export respects them: rejected samples are left out, accepted samples
 * are added after the selection's own picks.
 */
import { listValue } from '@duckdb/node-api';
import type { Catalog } from './catalog.js';

export const REVIEW_DECISIONS = ['accept', 'reject'] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

export interface Review {
  key: string;
  decision: ReviewDecision;
  /** ISO time of the decision. */
  at: string;
}

/** A review request naming keys the catalog does not have. */
export class ReviewInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReviewInputError';
  }
}

/**
 * Record `decision` for each key (`null` clears it). All keys must be in the catalog; otherwise nothing
 * is written and the error names the unknown ones.
 */
export async function setReview(
  catalog: Catalog,
  keys: readonly string[],
  decision: ReviewDecision | null,
): Promise<number> {
  const unique = [...new Set(keys)];
  if (unique.length === 0) return 0;
  const known = new Set(
    (
      await catalog.rows<{ key: string }>(
        'SELECT key FROM samples WHERE list_contains($keys::VARCHAR[], key)',
        {
          keys: listValue(unique),
        },
      )
    ).map((r) => r.key),
  );
  const unknown = unique.filter((k) => !known.has(k));
  if (unknown.length > 0)
    throw new ReviewInputError(
      `${unknown.length} key${unknown.length > 1 ? 's are' : ' is'} not in the catalog: ${unknown.slice(0, 5).join(', ')}`,
    );
  await catalog.transaction(async () => {
    await catalog.connection.run('DELETE FROM reviews WHERE list_contains($keys::VARCHAR[], key)', {
      keys: listValue(unique),
    });
    if (decision === null) return;
    const at = new Date().toISOString();
    const appender = await catalog.connection.createAppender('reviews');
    for (const key of unique) {
      appender.appendVarchar(key);
      appender.appendVarchar(decision);
      appender.appendVarchar(at);
      appender.endRow();
    }
    appender.closeSync();
  });
  return unique.length;
}

/** Every review, oldest first. */
export async function listReviews(catalog: Catalog): Promise<Review[]> {
  return catalog.rows<Review>(
    'SELECT key, decision, decided_at AS "at" FROM reviews ORDER BY decided_at, key',
  );
}

/** Reviews by key, for export planning. */
export async function reviewsByKey(catalog: Catalog): Promise<Map<string, ReviewDecision>> {
  return new Map((await listReviews(catalog)).map((r) => [r.key, r.decision]));
}
