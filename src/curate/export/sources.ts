/**
 * Original image bytes, never re-encoded. Archives (tar shards, manifests that hold the bytes) are read
 * once each, sequentially, through the project's own readers, keeping only the picked samples (from tar
 * shards: every member of the sample, `.cls`, `.json`, `.txt` and any other, not only the image); those
 * wait in memory, or past a budget in a spool file, until their shard is written. Image files are read
 * when needed.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { MAX_IMAGE_BYTES, readRegularFile } from '../../embed/readers/files.js';
import { readerForPart, type ReaderOptions } from '../../embed/readers/index.js';
import { WebDatasetReader } from '../../embed/readers/webdataset.js';
import { ImageLoadError, type DatasetReader } from '../../embed/readers/types.js';
import type { Pick } from './plan.js';
import type { SkippedSample } from './types.js';

/** A source archive member, by its name in the source (`dir/000123.cls`). */
export interface SourceMember {
  name: string;
  bytes: Buffer;
}

/**
 * Bytes by pick rank (the image) and by rank and member (a tar sample's other members): in memory up
 * to a budget, then appended to a spool file.
 */
export class ByteStore {
  private readonly memory = new Map<Slot, Buffer>();
  private readonly spilled = new Map<Slot, { offset: number; length: number }>();
  /** Member names of tar samples in archive order, with the slot holding each one's bytes. */
  private readonly layouts = new Map<number, Array<{ name: string; slot: Slot }>>();
  private memoryUsed = 0;
  private spoolSize = 0;
  private spool: FileHandle | undefined;

  constructor(
    private readonly spoolFile: string,
    private readonly budget: number,
  ) {}

  /**
   * Keep a pick's image bytes; with `members` (every member of a tar sample, in archive order, the image
   * among them under `imageName`), keep the other members too, for {@link takeMembers}.
   */
  async put(
    rank: number,
    bytes: Buffer,
    members?: ReadonlyArray<SourceMember>,
    imageName?: string,
  ): Promise<void> {
    await this.putSlot(rank, bytes);
    if (!members) return;
    const layout: Array<{ name: string; slot: Slot }> = [];
    for (const [i, m] of members.entries()) {
      if (m.name === imageName) layout.push({ name: m.name, slot: rank });
      else {
        const slot = `${rank}:${i}`;
        await this.putSlot(slot, m.bytes);
        layout.push({ name: m.name, slot });
      }
    }
    this.layouts.set(rank, layout);
  }

  private async putSlot(slot: Slot, bytes: Buffer): Promise<void> {
    if (this.memoryUsed + bytes.length <= this.budget) {
      this.memory.set(slot, bytes);
      this.memoryUsed += bytes.length;
      return;
    }
    this.spool ??= await open(this.spoolFile, 'wx+');
    let done = 0;
    while (done < bytes.length)
      done += (await this.spool.write(bytes, done, bytes.length - done, this.spoolSize + done)).bytesWritten;
    this.spilled.set(slot, { offset: this.spoolSize, length: bytes.length });
    this.spoolSize += bytes.length;
  }

  has(rank: number): boolean {
    return this.memory.has(rank) || this.spilled.has(rank);
  }

  /** The image bytes, handed over once (memory is released). */
  async take(rank: number): Promise<Buffer | undefined> {
    return this.takeSlot(rank);
  }

  /**
   * Every member of a tar sample, in archive order, the image included, handed over once; `undefined`
   * when the pick was not stored with its members (not a tar source, or not found).
   */
  async takeMembers(rank: number): Promise<SourceMember[] | undefined> {
    const layout = this.layouts.get(rank);
    if (!layout) return undefined;
    this.layouts.delete(rank);
    const out: SourceMember[] = [];
    for (const { name, slot } of layout) {
      const bytes = await this.takeSlot(slot);
      if (!bytes) return undefined;
      out.push({ name, bytes });
    }
    return out;
  }

  private async takeSlot(slot: Slot): Promise<Buffer | undefined> {
    const inMemory = this.memory.get(slot);
    if (inMemory) {
      this.memory.delete(slot);
      this.memoryUsed -= inMemory.length;
      return inMemory;
    }
    const at = this.spilled.get(slot);
    if (!at || !this.spool) return undefined;
    this.spilled.delete(slot);
    const out = Buffer.allocUnsafe(at.length);
    let done = 0;
    while (done < at.length) {
      const { bytesRead } = await this.spool.read(out, done, at.length - done, at.offset + done);
      if (bytesRead === 0) throw new Error(`spool file ${this.spoolFile} is shorter than expected`);
      done += bytesRead;
    }
    return out;
  }

  get spooledBytes(): number {
    return this.spoolSize;
  }

  async close(): Promise<void> {
    await this.spool?.close();
    this.spool = undefined;
  }
}

/** A ByteStore key: a pick's rank (its image), or `rank:i` (member `i` of its tar sample). */
type Slot = number | string;

