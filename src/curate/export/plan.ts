/**
 * What to export: the stored picks joined with their catalog rows, and a check that each pick's source
 * is still what `curate init` read (the file exists, with the size recorded then).
 */
import { stat } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import type { DatasetFormat } from '../../embed/readers/types.js';
import { listValue } from '@duckdb/node-api';
import type { Catalog } from '../catalog.js';
import type { ReviewDecision } from '../reviews.js';
import type { StoredSelection } from '../selections.js';
import { NameAllocator } from './names.js';
import { isPipeSpec, shardIsGzipped } from '../../embed/readers/pipe.js';
import type { TarMemberEntry } from './tarIndex.js';
import type { SkippedSample } from './types.js';

export interface SampleRow {
  id: bigint;
  key: string;
  source_key: string;
  dataset_id: number;
  part: string;
  file: string;
  member: string | null;
  row_index: bigint | null;
  image_path: string | null;
  caption: string;
  image_format: string;
  width: number;
  height: number;
  image_bytes: number;
  metadata: string;
  dataset: string;
  spec: string;
  format: DatasetFormat;
  options: string;
  part_size: bigint | null;
}

/**
 * Where the image bytes are: a tar member (read by streaming the shard), an image file (folder
 * datasets, manifests with paths), or a manifest row holding the bytes (img2dataset parquet).
 */
export type Source =
  | {
      kind: 'tar';
      file: string;
      member: string;
      /** Offsets of the image and of every member of the sample in an uncompressed shard (tarIndex.ts). */
      located?: { offset: number; members: TarMemberEntry[] };
    }
  | { kind: 'file'; file: string }
  | { kind: 'embedded'; file: string; row: number };

export interface Pick {
  /** 0-based position in the stored pick order. */
  rank: number;
  sampleId: number;
  key: string;
  /** File-name-safe key (names.ts). */
  name: string;
  /** Raw γ: how many pool samples the pick stands for (1 when the selection has no weights). */
  weightRaw: number;
  /** Mean-1 loss weight over the exported picks, set once they are known. */
  weight: number;
  stage: number | null;
  row: SampleRow;
  source: Source;
}

/** The pick's selection facts, as both NAME.curate.json and the manifests write them. */
export function pickFields(p: Pick) {
  return {
    rank: p.rank,
    key: p.key,
    name: p.name,
    weight: p.weight,
    weight_raw: p.weightRaw,
    stage: p.stage,
  };
}

/**
 * How a reader gets the image bytes (manifests' `image_source`): `file` = the whole file `image_path`;
 * `tar` = member `member` of the uncompressed shard `file` (`image_bytes` bytes at `image_offset`);
 * `tar.gz` = member `member` of the gzip shard `file` (a compressed stream cannot be seeked: read it
 * through); `row` = the bytes held in row `row` of the manifest `file`.
 */
export type ImageSource = 'file' | 'tar' | 'tar.gz' | 'row';

export function imageSource(source: Source): ImageSource {
  if (source.kind === 'tar') return shardIsGzipped(source.file) ? 'tar.gz' : 'tar';
  return source.kind === 'file' ? 'file' : 'row';
}

/**
 * Where the pick came from, as both NAME.curate.json and the manifests write it. `image_path` is the
 * image file whenever the image is a file of its own (folder datasets included), and null exactly when
 * `image_source` says the bytes are inside `file` (a tar member or a manifest row).
 */
export function sourceFields(r: SampleRow) {
  const source = sourceOf(r);
  return {
    dataset: r.dataset,
    spec: r.spec,
    part: r.part,
    file: r.file,
    member: r.member,
    row: r.row_index === null ? null : Number(r.row_index),
    image_source: imageSource(source),
    image_path: source.kind === 'file' ? source.file : null,
  };
}

export function sourceOf(row: SampleRow): Source {
  if (row.member !== null) return { kind: 'tar', file: row.file, member: row.member };
  if (row.image_path !== null) return { kind: 'file', file: row.image_path };
  if (row.format === 'folder') return { kind: 'file', file: row.file };
  return { kind: 'embedded', file: row.file, row: Number(row.row_index ?? -1) };
}

/** Call `work` with a temporary table `(pos INTEGER, id BIGINT)` holding the ids, dropped afterwards. */
export async function withIdTable<T>(
  catalog: Catalog,
  ids: ArrayLike<number>,
  work: (table: string) => Promise<T>,
): Promise<T> {
  const table = `_export_ids_${randomUUID().replaceAll('-', '')}`;
  await catalog.connection.run(`CREATE TEMP TABLE ${table} (pos INTEGER, id BIGINT)`);
  try {
    const appender = await catalog.connection.createAppender(table, 'main', 'temp');
    for (let i = 0; i < ids.length; i++) {
      appender.appendInteger(i);
      appender.appendBigInt(BigInt(ids[i]!));
      appender.endRow();
    }
    appender.closeSync();
    return await work(table);
  } finally {
    await catalog.connection.run(`DROP TABLE IF EXISTS temp.main.${table}`);
  }
}

