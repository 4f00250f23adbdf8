/**
 * Manifests (JSONL, CSV, parquet): one row per exported pick, in pick order, pointing at the source
 * (the images are not copied). Also keys.txt and weights.txt.
 *
 * The three formats hold the same columns with the same types ({@link MANIFEST_COLUMNS}), whatever the
 * values happen to be: `weight` and `weight_raw` are written as floats (`1.0`, never `1`) so readers
 * that infer types (pandas, DuckDB, pyarrow) make them float columns even when every weight is 1;
 * `metadata` and `members` are JSON text (a string holding JSON) in every format, as CSV can hold
 * nothing else and a parquet struct cannot hold per-row keys.
 */
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import type { Catalog } from '../catalog.js';
import { isLineSafe } from './names.js';
import type { ExportFolder } from './output.js';
import { pickFields, sourceFields, type Pick } from './plan.js';
import type { ExportedFile } from './types.js';

/**
 * Manifest columns in order, with their parquet (DuckDB) types. Whole numbers are all BIGINT and
 * fractions DOUBLE: the types readers infer from JSONL and CSV, so the three formats agree.
 */
export const MANIFEST_COLUMNS = {
  rank: 'BIGINT',
  key: 'VARCHAR',
  name: 'VARCHAR',
  weight: 'DOUBLE',
  weight_raw: 'DOUBLE',
  stage: 'BIGINT',
  caption: 'VARCHAR',
  dataset: 'VARCHAR',
  spec: 'VARCHAR',
  part: 'VARCHAR',
  file: 'VARCHAR',
  member: 'VARCHAR',
  row: 'BIGINT',
  image_source: 'VARCHAR',
  image_path: 'VARCHAR',
  image_offset: 'BIGINT',
  image_format: 'VARCHAR',
  width: 'BIGINT',
  height: 'BIGINT',
  image_bytes: 'BIGINT',
  members: 'VARCHAR',
  metadata: 'VARCHAR',
} as const;

export type ManifestColumn = keyof typeof MANIFEST_COLUMNS;
const COLUMNS = Object.keys(MANIFEST_COLUMNS) as ManifestColumn[];
/** Columns written as floats even when integral. */
const FLOAT_COLUMNS = new Set<string>(COLUMNS.filter((c) => MANIFEST_COLUMNS[c] === 'DOUBLE'));

/**
 * A manifest row. `image_offset`: where the image's bytes start in an uncompressed tar `file`;
 * `members`: every member of the tar sample, the image included (`[{"name", "offset", "size"}]`), as
 * JSON text; both null for gzip shards (`image_source` `tar.gz`) and for other sources.
 */
export function manifestRow(p: Pick): Record<ManifestColumn, unknown> {
  const r = p.row;
  const located = p.source.kind === 'tar' ? p.source.located : undefined;
  return {
    ...pickFields(p),
    caption: r.caption,
    ...sourceFields(r),
    image_offset: located?.offset ?? null,
    image_format: r.image_format,
    width: r.width,
    height: r.height,
    image_bytes: r.image_bytes,
    members: located ? JSON.stringify(located.members) : null,
    // The catalog's JSON text, as it is (not parsed and re-serialised).
    metadata: r.metadata,
  };
}

/** A number as JSON that reads back as a float: `1` → `1.0` (`1e+21` and fractions are floats already). */
export function floatJson(value: number): string {
  const text = JSON.stringify(value);
  return /^-?\d+$/.test(text) ? `${text}.0` : text;
}

/**
 * A flat object as JSON text, with the given keys' numbers written as floats ({@link floatJson}); keys
 * whose value is undefined are left out, as JSON.stringify does.
 */
export function jsonObjectText(
  row: Record<string, unknown>,
  floats: ReadonlySet<string> = FLOAT_COLUMNS,
): string {
  const fields: string[] = [];
  for (const [key, value] of Object.entries(row)) {
    if (value === undefined) continue;
    const text = floats.has(key) && typeof value === 'number' ? floatJson(value) : JSON.stringify(value);
    fields.push(`${JSON.stringify(key)}:${text}`);
  }
  return `{${fields.join(',')}}`;
}

function jsonLines(picks: Pick[]): string {
  let out = '';
  for (const p of picks) out += jsonObjectText(manifestRow(p)) + '\n';
  return out;
}

/** RFC 4180 CSV (csv-stringify): a header line, CRLF line ends, null as an empty field, floats as `1.0`. */
export function csvText(picks: Pick[]): string {
  const rows = picks.map((p) => {
    const row = manifestRow(p);
    return COLUMNS.map((c) => {
      const value = row[c];
      return FLOAT_COLUMNS.has(c) && typeof value === 'number' ? floatJson(value) : value;
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
    return { ...(await folder.writeFile(name, jsonLines(picks))), samples: picks.length };
  if (format === 'csv') return { ...(await folder.writeFile(name, csvText(picks))), samples: picks.length };
  // Parquet: DuckDB converts a temporary JSONL with fixed column types, in rank order.
  const tmp = '.manifest-for-parquet.jsonl';
  await folder.writeFile(tmp, jsonLines(picks));
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
  const text = picks.map((p) => `${floatJson(p.weight)}\n`).join('');
  return { ...(await folder.writeFile('weights.txt', text)), samples: picks.length };
}
