import { constants, createReadStream, type ReadStream, type Stats } from 'node:fs';
import { lstat, open, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import braces from 'braces';
import { glob, isDynamicPattern } from 'tinyglobby';
import { ImageLoadError, type DatasetPart } from './types.js';

export interface ExpandedSpec {
  /** Existing paths, sorted, de-duplicated. */
  paths: string[];
  /** Paths named literally (or by a brace range) that do not exist. */
  missing: string[];
}

/**
 * Expand a dataset spec the way clip-retrieval / webdataset users write it: brace ranges and lists
 * (`train-{00000..00010}.tar`, `{a,b}.csv`) first, then globs (`shards/*.tar`).
 */
export async function expandSpec(spec: string, cwd = process.cwd()): Promise<ExpandedSpec> {
  const found = new Set<string>();
  const missing: string[] = [];
  for (const pattern of braces.expand(spec)) {
    const absolute = path.resolve(cwd, pattern);
    if (isDynamicPattern(pattern)) {
      const matches = await glob(pattern, {
        cwd,
        absolute: true,
        onlyFiles: false,
        expandDirectories: false,
      });
      for (const m of matches) found.add(path.resolve(m));
    } else if (await exists(absolute)) {
      found.add(absolute);
    } else {
      missing.push(absolute);
    }
  }
  return { paths: [...found].sort(), missing };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** A file read stream that reports how many bytes it has read (for progress bars). */
export function countingReadStream(file: string, onBytes?: (n: number) => void): ReadStream {
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  if (onBytes) stream.on('data', () => onBytes(stream.bytesRead));
  return stream;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Lossy = new TextDecoder('utf-8');

/** Decode caption bytes; `valid` is false when the bytes were not UTF-8 and U+FFFD replacements were made. */
export function decodeCaption(bytes: Uint8Array): { text: string; valid: boolean } {
  try {
    return { text: utf8.decode(bytes).trim(), valid: true };
  } catch {
    return { text: utf8Lossy.decode(bytes).trim(), valid: false };
  }
}

/** Key of a file relative to a root, without its extension(s): `cats/x.jpg` → `cats/x`. */
export function keyFromPath(file: string, root: string): string {
  const rel = path.relative(root, file).split(path.sep).join('/');
  const dot = rel.lastIndexOf('.');
  return dot > rel.lastIndexOf('/') ? rel.slice(0, dot) : rel;
}

export function isRemoteUrl(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) && !value.toLowerCase().startsWith('file://');
}

export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp'] as const;

/**
 * Largest image file (or tar member) read: 512 MiB. Real images are far smaller; a bigger one is a
 * `too-large` issue and is never loaded, so a hostile file cannot exhaust memory.
 */
export const MAX_IMAGE_BYTES = 512 * 1024 * 1024;
/** Largest caption sidecar (`.txt`, `.json`) read: 16 MiB. */
export const MAX_SIDECAR_BYTES = 16 * 1024 * 1024;

/** "a FIFO (named pipe)", "a folder", …: what a non-regular file is, for messages. */
export function describeFileType(s: Stats): string {
  if (s.isDirectory()) return 'a folder';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** `file`, or `file (a link to target)` when it is a symbolic link. */
async function named(file: string): Promise<string> {
  try {
    if ((await lstat(file)).isSymbolicLink()) return `${file} (a link to ${await readlink(file)})`;
  } catch {
    /* gone or unreadable: the plain name will do */
  }
  return file;
}

/** The ImageLoadError for a path that could not be opened or stat'ed. */
async function pathError(file: string, err: unknown, what = 'file'): Promise<ImageLoadError> {
  const code = (err as NodeJS.ErrnoException).code;
  const message = (err as Error).message;
  if (code === 'ENOENT') {
    const link = await lstat(file).then(
      (s) => s.isSymbolicLink(),
      () => false,
    );
    return link
      ? new ImageLoadError(
          'missing-file',
          `${await named(file)} is a dangling link: its target does not exist`,
        )
      : new ImageLoadError('missing-file', `${what} not found: ${file}`);
  }
  if (code === 'ENXIO' || code === 'EOPNOTSUPP')
    return new ImageLoadError('not-a-file', `${await named(file)} is not a regular file (${message})`);
  if (code === 'ELOOP') return new ImageLoadError('unreadable-file', `${file} is a loop of links`);
  if (code === 'EACCES' || code === 'EPERM')
    return new ImageLoadError('unreadable-file', `cannot read ${file}: permission denied`);
  return new ImageLoadError('unreadable-file', `cannot read ${file}: ${message}`);
}

/**
 * Stat a path that is about to be read, following links: its Stats when it is a regular file, else an
 * {@link ImageLoadError} naming it (`missing-file` for a dangling link, `not-a-file` for a folder, FIFO,
 * device or socket). Never opens the path, so never blocks.
 */
export async function statRegularFile(file: string): Promise<Stats> {
  let s: Stats;
  try {
    s = await stat(file);
  } catch (err) {
    throw await pathError(file, err);
  }
  if (!s.isFile())
    throw new ImageLoadError(
      'not-a-file',
      `${await named(file)} is ${describeFileType(s)}, not a regular file`,
    );
  return s;
}

/**
 * Read a whole regular file of at most `limit` bytes. The path is opened without blocking (a FIFO
 * would otherwise wait for a writer forever) and checked on the open handle, so a FIFO, device, socket
 * or folder (or a link to one) is refused before a byte is read, and nothing beyond the size the file
 * had when opened is read (a device like /dev/zero never ends). Problems are {@link ImageLoadError}s;
 * `what` names the file in them ("image file not found: …").
 */
export async function readRegularFile(file: string, limit: number, what = 'file'): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw await pathError(file, err, what);
  }
  try {
    const s = await handle.stat();
    if (!s.isFile())
      throw new ImageLoadError(
        'not-a-file',
        `${await named(file)} is ${describeFileType(s)}, not a regular file`,
      );
    if (s.size > limit)
      throw new ImageLoadError(
        'too-large',
        `${file} has ${s.size} bytes, more than the ${limit}-byte limit per file`,
      );
    const out = Buffer.allocUnsafe(s.size);
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await handle.read(out, done, out.length - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === out.length ? out : out.subarray(0, done);
  } catch (err) {
    if (err instanceof ImageLoadError) throw err;
    throw await pathError(file, err, what);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Read an image file (regular files only, at most {@link MAX_IMAGE_BYTES}); problems are ImageLoadErrors. */
export async function readImageFile(file: string): Promise<Buffer> {
  return readRegularFile(file, MAX_IMAGE_BYTES, 'image file');
}

/**
 * A part's change detector (size, mtime) for a shard or manifest path. A path that cannot be stat'ed
 * (a dangling link, no permission) still becomes a part, from the link's own stat or zeros, so that
 * reading it reports an issue for that part instead of failing the whole dataset.
 */
export async function partOfPath(file: string): Promise<DatasetPart> {
  const s = await stat(file).catch(() => lstat(file).catch(() => undefined));
  return { path: file, size: s?.isFile() ? s.size : 0, mtimeMs: s?.mtimeMs ?? 0 };
}
