import { stat } from 'node:fs/promises';
import path from 'node:path';
import { expandSpec } from './files.js';
import { FolderReader } from './folder.js';
import { ManifestReader } from './manifest.js';
import { expandPipeSpec, isPipeSpec, pipeDatasetName } from './pipe.js';
import { DatasetError, type DatasetFormat, type DatasetReader, type ReaderOptions } from './types.js';
import { WebDatasetReader } from './webdataset.js';

export * from './types.js';
export { checkImage } from '../imageCheck.js';

/** File extension → format. Order matters: `.tar.gz` before `.gz`-less names. */
const EXTENSION_FORMATS: ReadonlyArray<[RegExp, DatasetFormat]> = [
  [/\.(tar|tar\.gz|tgz)$/i, 'webdataset'],
  [/\.csv$/i, 'csv'],
  [/\.(tsv|tab)$/i, 'tsv'],
  [/\.(jsonl|ndjson)$/i, 'jsonl'],
  [/\.parquet$/i, 'parquet'],
];

export const SUPPORTED_INPUTS =
  'WebDataset shards (.tar, .tar.gz, .tgz; globs and {000..010} ranges; remote ones as ' +
  "'pipe:COMMAND'), image folders, and .csv/.tsv/.jsonl/.parquet manifests";

export function formatOfFile(file: string): DatasetFormat | undefined {
  return EXTENSION_FORMATS.find(([re]) => re.test(file))?.[1];
}

export interface OpenedDataset {
  reader: DatasetReader;
  /** Absolute, expanded form of the spec: identifies the dataset in the catalog. */
  canonicalSpec: string;
  /** Short human name, used to namespace clashing keys. */
  suggestedName: string;
  /** Paths the spec names that do not exist (reported, not fatal while others exist). */
  missing: string[];
}

/** Resolve a user's dataset spec (path, glob, brace range or `pipe:` command) to the reader for its format. */
export async function openDataset(
  spec: string,
  options: ReaderOptions = {},
  cwd = process.cwd(),
): Promise<OpenedDataset> {
  if (isPipeSpec(spec)) return openPipeDataset(spec);
  const { paths, missing } = await expandSpec(spec, cwd);
  if (paths.length === 0) {
    throw new DatasetError(
      `no files match '${spec}' (${missing.length ? `not found: ${missing[0]}` : 'empty glob'})`,
    );
  }
  const canonicalSpec = path.resolve(cwd, spec);
  const directories = (
    await Promise.all(
      // A dangling link (a glob can match one) is not a folder: its reader reports it as an issue.
      paths.map(async (p) => ((await stat(p).catch(() => undefined))?.isDirectory() ? p : undefined)),
    )
  ).filter((p): p is string => !!p);
  if (directories.length > 0) {
    if (paths.length > 1) {
      throw new DatasetError(`'${spec}' mixes folders and files; give one image folder or a set of files`);
    }
    const root = directories[0]!;
    return { reader: new FolderReader(root), canonicalSpec, suggestedName: path.basename(root), missing };
  }

  const formats = new Set(paths.map((p) => formatOfFile(p)));
  if (formats.has(undefined)) {
    const odd = paths.find((p) => !formatOfFile(p))!;
    throw new DatasetError(`unsupported file '${odd}': expected ${SUPPORTED_INPUTS}`);
  }
  if (formats.size > 1) {
    throw new DatasetError(
      `'${spec}' matches files of several formats (${[...formats].join(', ')}); add them separately`,
    );
  }
  const format = [...formats][0] as Exclude<DatasetFormat, 'folder'>;
  const suggestedName =
    paths.length === 1
      ? path.basename(paths[0]!).replace(/\..*$/, '')
      : path.basename(path.dirname(paths[0]!));
  const reader =
    format === 'webdataset'
      ? new WebDatasetReader(paths)
      : new ManifestReader(format, paths, options.columns);
  return { reader, canonicalSpec, suggestedName, missing };
}

/**
 * `pipe:COMMAND` shards (pipe.ts): one part per expanded command, read as WebDataset tar streams. The
 * spec is kept as written (it is a command line, not a path to resolve).
 */
function openPipeDataset(spec: string): OpenedDataset {
  const commands = expandPipeSpec(spec);
  if (commands.length === 0) throw new DatasetError(`'${spec}' names no command after 'pipe:'`);
  return {
    reader: new WebDatasetReader(commands),
    canonicalSpec: spec.trim(),
    suggestedName: pipeDatasetName(commands[0]!),
    missing: [],
  };
}

/** The reader for one recorded part of a catalogued dataset (to stream its samples again). */
export function readerForPart(
  format: DatasetFormat,
  partPath: string,
  options: ReaderOptions = {},
): DatasetReader {
  switch (format) {
    case 'webdataset':
      return new WebDatasetReader([partPath]);
    case 'folder':
      return new FolderReader(partPath);
    default:
      return new ManifestReader(format, [partPath], options.columns);
  }
}
