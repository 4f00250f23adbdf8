/**
 * Caption cleaning as OpenAI CLIP's tokenizer does it before BPE (`basic_clean` in
 * `clip/simple_tokenizer.py`): `ftfy.fix_text(text)` with ftfy 6.3's default configuration, then
 * Python's `html.unescape` twice, then `str.strip()`. Without it, curly quotes, HTML entities, full-width
 * letters, ligatures and mojibake ("cafÃ©", "donâ€™t") get other token ids than the ones CLIP was
 * trained on.
 *
 * This is our own TypeScript for ftfy's behaviour, step by step (each function names the ftfy step it
 * mirrors); `textCleanTables.ts` holds the character data. Checked against ftfy itself and OpenAI's
 * tokenizer by `test/embed/textClean.test.ts` (fixture: `scripts/reference/make_token_fixtures.py`).
 *
 * Where it can differ from Python, knowingly:
 * - JavaScript strings are UTF-16, so a surrogate pair is always one character here; Python can hold
 *   the two halves as separate code points, which ftfy's `fix_surrogates` joins. The result is the same.
 * - Unicode tables (NFC, NFKC for full-width forms, case mapping, `\w`) come from Node's ICU, not from
 *   Python's `unicodedata` (Unicode 14 in Python 3.11); they differ only for characters added since.
 * - Named HTML entities come from the `entities` package (the same WHATWG table as Python's
 *   `html.entities.html5`); numeric references follow Python's rules, written out below.
 * Nothing of `fix_text`'s default path is left out.
 */
import { decodeHTML, decodeHTMLStrict, DecodingMode } from 'entities';
import {
  CHARMAP_ENCODINGS,
  type CharmapEncoding,
  LIGATURES,
  MOJIBAKE,
  UPPER_HALF,
} from './textCleanTables.js';

/** Changes whenever cleaning can give other text: part of the tokenizer's fingerprint. */
export const TEXT_CLEANING_VERSION = 'clip-basic-clean/ftfy-6.3.1/1';

/** `basic_clean` from OpenAI CLIP: ftfy, `html.unescape` twice, strip. */
export function clipBasicClean(text: string): string {
  // Plain ASCII without '&', '\r', ESC or control characters: ftfy and html.unescape change nothing.
  if (/^[\t\n\x20-\x25\x27-\x7e]*$/.test(text)) return pythonStrip(text);
  return pythonStrip(htmlUnescape(htmlUnescape(fixText(text))));
}

// ---------------------------------------------------------------------------------------------------
// ftfy.fix_text and fix_and_explain (ftfy/__init__.py)

/** ftfy's `max_decode_length`: longer lines are fixed in pieces of this many code points. */
const MAX_DECODE_LENGTH = 1_000_000;

/**
 * `ftfy.fix_text(text)` with the default `TextFixerConfig`: fixes each line on its own. As in ftfy,
 * a line holding a literal '<' looks like HTML, so from that line on entities are left alone
 * (`unescape_html="auto"`, and ftfy keeps that decision for the lines after it).
 */
export function fixText(text: string): string {
  let unescape = true;
  let out = '';
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos) + 1 || text.length;
    if (end - pos > MAX_DECODE_LENGTH) end = advanceCodePoints(text, pos, MAX_DECODE_LENGTH, end);
    const segment = text.slice(pos, end);
    if (unescape && segment.includes('<')) unescape = false;
    out += fixSegment(segment, unescape);
    pos = end;
  }
  return out;
}

