import path from 'node:path';
import { listValue } from '@duckdb/node-api';
import { EmbeddingStore } from '../embed/store.js';
import { nonFiniteReason, type SelectInput } from '../select/contract.js';
import type { Catalog } from './catalog.js';
import { embeddingsDir, storeDir } from './embed.js';
import { listParts } from './parts.js';

/** Every embedded sample of the workspace, in catalog order, as the selectors' input. */
export interface WorkspaceEmbeddings extends SelectInput {
  /** Catalog sample id of each row. */
  ids: BigInt64Array;
  encoder: { name: string; fingerprint: string };
  /**
   * Embedded samples left out of the pool because a row holds NaN or infinite values (image, caption or
   * augmented-view), in catalog order. Everything above is as if they had never been embedded.
   */
  excluded: ExcludedSample[];
}

export interface ExcludedSample {
  id: bigint;
  key: string;
  reason: string;
}

/** "excluded 2 samples with non-finite embeddings: a/1, b/7", or '' when none were (for logs and traces). */
export function describeExcluded(excluded: readonly ExcludedSample[], show = 10): string {
  if (excluded.length === 0) return '';
  const keys = excluded.slice(0, show).map((e) => e.key || `#${e.id}`);
  const more = excluded.length > show ? ` and ${excluded.length - show} more` : '';
  const noun = excluded.length === 1 ? 'sample' : 'samples';
  return `excluded ${excluded.length} ${noun} with non-finite embeddings: ${keys.join(', ')}${more}`;
}

/** Every embedded sample of the encoder `$fp`: the FROM clause of the catalog queries here (e, s, es). */
const EMBEDDED_SAMPLES = `embeddings e JOIN samples s ON s.id = e.sample_id
     JOIN embedding_shards es ON es.shard = e.shard AND es.fingerprint = $fp`;

/**
 * How many pairs the workspace's current encoder has embedded (one catalog count, no vectors read;
 * rows with non-finite values are counted, `loadEmbeddings` drops them), its dimension and fingerprint.
 */
export async function embeddedCount(
  catalog: Catalog,
  workspace: string,
): Promise<{ count: number; dim: number; fingerprint: string }> {
  const store = await EmbeddingStore.read(embeddingsDir(path.resolve(workspace)));
  const { fingerprint, dim } = store.meta.encoder;
  const [row] = await catalog.rows<{ count: number | bigint }>(
    `SELECT count(*) AS count FROM ${EMBEDDED_SAMPLES}`,
    { fp: fingerprint },
  );
  return { count: Number(row?.count ?? 0), dim, fingerprint };
}

/**
 * The catalog ids at these positions of the samples embedded by encoder `fingerprint`, in id order (the
 * rows `loadEmbeddings` numbers 0…n−1), found by the catalog: only they become JavaScript values.
 */
export async function embeddedIdsAt(
  catalog: Catalog,
  fingerprint: string,
  positions: readonly number[],
): Promise<bigint[]> {
  if (positions.length === 0) return [];
  const rows = await catalog.rows<{ id: bigint | number }>(
    `SELECT id FROM (SELECT s.id, row_number() OVER (ORDER BY s.id) - 1 AS position FROM ${EMBEDDED_SAMPLES})
     WHERE position IN (SELECT unnest($positions)) ORDER BY id`,
    { fp: fingerprint, positions: listValue(positions.map((p) => BigInt(p))) },
  );
  return rows.map((r) => BigInt(r.id));
}

/**
 * Load the workspace's embeddings shard by shard into two n × dim matrices (image, text), rows in catalog
 * id order. Labels come from a metadata field when asked (e.g. `label_index` or `cls`). A sample whose
 * image, caption or view row is not finite is left out and listed in `excluded`.
 */
