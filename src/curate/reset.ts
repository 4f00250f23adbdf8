/**
 * `curate reset`: remove derived workspace state so the step that makes it starts clean. The catalogued
 * datasets (`curate init`) are never touched; everything removed here is made again by a command:
 *   embeddings   embeddings/ (with --views variants), the catalog's embedding rows and the images found
 *                undecodable while embedding, and the index built from them   → `curate embed`
 *   index        index/                                                          → `curate index`
 *   encoder      encoders/offline/ (the offline encoder's fit)                   → `curate embed` fits it
 *   selections   selections/, compare/, partitions/                              → `curate select`, `compare`
 *   all          all of the above
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { syncDir } from '../io/atomic.js';
import { Catalog } from './catalog.js';
import { embeddingsDir } from './embed.js';
import { offlineEncoderDir } from './offline.js';
import { WorkspaceIndex } from './searchIndex.js';
import { partitionsDir } from './partitionedSelect.js';
import { selectionsDir } from './selections.js';

export const RESET_TARGETS = ['embeddings', 'index', 'encoder', 'selections', 'all'] as const;
export type ResetTarget = (typeof RESET_TARGETS)[number];

export interface ResetReport {
  /** Folders removed (absolute paths), in order. */
  removed: string[];
  /** Catalog rows deleted, by table. */
  rows: Record<string, number>;
}

/**
 * Remove `what` from the workspace (see the module comment). The catalog (opened here unless given)
 * holds the workspace lock, so no other curate process is writing; folders go first, then the catalog
 * rows in one transaction. Running it again removes nothing more.
 */
export async function resetWorkspace(
  workspace: string,
  what: ResetTarget,
  options: { catalog?: Catalog } = {},
): Promise<ResetReport> {
  if (!options.catalog) {
    const catalog = await Catalog.open(path.resolve(workspace));
    try {
      return await resetWorkspace(workspace, what, { catalog });
    } finally {
      catalog.close();
    }
  }
  const catalog = options.catalog;
  const ws = path.resolve(workspace);
  const report: ResetReport = { removed: [], rows: {} };
  const targets = new Set<ResetTarget>(what === 'all' ? RESET_TARGETS : [what]);
  // The index is built from the embeddings: it goes with them.
  if (targets.has('embeddings')) targets.add('index');
  const remove = async (dir: string) => {
    if (!existsSync(dir)) return;
    await rm(dir, { recursive: true, force: true });
    await syncDir(path.dirname(dir));
    report.removed.push(dir);
  };
  /** Folders beside `dir` that a killed save left (`<name>.staging-*`, `<name>.old-*`, `<name>.tmp-*`). */
  const removeSiblings = async (dir: string) => {
    const base = path.basename(dir);
    const names = await readdir(path.dirname(dir)).catch(() => [] as string[]);
    for (const n of names)
      if (/^\.(staging|old|tmp)-/.test(n.slice(base.length)) && n.startsWith(base))
        await rm(path.join(path.dirname(dir), n), { recursive: true, force: true });
  };
  if (targets.has('embeddings')) await remove(embeddingsDir(ws));
  if (targets.has('index')) await remove(WorkspaceIndex.dir(ws));
  if (targets.has('encoder')) {
    const dir = offlineEncoderDir(ws);
    await removeSiblings(dir);
    await remove(dir);
  }
  if (targets.has('selections')) {
    // A compare run's tables name its selections: they go together.
    await remove(selectionsDir(ws));
    await remove(path.join(ws, 'compare'));
    await remove(partitionsDir(ws)); // partitioned runs' candidates (`select --partitions`)
  }
  if (targets.has('embeddings')) {
    await catalog.transaction(async () => {
      for (const [table, where] of [
        ['embeddings', ''],
        ['embedding_shards', ''],
        ['issues', ` WHERE kind IN ('undecodable-image', 'non-finite-embedding')`],
      ] as const) {
        const [row] = await catalog.rows<{ n: bigint | number }>(
          `SELECT count(*) AS n FROM ${table}${where}`,
        );
        await catalog.connection.run(`DELETE FROM ${table}${where}`);
        report.rows[table] = Number(row?.n ?? 0);
      }
    });
    await catalog.connection.run('CHECKPOINT');
  }
  return report;
}
