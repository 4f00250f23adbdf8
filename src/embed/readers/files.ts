import { createReadStream, type ReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import braces from 'braces';
import { glob, isDynamicPattern } from 'tinyglobby';
import { ImageLoadError } from './types.js';

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

/** Read an image file, mapping "not there" and "not readable" to the issue kinds the catalog records. */
export async function readImageFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ImageLoadError('missing-file', `image file not found: ${file}`);
    throw new ImageLoadError('unreadable-file', `cannot read ${file}: ${(err as Error).message}`);
  }
}
