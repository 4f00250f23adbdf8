/**
 * The export folder: refuse a non-empty one unless overwriting, stage every file in a temporary folder
 * inside it (created exclusively, so no existing file or link is written through), then move the new
 * files into place and remove what the previous export left that this one does not replace.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ExportInputError, type ExportedFile } from './types.js';

export const STAGING_PREFIX = '.clipcurate-export-';
export const PROVENANCE_FILE = 'provenance.json';

/** Names an export writes, for finding a previous export's files when overwriting. */
const EXPORT_FILE =
  /^(selection-\d{6,}\.tar|manifest\.(jsonl|csv|parquet)|keys\.txt|weights\.txt|schedule\.jsonl|provenance\.json)$/;

/** A plain file name: one component, no separators, not `.` or `..`. */
export function isPlainName(name: string): boolean {
  return (
    name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name) && path.basename(name) === name
  );
}

export class ExportFolder {
  private constructor(
    readonly out: string,
    readonly staging: string,
    /** Files of the previous export, removed at commit unless replaced. */
    private readonly previous: string[],
  ) {}

  static async open(outDir: string, overwrite: boolean): Promise<ExportFolder> {
    const out = path.resolve(outDir);
    const existing = await stat(out).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (existing && !existing.isDirectory())
      throw new ExportInputError(`export folder ${out} is a file, not a folder`);
    await mkdir(out, { recursive: true });
    const entries = await readdir(out);
    const previous = new Set<string>();
    if (entries.length > 0) {
      if (!overwrite)
        throw new ExportInputError(
          `export folder ${out} is not empty (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}); ` +
            'choose an empty folder, or overwrite the previous export (--overwrite)',
        );
      for (const e of entries) {
        if (e.startsWith(STAGING_PREFIX)) await rm(path.join(out, e), { recursive: true, force: true });
        else if (EXPORT_FILE.test(e)) previous.add(e);
      }
      for (const name of await filesOfPreviousExport(out)) if (entries.includes(name)) previous.add(name);
    }
    const staging = await mkdtemp(path.join(out, STAGING_PREFIX));
    return new ExportFolder(out, staging, [...previous].sort());
  }

  /** Path of a staged file (exclusive create: fails rather than follow anything already there). */
  stagedPath(name: string): string {
    if (!isPlainName(name)) throw new Error(`internal: '${name}' is not a plain file name`);
    return path.join(this.staging, name);
  }

  async create(name: string): Promise<HashingWriter> {
    return new HashingWriter(name, await open(this.stagedPath(name), 'wx'));
  }

  async writeFile(name: string, content: string | Buffer): Promise<ExportedFile> {
    const w = await this.create(name);
    await w.write(typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
    return w.close();
  }

  /** Describe a file something else (DuckDB) wrote into the staging folder. */
  async describe(name: string): Promise<ExportedFile> {
    const bytes = await readFile(this.stagedPath(name));
    return { name, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  /** Move the staged files into `out` (renames replace files of the same name) and drop stale ones. */
  async commit(names: string[]): Promise<void> {
    const keep = new Set(names);
    for (const old of this.previous) if (!keep.has(old)) await rm(path.join(this.out, old), { force: true });
    for (const name of names) await rename(this.stagedPath(name), path.join(this.out, name));
  }

  async dispose(): Promise<void> {
    await rm(this.staging, { recursive: true, force: true });
  }
}

async function filesOfPreviousExport(out: string): Promise<string[]> {
  try {
    const prov = JSON.parse(await readFile(path.join(out, PROVENANCE_FILE), 'utf8')) as {
      export?: { files?: Array<{ name?: unknown }> };
    };
    return (prov.export?.files ?? [])
      .map((f) => f.name)
      .filter((n): n is string => typeof n === 'string' && isPlainName(n) && !n.startsWith(STAGING_PREFIX));
  } catch {
    return [];
  }
}

/** Writes a file through a 1 MiB buffer, counting bytes and hashing them on the way. */
export class HashingWriter {
  private readonly hash = createHash('sha256');
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private bytes = 0;

  constructor(
    readonly name: string,
    private readonly handle: FileHandle,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.hash.update(chunk);
    this.bytes += chunk.byteLength;
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.byteLength;
    if (this.pendingBytes >= 1 << 20) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    let done = 0;
    while (done < data.length) done += (await this.handle.write(data, done)).bytesWritten;
  }

  async close(): Promise<ExportedFile> {
    try {
      await this.flush();
    } finally {
      await this.handle.close();
    }
    return { name: this.name, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  /** Close after a failure, without flushing. */
  async abandon(): Promise<void> {
    await this.handle.close().catch(() => {});
  }
}
