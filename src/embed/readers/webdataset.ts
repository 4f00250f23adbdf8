import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import {
  countingReadStream,
  decodeCaption,
  IMAGE_EXTENSIONS,
  MAX_IMAGE_BYTES,
  partOfPath,
  statRegularFile,
} from './files.js';
import { isPipeSpec, runPipe, shardIsGzipped, type PipeRun } from './pipe.js';
import {
  ImageLoadError,
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
 *
 * Hostile archives give issues, never a wrong sample: a member that repeats an extension of the sample
 * just before (the same key twice in a row) is a `duplicate-key` issue and the first copy wins, as for
 * any repeated key; hidden (`.x`), `__`-prefixed, absolute, `..` or backslash names and links, devices
 * and FIFOs are `skipped-member` issues; a member over {@link MAX_IMAGE_BYTES} is `too-large` and is
 * skipped without being loaded. A shard that is not a regular file is not opened.
 *
 * A shard may also be a `pipe:COMMAND` (pipe.ts): the command's standard output is read as the tar
 * stream, and a command that fails is an `unreadable-part` issue naming it, its exit status and the end
 * of its standard error (samples it delivered before failing are kept, as for a truncated archive).
 */
export class WebDatasetReader implements DatasetReader {
  readonly format = 'webdataset';

  constructor(private readonly shards: string[]) {}

  async parts(): Promise<DatasetPart[]> {
    return Promise.all(
      this.shards.map((shard) =>
        // A command has no size or date to compare: once read, a pipe part counts as unchanged.
        isPipeSpec(shard) ? { path: shard, size: 0, mtimeMs: 0 } : partOfPath(shard),
      ),
    );
  }

  async *read(part: DatasetPart, ctx: ReadContext = {}): AsyncIterable<ReadItem> {
    const shard = part.path;
    let pipe: PipeRun | undefined;
    let source: Readable;
    if (isPipeSpec(shard)) {
      pipe = runPipe(shard, ctx.signal);
      source = pipe.stdout;
      let bytes = 0;
      if (ctx.onBytes) source.on('data', (chunk: Buffer) => ctx.onBytes!((bytes += chunk.length)));
    } else {
      try {
        await statRegularFile(shard);
      } catch (err) {
        const kind = err instanceof ImageLoadError ? err.kind : 'unreadable-part';
        yield issue(kind, shard, `shard not read: ${(err as Error).message}`);
        return;
      }
      source = countingReadStream(shard, ctx.onBytes);
    }
    const extract = tar.extract();
    const stages: Readable[] = shardIsGzipped(shard) ? [source, createGunzip()] : [source];
    // pipeline() destroys the extractor with the upstream error (truncated gzip, unreadable file).
    pipeline([...stages, extract], () => {});
    try {
      yield* this.samplesOf(shard, extract, ctx);
      const failed = await pipe?.failure;
      if (failed)
        yield issue('unreadable-part', shard, `command failed (${failed}); samples read before it are kept`);
    } finally {
      pipe?.stop();
    }
  }

  private async *samplesOf(shard: string, extract: tar.Extract, ctx: ReadContext): AsyncGenerator<ReadItem> {
    let group: MemberGroup | undefined;
    try {
      for await (const entry of extract) {
        ctx.signal?.throwIfAborted();
        const { name, type, size } = entry.header;
        const skip = memberProblem(name, type);
        if (skip !== undefined) {
          entry.resume();
          if (skip)
            yield issue('skipped-member', shard, `member ${JSON.stringify(name)} ${skip}`, { where: name });
          continue;
        }
        const { key, ext } = splitMemberName(name);
        // A new key closes the previous sample before this member's body is read (it may be cut short).
        if (group && group.key !== key) {
          yield* groupToItems(group, shard);
          group = undefined;
        }
        group ??= { key, members: new Map(), repeated: [] };
        const lower = ext.toLowerCase();
        // The same key again right away: a second sample with this key. The first wins (README).
        if (group.repeated.length > 0 || group.members.has(lower)) {
          group.repeated.push(name);
          entry.resume();
          continue;
        }
        if ((size ?? 0) > MAX_IMAGE_BYTES) {
          entry.resume();
          yield issue(
            'too-large',
            shard,
            `member ${name} has ${size} bytes, more than the ${MAX_IMAGE_BYTES}-byte limit per member; skipped`,
            { key, where: name },
          );
          continue;
        }
        group.members.set(lower, {
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
  /** Members after the first repeat of an extension: a second copy of the sample, skipped. */
  repeated: string[];
}

/** Entry types that carry no sample data and are passed over without an issue. */
const SILENT_TYPES = new Set([
  'directory',
  'pax-header',
  'pax-global-header',
  'gnu-long-path',
  'gnu-long-link-path',
]);

/**
 * Why a member is not read as part of a sample: `undefined` = it is read, `''` = skipped silently (a
 * folder entry), else the reason for a `skipped-member` issue.
 */
export function memberProblem(name: string, type: string | null | undefined): string | undefined {
  if (type && SILENT_TYPES.has(type)) return '';
  if (type && type !== 'file' && type !== 'contiguous-file') return `is a ${type}, not a file: skipped`;
  const parts = name.split(/[/\\]/);
  const base = parts[parts.length - 1] ?? '';
  if (name.startsWith('/') || /^[a-z]:[/\\]/i.test(name)) return 'has an absolute name: skipped';
  if (parts.includes('..')) return 'has a ".." component (an unsafe path, "/" or "\\"): skipped';
  if (name.includes('\0')) return 'has a NUL byte in its name: skipped';
  if (base === '') return 'has an empty name: skipped';
  if (base.startsWith('.')) return 'is hidden (its name starts with "."): skipped';
  if (base.startsWith('__')) return 'starts with "__" (reserved by WebDataset, as in __key__): skipped';
  return undefined;
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

  if (group.repeated.length > 0) {
    yield issue(
      'duplicate-key',
      shard,
      `key ${key} repeats right after its first sample (members ${group.repeated.join(', ')}); ` +
        'the first sample wins, these members are skipped',
      { ...at, where: group.repeated[0]! },
    );
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
    members: [...members.values()],
  };
  yield { type: 'sample', sample };
}
