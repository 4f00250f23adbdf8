/**
 * Manifests (JSONL, CSV, parquet): one row per exported pick, in pick order, pointing at the source
 * (the images are not copied). Also keys.txt and weights.txt.
 */
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import type { Catalog } from '../catalog.js';
import { isLineSafe } from './names.js';
import type { ExportFolder } from './output.js';
import { pickFields, sourceFields, type Pick } from './plan.js';
import type { ExportedFile } from './types.js';

/** Manifest columns in order, with their parquet (DuckDB) types. */
export const MANIFEST_COLUMNS = {
  rank: 'BIGINT',
  key: 'VARCHAR',
  name: 'VARCHAR',
  weight: 'DOUBLE',
  weight_raw: 'DOUBLE',
  stage: 'INTEGER',
  caption: 'VARCHAR',
  dataset: 'VARCHAR',
  spec: 'VARCHAR',
  part: 'VARCHAR',
  file: 'VARCHAR',
  member: 'VARCHAR',
  row: 'BIGINT',
  image_path: 'VARCHAR',
  image_format: 'VARCHAR',
  width: 'INTEGER',
  height: 'INTEGER',
  image_bytes: 'BIGINT',
  metadata: 'VARCHAR',
} as const;

export type ManifestColumn = keyof typeof MANIFEST_COLUMNS;
const COLUMNS = Object.keys(MANIFEST_COLUMNS) as ManifestColumn[];

export function manifestRow(p: Pick): Record<ManifestColumn, unknown> {
  const r = p.row;
  return {
    ...pickFields(p),
    caption: r.caption,
    ...sourceFields(r),
    image_format: r.image_format,
    width: r.width,
    height: r.height,
    image_bytes: r.image_bytes,
    // Kept as JSON text in CSV and parquet; an object in JSONL.
    metadata: JSON.parse(r.metadata) as unknown,
  };
}

function jsonLines(picks: Pick[], metadataAsText: boolean): string {
  let out = '';
  for (const p of picks) {
    const row = manifestRow(p);
    if (metadataAsText) row.metadata = JSON.stringify(row.metadata);
    out += JSON.stringify(row) + '\n';
  }
  return out;
}

/** RFC 4180 CSV (csv-stringify): a header line, CRLF line ends, null as an empty field, metadata as JSON text. */
export function csvText(picks: Pick[]): string {
  const rows = picks.map((p) => {
    const row = manifestRow(p);
    return COLUMNS.map((c) => {
      const value = row[c];
      return value !== null && typeof value === 'object' ? JSON.stringify(value) : value;
    });
  });
  return stringifyCsv(rows, { header: true, columns: COLUMNS, record_delimiter: '\r\n' });
}

function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export async function writeManifest(
  catalog: Catalog,
  folder: ExportFolder,
  format: 'jsonl' | 'csv' | 'parquet',
  picks: Pick[],
): Promise<ExportedFile> {
  const name = `manifest.${format}`;
  if (format === 'jsonl')
    return { ...(await folder.writeFile(name, jsonLines(picks, false))), samples: picks.length };
  if (format === 'csv') return { ...(await folder.writeFile(name, csvText(picks))), samples: picks.length };
  // Parquet: DuckDB converts a temporary JSONL with fixed column types, in rank order.
  const tmp = '.manifest-for-parquet.jsonl';
  await folder.writeFile(tmp, jsonLines(picks, true));
  const columns = COLUMNS.map((c) => `${c}: '${MANIFEST_COLUMNS[c]}'`).join(', ');
  await catalog.connection.run(
    `COPY (SELECT * FROM read_json(${sqlString(folder.stagedPath(tmp))}, format = 'newline_delimited',
             columns = {${columns}}) ORDER BY rank)
     TO ${sqlString(folder.stagedPath(name))} (FORMAT PARQUET)`,
  );
  return { ...(await folder.describe(name)), samples: picks.length };
}

/**
 * keys.txt: one catalog key per line in pick order. A key holding a line break or NUL cannot be one
 * line; its export name (decodeURIComponent gives the key back) stands in and is listed in `renamed`.
 */
export async function writeKeys(
  folder: ExportFolder,
  picks: Pick[],
): Promise<{ file: ExportedFile; renamed: Array<{ key: string; name: string }> }> {
  const renamed: Array<{ key: string; name: string }> = [];
  let text = '';
  for (const p of picks) {
    if (isLineSafe(p.key)) text += p.key + '\n';
    else {
      renamed.push({ key: p.key, name: p.name });
      text += p.name + '\n';
    }
  }
  return { file: { ...(await folder.writeFile('keys.txt', text)), samples: picks.length }, renamed };
}

/** weights.txt: the mean-1 loss weight of each exported sample, one a line, in export order. */
export async function writeWeights(folder: ExportFolder, picks: Pick[]): Promise<ExportedFile> {
  const text = picks.map((p) => `${p.weight}\n`).join('');
  return { ...(await folder.writeFile('weights.txt', text)), samples: picks.length };
}
