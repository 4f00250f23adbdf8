/**
 * Export names: the file-name-safe form of a catalog key, used as the WebDataset `__key__` of exported
 * shards (members `NAME.jpg`, `NAME.txt`, `NAME.curate.json`, …) and wherever a key becomes part of a path.
 *
 * Rule: letters, digits, `_` and `-` stay; every other character (`/`, `\`, `.`, `%`, `~`, NUL, spaces,
 * non-ASCII…) becomes `%XX` per UTF-8 byte, so `decodeURIComponent(name) === key` and two keys never
 * share a name. Also encoded: a leading `_` of a `__` prefix (WebDataset readers skip `__*` members) and
 * the last letter of Windows device names (`nul` → `nu%6C`). Names longer than {@link MAX_NAME}
 * characters are cut and end in `~` + 16 hex digits of the key's SHA-256 (`~` never appears otherwise).
 * A name is thus one path component: no separator, no `..`, never absolute, never empty.
 */
import { createHash } from 'node:crypto';

export const MAX_NAME = 120;
const KEEP = /^[A-Za-z0-9_-]$/;
const DEVICE = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/i;

function percent(ch: string): string {
  let out = '';
  for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

export function exportName(key: string): string {
  if (key === '') return '%';
  let name = '';
  for (const ch of key) name += KEEP.test(ch) ? ch : percent(ch);
  if (name.startsWith('__')) name = `%5F${name.slice(1)}`;
  if (DEVICE.test(name)) name = name.slice(0, -1) + percent(name.slice(-1));
  if (name.length <= MAX_NAME) return name;
  let cut = MAX_NAME - 17;
  // Do not cut inside a %XX escape.
  const pct = name.lastIndexOf('%', cut - 1);
  if (pct >= 0 && pct > cut - 3) cut = pct;
  return `${name.slice(0, cut)}~${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/** Gives each key its export name, and a distinct one should two names ever coincide (a hash clash). */
export class NameAllocator {
  private readonly used = new Set<string>();

  name(key: string): string {
    const base = exportName(key);
    let name = base;
    for (let n = 2; this.used.has(name); n++) name = `${base}~${n}`;
    this.used.add(name);
    return name;
  }
}

/** Keys that can be written one per line (keys.txt) as they are. */
export function isLineSafe(key: string): boolean {
  return key !== '' && !/[\r\n\0]/.test(key);
}