/** Catalog rows (with dataset and part facts) of the given sample ids, by position in `ids`. */
export async function catalogRows(catalog: Catalog, ids: ArrayLike<number>): Promise<Map<number, SampleRow>> {
  const rows = await withIdTable(catalog, ids, (table) =>
    catalog.rows<SampleRow & { pos: number }>(
      `SELECT t.pos, s.id, s.key, s.source_key, s.dataset_id, s.part, s.file, s.member, s.row_index,
              s.image_path, s.caption, s.image_format, s.width, s.height, s.image_bytes,
              s.metadata::VARCHAR AS metadata, d.name AS dataset, d.spec, d.format,
              d.options::VARCHAR AS options, p.size AS part_size
       FROM ${table} t JOIN samples s ON s.id = t.id JOIN datasets d ON d.id = s.dataset_id
       LEFT JOIN parts p ON p.dataset_id = s.dataset_id AND p.path = s.part
       ORDER BY t.pos`,
    ),
  );
  return new Map(rows.map((r) => [r.pos, { ...r, image_bytes: Number(r.image_bytes) }]));
}

/** What manual review changed in an export. */
export interface ReviewEffect {
  /** Picks (and schedule keys) left out because a person rejected them, in export order. */
  rejected: string[];
  /** Samples a person accepted that the selection had not picked, added after its picks. */
  accepted: string[];
}

/**
 * What to export: the stored picks with their catalog rows, then (dynamic selections) every key the
 * schedule's rounds name that is not a pick, with γ = 0 (they are not part of the static subset, only
 * of the rounds: docs/schedules.md), then samples a person accepted. Picks the catalog no longer has
 * (or has twice) are skipped; rejected keys are left out.
 */
export async function planPicks(
  catalog: Catalog,
  stored: StoredSelection,
  reviews: ReadonlyMap<string, ReviewDecision> = new Map(),
  scheduleKeys: readonly string[] = [],
): Promise<{ picks: Pick[]; skipped: SkippedSample[]; review: ReviewEffect; scheduleOnly: number }> {
  const byPos = await catalogRows(catalog, stored.sampleIds);
  const names = new NameAllocator();
  const seen = new Map<number, number>();
  const picks: Pick[] = [];
  const skipped: SkippedSample[] = [];
  const review: ReviewEffect = { rejected: [], accepted: [] };
  stored.sampleIds.forEach((sampleId, rank) => {
    const key = stored.keys[rank] ?? String(sampleId);
    const row = byPos.get(rank);
    const skip = (reason: string, file?: string) =>
      skipped.push({ rank, key, sampleId, ...(file ? { file } : {}), reason });
    if (!row) return skip(`sample ${sampleId} (${key}) is no longer in the catalog`);
    if (row.key !== key)
      return skip(
        `catalog sample ${sampleId} is now '${row.key}', not '${key}' as when the selection was made`,
        row.file,
      );
    if (reviews.get(key) === 'reject') return review.rejected.push(key);
    const first = seen.get(sampleId);
    if (first !== undefined) return skip(`sample ${key} is picked again; it is exported at rank ${first}`);
    seen.set(sampleId, rank);
    picks.push(pickOf(rank, key, names, row, stored.weights?.[rank] ?? 1, stored.stages?.[rank] ?? null));
  });
  const before = picks.length;
  await addScheduleKeys(catalog, scheduleKeys, stored, picks, skipped, names, reviews, review);
  const scheduleOnly = picks.length - before;
  await addAccepted(catalog, reviews, stored.sampleIds.length + scheduleKeys.length, picks, names, review);
  return { picks, skipped, review, scheduleOnly };
}

/**
 * Schedule keys that are not picks, in first-appearance order, ranked after the picks (rank = picks +
 * position in `scheduleKeys`) with γ = 0. A key the catalog no longer has is skipped, with a reason.
 */
async function addScheduleKeys(
  catalog: Catalog,
  scheduleKeys: readonly string[],
  stored: StoredSelection,
  picks: Pick[],
  skipped: SkippedSample[],
  names: NameAllocator,
  reviews: ReadonlyMap<string, ReviewDecision>,
  review: ReviewEffect,
): Promise<void> {
  const picked = new Set(stored.keys);
  const extra = scheduleKeys.map((key, i) => ({ key, rank: stored.sampleIds.length + i }));
  const wanted = extra.filter((e) => !picked.has(e.key));
  if (wanted.length === 0) return;
  const idOf = await sampleIdsOfKeys(
    catalog,
    wanted.map((e) => e.key),
  );
  const present = wanted.filter((e) => idOf.has(e.key));
  const rows = await catalogRows(
    catalog,
    present.map((e) => idOf.get(e.key)!),
  );
  let next = 0;
  for (const e of wanted) {
    const sampleId = idOf.get(e.key);
    if (sampleId === undefined) {
      skipped.push({
        rank: e.rank,
        key: e.key,
        sampleId: -1,
        reason: `schedule key ${e.key} is no longer in the catalog`,
      });
      continue;
    }
    const row = rows.get(next++)!;
    if (reviews.get(e.key) === 'reject') review.rejected.push(e.key);
    else picks.push(pickOf(e.rank, e.key, names, row, 0, null));
  }
}

