import { createHash } from 'node:crypto';
import { checkImage, type ImageInfo } from '../embed/imageCheck.js';
import {
  DatasetError,
  ImageLoadError,
  openDataset,
  type DatasetPart,
  type DatasetReader,
  type ReaderOptions,
  type ReadItem,
  type Sample,
  type SampleIssue,
  type SourceLocation,
} from '../embed/readers/index.js';
import type { Catalog, DatasetRecord, IssueCount } from './catalog.js';

export interface IngestProgress {
  dataset: string;
  part: string;
  partIndex: number;
  parts: number;
  /** Source bytes of all parts read or skipped so far, including the current one's progress. */
  bytesDone: number;
  bytesTotal: number;
  samples: number;
  issues: number;
}

export interface AddDatasetOptions extends ReaderOptions {
  signal?: AbortSignal;
  onProgress?: (progress: IngestProgress) => void;
  /** Resolve relative specs against this folder (default: the process's). */
  cwd?: string;
}

export interface IngestReport {
  dataset: DatasetRecord;
  partsRead: number;
  /** Parts already in the catalog with the same size and mtime. */
  partsUnchanged: number;
  /** Parts recorded earlier whose files are gone now; their samples were removed. */
  partsRemoved: number;
  /** Samples kept from the parts read in this run. */
  samplesRead: number;
  /** Samples of this dataset in the catalog after the run. */
  samples: number;
  issues: IssueCount[];
  /** Byte-identical images among this dataset's samples (same SHA-256 of the image file). */
  exactDuplicates: ExactDuplicates;
  seconds: number;
}

export interface ExactDuplicates {
  /** Samples whose image is a byte-identical copy of an earlier sample's (one per group is not counted). */
  copies: number;
  /** Groups of two or more samples sharing one image. */
  groups: number;
}

/** How many samples' images are loaded at once (folder and manifest readers read files lazily). */
const LOAD_WINDOW = 32;

/**
 * Read a dataset into the catalog: the read → catalog step of the pipeline. Idempotent (unchanged parts
 * are skipped) and resumable (each finished part is committed on its own). Bad samples become issues;
 * only a dataset with nothing usable throws, as a {@link DatasetError}.
 */
export async function addDataset(
  catalog: Catalog,
  spec: string,
  options: AddDatasetOptions = {},
): Promise<IngestReport> {
  try {
    return await ingest(catalog, spec, options);
  } catch (err) {
    throw asDatasetError(err, spec, options.signal);
  }
}

/**
 * A file-system error (a dangling link, a folder that cannot be listed, a file that vanished while
 * being read) concerns this dataset only: it becomes a {@link DatasetError} naming the spec and the
 * path, so a command that reads several datasets reports it and goes on with the others. Parts
 * committed before it are kept. Cancellation and internal failures pass through unchanged.
 */
function asDatasetError(err: unknown, spec: string, signal?: AbortSignal): unknown {
  if (signal?.aborted || err instanceof DatasetError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code)) return err;
  const where = (err as NodeJS.ErrnoException).path;
  return new DatasetError(
    `cannot read '${spec}'${where ? ` (${where})` : ''}: ${(err as Error).message}; ` +
      'parts read before this are kept, run the same command again once it is fixed',
  );
}

async function ingest(catalog: Catalog, spec: string, options: AddDatasetOptions): Promise<IngestReport> {
  const started = performance.now();
  const opened = await openDataset(spec, options, options.cwd);
  const optionsKey = JSON.stringify({ format: opened.reader.format, columns: options.columns ?? {} });
  const dataset =
    (await catalog.findDataset(opened.canonicalSpec, optionsKey)) ??
    (await catalog.createDataset(
      opened.suggestedName,
      opened.canonicalSpec,
      opened.reader.format,
      optionsKey,
    ));

  await catalog.recordDatasetIssues(
    dataset.id,
    opened.missing.map((file) => ({
      kind: 'missing-file',
      severity: 'error',
      file,
      reason: `'${spec}' names ${file}, which does not exist`,
    })),
  );

  const parts = await opened.reader.parts();
  const finished = await catalog.finishedParts(dataset.id);
  const current = new Set(parts.map((p) => p.path));
  let partsRemoved = 0;
  for (const old of finished.keys()) {
    if (!current.has(old)) {
      await catalog.forgetPart(dataset.id, old);
      partsRemoved += 1;
    }
  }

  const bytesTotal = parts.reduce((sum, p) => sum + p.size, 0);
  let bytesDone = 0;
  let partsRead = 0;
  let samplesRead = 0;
  for (const [partIndex, part] of parts.entries()) {
    options.signal?.throwIfAborted();
    const done = finished.get(part.path);
    if (done && done.size === part.size && done.mtimeMs === part.mtimeMs) {
      bytesDone += part.size;
      continue;
    }
    const progress: IngestProgress = {
      dataset: dataset.name,
      part: part.path,
      partIndex,
      parts: parts.length,
      bytesDone,
      bytesTotal,
      samples: 0,
      issues: 0,
    };
    options.onProgress?.(progress);
    const kept = await readPart(
      catalog,
      opened.reader,
      dataset,
      part,
      options,
      (partBytes, samples, issues) => {
        options.onProgress?.({
          ...progress,
          bytesDone: bytesDone + Math.min(partBytes, part.size),
          samples,
          issues,
        });
      },
    );
    bytesDone += part.size;
    partsRead += 1;
    samplesRead += kept.samples;
  }

  const summary = (await catalog.summary()).datasets.find((d) => d.id === dataset.id)!;
  const issues = await catalog.rows<IssueCount>(
    `SELECT kind, severity, count(*)::INTEGER AS count FROM issues WHERE dataset_id = $id
     GROUP BY ALL ORDER BY count DESC, kind`,
    { id: dataset.id },
  );
  if (summary.samples === 0) {
    const what = issues.length
      ? `; issues: ${issues.map((i) => `${i.count} ${i.kind}`).join(', ')}`
      : ' (no image-caption pairs found)';
    throw new DatasetError(`no usable samples in '${spec}'${what}`);
  }
  return {
    dataset,
    partsRead,
    partsUnchanged: parts.length - partsRead,
    partsRemoved,
    samplesRead,
    samples: summary.samples,
    issues,
    exactDuplicates: await exactDuplicatesOf(catalog, dataset.id),
    seconds: (performance.now() - started) / 1000,
  };
}

