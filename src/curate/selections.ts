/**
 * Selections saved in a workspace, so `select`, `compare`, `export`, the report and the VS Code panel
 * all read the same thing:
 *   <workspace>/selections/<name>/selection.json   method, parameters, seed, budget, picks (catalog
 *                                                  sample ids and keys in pick order), weights, stages,
 *                                                  trace, provenance
 *   <workspace>/selections/<name>/pool.npy         catalog sample id of every pool row (int64, pool
 *                                                  order: the rows selectors' indices and scores.npy
 *                                                  refer to)
 *   <workspace>/selections/<name>/scores.npy       the method's per-item score over the pool (if any),
 *                                                  rows in pool.npy's order
 *   <workspace>/selections/<name>/schedule.jsonl   dynamic methods' schedule (docs/schedules.md)
 *   <workspace>/selections/<name>/synthetic.npy    a distillation's learned vectors (float32, rows × d),
 *                  synthetic_labels.npy, …stages   with their labels and stages (int64)
 *   <workspace>/selections/<name>/reasons.jsonl    why items were kept or dropped, where the method
 *                                                  says (docs/diff.md)
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { int64Npy, readInt64Npy, readNpy, writeNpy } from '../embed/npy.js';
import { PACKAGE_ROOT } from '../embed/env.js';
import { syncDir, WriteError, writeFileAtomic } from '../io/atomic.js';
import { failpoint } from '../io/failpoints.js';
import {
  REASON_MAX,
  SelectionInputError,
  type Selection,
  type SyntheticVectors,
  type TraceEvent,
} from '../select/contract.js';
import type { Catalog } from './catalog.js';
import { writeSchedule } from './schedule.js';

export interface Provenance {
  tool: { name: string; version: string };
  /** Hash of every dataset's spec and its parts (path, size, sample count): changes when the data does. */
  dataset: { fingerprint: string; datasets: Array<{ id: number; name: string; spec: string }> };
  encoder: { name: string; fingerprint: string };
  createdAt: string;
  seconds: number;
  /** Samples left out of the pool because their embeddings were not finite (named, never used). */
  excluded?: Array<{ key: string; reason: string }>;
  /** For a chained selection: the earlier selection whose picks were its pool. */
  from?: { selection: string; method: string; pool: number; missing: number };
}

export interface StoredSelection {
  name: string;
  method: string;
  /** Every parameter after defaults were applied, so the run can be repeated exactly. */
  params: Record<string, unknown>;
  seed: number;
  budget: { requested: string; count: number };
  pool: number;
  /** Picks in pick order. */
  sampleIds: number[];
  keys: string[];
  weights?: number[];
  stages?: number[];
  /**
   * `pool`: the pool's catalog ids (pool.npy, read with `loadPoolIds`); selections saved before it
   * existed kept them in selection.json as `poolIds`.
   */
  files: { pool?: string; scores?: string; schedule?: string; reasons?: string; synthetic?: string };
  /** A distillation's learned vectors (pdd-synth): synthetic.npy and its label and stage files. */
  synthetic?: StoredSynthetic;
  trace: TraceEvent[];
  provenance: Provenance;
  /** Set for the selections `curate compare` saves: which run, and which part of the pool it picked from. */
  origin?: SelectionOrigin;
}

export interface SelectionOrigin {
  /** The compare run (its selections are saved as `<run>/<method>-<budget>`). */
  compareRun: string;
  /** "the training split: 192 of 240 samples (48 held out for the probe)". */
  pool: string;
}