export async function loadEmbeddings(
  catalog: Catalog,
  workspace: string,
  options: { labelField?: string; views?: string; only?: PoolSubset } = {},
): Promise<WorkspaceEmbeddings> {
  const store = await EmbeddingStore.read(embeddingsDir(path.resolve(workspace)));
  const dim = store.meta.encoder.dim;
  const labelSql = options.labelField ? `(s.metadata->>$field)::INTEGER` : 'NULL::INTEGER';
  // A subset is filtered by the catalog, so only its rows become JS objects (a partition, not the pool).
  const only = options.only;
  const filters = [
    ...(only?.parts ? [`(s.dataset_id || ':' || s.part) IN (SELECT unnest($parts))`] : []),
    ...(only?.ids ? ['s.id IN (SELECT unnest($ids))'] : []),
  ];
  const all = await catalog.rows<EmbeddedRow>(
    `SELECT s.id, s.key, e.shard, e."row", ${labelSql} AS label, s.dataset_id || ':' || s.part AS part,
            s.image_bytes + strlen(s.caption) AS bytes
     FROM ${EMBEDDED_SAMPLES}
     ${filters.length ? `WHERE ${filters.join(' AND ')}` : ''} ORDER BY s.id`,
    {
      fp: store.meta.encoder.fingerprint,
      ...(options.labelField ? { field: options.labelField } : {}),
      ...(only?.parts ? { parts: listValue([...only.parts]) } : {}),
      ...(only?.ids ? { ids: listValue([...only.ids]) } : {}),
    },
  );
  if (all.length === 0 && !only) throw new Error(`no embeddings in ${store.dir}: run curate embed first`);
  const allImage = new Float32Array(all.length * dim);
  const allText = new Float32Array(all.length * dim);
  const byShard = new Map<string, Array<[number, number]>>();
  all.forEach((r, i) => {
    const list = byShard.get(r.shard) ?? [];
    list.push([i, r.row]);
    byShard.set(r.shard, list);
  });
  for (const [shard, list] of byShard) {
    const img = await store.readShard(shard, 'image');
    const txt = await store.readShard(shard, 'text');
    for (const [i, r] of list) {
      allImage.set(img.data.subarray(r * dim, (r + 1) * dim), i * dim);
      allText.set(txt.data.subarray(r * dim, (r + 1) * dim), i * dim);
    }
  }
  const allViews = options.views
    ? await loadViews(catalog, storeDir(path.resolve(workspace), options.views), all, dim)
    : undefined;

  // Rows with NaN or ±Infinity are checked where they are read, whatever wrote them (an older embed, a
  // damaged or hand-edited .npy): left in, they would win or lose every comparison and change the picks.
  const excluded: ExcludedSample[] = [];
  const keep: number[] = [];
  for (let i = 0; i < all.length; i++) {
    const reasons = (
      [
        ['image', allImage],
        ['caption', allText],
        ['augmented-view', allViews],
      ] as const
    ).flatMap(([name, m]) => {
      const why = m && nonFiniteReason(m, dim, i);
      return why ? [`${name} embedding has ${why}`] : [];
    });
    if (reasons.length)
      excluded.push({ id: BigInt(all[i]!.id), key: all[i]!.key, reason: reasons.join('; ') });
    else keep.push(i);
  }
  if (all.length > 0 && keep.length === 0)
    throw new Error(
      `all ${all.length} embeddings in ${store.dir} hold NaN or infinite values: run curate embed again ` +
        '(delete the damaged .npy files first)',
    );
  const rows = excluded.length ? keep.map((i) => all[i]!) : all;
  const compact = (m: Float32Array) => {
    if (!excluded.length) return m;
    const out = new Float32Array(keep.length * dim);
    keep.forEach((i, j) => out.set(m.subarray(i * dim, (i + 1) * dim), j * dim));
    return out;
  };
  const n = rows.length;
  const image = compact(allImage);
  const text = compact(allText);
  const imageViews = allViews && compact(allViews);

  const labels = options.labelField ? Int32Array.from(rows, (r) => r.label ?? -1) : undefined;
  if (labels?.some((l) => l < 0))
    throw new Error(`metadata field '${options.labelField}' is missing or not an integer for some samples`);
  // Source part (tar shard, manifest, folder) of each row, numbered in first-seen order, for per-shard
  // selection; image + caption bytes for data-movement accounting (nessa.md N1).
  const partIds = new Map<string, number>();
  const shards = Int32Array.from(rows, (r) => {
    if (!partIds.has(r.part)) partIds.set(r.part, partIds.size);
    return partIds.get(r.part)!;
  });
  return {
    n,
    dim,
    image,
    text,
    shards,
    payloadBytes: Float64Array.from(rows, (r) => Number(r.bytes)),
    ...(labels ? { labels } : {}),
    ...(imageViews ? { imageViews } : {}),
    ids: BigInt64Array.from(rows, (r) => BigInt(r.id)),
    encoder: { name: store.meta.encoder.name, fingerprint: store.meta.encoder.fingerprint },
    excluded,
  };
}

