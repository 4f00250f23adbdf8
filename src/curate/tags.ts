/**
 * Free-form tags on samples (`hard`, `watermark`, `to-relabel`…), beyond the accept/reject review.
 * Kept in `<workspace>/tags.json`, keyed by sample key (like reviews, so they survive a re-read of the
 * dataset), written atomically (src/io/atomic.ts): a reader sees the old file or the new one, never a
 * torn one. The file lives outside the catalog so tagging works while another process holds it.
 *
 *   { "version": 1, "tags": { "<sample key>": ["tag", …] } }
 *
 * Two processes tagging at the same moment: the later write wins (each write re-reads the file first,
 * so only a truly simultaneous tag is lost).
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';

export const TAGS_FILE = 'tags.json';
const MAX_TAG_LENGTH = 64;

/** A tag that is empty, too long or has control characters, or a damaged tags file. */
export class TagInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TagInputError';
  }
}

export interface TagCount {
  tag: string;
  count: number;
}

/** One reading of the tags file: key → sorted tags. */
export class SampleTags {
  private constructor(private readonly byKey: ReadonlyMap<string, readonly string[]>) {}

  static file(workspace: string): string {
    return path.join(workspace, TAGS_FILE);
  }

  /** The workspace's tags now (an empty set when nothing was tagged yet). */
  static async load(workspace: string): Promise<SampleTags> {
    const file = SampleTags.file(workspace);
    if (!existsSync(file)) return new SampleTags(new Map());
    const { mtimeMs, size } = await stat(file);
    const cached = cache.get(file);
    if (cached && cached.mtimeMs === mtimeMs && cached.size === size) return cached.tags;
    const tags = new SampleTags(parseTagsFile(file, await readFile(file, 'utf8')));
    cache.set(file, { mtimeMs, size, tags });
    return tags;
  }

  tagsOf(key: string): readonly string[] {
    return this.byKey.get(key) ?? [];
  }

  /** Keys carrying `tag`. */
  keysWith(tag: string): string[] {
    const keys: string[] = [];
    for (const [key, tags] of this.byKey) if (tags.includes(tag)) keys.push(key);
    return keys;
  }

  /** Every tag with its number of samples, most used first. */
  counts(): TagCount[] {
    const counts = new Map<string, number>();
    for (const tags of this.byKey.values()) for (const t of tags) counts.set(t, (counts.get(t) ?? 0) + 1);
    return [...counts]
      .map(([tag, count]) => ({ tag, count }))
      .sort((a, b) => b.count - a.count || a.tag.localeCompare(b.tag));
  }

  entries(): IterableIterator<[string, readonly string[]]> {
    return this.byKey.entries();
  }
}

const cache = new Map<string, { mtimeMs: number; size: number; tags: SampleTags }>();

/**
 * Add (`remove: false`) or remove `tags` on `keys`; returns how many samples changed. The caller
 * checks that the keys are in the catalog (`CurationView.tag`, `curate tag`).
 */
export async function changeTags(
  workspace: string,
  keys: readonly string[],
  tags: readonly string[],
  remove = false,
): Promise<number> {
  const clean = tags.map(checkTag);
  if (clean.length === 0) throw new TagInputError('no tag given');
  const current = await SampleTags.load(workspace);
  const next = new Map(current.entries());
  let changed = 0;
  for (const key of new Set(keys)) {
    const before = next.get(key) ?? [];
    const after = remove
      ? before.filter((t) => !clean.includes(t))
      : [...new Set([...before, ...clean])].sort();
    if (after.length === before.length) continue;
    changed++;
    if (after.length) next.set(key, after);
    else next.delete(key);
  }
  if (changed === 0) return 0;
  const file = SampleTags.file(workspace);
  const body = { version: 1, tags: Object.fromEntries([...next].sort(([a], [b]) => (a < b ? -1 : 1))) };
  await writeFileAtomic(file, `${JSON.stringify(body)}\n`);
  cache.delete(file);
  return changed;
}

/** A tag as stored: trimmed, 1–64 characters, no control characters. */
export function checkTag(tag: string): string {
  const t = String(tag).trim();
  if (t === '') throw new TagInputError('a tag cannot be empty');
  if (t.length > MAX_TAG_LENGTH)
    throw new TagInputError(`tag '${t.slice(0, 20)}…' is longer than ${MAX_TAG_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(t)) throw new TagInputError(`tag '${t}' has control characters`);
  return t;
}

function parseTagsFile(file: string, text: string): Map<string, readonly string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new TagInputError(`${file} is damaged (${(err as Error).message}); fix or delete it`);
  }
  const tags = (parsed as { tags?: unknown } | null)?.tags;
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags))
    throw new TagInputError(`${file} is damaged: expected {"version": 1, "tags": {key: [tags]}}`);
  const byKey = new Map<string, readonly string[]>();
  for (const [key, list] of Object.entries(tags)) {
    if (!Array.isArray(list) || !list.every((t) => typeof t === 'string'))
      throw new TagInputError(`${file} is damaged: the tags of sample '${key}' are not a list of strings`);
    if (list.length) byKey.set(key, list as string[]);
  }
  return byKey;
}
