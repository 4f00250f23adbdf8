/**
 * WebDataset shards: `selection-000000.tar`, … with, per sample in pick order:
 *
 * - from a tar shard: every member of the source sample (`NAME.jpg`, `NAME.cls`, `NAME.json`,
 *   `NAME.txt`, any other) with its own extension and byte for byte, so `to_tuple("jpg", "cls")` works
 *   on the export as on the source; `NAME.txt` (the caption) is added when the source has none;
 * - from an image file or a manifest row: `NAME.<ext>` (the original image bytes) and `NAME.txt`;
 * - always `NAME.curate.json` (selection facts, source, original metadata): its own extension, so it
 *   never replaces a source's `.json`.
 *
 * Headers are fixed (mtime 0, uid/gid 0, no user names, mode 0644) so the same selection always gives
 * the same bytes.
 */
import path from 'node:path';
import tar from 'tar-stream';
import { IMAGE_EXTENSIONS } from '../../embed/readers/files.js';
import { splitMemberName } from '../../embed/readers/webdataset.js';
import type { ExportFolder } from './output.js';
import { jsonObjectText } from './manifest.js';
import { pickFields, sourceFields, type Pick } from './plan.js';
import { readImageFile, type ByteStore, type SourceMember } from './sources.js';
import type { ExportedFile, SkippedSample } from './types.js';

export const DEFAULT_SHARD_SIZE = 10_000;
/** Extension of the member holding clipcurate's facts about a sample (`NAME.curate.json`). */
export const FACTS_EXT = 'curate.json';
/** Image files loaded at once while writing. */
const READ_WINDOW = 32;
const EPOCH = new Date(0);
const IMAGE_EXT = new Set<string>(IMAGE_EXTENSIONS);

export function shardName(index: number): string {
  return `selection-${String(index).padStart(6, '0')}.tar`;
}

/** The image member's extension: the source's own when WebDataset readers know it, else from the format. */
export function imageExtension(p: Pick): string {
  const raw =
    p.source.kind === 'tar'
      ? splitMemberName(p.source.member).ext
      : p.source.kind === 'file'
        ? path.extname(p.source.file).slice(1)
        : '';
  const ext = raw.toLowerCase();
  if (IMAGE_EXT.has(ext)) return ext;
  return p.row.image_format === 'jpeg' ? 'jpg' : p.row.image_format;
}

/** Contents of `NAME.curate.json`. */
export function sampleJson(p: Pick, selection: { name: string; method: string }): Record<string, unknown> {
  const r = p.row;
  return {
    ...pickFields(p),
    caption: r.caption,
    method: selection.method,
    selection: selection.name,
    source: { ...sourceFields(r), source_key: r.source_key },
    image: { format: r.image_format, width: r.width, height: r.height, bytes: r.image_bytes },
    metadata: JSON.parse(r.metadata) as unknown,
  };
}

export interface ShardResult {
  files: ExportedFile[];
  /** Picks written, in order. */
  written: Pick[];
  payloadRead: number;
  payloadWritten: number;
  /** Bytes read from image files while writing. */
  sourceRead: number;
}

export async function writeShards(
  folder: ExportFolder,
  picks: Pick[],
  store: ByteStore,
  skipped: SkippedSample[],
  o: {
    shardSize: number;
    selection: { name: string; method: string };
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<ShardResult> {
  const result: ShardResult = { files: [], written: [], payloadRead: 0, payloadWritten: 0, sourceRead: 0 };
  const facts = (p: Pick) => Buffer.from(jsonObjectText(sampleJson(p, o.selection)), 'utf8');
  let done = 0;
  o.onProgress?.(0, picks.length);
  for (let start = 0, index = 0; start < picks.length; start += o.shardSize, index++) {
    const batch = picks.slice(start, start + o.shardSize);
    const writer = await folder.create(shardName(index));
    const pack = tar.pack();
    const drained = (async () => {
      for await (const chunk of pack as AsyncIterable<Uint8Array>) await writer.write(chunk);
    })();
    // Surface a write failure through the entry calls, which would otherwise wait for room forever.
    drained.catch((err: Error) => pack.destroy(err));
    const entry = (name: string, body: Buffer) =>
      new Promise<void>((resolve, reject) => {
        pack.entry(
          { name, size: body.length, mode: 0o644, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '' },
          body,
          (err) => (err ? reject(err) : resolve()),
        );
      });
    let samples = 0;
    try {
      for (let w = 0; w < batch.length; w += READ_WINDOW) {
        o.signal?.throwIfAborted();
        const window = batch.slice(w, w + READ_WINDOW);
        const loaded = await Promise.all(
          window.map(async (p) => {
            try {
              return await sampleMembers(p, store, (n) => (result.sourceRead += n));
            } catch (err) {
              return err as Error;
            }
          }),
        );
        for (const [i, p] of window.entries()) {
          const members = loaded[i]!;
          if (members instanceof Error) {
            skipped.push({
              rank: p.rank,
              key: p.key,
              sampleId: p.sampleId,
              file: p.source.file,
              reason: members.message,
            });
          } else {
            for (const m of members) {
              await entry(`${p.name}.${m.ext}`, m.bytes);
              result.payloadWritten += m.bytes.length;
            }
            await entry(`${p.name}.${FACTS_EXT}`, facts(p));
            result.written.push(p);
            result.payloadRead += p.row.image_bytes;
            samples++;
          }
          o.onProgress?.(++done, picks.length);
        }
      }
      pack.finalize();
      await drained;
    } catch (err) {
      pack.destroy(err as Error);
      const writeError = await drained.then(
        () => undefined,
        (e: unknown) => e,
      );
      await writer.abandon();
      throw writeError ?? err;
    }
    result.files.push({ ...(await writer.close()), samples });
  }
  return result;
}

/**
 * The members written for a pick, by extension, without `NAME.curate.json`: a tar sample's own members
 * in archive order (plus `txt` when it has no caption member), else the image and the caption.
 */
async function sampleMembers(
  p: Pick,
  store: ByteStore,
  onFileRead: (bytes: number) => void,
): Promise<Array<{ ext: string; bytes: Buffer }>> {
  const caption = { ext: 'txt', bytes: Buffer.from(p.row.caption, 'utf8') };
  if (p.source.kind === 'file') {
    const bytes = await readImageFile(p);
    onFileRead(bytes.length);
    return [{ ext: imageExtension(p), bytes }, caption];
  }
  if (p.source.kind === 'embedded') {
    const bytes = await store.take(p.rank);
    if (!bytes) throw new Error(`the image of ${p.key} was not collected from ${p.source.file}`);
    return [{ ext: imageExtension(p), bytes }, caption];
  }
  const members: SourceMember[] | undefined = await store.takeMembers(p.rank);
  if (!members) throw new Error(`the members of ${p.key} were not collected from ${p.source.file}`);
  const out = members.map((m) => ({ ext: splitMemberName(m.name).ext, bytes: m.bytes }));
  const clash = out.find((m) => m.ext.toLowerCase() === FACTS_EXT);
  if (clash)
    throw new Error(
      `${p.source.file} holds a member ${splitMemberName(p.source.member).key}.${clash.ext} for sample ` +
        `${p.key}, the extension the export uses for its own NAME.${FACTS_EXT}; the sample is not exported`,
    );
  if (!out.some((m) => m.ext.toLowerCase() === 'txt')) out.push(caption);
  return out;
}
