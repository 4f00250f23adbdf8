import path from 'node:path';
import { EmbeddingStore } from '../embed/store.js';
import type { SelectInput } from '../select/contract.js';
import type { Catalog } from './catalog.js';
import { embeddingsDir, storeDir } from './embed.js';

/** Every embedded sample of the workspace, in catalog order, as the selectors' input. */
export interface WorkspaceEmbeddings extends SelectInput {
  /** Catalog sample id of each row. */
  ids: BigInt64Array;
  encoder: { name: string; fingerprint: string };
}

/**
 * Load the workspace's embeddings shard by shard into two n × dim matrices (image, text), rows in catalog
 * id order. Labels come from a metadata field when asked (e.g. `label_index` or `cls`).
 */
export async function loadEmbeddings(
  catalog: Catalog,
  workspace: string,
  options: { labelField?: string; views?: string } = {},
): Promise<WorkspaceEmbeddings> {
  const store = await EmbeddingStore.read(embeddingsDir(path.resolve(workspace)));
  const dim = store.meta.encoder.dim;
  const labelSql = options.labelField ? `(s.metadata->>$field)::INTEGER` : 'NULL::INTEGER';
  const rows = await catalog.rows<{
    id: bigint;
    shard: string;
    row: number;
    label: number | null;
    part: string;
    bytes: number | bigint;
  }>(
    `SELECT s.id, e.shard, e."row", ${labelSql} AS label, s.dataset_id || ':' || s.part AS part,
            s.image_bytes + strlen(s.caption) AS bytes
     FROM embeddings e JOIN samples s ON s.id = e.sample_id
     JOIN embedding_shards es ON es.shard = e.shard AND es.fingerprint = $fp ORDER BY s.id`,
    { fp: store.meta.encoder.fingerprint, ...(options.labelField ? { field: options.labelField } : {}) },
  );
  const n = rows.length;
  if (n === 0) throw new Error(`no embeddings in ${store.dir}: run curate embed first`);
  const image = new Float32Array(n * dim);
  const text = new Float32Array(n * dim);
  const byShard = new Map<string, Array<[number, number]>>();
  rows.forEach((r, i) => {
    const list = byShard.get(r.shard) ?? [];
    list.push([i, r.row]);
    byShard.set(r.shard, list);
  });
  for (const [shard, list] of byShard) {
    const img = await store.readShard(shard, 'image');
    const txt = await store.readShard(shard, 'text');
    for (const [i, r] of list) {
      image.set(img.data.subarray(r * dim, (r + 1) * dim), i * dim);
      text.set(txt.data.subarray(r * dim, (r + 1) * dim), i * dim);
    }
  }
  const labels = options.labelField ? Int32Array.from(rows, (r) => r.label ?? -1) : undefined;
  if (labels?.some((l) => l < 0))
    throw new Error(`metadata field '${options.labelField}' is missing or not an integer for some samples`);
  const imageViews = options.views
    ? await loadViews(catalog, storeDir(path.resolve(workspace), options.views), rows, dim)
    : undefined;
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
  };
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
