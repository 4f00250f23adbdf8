/**
 * Where each member's bytes lie in an uncompressed tar shard, read from the headers alone (one 512-byte
 * read per member, plus pax / GNU long-name records; member data is skipped, never read). Manifests
 * carry these offsets so a reader can seek a member in the shard without the catalog
 * (`f.seek(image_offset); f.read(image_bytes)`).
 *
 * The catalog records member names, not offsets (`curate init` reads shards as streams), and workspaces
 * made before offsets existed must export too: hence an index at export time. Names are resolved as
 * tar-stream resolves them for the readers (ustar prefix, pax `path`/`size`, GNU long names), and a
 * sample's members are grouped as the WebDataset reader groups them, so both agree on what a sample is.
 */
import { open } from 'node:fs/promises';
import { MAX_IMAGE_BYTES } from '../../embed/readers/files.js';
import { isPipeSpec, shardIsGzipped } from '../../embed/readers/pipe.js';
import { memberProblem, splitMemberName } from '../../embed/readers/webdataset.js';
import type { Pick } from './plan.js';
import type { SkippedSample } from './types.js';

/** A member's name, the offset of its data (after its header) and its size, in bytes. */
export interface TarMemberEntry {
  name: string;
  offset: number;
  size: number;
}

const BLOCK = 512;
/** pax and GNU long-name records larger than this are refused (tar-stream's limit too). */
const MAX_LONG_HEADER = 1024 * 1024;

/** Every regular-file member of an uncompressed tar, in archive order. Throws on a damaged header. */
export async function indexTar(file: string, signal?: AbortSignal): Promise<TarMemberEntry[]> {
  const handle = await open(file, 'r');
  try {
    const { size: fileSize } = await handle.stat();
    const readAt = async (position: number, length: number): Promise<Buffer> => {
      const buf = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, position + done);
        if (bytesRead === 0) throw new Error(`${file} ends inside a member at byte ${position + done}`);
        done += bytesRead;
      }
      return buf;
    };
    const entries: TarMemberEntry[] = [];
    let pax: Record<string, string> = {};
    let paxGlobal: Record<string, string> = {};
    let longName: string | undefined;
    for (let pos = 0; pos + BLOCK <= fileSize;) {
      signal?.throwIfAborted();
      const header = await readAt(pos, BLOCK);
      if (header.every((b) => b === 0)) break;
      const expected = octal(header, 148, 8);
      if (checksum(header) !== expected)
        throw new Error(`${file}: invalid tar header at byte ${pos} (not a tar, or damaged)`);
      const flag = String.fromCharCode(header[156]!);
      let size = octal(header, 124, 12);
      const dataAt = pos + BLOCK;
      const next = () => dataAt + Math.ceil(size / BLOCK) * BLOCK;
      if (flag === 'K') {
        pos = next(); // a GNU long link name: links are not sample members
        continue;
      }
      if (flag === 'x' || flag === 'g' || flag === 'L') {
        if (size > MAX_LONG_HEADER) throw new Error(`${file}: header record at byte ${pos} is too large`);
        const body = await readAt(dataAt, size);
        if (flag === 'L') longName = text(body, 0, body.length);
        else if (flag === 'g') paxGlobal = parsePax(body);
        else pax = { ...paxGlobal, ...parsePax(body) };
        pos = next();
        continue;
      }
      let name = text(header, 0, 100);
      // ustar: a prefix (bytes 345–499) goes before the name; GNU headers ('ustar  ') have none there.
      if (header.subarray(257, 263).equals(Buffer.from('ustar\0', 'latin1')) && header[345] !== 0)
        name = `${text(header, 345, 155)}/${name}`;
      if (longName !== undefined) name = longName;
      if (pax.path) name = pax.path;
      if (pax.size) size = Number.parseInt(pax.size, 10);
      pax = {};
      longName = undefined;
      if (flag === '0' || flag === '\0' || flag === '7') entries.push({ name, offset: dataAt, size });
      pos = next();
    }
    return entries;
  } finally {
    await handle.close();
  }
}

