/**
 * Terminal-safe text. Keys, captions, file names and reasons come from datasets and may hold escape
 * sequences that move the cursor, retitle the window, hide text or reorder it (bidi overrides). Everything
 * the CLI prints goes through {@link printable}: control characters come out as visible escapes.
 */

/** C0 controls, DEL and C1 controls, plus the Unicode bidi embeddings, overrides, isolates and marks. */
function isControl(code: number): boolean {
  return (
    code < 0x20 ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x200e ||
    code === 0x200f ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

const NAMED: Record<number, string> = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r' };

function escapeOne(code: number): string {
  return (
    NAMED[code] ??
    (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
  );
}

export interface PrintableOptions {
  /** Keep line feeds and tabs (whole messages and tables); off for one field inside a line. */
  multiline?: boolean;
}

/**
 * `text` with every control character replaced by a visible escape (`\x1b`, `\u202e`, `\n`). One field
 * inside a line also gets its line feeds escaped, so a key cannot start a forged line.
 */
export function printable(text: string, options: PrintableOptions = {}): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (!isControl(code) || (options.multiline && (code === 0x0a || code === 0x09))) continue;
    out += text.slice(from, i) + escapeOne(code);
    from = i + 1;
  }
  return from === 0 ? text : out + text.slice(from);
}

/** A message on stderr, prefixed `curate: `, made printable. */
export function warn(message: string): void {
  process.stderr.write(`curate: ${printable(message, { multiline: true })}\n`);
}
