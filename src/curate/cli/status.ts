/**
 * `curate status`: every artefact of a workspace in one read-only look — catalog (datasets, parts,
 * samples, issues), embeddings, the fitted offline encoder, the indexes, selections, comparisons, reports
 * and exports kept in the workspace. Nothing is created or changed; a damaged file is named, not fatal.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { embeddingsDir, offlineEncoderDir, WorkspaceIndex, type Catalog } from '../api.js';
import { comparisonsDir, listCompareRuns, readComparisonFile } from '../pipeline.js';
import { listSelectionInfo, type SelectionInfo } from '../selections.js';
import { printable as p } from './escape.js';
import { formatSummary } from './report.js';
import { TASK_RECORDS } from '../taskRecords.js';

const n = (x: number) => x.toLocaleString('en-US');

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function subfolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && !e.name.includes('.tmp'))
    .map((e) => e.name)
    .sort();
}

export async function formatStatus(catalog: Catalog, workspace: string): Promise<string> {
  const ws = path.resolve(workspace);
  const lines = [`workspace ${ws}`, formatSummary(await catalog.summary()), ''];
  lines.push(...(await embeddingLines(catalog, ws)));
  lines.push(...(await encoderLines(ws)));
  lines.push(...(await indexLines(ws)));
  lines.push(...formatSelections(await listSelectionInfo(ws), 'selections'));
  lines.push(...(await comparisonLines(ws)));
  const reports = await subfolders(path.join(ws, 'reports'));
  lines.push(
    reports.length
      ? `reports: ${reports.map((r) => `${p(r)}`).join(', ')} (in ${path.join(ws, 'reports')})`
      : 'reports: none',
  );
  const exports = await subfolders(path.join(ws, 'exports'));
  if (exports.length) lines.push(`exports in the workspace: ${exports.map((e) => p(e)).join(', ')}`);
  return lines.join('\n');
}

async function embeddingLines(catalog: Catalog, ws: string): Promise<string[]> {
  const dir = embeddingsDir(ws);
  const meta = await readJson<{
    encoder?: { name: string; fingerprint: string; dim: number };
    dtype?: string;
  }>(path.join(dir, 'store.json'));
  if (!meta?.encoder) {
    return existsSync(path.join(dir, 'store.json'))
      ? [
          `embeddings: ${path.join(dir, 'store.json')} is damaged (curate reset embeddings, then curate embed)`,
        ]
      : ['embeddings: none (run `curate embed`)'];
  }
  const [row] = await catalog.rows<{ rows: bigint | number; shards: bigint | number }>(
    `SELECT count(*) AS rows, count(DISTINCT shard) AS shards FROM embeddings`,
  );
  const [bad] = await catalog.rows<{ n: bigint | number }>(
    `SELECT count(*) AS n FROM issues WHERE kind = 'non-finite-embedding'`,
  );
  const nonFinite = Number(bad?.n ?? 0);
  const lines = [
    `embeddings: ${p(meta.encoder.name)} (${meta.encoder.fingerprint}), ${n(Number(row?.rows ?? 0))} rows × ` +
      `${meta.encoder.dim} dims (${meta.dtype ?? '?'}) in ${n(Number(row?.shards ?? 0))} shards` +
      (nonFinite ? `; ${n(nonFinite)} samples excluded (non-finite embeddings)` : '; none non-finite'),
  ];
  for (const variant of await subfolders(dir)) {
    if (existsSync(path.join(dir, variant, 'store.json'))) lines.push(`  augmented views: ${p(variant)}`);
  }
  const waiting = (await readdir(path.join(dir, TASK_RECORDS)).catch(() => [] as string[])).filter((f) =>
    f.endsWith('.json'),
  ).length;
  if (waiting)
    lines.push(
      `  ${n(waiting)} shards written by array-job tasks are not registered yet (run \`curate embed\` without --shard once every task has finished)`,
    );
  return lines;
}

async function encoderLines(ws: string): Promise<string[]> {
  const dir = offlineEncoderDir(ws);
  const meta = await readJson<{ fingerprint?: string; dim?: number }>(path.join(dir, 'meta.json'));
  if (!meta) return existsSync(dir) ? [`offline encoder: ${dir} has no usable meta.json`] : [];
  const fitted = await stat(path.join(dir, 'meta.json')).then((s) => s.mtime.toISOString().slice(0, 19));
  return [
    `offline encoder: fitted ${fitted.replace('T', ' ')} UTC, ${meta.fingerprint ?? '?'}, ${meta.dim ?? '?'} dims → ${dir}`,
  ];
}

async function indexLines(ws: string): Promise<string[]> {
  const dir = WorkspaceIndex.dir(ws);
  const lines: string[] = [];
  for (const space of ['image', 'text', 'joint'] as const) {
    const meta = await readJson<{ n?: number; dim?: number; fingerprint?: string }>(
      path.join(dir, `${space}.json`),
    );
    if (meta)
      lines.push(
        `  ${space}: ${n(meta.n ?? 0)} vectors × ${meta.dim ?? '?'} dims (${meta.fingerprint ?? '?'})`,
      );
  }
  return lines.length ? [`index (${dir}):`, ...lines] : ['index: not built (run `curate index`)'];
}

/** The table of `curate selections list` and of status. */
export function formatSelections(list: SelectionInfo[], title: string): string[] {
  if (list.length === 0) return [`${title}: none`];
  const rows = list.map((s) => [
    p(s.name),
    p(s.method),
    s.budget,
    `${n(s.size)} of ${n(s.pool)}`,
    s.createdAt ? s.createdAt.slice(0, 19).replace('T', ' ') : '?',
    s.note ? p(s.note) : '',
  ]);
  const header = ['name', 'method', 'budget', 'kept', 'created (UTC)', ''];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) =>
    '  ' +
    cells
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  return [`${title}: ${list.length}`, line(header), ...rows.map(line)];
}

async function comparisonLines(ws: string): Promise<string[]> {
  const runs = await listCompareRuns(ws);
  if (runs.size === 0) return ['comparisons: none'];
  const lines = [`comparisons (${comparisonsDir(ws)}):`];
  for (const files of runs.values()) {
    for (const file of files) {
      const name = path.relative(comparisonsDir(ws), file);
      const c = await readComparisonFile(file).catch(() => undefined);
      lines.push(
        c
          ? `  ${p(name)}: ${c.rows.length} methods at ${c.budget}, pool ${n(c.pool)}` +
              (c.heldOut ? ` (${n(c.heldOut)} held out)` : '') +
              (c.poolInfo ? `, pool ${c.poolInfo.fingerprint}` : '')
          : `  ${p(name)}: unreadable`,
      );
    }
  }
  return lines;
}
