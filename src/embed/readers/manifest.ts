import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { parse as parseCsv, type CsvError } from 'csv-parse';
import {
  countingReadStream,
  isRemoteUrl,
  keyFromPath,
  partOfPath,
  readImageFile,
  statRegularFile,
} from './files.js';
import {
  ImageLoadError,
  issue,
  type DatasetFormat,
  type DatasetPart,
  type DatasetReader,
  type ManifestColumns,
  type ReadContext,
  type ReadItem,
} from './types.js';

type Row = Record<string, unknown>;
/** One row of a manifest, its 0-based data index and, for text formats, its 1-based line. */
interface LocatedRow {
  row: Row;
  index: number;
  line?: number;
}

const CANDIDATES = {
  image: [
    'image',
    'image_path',
    'path',
    'filepath',
    'file',
    'filename',
    'jpg',
    'jpeg',
    'png',
    'webp',
    'url',
    'image_url',
  ],
  caption: ['caption', 'txt', 'text', 'title', 'alt', 'description'],
  key: ['key', '__key__', 'id'],
} as const;

/**
 * CSV / TSV / JSONL / parquet manifests: one row per sample, with a path-or-URL (or bytes) column and a
 * caption column. Paths are relative to the manifest's folder. The img2dataset parquet layout (`key`,
 * `jpg` bytes, `txt`, `url`, `status`, `error_message`, `width`, `height`, …) reads with no options.
 * Each manifest file is one part.
 */
export class ManifestReader implements DatasetReader {
  constructor(
    readonly format: Extract<DatasetFormat, 'csv' | 'tsv' | 'jsonl' | 'parquet'>,
    private readonly files: string[],
    private readonly columns: ManifestColumns = {},
  ) {}

  async parts(): Promise<DatasetPart[]> {
    return Promise.all(this.files.map(partOfPath));
  }

  async *read(part: DatasetPart, ctx: ReadContext = {}): AsyncIterable<ReadItem> {
    const file = part.path;
    // A FIFO would block the parser forever and /dev/zero never ends: regular files only.
    try {
      await statRegularFile(file);
    } catch (err) {
      const kind = err instanceof ImageLoadError ? err.kind : 'unreadable-part';
      yield issue(kind, file, `manifest not read: ${(err as Error).message}`);
      return;
    }
    // CSV, TSV and parquet share one header; each JSON line may have its own fields.
    const perRow = this.format === 'jsonl';
    let layout: ColumnLayout | undefined;
    try {
      for await (const item of this.rows(file, ctx)) {
        ctx.signal?.throwIfAborted();
        if ('type' in item) {
          yield item;
          continue;
        }
        if (!layout || perRow) {
          // A JSON line without a caption field still has a key worth naming: rowToItems reports it.
          const names = Object.keys(item.row);
          const resolved = resolveLayout(
            perRow ? [...names, this.columns.caption ?? 'caption'] : names,
            this.columns,
          );
          if ('missing' in resolved) {
            if (!perRow) {
              yield issue('unreadable-part', file, resolved.message);
              return;
            }
            yield issue('missing-image', file, resolved.message, { where: `line ${item.line}` });
            continue;
          }
          layout = resolved;
        }
        yield* rowToItems(item, layout, file);
      }
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      yield issue('unreadable-part', file, `cannot read ${this.format} manifest: ${(err as Error).message}`);
    }
  }

  /** Rows as objects, interleaved with issues for rows that cannot be parsed. */
  private rows(file: string, ctx: ReadContext): AsyncIterable<LocatedRow | ReadItem> {
    switch (this.format) {
      case 'csv':
      case 'tsv':
        return csvRows(file, this.format === 'tsv', ctx);
      case 'jsonl':
        return jsonlRows(file, ctx);
      case 'parquet':
        return parquetRows(file);
    }
  }
}

async function* csvRows(file: string, tsv: boolean, ctx: ReadContext): AsyncIterable<LocatedRow | ReadItem> {
  const skipped: ReadItem[] = [];
  const parser = parseCsv({
    columns: true,
    bom: true,
    info: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    // TSV as written by most tools (CC3M, LAION dumps) has no quoting: a quote is just a character.
    ...(tsv ? { delimiter: '\t', quote: false } : {}),
    on_skip: (err: CsvError | undefined) => {
      if (err) skipped.push(issue('malformed-row', file, err.message, { where: `line ${err.lines}` }));
    },
  });
  countingReadStream(file, ctx.onBytes).pipe(parser);
  let index = 0;
  try {
    for await (const record of parser as AsyncIterable<{ record: Row; info: { lines: number } }>) {
      yield* skipped.splice(0);
      yield { row: record.record, index: index++, line: record.info.lines };
    }
  } catch (err) {
    yield* skipped.splice(0);
    // An unclosed quote swallows the rest of the file: say so and keep what was read.
    const e = err as CsvError;
    yield issue('malformed-row', file, `${e.message}; the rest of the file is skipped`, {
      where: `line ${e.lines ?? '?'}`,
    });
    return;
  }
  yield* skipped.splice(0);
}

