/**
 * The export folder. An export never deletes or replaces a file it did not write, and a killed export
 * never blocks the next run:
 *
 * - Ownership: `provenance.json` lists every file an export wrote (name, bytes, SHA-256). On
 *   `--overwrite`, a file of `out` counts as the previous export's only when that list names it and its
 *   size and hash still match (a link planted under a listed name is replaced as a link, never written
 *   through). Only such files are replaced or removed; anything else stays, and a new file whose name is
 *   taken by something else stops the export with a message naming it. Names alone prove nothing.
 * - Staging: files are written into a temporary folder inside `out` (created exclusively, so nothing
 *   already there is written through), marked as ours by a marker file, and fsync'ed.
 * - Moving: before the first rename, a journal in the staging folder lists the files being moved in and
 *   the previous export's files; then stale files are removed and staged files renamed into place,
 *   `provenance.json` last.
 * - Resuming: the next run removes staging folders it finds (only ours: marked, or empty). When one held
 *   a journal, the move was cut short: the same request (selection, format, shard size) then continues
 *   without `--overwrite`, treating the journal's files as its own, and ends byte-identical to an
 *   uninterrupted run.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import path from 'node:path';
import { syncDir, writeFileAtomic } from '../../io/atomic.js';
import { failpoint } from '../../io/failpoints.js';
import { ExportInputError, type ExportedFile } from './types.js';

export const STAGING_PREFIX = '.clipcurate-export-';
export const PROVENANCE_FILE = 'provenance.json';
/** Inside a staging folder: proves the folder is an export's own (safe to remove). */
const STAGING_MARKER = '.clipcurate-staging';
/** Inside a staging folder: the move into `out` has begun; lists the files it concerns. */
const JOURNAL = '.moving.json';
const JOURNAL_FORMAT = 'clipcurate-export-move';

/** A file an export wrote: its name in `out`, size and SHA-256. */
export interface OwnedFile {
  name: string;
  bytes: number;
  sha256: string;
}