/** Byte-identical images within one dataset, by content hash. */
export async function exactDuplicatesOf(catalog: Catalog, datasetId: number): Promise<ExactDuplicates> {
  const [row] = await catalog.rows<{ copies: number | null; groups: number }>(
    `SELECT sum(n - 1)::INTEGER AS copies, count(*)::INTEGER AS groups FROM (
       SELECT count(*) AS n FROM samples WHERE dataset_id = $id AND content_hash IS NOT NULL
       GROUP BY content_hash HAVING count(*) > 1)`,
    { id: datasetId },
  );
  return { copies: row?.copies ?? 0, groups: row?.groups ?? 0 };
}

async function readPart(
  catalog: Catalog,
  reader: DatasetReader,
  dataset: DatasetRecord,
  part: DatasetPart,
  options: AddDatasetOptions,
  onProgress: (partBytes: number, samples: number, issues: number) => void,
): Promise<{ samples: number; issues: number }> {
  const writer = await catalog.beginPart();
  let partBytes = 0;
  let samples = 0;
  let issues = 0;
  let window: ReadItem[] = [];
  const flush = async () => {
    const checked = await Promise.all(
      window.map((item) => (item.type === 'sample' ? inspect(item.sample) : item.issue)),
    );
    for (const result of checked) {
      if ('kind' in result) {
        writer.addIssue(result);
        issues += 1;
      } else {
        writer.addSample(result.sample, result.info, describeWhere(result.sample.location), result.hash);
        samples += 1;
      }
    }
    window = [];
    onProgress(partBytes, samples, issues);
  };
  try {
    const items = reader.read(part, {
      ...(options.signal ? { signal: options.signal } : {}),
      onBytes: (n) => (partBytes = n),
    });
    for await (const item of items) {
      window.push(item);
      if (window.length >= LOAD_WINDOW) await flush();
    }
    await flush();
  } catch (err) {
    writer.discard();
    throw err;
  }
  return writer.commit(dataset, part);
}

/** Load and check one sample's image; problems come back as the issue to record. */
async function inspect(
  sample: Sample,
): Promise<{ sample: Sample; info: ImageInfo; hash: string } | SampleIssue> {
  const at = { file: sample.location.imagePath ?? sample.location.file, key: sample.key };
  const where = describeWhere(sample.location);
  let bytes: Buffer;
  try {
    bytes = await sample.image();
  } catch (err) {
    const kind = err instanceof ImageLoadError ? err.kind : 'unreadable-file';
    return { kind, severity: 'error', ...at, ...(where ? { where } : {}), reason: (err as Error).message };
  }
  const check = checkImage(bytes);
  if (!check.ok)
    return { kind: check.kind, severity: 'error', ...at, ...(where ? { where } : {}), reason: check.reason };
  // SHA-256 of the file's bytes (~2 µs per 10 KB with SHA-NI), for exact de-duplication.
  return { sample, info: check.info, hash: createHash('sha256').update(bytes).digest('hex') };
}

/** Member, line or row of a sample, as the issue list shows it. */
export function describeWhere(loc: SourceLocation): string | undefined {
  if (loc.member) return loc.member;
  if (loc.line !== undefined) return `line ${loc.line}`;
  return loc.row !== undefined ? `row ${loc.row}` : undefined;
}