/** Index `count` code points after `pos` (at most `limit`). */
function advanceCodePoints(text: string, pos: number, count: number, limit: number): number {
  let i = pos;
  for (let n = 0; n < count && i < limit; n++) i += (text.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
  return i;
}

/** `fix_and_explain`: every fixer in ftfy's order, repeated until the text stops changing. */
function fixSegment(segment: string, unescape: boolean): string {
  let text = segment;
  for (;;) {
    const before = text;
    if (unescape) text = unescapeHtml(text);
    text = fixEncoding(text);
    text = fixC1Controls(text);
    text = fixLatinLigatures(text);
    text = fixCharacterWidth(text);
    text = uncurlQuotes(text);
    text = fixLineBreaks(text);
    text = fixSurrogates(text);
    text = removeTerminalEscapes(text);
    text = removeControlChars(text);
    text = text.normalize('NFC');
    if (text === before) return text;
  }
}

// ---------------------------------------------------------------------------------------------------
// Single-byte encodings (ftfy/chardata.py, ftfy/bad_codecs/sloppy.py)

interface Charmap {
  name: CharmapEncoding;
  /** Byte → character, 256 entries. */
  decode: string[];
  /** Code point → byte, for every character the encoding can produce. */
  encode: Map<number, number>;
}

const CHARMAPS: Charmap[] = CHARMAP_ENCODINGS.map((name) => {
  const upper = UPPER_HALF[name];
  if (upper.length !== 128)
    throw new Error(`textCleanTables: ${name} has ${upper.length} upper-half characters`);
  const decode = Array.from({ length: 128 }, (_, b) => String.fromCharCode(b)).concat([...upper]);
  // The sloppy codecs let byte 0x1A stand for U+FFFD, so partly lost mojibake can still be decoded.
  if (name.startsWith('sloppy-')) decode[0x1a] = '\ufffd';
  return { name, decode, encode: new Map(decode.map((ch, byte) => [ch.charCodeAt(0), byte])) };
});
const SLOPPY_1252 = CHARMAPS.find((c) => c.name === 'sloppy-windows-1252')!;

/**
 * `text.encode(encoding)` as a "byte string" (one char per byte, 0–255), or undefined when some
 * character has no byte: `possible_encoding` and the encoding in one pass.
 */
function encodeBytes(text: string, charmap: Charmap): string | undefined {
  let bytes = '';
  for (const ch of text) {
    const byte = charmap.encode.get(ch.codePointAt(0)!);
    if (byte === undefined) return undefined;
    bytes += String.fromCharCode(byte);
  }
  return bytes;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Python's `bytes.decode('utf-8')`: throws on anything invalid, keeps a byte-order mark. */
function decodeUtf8(bytes: string): string {
  return STRICT_UTF8.decode(Buffer.from(bytes, 'latin1'));
}

// Python's `$` without MULTILINE also matches before a final newline; these regexes keep that.
const END = '(?=\\n?$)';
/** ftfy's `utf-8-variants` codec: Java's C0 80 for NUL, and CESU-8 surrogate pairs. */
const UTF8_VARIANT_START = new RegExp(
  `\\xc0(?:\\x80|${END})` +
    `|\\xed(?:[\\xa0-\\xaf]|${END})(?:[\\x80-\\xbf]|${END})(?:\\xed|${END})(?:[\\xb0-\\xbf]|${END})(?:[\\x80-\\xbf]|${END})` +
    `|\\xed(?:[\\xa0-\\xbf]|${END})(?:[\\x80-\\xbf]|${END})`,
  'g',
);
const CESU8_PAIR = new RegExp(
  `\\xed(?:[\\xa0-\\xaf]|${END})(?:[\\x80-\\xbf]|${END})(?:\\xed|${END})(?:[\\xb0-\\xbf]|${END})(?:[\\x80-\\xbf]|${END})`,
  'y',
);

/** `bytes.decode('utf-8-variants')` (ftfy/bad_codecs/utf8_variants.py); throws where that raises. */
function decodeUtf8Variants(bytes: string): string {
  let out = '';
  let pos = 0;
  while (pos < bytes.length) {
    UTF8_VARIANT_START.lastIndex = pos;
    const special = UTF8_VARIANT_START.exec(bytes);
    if (!special) return out + decodeUtf8(bytes.slice(pos));
    if (special.index > pos) {
      out += decodeUtf8(bytes.slice(pos, special.index));
      pos = special.index;
    } else if (bytes.charCodeAt(pos) === 0xc0) {
      if (bytes.length - pos < 2) return out + decodeUtf8(bytes.slice(pos));
      out += '\0';
      pos += 2;
    } else {
      if (bytes.length - pos < 6) return out + decodeUtf8(bytes.slice(pos));
      CESU8_PAIR.lastIndex = pos;
      // Anything else starting ED A0..BF is a lone surrogate, which Python's decoder rejects.
      if (!CESU8_PAIR.test(bytes)) return out + decodeUtf8(bytes.slice(pos, pos + 3));
      const b = (i: number) => bytes.charCodeAt(pos + i);
      out += String.fromCodePoint(
        ((b(1) & 0x0f) << 16) + ((b(2) & 0x3f) << 10) + ((b(4) & 0x0f) << 6) + (b(5) & 0x3f) + 0x10000,
      );
      pos += 6;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The badness heuristic (ftfy/badness.py): does this text look like it contains mojibake?

/** Python's `\s` and `\w` on str patterns (JavaScript's differ: `\s` has U+FEFF and lacks U+1C–1F, U+85). */
const PY_SPACE = '[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_WORD = '[\\p{L}\\p{N}_]';

const BADNESS_RE = (() => {
  const {
    common,
    c1,
    bad,
    law,
    currency,
    start_punctuation: start,
    end_punctuation: end,
    numeric,
    kaomoji,
    upper_accented: upper,
    lower_accented: lower,
    upper_common: upperCommon,
    lower_common: lowerCommon,
    box,
  } = MOJIBAKE;
  const any = (...sets: string[]) => `[${sets.join('')}]`;
  // Unlikely juxtapositions of the categories above, in the order of ftfy's BADNESS_RE.
  const sequences = [
    any(c1),
    any(bad, lower, upper, box, start, end, currency, numeric, law) + any(bad),
    '[a-zA-Z]' + any(lowerCommon, upperCommon) + any(bad),
    any(bad) + any(lower, upper, box, start, end, currency, numeric, law),
    any(lower, lowerCommon, box, end, currency, numeric) + any(upper),
    any(box, end, currency, numeric) + any(lower),
    any(lower, box, end) + any(currency),
    PY_SPACE + any(upper) + any(currency),
    any(upper, box) + any(numeric, law),
    any(lower, upper, box, currency, end) + any(start) + any(numeric),
    any(lower, upper, currency, numeric, box, law) + any(end) + any(start),
    any(currency, numeric, box) + any(start),
    '[a-z]' + any(upper) + any(start, currency),
    any(box) + any(kaomoji),
    any(lower, upper, currency, numeric, start, end, law) + any(box),
    any(box) + any(end),
    any(lower, upper) + any(start, end) + PY_WORD,
    // The ligature œ not followed by an unaccented Latin letter.
    '[Œœ][^A-Za-z]',
    // A degree sign after a capital letter.
    any(upper) + '°',
    // Common two-character windows-1252 mojibake the rules above miss.
    '[ÂÃÎÐ]' + any('€œŠš¢£Ÿž\u00a0\u00ad®©°·»', start, end, '–—´'),
    '×[²³]',
    // windows-1252 mojibake of Arabic: needs four characters, as it includes 'common' ones.
    ('[ØÙ]' + any(common, currency, bad, numeric, start, 'ŸŠ®°µ»')).repeat(2),
    // windows-1252 mojibake starting three-byte South Asian letters.
    'à[²µ¹¼½¾]',
    // MacRoman mojibake.
    '√[±∂†≠®™´≤≥¥µø]',
    '≈[°¢]',
    '‚Ä[ìîïòôúùû†°¢π]',
    '‚[âó][àä°ê]',
    // windows-1251 mojibake of U+2000–U+206F, then of Latin-1 and Cyrillic (three characters).
    'вЂ',
    '[ВГРС]' + any(c1, bad, start, end, currency, '°µ') + '[ВГРС]',
    // windows-1251 on top of Latin-1 mojibake of windows-1252; Python's `.` is "not \n".
    'ГўВЂВ[^\\n][A-Za-z ]',
    // windows-1252 encodings of 'à', 'á' and U+00A0 itself.
    'Ã[\u00a0¡]',
    `[a-z]${PY_SPACE}?[ÃÂ] `,
    '^[ÃÂ] ',
    // Â before a character it encodes the same way.
    any('a-z.,?!', end) + 'Â' + any(' ', start, end),
    // windows-1253 mojibake of U+2000–U+206F, then of Latin-1 and Greek.
    'β€[™\u00a0Ά\u00ad®°]',
    '[ΒΓΞΟ]' + any(c1, bad, start, end, currency, '°') + '[ΒΓΞΟ]',
    // windows-1257 mojibake of U+2000–U+206F.
    'ā€',
  ];
  return new RegExp(sequences.join('|'), 'u');
})();

/** ftfy's `is_bad`: some sequence in the text is much more likely mojibake than intended. */
export function looksLikeMojibake(text: string): boolean {
  return BADNESS_RE.test(text);
}

// ---------------------------------------------------------------------------------------------------
// fix_encoding (ftfy/__init__.py `_fix_encoding_one_step_and_explain`)

/** `ftfy.fix_encoding`: one re-decoding step at a time until nothing changes. */
function fixEncoding(text: string): string {
  for (;;) {
    const fixed = fixEncodingOneStep(text);
    if (fixed === text) return text;
    text = fixed;
  }
}

function fixEncodingOneStep(text: string): string {
  if (text.length === 0 || isAscii(text) || !looksLikeMojibake(text)) return text;

  // UTF-8 read as a single-byte encoding: encode it back and read it as UTF-8. The first encoding
  // that can encode the text and gives valid UTF-8 wins.
  const possible = new Set<CharmapEncoding>();
  for (const charmap of CHARMAPS) {
    let bytes = encodeBytes(text, charmap);
    if (bytes === undefined) continue;
    possible.add(charmap.name);
    // `restore_byte_a0`: a U+A0 that some step turned into a space (not for MacRoman, where an en
    // dash before a space would look the same).
    if (charmap.name !== 'macroman' && ALTERED_UTF8_RE.test(bytes)) bytes = restoreByteA0(bytes);
    // `replace_lossy_sequences`: the sloppy codecs encode U+FFFD as 0x1A.
    if (charmap.name.startsWith('sloppy-')) bytes = replaceLossySequences(bytes);
    try {
      return /[\xc0\xed]/.test(bytes) ? decodeUtf8Variants(bytes) : decodeUtf8(bytes);
    } catch {
      // Not UTF-8 in this encoding: try the next.
    }
  }

  // `decode_inconsistent_utf8`: mojibake in only parts of the text.
  if (UTF8_DETECTOR_RE.test(text)) {
    const fixed = decodeInconsistentUtf8(text);
    if (fixed !== text) return fixed;
  }

  // Latin-1 meant as windows-1252. ftfy checks for "windows-1252" in a list that only ever holds
  // "sloppy-windows-1252", so it always takes this branch when Latin-1 fits; we do the same.
  if (possible.has('latin-1')) {
    const fixed = decodeWindows1252Strict(text);
    if (fixed !== undefined && fixed !== text) return fixed;
  }

  // `fix_c1_controls`: whatever C1 controls are left.
  if (/[\x80-\x9f]/.test(text)) return fixC1Controls(text);
  // Mix-ups between two single-byte encodings: ftfy leaves those alone.
  return text;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** `text.encode('latin-1').decode('windows-1252')`, undefined where Python's strict codec raises. */
function decodeWindows1252Strict(text: string): string | undefined {
  if (/[\x81\x8d\x8f\x90\x9d]/.test(text)) return undefined;
  return fixC1Controls(text);
}

/** Sequences that would be UTF-8 if a space were byte A0 (ftfy's ALTERED_UTF8_RE, on bytes). */
const ALTERED_UTF8_RE = new RegExp(
  [
    '[\\xc2\\xc3\\xc5\\xce\\xd0\\xd9] ',
    '[\\xe2\\xe3] [\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf]',
    '[\\xe0-\\xe3][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf] ',
    '\\xf0 [\\x80-\\xbf][\\x80-\\xbf]',
    '\\xf0[\\x80-\\xbf] [\\x80-\\xbf]',
    '\\xf0[\\x80-\\xbf][\\x80-\\xbf] ',
  ].join('|'),
);
const ALTERED_UTF8_ALL = new RegExp(ALTERED_UTF8_RE.source, 'g');
/** "Ã " as its own word is "à" (not the start of the next word), except in Portuguese "às", "àquele"… */
const A_GRAVE_WORD_RE = /\xc3 (?! |quele|quela|quilo|s )/g;

/** `restore_byte_a0` (ftfy/fixes.py), on a byte string. */
function restoreByteA0(bytes: string): string {
  return bytes
    .replace(A_GRAVE_WORD_RE, '\xc3\xa0 ')
    .replace(ALTERED_UTF8_ALL, (match) => match.replaceAll(' ', '\xa0'));
}

/** UTF-8 sequences with a byte lost to 0x1A (or one '?'): ftfy's LOSSY_UTF8_RE, on bytes. */
const LOSSY_UTF8_RE = new RegExp(
  [
    '[\\xc2-\\xdf]\\x1a',
    '[\\xc2-\\xc3]\\?',
    '\\xed[\\xa0-\\xaf][\\x1a?]\\xed[\\xb0-\\xbf][\\x1a?\\x80-\\xbf]',
    '\\xed[\\xa0-\\xaf][\\x1a?\\x80-\\xbf]\\xed[\\xb0-\\xbf][\\x1a?]',
    '[\\xe0-\\xef][\\x1a?][\\x1a\\x80-\\xbf]',
    '[\\xe0-\\xef][\\x1a\\x80-\\xbf][\\x1a?]',
    '[\\xf0-\\xf4][\\x1a?][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf]',
    '[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a?][\\x1a\\x80-\\xbf]',
    '[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf][\\x1a?]',
    '\\x1a',
  ].join('|'),
  'g',
);

/** `replace_lossy_sequences`: such a sequence becomes the UTF-8 bytes of U+FFFD. */
function replaceLossySequences(bytes: string): string {
  return bytes.replace(LOSSY_UTF8_RE, '\xef\xbf\xbd');
}

/**
 * ftfy's UTF8_DETECTOR_RE: runs of characters that look like UTF-8 lead and continuation bytes read
 * in one of the encodings ftfy trusts, not right after another continuation-looking character. The
 * character classes are derived from the tables (what `ftfy/chardata.py` UTF8_CLUES lists).
 */
const UTF8_DETECTOR_RE = (() => {
  // Every charmap encoding up to sloppy-windows-1257 (not iso-8859-2, macroman, cp437).
  const trusted = CHARMAPS.slice(0, CHARMAP_ENCODINGS.indexOf('sloppy-windows-1257') + 1);
  const decodedFrom = (bytes: number[]) =>
    new Set(trusted.flatMap((c) => bytes.map((b) => c.decode[b]!.charCodeAt(0))));
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const cls = (codes: Iterable<number>) => `[${[...codes].map((c) => `\\u{${c.toString(16)}}`).join('')}]`;
  const first2 = decodedFrom(range(0xc2, 0xdf));
  const first3 = decodedFrom(range(0xe0, 0xef));
  const first4 = decodedFrom([0xf0, 0xf3]);
  // A space may stand for a U+A0 continuation byte.
  const continuation = new Set([...decodedFrom(range(0x80, 0xbf)), 0x20]);
  // Continuation characters that also stand for themselves next to mojibake: not in the look-behind.
  const loose = new Set([...' –—―‘’‚“”„•…'].map((c) => c.charCodeAt(0)));
  const strict = [...continuation].filter((c) => !loose.has(c));
  const cont = cls(continuation);
  return new RegExp(
    `(?<!${cls(strict)})(?:${cls(first2)}${cont}|${cls(first3)}${cont}{2}|${cls(first4)}${cont}{3})+`,
    'u',
  );
})();
const UTF8_DETECTOR_ALL = new RegExp(UTF8_DETECTOR_RE.source, 'gu');

/** `decode_inconsistent_utf8`: fix each mojibake-looking run on its own. */
function decodeInconsistentUtf8(text: string): string {
  return text.replace(UTF8_DETECTOR_ALL, (run) =>
    run.length < text.length && looksLikeMojibake(run) ? fixEncoding(run) : run,
  );
}

// ---------------------------------------------------------------------------------------------------
// The other fixers (ftfy/fixes.py), in the order fix_and_explain runs them

/** `fix_c1_controls`: U+0080–U+009F read as the windows-1252 characters they were, as browsers do. */
function fixC1Controls(text: string): string {
  return text.replace(/[\x80-\x9f]/g, (c) => SLOPPY_1252.decode[c.charCodeAt(0)]!);
}

const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');
/** `fix_latin_ligatures`: "ﬁ" → "fi" and the like. */
function fixLatinLigatures(text: string): string {
  return text.replace(LIGATURE_RE, (c) => LIGATURES[c]!);
}

/** U+3000 and the full-width / half-width forms U+FF01–U+FFEF, mapped to their NFKC form. */
const WIDTH_MAP = (() => {
  const map = new Map<string, string>([['\u3000', ' ']]);
  for (let cp = 0xff01; cp < 0xfff0; cp++) {
    const ch = String.fromCharCode(cp);
    const normal = ch.normalize('NFKC');
    if (normal !== ch) map.set(ch, normal);
  }
  return map;
})();
/** `fix_character_width`: "ＬＯＵＤ" → "LOUD", U+3000 → space, half-width katakana to full width. */
function fixCharacterWidth(text: string): string {
  return text.replace(/[\u3000\uff01-\uffef]/g, (c) => WIDTH_MAP.get(c) ?? c);
}

/** `uncurl_quotes`: curly, low-9 and reversed quotes (and U+02BC) become ASCII quotes. */
function uncurlQuotes(text: string): string {
  return text.replace(/[\u201c-\u201f]/g, '"').replace(/[\u02bc\u2018-\u201b]/g, "'");
}

/** `fix_line_breaks`: CRLF, CR, U+2028, U+2029 and U+0085 become "\n". */
function fixLineBreaks(text: string): string {
  return text
    .replaceAll('\r\n', '\n')
    .replaceAll('\r', '\n')
    .replaceAll('\u2028', '\n')
    .replaceAll('\u2029', '\n')
    .replaceAll('\u0085', '\n');
}

/** `fix_surrogates`: pairs are already joined in UTF-16; a lone surrogate becomes U+FFFD. */
function fixSurrogates(text: string): string {
  return text.replace(/[\ud800-\udfff]/gu, '\ufffd');
}

/** `remove_terminal_escapes`: ANSI colour and cursor codes (Python's `\d` is any decimal digit). */
function removeTerminalEscapes(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[(?:\p{Nd}|;)*[a-zA-Z]/gu, '');
}

/** `remove_control_chars`: C0 controls but tab, LF, FF, CR; DEL; U+206A–206F; BOM; U+FFF9–FFFC. */
function removeControlChars(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g, '');
}

// ---------------------------------------------------------------------------------------------------
// HTML entities

/**
 * ftfy's `unescape_html`: only references ending in ';' (so "this&not that" stays), plus all-caps
 * forms of lower-case entity names ("&EACUTE;" → "É") when Python's `html.unescape` leaves them alone.
 */
function unescapeHtml(text: string): string {
  return text.replace(/&#?[0-9A-Za-z]{1,24};/g, (ref) => {
    if (!ref.startsWith('&#')) return namedEntity(ref) ?? ref;
    // html.unescape may decode only a prefix ("&#12abc;"); ftfy then keeps the reference.
    const decoded = htmlUnescape(ref);
    return decoded.includes(';') ? ref : decoded;
  });
}

/** The value of "&name;" in ftfy's HTML_ENTITIES table, if it is there. */
function namedEntity(ref: string): string | undefined {
  const exact = decodeHTMLStrict(ref);
  if (exact !== ref) return exact;
  const lower = ref.toLowerCase();
  if (lower === ref || lower.toUpperCase() !== ref || htmlUnescape(ref) !== ref) return undefined;
  const value = decodeHTMLStrict(lower);
  return value === lower ? undefined : value.toUpperCase();
}

/** Python's `html._invalid_charrefs`: 0, CR, and 0x80–0x9F read as windows-1252. */
function invalidCharref(num: number): string | undefined {
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return SLOPPY_1252.decode[num];
  return undefined;
}

/** Python's `html._invalid_codepoints`: decoded to nothing. */
function isInvalidCodepoint(num: number): boolean {
  return (
    (num >= 0x1 && num <= 0x8) ||
    num === 0xb ||
    (num >= 0xe && num <= 0x1f) ||
    (num >= 0x7f && num <= 0x9f) ||
    (num >= 0xfdd0 && num <= 0xfdef) ||
    (num & 0xfffe) === 0xfffe
  );
}

/**
 * Python's `html.unescape`: every numeric reference and every named one, with or without ';' where
 * HTML5 allows it ("&amp", "&copy"), the longest name that fits ("&notit;" → "¬it;").
 */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu, (ref, body: string) => {
    if (!body.startsWith('#')) return decodeHTML(ref, DecodingMode.Legacy);
    const hex = body[1] === 'x' || body[1] === 'X';
    const digits = body
      .slice(hex ? 2 : 1)
      .replace(/;$/, '')
      .replace(/^0+/, '');
    const num = digits.length > 8 ? Infinity : digits ? parseInt(digits, hex ? 16 : 10) : 0;
    const special = invalidCharref(num);
    if (special !== undefined) return special;
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
    if (isInvalidCodepoint(num)) return '';
    return String.fromCodePoint(num);
  });
}

/** Python's `str.strip()`: Python's whitespace, which is not JavaScript's `trim()`. */
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'g');
function pythonStrip(text: string): string {
  return text.replace(PY_STRIP, '');
}