function pickOf(
  rank: number,
  key: string,
  names: NameAllocator,
  row: SampleRow,
  weightRaw: number,
  stage: number | null,
): Pick {
  return {
    rank,
    sampleId: Number(row.id),
    key,
    name: names.name(key),
    weightRaw,
    weight: 1,
    stage,
    row: { ...row, image_bytes: Number(row.image_bytes) },
    source: sourceOf(row),
  };
}

/** Catalog sample id of each key the catalog has, by a join (schedules can name most of a large pool). */
async function sampleIdsOfKeys(catalog: Catalog, keys: readonly string[]): Promise<Map<string, number>> {
  const table = `_export_keys_${randomUUID().replaceAll('-', '')}`;
  await catalog.connection.run(`CREATE TEMP TABLE ${table} (key VARCHAR)`);
  try {
    const appender = await catalog.connection.createAppender(table, 'main', 'temp');
    for (const key of keys) {
      appender.appendVarchar(key);
      appender.endRow();
    }
    appender.closeSync();
    const rows = await catalog.rows<{ id: bigint; key: string }>(
      `SELECT s.id, s.key FROM ${table} t JOIN samples s ON s.key = t.key`,
    );
    return new Map(rows.map((r) => [r.key, Number(r.id)]));
  } finally {
    await catalog.connection.run(`DROP TABLE IF EXISTS temp.main.${table}`);
  }
}

/** Accepted samples the selection did not pick, appended in key order with γ = 1. */
async function addAccepted(
  catalog: Catalog,
  reviews: ReadonlyMap<string, ReviewDecision>,
  firstRank: number,
  picks: Pick[],
  names: NameAllocator,
  review: ReviewEffect,
): Promise<void> {
  const picked = new Set(picks.map((p) => p.key));
  const keys = [...reviews].filter(([k, d]) => d === 'accept' && !picked.has(k)).map(([k]) => k);
  if (keys.length === 0) return;
  const ids = await catalog.rows<{ id: bigint; key: string }>(
    'SELECT id, key FROM samples WHERE list_contains($keys::VARCHAR[], key) ORDER BY key',
    { keys: listValue(keys) },
  );
  const rows = await catalogRows(
    catalog,
    ids.map((r) => Number(r.id)),
  );
  ids.forEach((r, i) => {
    const row = rows.get(i)!;
    review.accepted.push(r.key);
    picks.push(pickOf(firstRank + i, r.key, names, row, 1, null));
  });
}

/**
 * Stat each source once: tar shards and manifests must still have the size recorded for their part,
 * image files the size of the image read then. Picks whose source fails move to `skipped`.
 */
export async function checkSources(
  picks: Pick[],
  skipped: SkippedSample[],
  signal?: AbortSignal,
): Promise<Pick[]> {
  const sizes = new Map<string, number | string>();
  const sizeOf = async (file: string): Promise<number | string> => {
    let known = sizes.get(file);
    if (known === undefined) {
      known = await stat(file).then(
        (s) => (s.isFile() ? s.size : `${file} is not a file`),
        (err: NodeJS.ErrnoException) =>
          err.code === 'ENOENT' ? `source file ${file} is gone` : `cannot stat ${file}: ${err.message}`,
      );
      sizes.set(file, known);
    }
    return known;
  };
  const ok: Pick[] = [];
  for (const p of picks) {
    signal?.throwIfAborted();
    const file = p.source.file;
    // A `pipe:` shard has no size to compare; reading it checks each image's size against the catalog.
    if (isPipeSpec(file)) {
      ok.push(p);
      continue;
    }
    const size = await sizeOf(file);
    const expected = p.source.kind === 'file' ? p.row.image_bytes : Number(p.row.part_size ?? -1);
    let reason: string | undefined;
    if (typeof size === 'string') reason = `${size} (sample ${p.key})`;
    else if (size !== expected)
      reason =
        `source file ${file} changed size since curate init (${expected} bytes then, ${size} now); ` +
        `sample ${p.key} is not exported: run curate init again`;
    if (reason) skipped.push({ rank: p.rank, key: p.key, sampleId: p.sampleId, file, reason });
    else ok.push(p);
  }
  return ok;
}

/**
 * Set mean-1 loss weights over the given picks: w = γ·n / Σγ, n the picks with γ > 0 (a dynamic
 * export's schedule-only samples have γ = 0 and keep weight 0: the static subset's weights are the
 * same with or without them).
 */
export function normaliseWeights(picks: Pick[]): number {
  const sum = picks.reduce((a, p) => a + p.weightRaw, 0);
  const n = picks.filter((p) => p.weightRaw > 0).length;
  for (const p of picks) p.weight = sum > 0 ? (p.weightRaw * n) / sum : 1;
  return sum;
}
