import path from 'node:path';
import { EmbeddingStore } from '../embed/store.js';
import type { SelectInput } from '../select/contract.js';
import type { Catalog } from './catalog.js';
import { embeddingsDir } from './embed.js';

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
  options: { labelField?: string } = {},
): Promise<WorkspaceEmbeddings> {
  const store = await EmbeddingStore.read(embeddingsDir(path.resolve(workspace)));
  const dim = store.meta.encoder.dim;
  const labelSql = options.labelField ? `(s.metadata->>$field)::INTEGER` : 'NULL::INTEGER';
  const rows = await catalog.rows<{ id: bigint; shard: string; row: number; label: number | null }>(
    `SELECT s.id, e.shard, e."row", ${labelSql} AS label FROM embeddings e JOIN samples s ON s.id = e.sample_id
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
  return {
    n,
    dim,
    image,
    text,
    ...(labels ? { labels } : {}),
    ids: BigInt64Array.from(rows, (r) => BigInt(r.id)),
    encoder: { name: store.meta.encoder.name, fingerprint: store.meta.encoder.fingerprint },
  };
}
