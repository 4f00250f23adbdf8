/**
 * What every command needs: the workspace folder from the global flag, an open catalog, the run's
 * AbortSignal (Ctrl-C), and checks that the steps a command builds on have been run.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import {
  CATALOG_FILE,
  DEFAULT_WORKSPACE,
  embeddingsDir,
  openWorkspace,
  WorkspaceIndex,
  type Catalog,
} from '../api.js';
import { UsageError } from './options.js';

interface GlobalOptions {
  workspace?: string;
}

export function workspaceOf(cmd: Command, fallback = DEFAULT_WORKSPACE): string {
  return cmd.optsWithGlobals<GlobalOptions>().workspace ?? fallback;
}

/**
 * Open the workspace's catalog for `work`. Only `init` and `demo` (`create`) make a new workspace; every
 * other command on a folder without a catalog says to run `curate init`, and creates nothing.
 */
export async function withCatalog<T>(
  workspace: string,
  work: (catalog: Catalog) => Promise<T>,
  options: { readOnly?: boolean; create?: boolean } = {},
): Promise<T> {
  if (!options.create && !existsSync(path.join(workspace, CATALOG_FILE)))
    throw new UsageError(`no catalog in ${workspace}: run \`curate init\` first`);
  const catalog = await openWorkspace(workspace, options.readOnly ? { readOnly: true } : {});
  try {
    return await work(catalog);
  } finally {
    catalog.close();
  }
}

/** The signals a run stops on, with their exit codes (128 + signal number, as a shell reports them). */
const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof STOP_SIGNALS;

/** Ctrl-C (or SIGTERM): the parts finished so far are committed; a re-run resumes. */
export class Interrupted extends Error {
  readonly exitCode: number;
  constructor(readonly signal: StopSignal = 'SIGINT') {
    super('interrupted; finished parts are kept, run the same command again to resume');
    this.name = 'Interrupted';
    this.exitCode = STOP_SIGNALS[signal];
  }
}

/** The trap of the run in progress (set by {@link trapSignals}), shared by every step of the command. */
let current: AbortController | undefined;

/**
 * Catch SIGINT and SIGTERM until `release()`: the first one aborts `signal` with {@link Interrupted},
 * so every step stops at its next check and the command exits 130 (143). A second one is left to the
 * default action and ends the process at once.
 */
export function trapSignals(): { signal: AbortSignal; release: () => void } {
  const abort = new AbortController();
  const handlers = (Object.keys(STOP_SIGNALS) as StopSignal[]).map((name) => {
    const handler = () => {
      if (!abort.signal.aborted) {
        process.stderr.write(`\ncurate: ${name}: stopping (press Ctrl-C again to quit at once)\n`);
        abort.abort(new Interrupted(name));
      }
      // The first signal of either kind disarms both, so the next one takes the default action.
      for (const [other, h] of handlers) process.off(other, h);
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  const previous = current;
  current = abort;
  return {
    signal: abort.signal,
    release: () => {
      for (const [name, h] of handlers) process.off(name, h);
      if (current === abort) current = previous;
    },
  };
}

/**
 * Run `work` with the run's AbortSignal (a trap of its own when no run-wide trap is set). Whatever `work`
 * throws once the signal fired becomes {@link Interrupted}, and so does finishing after it: a signal
 * always ends the command with 130, never as a success or as the error a cut-short step happened to raise.
 */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const own = current ? undefined : trapSignals();
  const signal = own?.signal ?? current!.signal;
  try {
    // No new step starts after Ctrl-C.
    signal.throwIfAborted();
    let result: T;
    try {
      result = await work(signal);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw err;
    }
    signal.throwIfAborted();
    return result;
  } finally {
    own?.release();
  }
}

/** The main embedding store (or a `--views` variant) must exist: index, select, compare and search read it. */
export async function requireEmbeddings(catalog: Catalog, workspace: string, views?: string): Promise<void> {
  const dir = embeddingsDir(path.resolve(workspace));
  const embedded = existsSync(path.join(dir, 'store.json'))
    ? Number((await catalog.rows<{ n: bigint | number }>('SELECT count(*) AS n FROM embeddings'))[0]?.n ?? 0)
    : 0;
  if (embedded === 0) throw new UsageError(`no embeddings in ${workspace}: run \`curate embed\` first`);
  if (views && !existsSync(path.join(dir, views, 'store.json')))
    throw new UsageError(
      `no augmented-view embeddings '${views}' in ${workspace}: run \`curate embed --views ${views}\` first`,
    );
}

/** The image index must exist before `curate search`. */
export function requireIndex(workspace: string, space: 'image' | 'text' | 'joint' = 'image'): void {
  const dir = WorkspaceIndex.dir(workspace);
  if (!existsSync(path.join(dir, `${space}.json`)))
    throw new UsageError(`no ${space} index in ${workspace}: run \`curate index\` first`);
}

/**
 * The label field must hold a non-negative integer for every embedded sample, as the selectors' labels
 * need; checked in the catalog before any embeddings are read. `source` says where the name came from.
 */
export async function requireLabelField(catalog: Catalog, field: string, source: string): Promise<void> {
  const value = `TRY_CAST(s.metadata->>$field AS INTEGER)`;
  const [row] = await catalog.rows<{ n: bigint | number; bad: bigint | number; example: string | null }>(
    `SELECT count(*) AS n, count(*) FILTER (WHERE ${value} IS NULL OR ${value} < 0) AS bad,
            any_value(s.key) FILTER (WHERE ${value} IS NULL OR ${value} < 0) AS example
     FROM samples s WHERE s.id IN (SELECT sample_id FROM embeddings)`,
    { field },
  );
  const bad = Number(row?.bad ?? 0);
  if (bad === 0) return;
  const fields = await catalog
    .rows<{ k: string }>(
      `SELECT DISTINCT unnest(json_keys(metadata)) AS k FROM (SELECT metadata FROM samples LIMIT 1000) ORDER BY k`,
    )
    .then(
      (keys) => (keys.length ? keys.map((r) => r.k).join(', ') : 'none'),
      () => 'unknown',
    );
  throw new UsageError(
    `${source} '${field}' is not a non-negative integer in the metadata of ${bad} of ${Number(row?.n)} ` +
      `embedded samples (e.g. key '${row?.example}'); metadata fields: ${fields}`,
  );
}
