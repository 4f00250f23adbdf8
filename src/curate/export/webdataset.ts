/**
 * WebDataset shards: `selection-000000.tar`, … with, per sample in pick order, `NAME.<ext>` (the
 * original image bytes), `NAME.txt` (the caption) and `NAME.json` (selection facts, source, original
 * metadata). Headers are fixed (mtime 0, uid/gid 0, no user names, mode 0644) so the same selection
 * always gives the same bytes.
 */
import path from 'node:path';
import tar from 'tar-stream';
import { IMAGE_EXTENSIONS } from '../../embed/readers/files.js';
import { splitMemberName } from '../../embed/readers/webdataset.js';
import type { ExportFolder } from './output.js';
import { pickFields, sourceFields, type Pick } from './plan.js';
import { readImageFile, type ByteStore } from './sources.js';
import type { ExportedFile, SkippedSample } from './types.js';

export const DEFAULT_SHARD_SIZE = 10_000;
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

/** Contents of `NAME.json`. */
export function sampleJson(p: Pick, selection: { name: string; method: string }): Record<string, unknown> {
  const r = p.row;
  return {
    ...pickFields(p),
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
              if (p.source.kind !== 'file')
                return (
                  (await store.take(p.rank)) ??
                  new Error(`the image of ${p.key} was not collected from ${p.source.file}`)
                );
              const bytes = await readImageFile(p);
              result.sourceRead += bytes.length;
              return bytes;
            } catch (err) {
              return err as Error;
            }
          }),
        );
        for (const [i, p] of window.entries()) {
          const bytes = loaded[i]!;
          if (bytes instanceof Error) {
            skipped.push({
              rank: p.rank,
              key: p.key,
              sampleId: p.sampleId,
              file: p.source.file,
              reason: bytes.message,
            });
          } else {
            const caption = Buffer.from(p.row.caption, 'utf8');
            const json = Buffer.from(JSON.stringify(sampleJson(p, o.selection)), 'utf8');
            await entry(`${p.name}.${imageExtension(p)}`, bytes);
            await entry(`${p.name}.txt`, caption);
            await entry(`${p.name}.json`, json);
            result.written.push(p);
            result.payloadRead += bytes.length;
            result.payloadWritten += bytes.length + caption.length;
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
