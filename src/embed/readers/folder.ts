import { lstat, opendir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  decodeCaption,
  IMAGE_EXTENSIONS,
  keyFromPath,
  MAX_SIDECAR_BYTES,
  readImageFile,
  readRegularFile,
} from './files.js';
import {
  ImageLoadError,
  issue,
  type DatasetPart,
  type DatasetReader,
  type ReadContext,
  type ReadItem,
} from './types.js';

const IMAGE_EXT_SET = new Set<string>(IMAGE_EXTENSIONS);
const SIDECAR_EXT_SET = new Set(['txt', 'json']);

/**
 * An image folder, walked recursively: `x.jpg` takes its caption from `x.txt`, or from the `caption`
 * (or `text`) field of `x.json`, whose other fields become metadata. The key is the path relative to the
 * root without extension. The whole folder is one part.
 *
 * Only regular files (and links to them) are read: a link to a FIFO, a device, a folder, or to nothing
 * is an issue for its sample, never a hang or an exception. Linked folders are not followed.
 */
export class FolderReader implements DatasetReader {
  readonly format = 'folder';

  constructor(private readonly root: string) {}

  async parts(): Promise<DatasetPart[]> {
    let size = 0;
    let mtimeMs = 0;
    let files = 0;
    for await (const dir of walkDirectories(this.root)) {
      for (const file of dir.files) {
        // A dangling link has no target to stat: its own stat still detects a change.
        const s = await stat(file).catch(() => lstat(file).catch(() => undefined));
        if (!s) continue;
        if (s.isFile()) size += s.size;
        mtimeMs = Math.max(mtimeMs, s.mtimeMs);
        files += 1;
      }
    }
    // Adding or removing an empty-sized file must still count as a change.
    return [{ path: this.root, size: size + files, mtimeMs }];
  }

  async *read(part: DatasetPart, ctx: ReadContext = {}): AsyncIterable<ReadItem> {
    for await (const dir of walkDirectories(part.path)) {
      if (dir.error) {
        yield issue(
          'unreadable-file',
          dir.dir,
          `cannot list the folder: ${dir.error}; its files are skipped`,
        );
        continue;
      }
      for (const stem of groupByStem(dir.files)) {
        ctx.signal?.throwIfAborted();
        const key = keyFromPath(stem.base, part.path);
        yield* this.stemToItems(stem, key);
      }
    }
  }

  private async *stemToItems(stem: Stem, key: string): AsyncIterable<ReadItem> {
    const imageExt = IMAGE_EXTENSIONS.find((ext) => stem.files.has(ext));
    const txtPath = stem.files.get('txt');
    const jsonPath = stem.files.get('json');
    const anchor = (imageExt && stem.files.get(imageExt)) ?? txtPath ?? jsonPath ?? stem.base;
    const metadata: Record<string, unknown> = {};
    let caption: string | undefined;

    // Sidecars are read whole, so they get the same checks as images (regular file, size limit).
    const sidecar = async (file: string): Promise<Buffer | ReadItem> => {
      try {
        return await readRegularFile(file, MAX_SIDECAR_BYTES);
      } catch (err) {
        const kind = err instanceof ImageLoadError ? err.kind : 'unreadable-file';
        return issue(kind, file, `caption file not read: ${(err as Error).message}`, { key });
      }
    };
    if (jsonPath) {
      const bytes = await sidecar(jsonPath);
      if (!Buffer.isBuffer(bytes)) {
        yield bytes;
        return;
      }
      try {
        const parsed: unknown = JSON.parse(bytes.toString('utf8'));
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) Object.assign(metadata, parsed);
        const fromJson = (metadata.caption ?? metadata.text) as unknown;
        if (typeof fromJson === 'string') caption = fromJson.trim();
      } catch (err) {
        yield issue('malformed-json', jsonPath, `sidecar is not valid JSON: ${(err as Error).message}`, {
          key,
          severity: 'warning',
        });
      }
    }
    if (txtPath) {
      const bytes = await sidecar(txtPath);
      if (!Buffer.isBuffer(bytes)) {
        yield bytes;
        return;
      }
      const decoded = decodeCaption(bytes);
      caption = decoded.text || caption;
      if (!decoded.valid) {
        yield issue('invalid-utf8', txtPath, 'caption is not valid UTF-8; invalid bytes replaced by U+FFFD', {
          key,
          severity: 'warning',
        });
      }
    }
    if (!imageExt) {
      yield issue('missing-image', anchor, `caption file without an image (${IMAGE_EXTENSIONS.join('/')})`, {
        key,
      });
      return;
    }
    if (!caption) {
      const why = txtPath || jsonPath ? 'caption file is empty or has no caption field' : 'no .txt or .json';
      yield issue('missing-caption', anchor, why, { key });
      return;
    }
    yield {
      type: 'sample',
      sample: {
        key,
        caption,
        image: () => readImageFile(anchor),
        metadata,
        location: { file: anchor },
      },
    };
  }
}

interface Stem {
  /** Path without extension. */
  base: string;
  /** Lower-case extension → path. */
  files: Map<string, string>;
}

function groupByStem(files: string[]): Stem[] {
  const stems = new Map<string, Stem>();
  for (const file of files) {
    const ext = path.extname(file).slice(1).toLowerCase();
    if (!IMAGE_EXT_SET.has(ext) && !SIDECAR_EXT_SET.has(ext)) continue;
    const base = file.slice(0, file.length - ext.length - 1);
    const stem = stems.get(base) ?? { base, files: new Map() };
    if (!stem.files.has(ext)) stem.files.set(ext, file);
    stems.set(base, stem);
  }
  return [...stems.values()];
}

/**
 * Depth-first, sorted, one directory listing in memory at a time; hidden entries are skipped. Every
 * entry that is not a folder is listed as a file (links, FIFOs, devices too: reading them is refused
 * per sample, with an issue). Linked folders are not followed, so a link cycle cannot loop. A folder
 * that cannot be listed comes back with `error` instead of files.
 */
async function* walkDirectories(
  root: string,
): AsyncIterable<{ dir: string; files: string[]; error?: string }> {
  const files: string[] = [];
  const dirs: string[] = [];
  try {
    for await (const entry of await opendir(root)) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(root, entry.name);
      if (entry.isDirectory()) dirs.push(full);
      else files.push(full);
    }
  } catch (err) {
    yield { dir: root, files: [], error: (err as Error).message };
    return;
  }
  files.sort();
  yield { dir: root, files };
  for (const dir of dirs.sort()) yield* walkDirectories(dir);
}