export interface CollectResult {
  /** Bytes read from the archives (compressed bytes for .tar.gz). */
  sourceRead: number;
}

/**
 * Read every archive that holds picks once, in path order, storing the picked samples' bytes by rank
 * (tar samples with all their members). Picks not found, or whose image's size differs from the
 * catalog's, go to `skipped`.
 */
export async function collectArchives(
  picks: Pick[],
  store: ByteStore,
  skipped: SkippedSample[],
  options: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void },
): Promise<CollectResult> {
  const byFile = new Map<string, Pick[]>();
  for (const p of picks) {
    if (p.source.kind === 'file') continue;
    const list = byFile.get(p.source.file) ?? [];
    list.push(p);
    byFile.set(p.source.file, list);
  }
  const total = [...byFile.values()].reduce((a, l) => a + l.length, 0);
  let done = 0;
  let sourceRead = 0;
  if (total > 0) options.onProgress?.(0, total);
  for (const file of [...byFile.keys()].sort()) {
    const list = byFile.get(file)!;
    const first = list[0]!;
    // By member (or row) within this file: the same file can hold picks of several datasets (a shard
    // catalogued twice, by two specs), so one member may be wanted by several picks.
    const wanted = new Map<string, Pick[]>();
    for (const p of list) wanted.set(matchKey(p), [...(wanted.get(matchKey(p)) ?? []), p]);
    let partBytes = 0;
    let problem: string | undefined;
    const skip = (p: Pick, reason: string) =>
      skipped.push({ rank: p.rank, key: p.key, sampleId: p.sampleId, file, reason });
    try {
      const reader: DatasetReader =
        first.source.kind === 'tar'
          ? new WebDatasetReader([file])
          : readerForPart(first.row.format, file, JSON.parse(first.row.options) as ReaderOptions);
      const items = reader.read(
        { path: file, size: 0, mtimeMs: 0 },
        { ...(options.signal ? { signal: options.signal } : {}), onBytes: (n) => (partBytes = n) },
      );
      for await (const item of items) {
        options.signal?.throwIfAborted();
        if (item.type === 'issue') {
          if (item.issue.kind === 'truncated-archive' || item.issue.kind === 'unreadable-part')
            problem = item.issue.reason;
          continue;
        }
        const loc = item.sample.location;
        const at = first.source.kind === 'tar' ? (loc.member ?? '') : String(loc.row);
        const these = wanted.get(at);
        if (!these) continue;
        wanted.delete(at);
        const bytes = await item.sample.image();
        for (const p of these) {
          if (bytes.length !== p.row.image_bytes)
            skip(
              p,
              `${describe(p)} in ${file} has ${bytes.length} bytes, the catalog ${p.row.image_bytes}: ` +
                'the file changed since curate init',
            );
          else await store.put(p.rank, bytes, item.sample.members, loc.member);
          options.onProgress?.(++done, total);
        }
        if (wanted.size === 0) break;
      }
    } catch (err) {
      if (options.signal?.aborted) throw err;
      problem = `cannot read ${file}: ${(err as Error).message}`;
    }
    // Streams are read to their end (or the last wanted member); parquet reports no progress.
    sourceRead += partBytes || (first.source.kind === 'embedded' ? Number(first.row.part_size ?? 0) : 0);
    for (const p of [...wanted.values()].flat()) {
      skip(p, `${describe(p)} not found in ${file}${problem ? ` (${problem})` : ''}`);
      options.onProgress?.(++done, total);
    }
  }
  return { sourceRead };
}

function matchKey(p: Pick): string {
  return p.source.kind === 'tar' ? p.source.member : p.source.kind === 'embedded' ? String(p.source.row) : '';
}

function describe(p: Pick): string {
  return p.source.kind === 'tar'
    ? `member ${p.source.member} (sample ${p.key})`
    : `row ${p.source.kind === 'embedded' ? p.source.row : '?'} (sample ${p.key})`;
}

/** Read an image file and check it still has the size recorded at init. */
export async function readImageFile(p: Pick): Promise<Buffer> {
  const file = p.source.file;
  let bytes: Buffer;
  try {
    // Regular files only, with the readers' size limit: a source swapped for a FIFO or a link to
    // /dev/zero since init is a skipped pick, not a hang.
    bytes = await readRegularFile(file, MAX_IMAGE_BYTES);
  } catch (err) {
    throw new Error(
      err instanceof ImageLoadError && err.kind === 'missing-file'
        ? `source file ${file} is gone (sample ${p.key})`
        : `cannot read ${file} (sample ${p.key}): ${(err as Error).message}`,
    );
  }
  if (bytes.length !== p.row.image_bytes)
    throw new Error(
      `source file ${file} changed size since curate init (${p.row.image_bytes} bytes then, ` +
        `${bytes.length} now); sample ${p.key} is not exported`,
    );
  return bytes;
}