/**
 * Part of the pool to load: samples of these catalog parts (`<dataset id>:<part path>`) and/or with
 * these sample ids. Only their shards are read, so memory follows the subset, not the pool.
 */
export interface PoolSubset {
  parts?: ReadonlySet<string>;
  ids?: ReadonlySet<bigint>;
}

interface EmbeddedRow {
  id: bigint;
  key: string;
  shard: string;
  row: number;
  label: number | null;
  part: string;
  bytes: number | bigint;
}

/** Mean augmented-view embeddings of a variant store, in the main rows' order. */
async function loadViews(
  catalog: Catalog,
  dir: string,
  mainRows: ReadonlyArray<{ id: bigint }>,
  dim: number,
): Promise<Float32Array> {
  const store = await EmbeddingStore.read(dir).catch(() => {
    throw new Error(`no augmented-view embeddings in ${dir}: run curate embed --views first`);
  });
  const position = new Map(mainRows.map((r, i) => [BigInt(r.id), i]));
  const rows = await catalog.rows<{ id: bigint; shard: string; row: number }>(
    `SELECT e.sample_id AS id, e.shard, e."row" FROM embeddings e
     JOIN embedding_shards es ON es.shard = e.shard AND es.fingerprint = $fp`,
    { fp: store.meta.encoder.fingerprint },
  );
  const out = new Float32Array(mainRows.length * dim);
  const byShard = new Map<string, Array<[number, number]>>();
  let found = 0;
  for (const r of rows) {
    const i = position.get(BigInt(r.id));
    if (i === undefined) continue;
    found++;
    const list = byShard.get(r.shard) ?? [];
    list.push([i, r.row]);
    byShard.set(r.shard, list);
  }
  if (found < mainRows.length)
    throw new Error(
      `augmented-view embeddings cover ${found} of ${mainRows.length} samples in ${dir}: run curate embed --views again`,
    );
  for (const [shard, list] of byShard) {
    const m = await store.readShard(shard, 'image');
    for (const [i, r] of list) out.set(m.data.subarray(r * dim, (r + 1) * dim), i * dim);
  }
  return out;
}

/** Rows per block of {@link poolBlocks} by default: ~400 MB of float32 image and caption rows at d = 512. */
export const POOL_BLOCK_ROWS = 100_000;

/**
 * The embedded pool a block of whole catalog parts at a time (parts in catalog order, grouped until a
 * block holds about `rowsPerBlock` rows; rows in id order inside a block): what a pass over a pool
 * larger than memory reads. Memory follows the block, not the pool. `expectedRows` is the embedded
 * count before non-finite rows are left out (blocks leave them out as loadEmbeddings does).
 */
export async function poolBlocks(
  catalog: Catalog,
  workspace: string,
  rowsPerBlock = POOL_BLOCK_ROWS,
): Promise<{ expectedRows: number; blocks: () => AsyncGenerator<WorkspaceEmbeddings> }> {
  const store = await EmbeddingStore.read(embeddingsDir(path.resolve(workspace)));
  const rowsOf = await embeddedRowsPerPart(catalog, store.meta.encoder.fingerprint);
  const groups: Array<Set<string>> = [];
  let rows = 0;
  let expectedRows = 0;
  for (const p of await listParts(catalog)) {
    const part = `${p.dataset_id}:${p.path}`;
    const n = rowsOf.get(part) ?? 0;
    if (n === 0) continue;
    if (groups.length === 0 || rows >= rowsPerBlock) {
      groups.push(new Set());
      rows = 0;
    }
    groups.at(-1)!.add(part);
    rows += n;
    expectedRows += n;
  }
  if (expectedRows === 0) throw new Error(`no embeddings in ${store.dir}: run curate embed first`);
  return {
    expectedRows,
    async *blocks() {
      for (const parts of groups) yield await loadEmbeddings(catalog, workspace, { only: { parts } });
    },
  };
}

/** Embedded rows of each catalog part (`<dataset id>:<part path>`) under the encoder `fingerprint`. */
export async function embeddedRowsPerPart(
  catalog: Catalog,
  fingerprint: string,
): Promise<Map<string, number>> {
  const counted = await catalog.rows<{ part: string; rows: number | bigint }>(
    `SELECT s.dataset_id || ':' || s.part AS part, count(*) AS rows
     FROM ${EMBEDDED_SAMPLES} GROUP BY 1`,
    { fp: fingerprint },
  );
  return new Map(counted.map((r) => [r.part, Number(r.rows)]));
}
