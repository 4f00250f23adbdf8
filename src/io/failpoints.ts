/**
 * Named write points where a test can kill the process (kill -9 semantics: no cleanup, no flush), to
 * prove that every step resumes and ends byte-identical to an uninterrupted run.
 *
 * `CURATE_KILL_AT=<name>[#<n>]` makes the n-th (default first) arrival at `failpoint(name)` send
 * SIGKILL to this very process. Unset (always, outside tests), `failpoint` is one string comparison.
 * Every name a module can reach is listed in `FAILPOINTS`, so the kill matrix test can cover them all.
 */
export const FAILPOINTS = {
  /** Embedding: a shard's .npy written (temporary name), before its rename. */
  'embed.shard-written': 'a shard’s image/text .npy written to their temporary names',
  /** Embedding: a shard renamed into place, before the catalog records it. */
  'embed.shard-renamed': 'a shard renamed into place, not yet recorded in the catalog',
  /** Embedding: store metadata written (temporary name), before its rename. */
  'embed.store-meta': 'store.json written to its temporary name',
  /** Offline encoder: the fitted state written, before its rename. */
  'embed.offline-fit': 'the offline encoder’s fitted state written to its temporary name',
  /** Index: the HNSW file written (temporary name), before its rename. */
  'index.written': 'the HNSW index written to its temporary name',
  /** Selection: the staged selection folder complete, before its rename. */
  'select.staged': 'a selection staged, before it is moved into place',
  /** Export: some output files staged. */
  'export.staged': 'part of an export written to its staging folder',
  /** Export: staged files being moved into the output folder (after the first). */
  'export.moving': 'an export half moved from staging into its folder',
} as const;
export type FailpointName = keyof typeof FAILPOINTS;

const spec = process.env.CURATE_KILL_AT;
const [target, nth] = spec ? [spec.split('#')[0], Number(spec.split('#')[1] ?? 1)] : [undefined, 0];
let arrivals = 0;

/** Kill this process here when the test asked for it (see the module comment); otherwise nothing. */
export function failpoint(name: FailpointName): void {
  if (target !== name) return;
  arrivals += 1;
  if (arrivals === nth) process.kill(process.pid, 'SIGKILL');
}
