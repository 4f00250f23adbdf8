/**
 * The one streaming interface every dataset format is read through.
 *
 * A dataset is a list of parts (tar shards, manifest files, or one image folder). Reading a part yields
 * samples and per-sample issues in source order; nothing a reader meets aborts the stream except a
 * cancelled `signal`. Parts are the unit of resume: the catalog records each finished part.
 */

/** Where a sample came from, precise enough to read its bytes again. */
export interface SourceLocation {
  /** Absolute path of the file that holds the sample (shard, manifest, or the image itself). */
  file: string;
  /** Tar member name of the image, for WebDataset shards. */
  member?: string;
  /** 0-based data row, for manifests. */
  row?: number;
  /** 1-based line, for text manifests (CSV/TSV/JSONL), as editors show it. */
  line?: number;
  /** Absolute path of the image file, when it differs from `file` (manifests that reference images). */
  imagePath?: string;
}

/** Image bytes, loaded on demand: folder and manifest readers read the file only when asked. */
export type LazyBytes = () => Promise<Buffer>;

export interface Sample {
  /** Key as the source names it (WebDataset key, relative path without extension, or key column). */
  key: string;
  caption: string;
  image: LazyBytes;
  /** Extra fields: `cls`, the json member or sidecar, manifest columns. JSON-serialisable. */
  metadata: Record<string, unknown>;
  location: SourceLocation;
  /**
   * Every member of the sample as the archive holds it (WebDataset shards only): name and bytes, in
   * archive order, the image among them. Export copies them byte for byte.
   */
  members?: ReadonlyArray<{ name: string; bytes: Buffer }>;
}

export const ISSUE_KINDS = {
  'missing-file': 'a referenced image file does not exist',
  'unreadable-file': 'a file exists but cannot be read',
  'zero-byte-image': 'the image is empty (0 bytes)',
  'not-an-image': 'the bytes are not an image format we recognise',
  'truncated-image': 'the image ends before its end marker',
  'corrupt-image': 'the image header cannot be decoded',
  'remote-image': 'only a URL is given: download the image first (e.g. with img2dataset)',
  'missing-image': 'the sample has a caption but no image',
  'missing-caption': 'the sample has an image but no (or an empty) caption',
  'invalid-utf8': 'the caption is not valid UTF-8 (kept, with U+FFFD replacements)',
  'malformed-row': 'a CSV/TSV row cannot be parsed',
  'malformed-json': 'a JSON line, member or sidecar cannot be parsed',
  'duplicate-key': 'the key was already used by an earlier sample of the same dataset',
  'truncated-archive': 'the archive ends in the middle of a member; samples before it are kept',
  'unreadable-part': 'a whole part (shard or manifest) cannot be opened or parsed',
  'undecodable-image': 'the image passed the header check but cannot be decoded (found while embedding)',
  'not-a-file': 'a path is not a regular file (a folder, FIFO, device or socket, or a link to one): not read',
  'too-large': 'a file or tar member is larger than the per-file limit: not read',
  'skipped-member':
    'a tar member that is not part of a sample (hidden, __-prefixed or unsafe name, link, device)',
  'non-finite-embedding': 'the encoder gave the sample a NaN or infinite embedding (found while embedding)',
} as const;

export type IssueKind = keyof typeof ISSUE_KINDS;

/**
 * `error`: the sample is skipped. `warning`: the sample is kept and the issue recorded.
 */
export type Severity = 'error' | 'warning';

export interface SampleIssue {
  kind: IssueKind;
  severity: Severity;
  /** The file the problem is in (absolute path). */
  file: string;
  /** The sample's key, when one is known. */
  key?: string;
  /** Tar member, manifest line (1-based, as editors show it), … */
  where?: string;
  reason: string;
}

export type ReadItem = { type: 'sample'; sample: Sample } | { type: 'issue'; issue: SampleIssue };

export interface DatasetPart {
  /** Absolute path of the shard, manifest or folder. */
  path: string;
  /** Change detector: size and mtime of the file (folders: totals over their files). */
  size: number;
  mtimeMs: number;
}

export interface ReadContext {
  signal?: AbortSignal;
  /** Called with the number of source bytes consumed so far in this part. */
  onBytes?: (bytesSoFar: number) => void;
}

export type DatasetFormat = 'webdataset' | 'folder' | 'csv' | 'tsv' | 'jsonl' | 'parquet';

export interface DatasetReader {
  readonly format: DatasetFormat;
  parts(): Promise<DatasetPart[]>;
  read(part: DatasetPart, ctx?: ReadContext): AsyncIterable<ReadItem>;
}

/** Column names for manifest formats; each is detected from common names when left out. */
export interface ManifestColumns {
  image?: string;
  caption?: string;
  key?: string;
}

export interface ReaderOptions {
  columns?: ManifestColumns;
}

export function issue(
  kind: IssueKind,
  file: string,
  reason: string,
  extra: { key?: string; where?: string; severity?: Severity } = {},
): ReadItem {
  const { severity = 'error', ...rest } = extra;
  return { type: 'issue', issue: { kind, severity, file, reason, ...rest } };
}

/** Thrown by a sample's `image()` when its bytes cannot be had; the catalog records it as an issue. */
export class ImageLoadError extends Error {
  constructor(
    readonly kind: IssueKind,
    message: string,
  ) {
    super(message);
    this.name = 'ImageLoadError';
  }
}

/** The dataset as a whole cannot be read (nothing matches, nothing usable, mixed formats): exit code 2. */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}
