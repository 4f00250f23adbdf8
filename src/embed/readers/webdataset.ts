import { stat } from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { countingReadStream, decodeCaption, IMAGE_EXTENSIONS } from './files.js';
import {
  issue,
  type DatasetPart,
  type DatasetReader,
  type ReadContext,
  type ReadItem,
  type Sample,
} from './types.js';

/**
 * WebDataset tar shards (plain or gzip): members that share a key (`dir/000123.jpg`, `dir/000123.txt`, …)
 * and stand next to each other form one sample. The key is the member path up to the first dot of its
 * last component, the extension the rest, as in webdataset's `base_plus_ext`.
 */
export class WebDatasetReader implements DatasetReader {
  readonly format = 'webdataset';

  constructor(private readonly shards: string[]) {}

  async parts(): Promise<DatasetPart[]> {
    return Promise.all(
      this.shards.map(async (path) => {
        const s = await stat(path);
        return { path, size: s.size, mtimeMs: s.mtimeMs };
      }),
    );
  }

  async *read(part: DatasetPart, ctx: ReadContext = {}): AsyncIterable<ReadItem> {
    const shard = part.path;
    const extract = tar.extract();
    const source = countingReadStream(shard, ctx.onBytes);
    const stages: Readable[] = /\.(tgz|gz)$/i.test(shard) ? [source, createGunzip()] : [source];
    // pipeline() destroys the extractor with the upstream error (truncated gzip, unreadable file).
    pipeline([...stages, extract], () => {});

    let group: MemberGroup | undefined;
    try {
      for await (const entry of extract) {
        ctx.signal?.throwIfAborted();
        const name = entry.header.name;
        if (entry.header.type !== 'file' || isHiddenMember(name)) {
          entry.resume();
          continue;
        }
        const { key, ext } = splitMemberName(name);
        // A new key closes the previous sample before this member's body is read (it may be cut short).
        if (group && group.key !== key) {
          yield* groupToItems(group, shard);
          group = undefined;
        }
        group ??= { key, members: new Map() };
        group.members.set(ext.toLowerCase(), {
          name,
          bytes: await readEntry(entry as AsyncIterable<Buffer>),
        });
      }
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      // Samples closed before the break are kept; the one being read is dropped, as it may be incomplete.
      const where = group ? `in sample ${group.key}, which is dropped` : 'before the first sample';
      yield issue('truncated-archive', shard, `archive is cut short ${where}: ${(err as Error).message}`, {
        ...(group ? { key: group.key } : {}),
      });
      return;
    }
    if (group) yield* groupToItems(group, shard);
  }
}

interface MemberGroup {
  key: string;
  members: Map<string, { name: string; bytes: Buffer }>;
}

function isHiddenMember(name: string): boolean {
  const base = name.slice(name.lastIndexOf('/') + 1);
  return base.startsWith('.') || base.startsWith('__');
}

export function splitMemberName(name: string): { key: string; ext: string } {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  return dot < 0 ? { key: name, ext: '' } : { key: name.slice(0, dot), ext: name.slice(dot + 1) };
}

async function readEntry(entry: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry) chunks.push(chunk);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

function* groupToItems(group: MemberGroup, shard: string): Generator<ReadItem> {
  const { key, members } = group;
  const at = { key };
  const imageExt = IMAGE_EXTENSIONS.find((ext) => members.has(ext));
  const metadata: Record<string, unknown> = {};

  const json = members.get('json');
  if (json) {
    try {
      const parsed: unknown = JSON.parse(json.bytes.toString('utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) Object.assign(metadata, parsed);
      else metadata.json = parsed;
    } catch (err) {
      yield issue('malformed-json', shard, `${json.name}: ${(err as Error).message}`, {
        ...at,
        where: json.name,
        severity: 'warning',
      });
    }
  }
  const cls = members.get('cls');
  if (cls) {
    const text = cls.bytes.toString('utf8').trim();
    metadata.cls = /^-?\d+$/.test(text) ? Number(text) : text;
  }

  let caption: string | undefined;
  const txt = members.get('txt');
  if (txt) {
    const decoded = decodeCaption(txt.bytes);
    caption = decoded.text;
    if (!decoded.valid) {
      yield issue('invalid-utf8', shard, `${txt.name} is not valid UTF-8; invalid bytes replaced by U+FFFD`, {
        ...at,
        where: txt.name,
        severity: 'warning',
      });
    }
  } else if (typeof metadata.caption === 'string') {
    caption = metadata.caption.trim();
  }

  const memberList = [...members.values()].map((m) => m.name).join(', ');
  if (!imageExt) {
    yield issue(
      'missing-image',
      shard,
      `no ${IMAGE_EXTENSIONS.join('/')} member (members: ${memberList})`,
      at,
    );
    return;
  }
  if (!caption) {
    const why = txt
      ? `${txt.name} is empty`
      : `no txt member and no caption in json (members: ${memberList})`;
    yield issue('missing-caption', shard, why, at);
    return;
  }
  const image = members.get(imageExt)!;
  const sample: Sample = {
    key,
    caption,
    image: async () => image.bytes,
    metadata,
    location: { file: shard, member: image.name },
  };
  yield { type: 'sample', sample };
}