/**
 * The members of the sample whose image is `imageMember`, grouped as the WebDataset reader groups them:
 * adjacent members sharing a key, skipping those it skips (hidden, `__`-prefixed, unsafe, too large),
 * the first of a repeated extension winning. `undefined` when the image member is not there.
 */
export function sampleEntries(entries: TarMemberEntry[], imageMember: string): TarMemberEntry[] | undefined {
  const key = splitMemberName(imageMember).key;
  let group: TarMemberEntry[] = [];
  let groupKey: string | undefined;
  let closed = false;
  for (const e of entries) {
    if (memberProblem(e.name, 'file') !== undefined) continue;
    const k = splitMemberName(e.name).key;
    if (k !== groupKey) {
      if (groupKey === key && group.some((m) => m.name === imageMember)) return group;
      group = [];
      groupKey = k;
      closed = false;
    }
    if (closed) continue;
    const ext = splitMemberName(e.name).ext.toLowerCase();
    if (group.some((m) => splitMemberName(m.name).ext.toLowerCase() === ext)) {
      closed = true; // a second copy of the sample follows: the reader skips it
      continue;
    }
    if (e.size > MAX_IMAGE_BYTES) continue;
    group.push(e);
  }
  return groupKey === key && group.some((m) => m.name === imageMember) ? group : undefined;
}

/**
 * Give each pick from an uncompressed tar shard the offsets of its members (`source.located`), indexing
 * each shard once. Picks whose image member is not there, or has another size than the catalog
 * records, go to `skipped` (the shard changed since `curate init`). Gzip shards get no offsets.
 */
export async function locateTarMembers(
  picks: Pick[],
  skipped: SkippedSample[],
  signal?: AbortSignal,
): Promise<Pick[]> {
  const indexes = new Map<string, TarMemberEntry[] | Error>();
  const ok: Pick[] = [];
  for (const p of picks) {
    const source = p.source;
    // A `pipe:` shard is a command's output, not a file to seek in: no offsets either.
    if (source.kind !== 'tar' || shardIsGzipped(source.file) || isPipeSpec(source.file)) {
      ok.push(p);
      continue;
    }
    let index = indexes.get(source.file);
    if (!index) {
      index = await indexTar(source.file, signal).catch((err: Error) => {
        if (signal?.aborted) throw err;
        return new Error(`cannot index ${source.file}: ${err.message}`);
      });
      indexes.set(source.file, index);
    }
    const skip = (reason: string) =>
      skipped.push({ rank: p.rank, key: p.key, sampleId: p.sampleId, file: source.file, reason });
    if (index instanceof Error) {
      skip(`${index.message} (sample ${p.key})`);
      continue;
    }
    const members = sampleEntries(index, source.member);
    const image = members?.find((m) => m.name === source.member);
    if (!members || !image) {
      skip(`member ${source.member} (sample ${p.key}) not found in ${source.file}: run curate init again`);
      continue;
    }
    if (image.size !== p.row.image_bytes) {
      skip(
        `member ${source.member} in ${source.file} has ${image.size} bytes, the catalog ${p.row.image_bytes}: ` +
          `the file changed since curate init; sample ${p.key} is not exported`,
      );
      continue;
    }
    source.located = { offset: image.offset, members };
    ok.push(p);
  }
  return ok;
}

function text(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end < 0 || end > start + length ? start + length : end);
}

/** A numeric header field: octal text (space or NUL padded), or base-256 when the high bit is set. */
function octal(buf: Buffer, start: number, length: number): number {
  const field = buf.subarray(start, start + length);
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const digits = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return digits === '' ? 0 : Number.parseInt(digits, 8);
}

/** The header checksum: the byte sum with the checksum field (bytes 148–155) counted as spaces. */
function checksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  return sum;
}

/** pax records: `LEN key=value\n`, LEN counting the whole record in bytes. */
function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (let at = 0; at < body.length;) {
    const space = body.indexOf(0x20, at);
    if (space < 0) break;
    const length = Number.parseInt(body.toString('latin1', at, space), 10);
    if (!(length > 0) || at + length > body.length) break;
    const record = body.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return out;
}
