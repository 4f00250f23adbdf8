/**
 * Row maps beside each embedding shard, so the `.npy` files can be used without DuckDB (as
 * clip-retrieval writes a metadata parquet beside each embedding file):
 *
 *   <shard>.keys.csv      RFC 4180 CSV, a header line, one line per `.npy` row, in row order
 *   <shard>.keys.parquet  the same table (DuckDB types below)
 *
 * Columns: `row` (0-based row of `<shard>.image.npy` and `<shard>.text.npy`), `sample_id` (catalog id),
 * `key` (catalog key), `caption`, `dataset` (catalog dataset name), `part` (the source shard, manifest
 * or folder), `file` (the file holding the image: the tar shard, the image file, the manifest),
 * `member` (tar member of the image, else empty) and `source_row` (0-based manifest row, else empty).
 *
 * Written after the catalog records the shard, each under a temporary name, synced and renamed; a
 * shard whose maps are missing (a run killed in between, a workspace from before row maps) gets them on
 * the next `curate embed`, and `embedPart` removes them before a shard is written again.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { syncDir, WriteError, writeFileAtomic } from '../io/atomic.js';
import type { EmbeddingStore } from '../embed/store.js';
import type { Catalog } from './catalog.js';

export const ROW_MAP_COLUMNS = [
  'row',
  'sample_id',
  'key',
  'caption',
  'dataset',
  'part',
  'file',
  'member',
  'source_row',
] as const;

const ROWS_SQL = `
  SELECT e."row"::INTEGER AS "row", s.id AS sample_id, s.key, s.caption, d.name AS dataset, s.part,
         coalesce(s.image_path, s.file) AS file, s.member, s.row_index AS source_row
  FROM embeddings e JOIN samples s ON s.id = e.sample_id JOIN datasets d ON d.id = s.dataset_id
  WHERE e.shard = $shard ORDER BY e."row"`;

function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** Write both row maps of a shard the catalog has recorded (see the module comment). */
export async function writeRowMaps(catalog: Catalog, store: EmbeddingStore, shard: string): Promise<void> {
  const rows = await catalog.rows<Record<(typeof ROW_MAP_COLUMNS)[number], unknown>>(ROWS_SQL, { shard });
  const csv = stringifyCsv(
    rows.map((r) => ROW_MAP_COLUMNS.map((c) => (typeof r[c] === 'bigint' ? String(r[c]) : r[c]))),
    { header: true, columns: [...ROW_MAP_COLUMNS], record_delimiter: '\r\n' },
  );
  await writeFileAtomic(store.rowMapFile(shard, 'csv'), csv);

  const target = store.rowMapFile(shard, 'parquet');
  const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    // DuckDB writes the file; it is synced here before the rename, as writeFileAtomic does.
    await catalog.connection.run(
      `COPY (${ROWS_SQL.replace('$shard', () => sqlString(shard))}) TO ${sqlString(tmp)} (FORMAT PARQUET)`,
    );
    const handle = await open(tmp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
    await syncDir(store.dir);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new WriteError(target, (err as NodeJS.ErrnoException).code, err);
  }
}