async function* jsonlRows(file: string, ctx: ReadContext): AsyncIterable<LocatedRow | ReadItem> {
  const lines = createInterface({ input: countingReadStream(file, ctx.onBytes), crlfDelay: Infinity });
  let lineNo = 0;
  let index = 0;
  for await (const line of lines) {
    lineNo += 1;
    if (!line.trim()) continue;
    const where = `line ${lineNo}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (err) {
      yield issue('malformed-json', file, (err as Error).message, { where });
      continue;
    }
    if (!row || typeof row !== 'object' || Array.isArray(row)) {
      yield issue('malformed-json', file, 'line is JSON but not an object', { where });
      continue;
    }
    yield { row: row as Row, index: index++, line: lineNo };
  }
}

async function* parquetRows(file: string): AsyncIterable<LocatedRow> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const result = await connection.stream('SELECT * FROM read_parquet($file)', { file });
    let index = 0;
    for await (const batch of result.yieldRowObjectJs()) {
      for (const row of batch) {
        yield { row, index };
        index += 1;
      }
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

interface ColumnLayout {
  image: string;
  caption: string;
  key?: string;
  /** img2dataset: where the original URL and download status live, for remote-image errors. */
  url?: string;
  status?: string;
  errorMessage?: string;
}

type LayoutProblem = { missing: keyof ManifestColumns; message: string };

function resolveLayout(names: string[], wanted: ManifestColumns): ColumnLayout | LayoutProblem {
  const has = new Set(names);
  const listed = `columns: ${names.join(', ')}`;
  const find = (role: keyof ManifestColumns): string | LayoutProblem | undefined => {
    const explicit = wanted[role];
    const name = explicit ?? CANDIDATES[role].find((c) => has.has(c));
    if (name && has.has(name)) return name;
    if (role === 'key' && !explicit) return undefined;
    const tried = explicit ? `'${explicit}'` : `(tried ${CANDIDATES[role].join(', ')})`;
    return { missing: role, message: `no ${role} column ${tried}; set the ${role} column (${listed})` };
  };
  const image = find('image');
  const caption = find('caption');
  const key = find('key');
  for (const found of [image, caption, key]) if (typeof found === 'object') return found;
  return {
    image: image as string,
    caption: caption as string,
    ...(key ? { key: key as string } : {}),
    ...(has.has('url') && image !== 'url' ? { url: 'url' } : {}),
    ...(has.has('status') ? { status: 'status' } : {}),
    ...(has.has('error_message') ? { errorMessage: 'error_message' } : {}),
  };
}

function* rowToItems(
  { row, index, line }: LocatedRow,
  layout: ColumnLayout,
  file: string,
): Generator<ReadItem> {
  const dir = path.dirname(file);
  const value = row[layout.image];
  const keyValue = layout.key ? row[layout.key] : undefined;
  const bytes =
    value instanceof Uint8Array ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : undefined;
  const ref = typeof value === 'string' ? value.trim() : '';
  const key =
    keyValue !== undefined && keyValue !== null && String(keyValue) !== ''
      ? String(keyValue)
      : ref && !isRemoteUrl(ref)
        ? keyFromPath(path.resolve(dir, ref), dir)
        : `row${String(index).padStart(8, '0')}`;
  const at = { key, where: line === undefined ? `row ${index}` : `line ${line}` };

  const url = layout.url ? row[layout.url] : undefined;
  if (!bytes && (isRemoteUrl(ref) || (!ref && typeof url === 'string' && url))) {
    const status = layout.status ? row[layout.status] : undefined;
    const failure = layout.errorMessage ? row[layout.errorMessage] : undefined;
    const detail =
      status && status !== 'success' ? ` (img2dataset status ${status}${failure ? `: ${failure}` : ''})` : '';
    yield issue('remote-image', file, `remote image: download it first: ${ref || url}${detail}`, at);
    return;
  }
  if (!bytes && !ref) {
    yield issue('missing-image', file, `empty image column '${layout.image}'`, at);
    return;
  }

  const captionValue = row[layout.caption];
  const caption = captionValue === null || captionValue === undefined ? '' : String(captionValue).trim();
  if (!caption) {
    yield issue('missing-caption', file, `empty caption column '${layout.caption}'`, at);
    return;
  }
  // Text manifests are decoded as UTF-8 by their parsers, which replace invalid bytes with U+FFFD.
  if (caption.includes('\uFFFD')) {
    yield issue('invalid-utf8', file, 'caption has bytes that are not UTF-8 (replaced by U+FFFD)', {
      ...at,
      severity: 'warning',
    });
  }

  const metadata: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(row)) {
    if (name === layout.image || name === layout.caption || name === layout.key) continue;
    if (v instanceof Uint8Array) continue;
    metadata[name] = typeof v === 'bigint' ? Number(v) : v instanceof Date ? v.toISOString() : v;
  }
  const imagePath = bytes
    ? undefined
    : path.resolve(dir, ref.startsWith('file://') ? fileURLToPath(ref) : ref);
  yield {
    type: 'sample',
    sample: {
      key,
      caption,
      image: bytes ? async () => bytes : () => readImageFile(imagePath!),
      metadata,
      location: {
        file,
        row: index,
        ...(line === undefined ? {} : { line }),
        ...(imagePath ? { imagePath } : {}),
      },
    },
  };
}