interface Journal {
  format: typeof JOURNAL_FORMAT;
  /** What was being exported: a later run of the same request may finish the move. */
  request: string;
  /** Files that were being moved in, and the previous export's files (either may be in `out`). */
  files: OwnedFile[];
}

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
    private readonly request: string,
    /** Entries of `out` the previous export (or an interrupted one) wrote, with what proved it. */
    private readonly owned: Map<string, OwnedFile | 'link'>,
  ) {}

  /**
   * Open `outDir` for an export of `request` (see the module comment). Refuses a non-empty folder
   * unless `overwrite`, or unless it holds a move of the same request cut short.
   */
  static async open(outDir: string, overwrite: boolean, request = ''): Promise<ExportFolder> {
    const out = path.resolve(outDir);
    const existing = await stat(out).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (existing && !existing.isDirectory())
      throw new ExportInputError(`export folder ${out} is a file, not a folder`);
    await mkdir(out, { recursive: true });

    const interrupted: Journal[] = [];
    const leftovers: string[] = [];
    for (const e of await readdir(out)) {
      if (!e.startsWith(STAGING_PREFIX)) continue;
      const staged = await inspectStaging(path.join(out, e));
      if (!staged) continue;
      leftovers.push(path.join(out, e));
      if (staged.journal) interrupted.push(staged.journal);
    }
    const entries = (await readdir(out)).filter((e) => !leftovers.includes(path.join(out, e))).sort();
    const resuming = interrupted.some((j) => j.request === request);
    if (entries.length > 0 && !overwrite && !resuming) {
      const other = interrupted[0];
      throw new ExportInputError(
        `export folder ${out} is not empty (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}); ` +
          (other
            ? `it holds an export cut short while moving into place (${other.request}): run that command ` +
              'again to finish it, or overwrite it (--overwrite)'
            : 'choose an empty folder, or overwrite the previous export (--overwrite)'),
      );
    }

    const claims = new Map<string, OwnedFile[]>();
    const claim = (f: OwnedFile) => claims.set(f.name, [...(claims.get(f.name) ?? []), f]);
    for (const j of interrupted) j.files.forEach(claim);
    const previous = await previousExport(out);
    if (previous) {
      previous.files.forEach(claim);
      claim(previous.self);
    }
    const owned = new Map<string, OwnedFile | 'link'>();
    for (const name of entries) {
      const proof = await ownership(path.join(out, name), claims.get(name) ?? []);
      if (proof) owned.set(name, proof);
    }

    const staging = await mkdtemp(path.join(out, STAGING_PREFIX));
    await writeFile(path.join(staging, STAGING_MARKER), '');
    if (interrupted.length > 0) {
      // `out` still holds a half-moved export: carry its proof of ownership into the new staging
      // folder before the old ones go, so a kill of this run too leaves it provable.
      const carried: Journal = {
        format: JOURNAL_FORMAT,
        request: resuming ? request : interrupted[0]!.request,
        files: [...owned.values()].filter((p): p is OwnedFile => p !== 'link'),
      };
      await writeFileAtomic(path.join(staging, JOURNAL), JSON.stringify(carried) + '\n');
    }
    // The leftovers of killed exports go (their journals were read; nothing else in them was ours).
    for (const dir of leftovers) await rm(dir, { recursive: true, force: true });
    return new ExportFolder(out, staging, request, owned);
  }

  /**
   * Stop before any work when a file this export would write is taken by something the previous export
   * did not write (`wanted` says which names the export may write).
   */
  async refuseClashes(wanted: (name: string) => boolean): Promise<void> {
    const taken: string[] = [];
    for (const name of await readdir(this.out)) {
      if (name.startsWith(STAGING_PREFIX) || !wanted(name) || this.owned.has(name)) continue;
      taken.push(name);
    }
    if (taken.length === 0) return;
    throw new ExportInputError(
      `export folder ${this.out} holds ${taken.slice(0, 3).join(', ')}${taken.length > 3 ? ` and ${taken.length - 3} more` : ''}, ` +
        'which this export would replace but no earlier export wrote (or it changed since): ' +
        'move it away or choose another folder; an export never replaces files it did not write',
    );
  }

  /** Path of a staged file (exclusive create: fails rather than follow anything already there). */
  stagedPath(name: string): string {
    if (!isPlainName(name)) throw new Error(`internal: '${name}' is not a plain file name`);
    return path.join(this.staging, name);
  }

  async create(name: string): Promise<HashingWriter> {
    return new HashingWriter(name, await open(this.stagedPath(name), 'wx'), () => failpoint('export.staged'));
  }

  async writeFile(name: string, content: string | Buffer): Promise<ExportedFile> {
    const w = await this.create(name);
    await w.write(typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
    return w.close();
  }

  /** Describe (and fsync) a file something else (DuckDB, copyFile) wrote into the staging folder. */
  async describe(name: string): Promise<ExportedFile> {
    const file = this.stagedPath(name);
    const handle = await open(file, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    const bytes = await readFile(file);
    failpoint('export.staged');
    return { name, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  /**
   * Move the staged files into `out` in the given order (renames replace the previous export's files of
   * the same name; put provenance.json last) and remove the previous export's files that are not
   * replaced. Refuses, before changing anything, when a name is taken by a file the export did not write.
   */
  async commit(files: ReadonlyArray<Pick<ExportedFile, 'name' | 'bytes' | 'sha256'>>): Promise<void> {
    const names = files.map((f) => f.name);
    await this.refuseClashes((n) => names.includes(n));
    const previous: OwnedFile[] = [];
    for (const [name, proof] of this.owned) {
      if (proof === 'link') continue;
      // Still there, still the same? (Size is enough here: the hash was checked when the folder opened.)
      const s = await lstat(path.join(this.out, name)).catch(() => undefined);
      if (s?.isFile() && s.size === proof.bytes) previous.push(proof);
    }
    const journal: Journal = {
      format: JOURNAL_FORMAT,
      request: this.request,
      files: [...files.map(({ name, bytes, sha256 }) => ({ name, bytes, sha256 })), ...previous],
    };
    await writeFileAtomic(path.join(this.staging, JOURNAL), JSON.stringify(journal) + '\n');
    const keep = new Set(names);
    for (const old of this.owned.keys())
      if (!keep.has(old)) await rm(path.join(this.out, old), { force: true });
    for (const [i, name] of names.entries()) {
      await rename(this.stagedPath(name), path.join(this.out, name));
      if (i === 0) failpoint('export.moving');
    }
    await syncDir(this.out);
  }

  async dispose(): Promise<void> {
    await rm(this.staging, { recursive: true, force: true });
  }
}

/**
 * A staging folder left in `out` by a killed export, if it is an export's own: it holds the marker, or
 * it is empty (killed right after creating it; removed here, as `rmdir` removes nothing else). Comes
 * with its journal when the move into `out` had begun. Anything else there is not ours: `undefined`.
 */
async function inspectStaging(dir: string): Promise<{ journal?: Journal } | undefined> {
  const s = await lstat(dir).catch(() => undefined);
  if (!s?.isDirectory()) return undefined;
  const marked = await lstat(path.join(dir, STAGING_MARKER)).then(
    (m) => m.isFile(),
    () => false,
  );
  if (!marked) {
    await rmdir(dir).catch(() => undefined);
    return undefined;
  }
  try {
    const parsed = JSON.parse(await readFile(path.join(dir, JOURNAL), 'utf8')) as Partial<Journal>;
    if (parsed.format === JOURNAL_FORMAT && typeof parsed.request === 'string' && Array.isArray(parsed.files))
      return {
        journal: { format: JOURNAL_FORMAT, request: parsed.request, files: parsed.files.filter(isOwnedFile) },
      };
  } catch {
    /* no journal: killed while staging; nothing in `out` was touched */
  }
  return {};
}

function isOwnedFile(f: unknown): f is OwnedFile {
  const o = f as OwnedFile;
  return (
    !!o &&
    typeof o.name === 'string' &&
    isPlainName(o.name) &&
    !o.name.startsWith(STAGING_PREFIX) &&
    typeof o.bytes === 'number' &&
    typeof o.sha256 === 'string'
  );
}

/** The files the export in `out` lists in its provenance.json, and provenance.json itself. */
async function previousExport(out: string): Promise<{ files: OwnedFile[]; self: OwnedFile } | undefined> {
  const file = path.join(out, PROVENANCE_FILE);
  try {
    const s = await lstat(file);
    if (!s.isFile() || s.size > 64 * 1024 * 1024) return undefined;
    const bytes = await readFile(file);
    const prov = JSON.parse(bytes.toString('utf8')) as {
      format?: unknown;
      export?: { files?: unknown[] };
    };
    if (prov.format !== 'clipcurate-export' || !Array.isArray(prov.export?.files)) return undefined;
    return {
      files: prov.export.files.filter(isOwnedFile).filter((f) => f.name !== PROVENANCE_FILE),
      self: {
        name: PROVENANCE_FILE,
        bytes: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      },
    };
  } catch {
    return undefined;
  }
}

/** Whether `file` is one of the claimed files (same size and hash), or a link under a claimed name. */
async function ownership(file: string, claims: OwnedFile[]): Promise<OwnedFile | 'link' | undefined> {
  if (claims.length === 0) return undefined;
  const s = await lstat(file).catch(() => undefined);
  if (!s) return undefined;
  // A link is replaced as a link (rename over it), never followed; its target is left alone.
  if (s.isSymbolicLink()) return 'link';
  if (!s.isFile()) return undefined;
  const sized = claims.filter((c) => c.bytes === s.size);
  if (sized.length === 0) return undefined;
  const sha256 = await hashFile(file);
  return sized.find((c) => c.sha256 === sha256);
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
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
    /** Called once the file is complete on disk (a kill point for tests). */
    private readonly onStaged: () => void = () => {},
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
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
    this.onStaged();
    return { name: this.name, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  /** Close after a failure, without flushing. */
  async abandon(): Promise<void> {
    await this.handle.close().catch(() => {});
  }
}