export interface StoredSynthetic {
  rows: number;
  dim: number;
  /** What the labels are (contract.ts `SyntheticVectors`): label field values, class-name indices or k-means ids. */
  classes: SyntheticVectors['classes'];
  labels: string;
  stages: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** `compare` saves its selections as `<run>/<method>-<budget>`: one level of namespace, nothing deeper. */
const NAMESPACED = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\/[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function selectionsDir(workspace: string): string {
  return path.join(path.resolve(workspace), 'selections');
}

export function selectionDir(workspace: string, name: string): string {
  if (!NAME.test(name) && !NAMESPACED.test(name))
    throw new SelectionInputError(
      `selection name '${name}' must be letters, digits, '.', '_' or '-' (at most 100)`,
    );
  return path.join(selectionsDir(workspace), ...name.split('/'));
}

/** A selection folder that holds other selections (a compare run's), not one of its own. */
function isNamespace(dir: string): boolean {
  return (
    existsSync(dir) && !existsSync(path.join(dir, 'selection.json')) && !path.basename(dir).includes('.tmp-')
  );
}

export async function toolVersion(): Promise<{ name: string; version: string }> {
  const pkg = JSON.parse(await readFile(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  return { name: pkg.name, version: pkg.version };
}

export async function datasetFingerprint(catalog: Catalog): Promise<Provenance['dataset']> {
  const datasets = await catalog.rows<{ id: number; name: string; spec: string }>(
    'SELECT id, name, spec FROM datasets ORDER BY id',
  );
  const parts = await catalog.rows<{ dataset_id: number; path: string; size: bigint; samples: number }>(
    'SELECT dataset_id, path, size, samples FROM parts ORDER BY dataset_id, path',
  );
  const hash = createHash('sha256');
  for (const d of datasets) hash.update(`d\0${d.id}\0${d.spec}\n`);
  for (const p of parts) hash.update(`p\0${p.dataset_id}\0${p.path}\0${String(p.size)}\0${p.samples}\n`);
  return {
    fingerprint: hash.digest('hex').slice(0, 16),
    datasets: datasets.map((d) => ({ ...d, id: Number(d.id) })),
  };
}

/** Catalog keys of sample ids, in the given order. */
export async function keysOf(catalog: Catalog, ids: ArrayLike<number | bigint>): Promise<string[]> {
  const wanted = [...new Set(Array.from(ids, (id) => String(id)))];
  const rows = await catalog.rows<{ id: bigint; key: string }>(
    `SELECT id, key FROM samples WHERE id IN (SELECT unnest(string_split($ids, ','))::BIGINT)`,
    { ids: wanted.join(',') },
  );
  const byId = new Map(rows.map((r) => [Number(r.id), r.key]));
  return Array.from(ids, (id) => {
    const key = byId.get(Number(id));
    if (key === undefined) throw new Error(`sample ${String(id)} is not in the catalog`);
    return key;
  });
}

export interface SaveSelectionInput {
  name: string;
  method: string;
  params: Record<string, unknown>;
  seed: number;
  budget: { requested: string; count: number };
  selection: Selection;
  /** Catalog sample id of each pool row (the selector's indices point into this). */
  poolIds: BigInt64Array;
  /** The pool's size when `poolIds` hold only part of it (a partitioned run's merge candidates). */
  poolSize?: number;
  encoder: { name: string; fingerprint: string };
  seconds: number;
  excluded?: Array<{ key: string; reason: string }>;
  origin?: SelectionOrigin;
  from?: Provenance['from'];
}

/** Staging (`<name>.tmp-<random>`) and set-aside (`<name>.tmp-old-<random>`) folders of a selection. */
async function leftovers(workspace: string, name: string): Promise<{ staging: string[]; old: string[] }> {
  const dir = selectionDir(workspace, name);
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  const names = await readdir(parent).catch(() => [] as string[]);
  const mine = names.filter((n) => n.startsWith(`${base}.tmp-`)).map((n) => path.join(parent, n));
  return {
    staging: mine.filter((p) => !path.basename(p).startsWith(`${base}.tmp-old-`)),
    old: mine.filter((p) => path.basename(p).startsWith(`${base}.tmp-old-`)),
  };
}

/**
 * Tidy what a save killed part-way left: staging folders go; a selection set aside just before its
 * replacement was renamed into place comes back when the replacement is not there.
 */
async function recoverSelection(workspace: string, name: string): Promise<void> {
  const dir = selectionDir(workspace, name);
  const { staging, old } = await leftovers(workspace, name);
  for (const p of staging) await rm(p, { recursive: true, force: true });
  for (const p of old) {
    if (!existsSync(dir) && existsSync(path.join(p, 'selection.json'))) await rename(p, dir);
    else await rm(p, { recursive: true, force: true });
  }
}

/** fsync a file written by a stream (schedule.jsonl), so the folder renamed into place holds it whole. */
async function syncFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Write a selection atomically, replacing one of the same name: every file is written and synced in a
 * staging folder, the old selection is renamed aside, the staging folder renamed into place, and the
 * old one removed. What a killed save left behind is tidied first, so it never blocks the next run.
 */
export async function saveSelection(
  catalog: Catalog,
  workspace: string,
  s: SaveSelectionInput,
): Promise<StoredSelection> {
  const dir = selectionDir(workspace, s.name);
  // Replacing a compare run's folder with one selection would delete every selection of the run.
  const namespace =
    isNamespace(dir) && (await listSelections(workspace)).some((n) => n.startsWith(`${s.name}/`));
  if (namespace)
    throw new SelectionInputError(
      `'${s.name}' is the name of a compare run whose selections are saved under ${dir}: choose another name`,
    );
  await recoverSelection(workspace, s.name);
  const suffix = randomBytes(4).toString('hex');
  const tmp = `${dir}.tmp-${suffix}`;
  try {
    return await stageAndSwap(catalog, s, dir, tmp, `${dir}.tmp-old-${suffix}`);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    if (err instanceof WriteError || !(err as NodeJS.ErrnoException).code) throw err;
    throw new WriteError(dir, (err as NodeJS.ErrnoException).code, err);
  }
}

async function stageAndSwap(
  catalog: Catalog,
  s: SaveSelectionInput,
  dir: string,
  tmp: string,
  old: string,
): Promise<StoredSelection> {
  await mkdir(tmp, { recursive: true });
  const idOf = (i: number) => Number(s.poolIds[i]!);
  const sampleIds = Array.from(s.selection.indices, idOf);
  // Keys of the pool rows the selection and its schedule mention (not the whole pool).
  const mentioned = new Set<number>(s.selection.indices);
  for (const round of s.selection.schedule?.rounds ?? []) for (const i of round.indices) mentioned.add(i);
  const rows = [...mentioned];
  const keys = await keysOf(
    catalog,
    rows.map((i) => s.poolIds[i]!),
  );
  const keyOfRow = new Map(rows.map((i, t) => [i, keys[t]!]));
  const keyAt = (i: number) => keyOfRow.get(i)!;
  // The pool's ids in a binary file, not in selection.json: at 10M pairs a JSON array of them is ~90 MB
  // that every listing of the selections would parse; pool.npy is 8 bytes a row, read only when needed.
  const files: StoredSelection['files'] = { pool: POOL_FILE };
  await writeFileAtomic(path.join(tmp, POOL_FILE), int64Npy(s.poolIds));
  if (s.selection.scores) {
    files.scores = 'scores.npy';
    await writeNpy(path.join(tmp, files.scores), 'float32', s.selection.scores, 1);
  }
  if (s.selection.schedule) {
    files.schedule = 'schedule.jsonl';
    await writeSchedule(path.join(tmp, files.schedule), s.selection.schedule, (i) => keyAt(i), {
      method: s.method,
      provenance: { params: s.params, seed: s.seed, encoder: s.encoder },
    });
    await syncFile(path.join(tmp, files.schedule));
  }
  let synthetic: StoredSynthetic | undefined;
  if (s.selection.synthetic) {
    const v = s.selection.synthetic;
    files.synthetic = 'synthetic.npy';
    synthetic = {
      rows: v.labels.length,
      dim: v.dim,
      classes: v.classes,
      labels: 'synthetic_labels.npy',
      stages: 'synthetic_stages.npy',
    };
    await writeNpy(path.join(tmp, files.synthetic), 'float32', v.vectors, v.dim);
    for (const [file, values] of [
      [synthetic.labels, v.labels],
      [synthetic.stages, v.stages],
    ] as const)
      await writeFileAtomic(path.join(tmp, file), int64Npy(BigInt64Array.from(values, (x) => BigInt(x))));
  }
  if (s.selection.reasons?.size) {
    files.reasons = REASONS_FILE;
    await writeFileAtomic(path.join(tmp, files.reasons), await reasonLines(catalog, s.selection, s.poolIds));
  }
  const stored: StoredSelection = {
    name: s.name,
    method: s.method,
    params: s.params,
    seed: s.seed,
    budget: s.budget,
    pool: s.poolSize ?? s.poolIds.length,
    sampleIds,
    keys: Array.from(s.selection.indices, (i) => keyAt(i)),
    ...(s.selection.weights ? { weights: Array.from(s.selection.weights) } : {}),
    ...(s.selection.stages ? { stages: Array.from(s.selection.stages) } : {}),
    files,
    ...(synthetic ? { synthetic } : {}),
    trace: s.selection.trace,
    ...(s.origin ? { origin: s.origin } : {}),
    provenance: {
      tool: await toolVersion(),
      dataset: await datasetFingerprint(catalog),
      encoder: s.encoder,
      createdAt: new Date().toISOString(),
      seconds: s.seconds,
      ...(s.excluded?.length ? { excluded: s.excluded } : {}),
      ...(s.from ? { from: s.from } : {}),
    },
  };
  // scores.npy is synced by NpyWriter.finish, schedule.jsonl above, pool.npy and selection.json by
  // writeFileAtomic.
  await writeFileAtomic(path.join(tmp, 'selection.json'), JSON.stringify(stored));
  await syncDir(tmp);
  failpoint('select.staged');
  const hadOld = existsSync(dir);
  if (hadOld) await rename(dir, old);
  await rename(tmp, dir);
  await syncDir(path.dirname(dir));
  if (hadOld) await rm(old, { recursive: true, force: true });
  return stored;
}

/** A selection.json as read: older ones carry the pool's ids inline. */
type SavedSelectionJson = StoredSelection & { poolIds?: number[] };

export async function loadSelection(workspace: string, name: string): Promise<StoredSelection> {
  const file = path.join(selectionDir(workspace, name), 'selection.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    const known = await listSelections(workspace);
    throw new SelectionInputError(
      `no selection '${name}' in ${selectionsDir(workspace)}` +
        (known.length ? ` (saved: ${known.join(', ')})` : ' (none saved yet: run curate select)'),
    );
  }
  try {
    const parsed = JSON.parse(text) as SavedSelectionJson;
    if (!Array.isArray(parsed?.sampleIds) || !(parsed.files?.pool || Array.isArray(parsed.poolIds)))
      throw new Error('no picks or pool');
    return parsed;
  } catch (err) {
    throw new SelectionInputError(
      `${file} is damaged (${(err as Error).message}): run \`curate select --name ${name}\` with its method ` +
        'and budget again, or `curate reset selections` to remove every saved selection',
    );
  }
}

const POOL_FILE = 'pool.npy';

/**
 * The catalog sample id of every pool row, in pool order (what scores.npy's rows and the selector's
 * indices refer to); a damaged or missing pool.npy is an error naming the file.
 */
export async function loadPoolIds(workspace: string, stored: StoredSelection): Promise<Float64Array> {
  const inline = (stored as SavedSelectionJson).poolIds;
  if (!stored.files.pool) return Float64Array.from(inline ?? []);
  const file = path.join(selectionDir(workspace, stored.name), stored.files.pool);
  let ids: BigInt64Array;
  try {
    ids = await readInt64Npy(file);
  } catch (err) {
    throw new SelectionInputError(
      `${(err as Error).message.startsWith(file) ? '' : `${file}: `}${(err as Error).message}: run \`curate select --name ${stored.name}\` ` +
        'with its method and budget again',
    );
  }
  return Float64Array.from(ids, Number);
}

/**
 * Pool rows of the given sample ids, found in one scan of the pool's ids: memory for the ids asked
 * about (a selection, a grid), not a map of the whole pool.
 */
export function poolPositions(poolIds: ArrayLike<number>, ids: readonly number[]): Map<number, number> {
  const wanted = new Set(ids);
  const out = new Map<number, number>();
  for (let i = 0; i < poolIds.length && out.size < wanted.size; i++)
    if (wanted.has(poolIds[i]!) && !out.has(poolIds[i]!)) out.set(poolIds[i]!, i);
  return out;
}

/** The stored per-item scores, in the selection's pool order (`loadPoolIds`). */
export async function loadScores(
  workspace: string,
  stored: StoredSelection,
): Promise<Float32Array | undefined> {
  if (!stored.files.scores) return undefined;
  return (await readNpy(path.join(selectionDir(workspace, stored.name), stored.files.scores))).data;
}

/**
 * Every saved selection's name: `<name>` for `curate select`, `<run>/<name>` for those of a compare run.
 * A folder without selection.json and without selections inside is listed too (loading it says it is damaged).
 */
export async function listSelections(workspace: string): Promise<string[]> {
  const folders = async (dir: string) =>
    (await readdir(dir, { withFileTypes: true }).catch(() => []))
      .filter((e) => e.isDirectory() && !e.name.includes('.tmp-'))
      .map((e) => e.name);
  const names: string[] = [];
  for (const top of await folders(selectionsDir(workspace))) {
    const dir = path.join(selectionsDir(workspace), top);
    const inner = existsSync(path.join(dir, 'selection.json'))
      ? []
      : (await folders(dir)).filter((n) => existsSync(path.join(dir, n, 'selection.json')));
    if (inner.length) names.push(...inner.map((n) => `${top}/${n}`));
    else names.push(top);
  }
  return names.sort();
}

/** One line of `curate selections list` / `curate status`. */
export interface SelectionInfo {
  name: string;
  method: string;
  budget: string;
  size: number;
  pool: number;
  createdAt?: string;
  /** Where the picks came from when that is not the whole workspace (a compare run's training split). */
  note?: string;
}

/** What every saved selection is, from its selection.json; a damaged one is listed as such. */
export async function listSelectionInfo(workspace: string): Promise<SelectionInfo[]> {
  const out: SelectionInfo[] = [];
  for (const name of await listSelections(workspace)) {
    try {
      const s = await loadSelection(workspace, name);
      out.push({
        name,
        method: s.method,
        budget: s.budget?.requested ?? '?',
        size: s.sampleIds.length,
        pool: s.pool ?? (s as SavedSelectionJson).poolIds?.length ?? 0,
        ...(s.provenance?.createdAt ? { createdAt: s.provenance.createdAt } : {}),
        ...(s.origin ? { note: `compare run ${s.origin.compareRun}: ${s.origin.pool}` } : {}),
      });
    } catch (err) {
      out.push({ name, method: '?', budget: '?', size: 0, pool: 0, note: (err as Error).message });
    }
  }
  return out;
}

/**
 * Remove saved selections (or a compare run's folder of them). Every name is checked first: an unknown
 * one removes nothing. Each folder is renamed aside in one step, then deleted, so a selection is never
 * seen half-removed. Returns the folders removed.
 */
export async function removeSelections(workspace: string, names: string[]): Promise<string[]> {
  const known = await listSelections(workspace);
  const runs = new Set(known.filter((n) => n.includes('/')).map((n) => n.split('/')[0]!));
  const unknown = names.filter((n) => !known.includes(n) && !runs.has(n));
  if (unknown.length)
    throw new SelectionInputError(
      `no selection ${unknown.map((n) => `'${n}'`).join(', ')} in ${selectionsDir(workspace)}` +
        (known.length ? ` (saved: ${known.join(', ')})` : ' (none saved)'),
    );
  const removed: string[] = [];
  for (const name of new Set(names)) {
    const dir = selectionDir(workspace, name);
    if (!existsSync(dir)) continue; // already gone with its compare run, named before it
    // Not `.tmp-old-`: a save of the same name later would bring that back as an interrupted replace.
    const aside = `${dir}.tmp-rm-${randomBytes(4).toString('hex')}`;
    await rename(dir, aside);
    await syncDir(path.dirname(dir));
    await rm(aside, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

export const REASONS_FILE = 'reasons.jsonl';

/** One line of reasons.jsonl: why the method kept or dropped one sample. */
export interface SavedReason {
  key: string;
  sample_id: number;
  kept: boolean;
  reason: string;
}

/** Above this many reasons, only the kept items' reasons are saved. */
export const REASONS_ALL_MAX = 200_000;

/** `{#i}` names pool item i inside a selector's reason (contract.ts `itemRef`). */
const ITEM_REF = /\{#(\d+)\}/g;

/** reasons.jsonl for a selection: pool order, item references replaced by keys, each ≤ REASON_MAX chars. */
async function reasonLines(catalog: Catalog, selection: Selection, poolIds: BigInt64Array): Promise<string> {
  const kept = new Set(selection.indices);
  // On large pools a reason per dropped item would make reasons.jsonl grow with N (~100 bytes each):
  // above REASONS_ALL_MAX only the kept items' reasons are saved (docs/diff.md says so).
  const reasons =
    selection.reasons!.size > REASONS_ALL_MAX
      ? new Map([...selection.reasons!].filter(([i]) => kept.has(i)))
      : selection.reasons!;
  const rows = new Set<number>(reasons.keys());
  for (const text of reasons.values()) for (const m of text.matchAll(ITEM_REF)) rows.add(Number(m[1]));
  const named = [...rows].filter((i) => i < poolIds.length);
  const keys = await keysOf(
    catalog,
    named.map((i) => poolIds[i]!),
  );
  const keyAt = new Map(named.map((i, t) => [i, keys[t]!]));
  const lines = [...reasons.keys()]
    .sort((a, b) => a - b)
    .map((i) => {
      const text = reasons.get(i)!.replace(ITEM_REF, (_, j: string) => keyAt.get(Number(j)) ?? `item ${j}`);
      const reason = text.length > REASON_MAX ? `${text.slice(0, REASON_MAX - 1)}…` : text;
      const line: SavedReason = {
        key: keyAt.get(i)!,
        sample_id: Number(poolIds[i]),
        kept: kept.has(i),
        reason,
      };
      return JSON.stringify(line);
    });
  return lines.join('\n') + '\n';
}

/**
 * The saved reasons of a selection by sample id; a selection saved before reasons were recorded, or by
 * a method that records none, gives an empty map.
 */
export async function loadReasons(workspace: string, name: string): Promise<Map<number, SavedReason>> {
  const file = path.join(selectionDir(workspace, name), REASONS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  const out = new Map<number, SavedReason>();
  text.split('\n').forEach((line, at) => {
    if (line.trim() === '') return;
    let r: SavedReason;
    try {
      r = JSON.parse(line) as SavedReason;
    } catch {
      r = {} as SavedReason;
    }
    if (typeof r?.sample_id !== 'number' || typeof r.reason !== 'string' || typeof r.kept !== 'boolean')
      throw new SelectionInputError(
        `${file} line ${at + 1} is not a {"key", "sample_id", "kept", "reason"} record: ` +
          `run \`curate select --name ${name}\` with its method and budget again`,
      );
    out.set(r.sample_id, r);
  });
  return out;
}
