import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clipBasicClean, fixText, htmlUnescape, TEXT_CLEANING_VERSION } from '../../src/embed/textClean.js';
import { BUNDLED_CLIP_TOKENIZER, ClipTokenizer, tokenizerFingerprint } from '../../src/embed/tokenizer.js';
import { FIXTURES } from '../helpers.js';

/** Written by scripts/reference/make_token_fixtures.py from OpenAI CLIP's tokenizer and ftfy. */
interface Reference {
  ftfyVersion: string;
  cases: { label: string; text: string; cleaned: string; ids: number[] }[];
}
const reference = JSON.parse(
  readFileSync(path.join(FIXTURES, 'reference', 'captions.json'), 'utf8'),
) as Reference;
const EOT = 49407;
/** What our tokenizer pads with (CLIP's reference pads with 0); the attention mask is 0 there. */
const PAD = BigInt(EOT);

describe("caption cleaning against OpenAI CLIP's basic_clean", () => {
  it('the fixture holds the curated captions and all of ftfy 6.3.1 test cases', () => {
    expect(reference.ftfyVersion).toBe('6.3.1');
    expect(TEXT_CLEANING_VERSION).toContain(`ftfy-${reference.ftfyVersion}`);
    expect(reference.cases.length).toBeGreaterThan(200);
  });

  it('cleans every reference caption to exactly the reference text', () => {
    const wrong = reference.cases
      .filter((c) => clipBasicClean(c.text) !== c.cleaned)
      .map((c) => ({ label: c.label, want: c.cleaned, got: clipBasicClean(c.text) }));
    expect(wrong).toEqual([]);
  });

  it('ClipTokenizer gives the reference ids for every caption (bundled tokenizer, no download)', async () => {
    const tokenizer = await ClipTokenizer.load();
    const { inputIds, attentionMask, length } = tokenizer.encode(reference.cases.map((c) => c.text));
    expect(length).toBe(77);
    const wrong: string[] = [];
    for (const [row, c] of reference.cases.entries()) {
      const ids = [...inputIds.subarray(row * 77, (row + 1) * 77)];
      const mask = [...attentionMask.subarray(row * 77, (row + 1) * 77)];
      // The reference fills <|startoftext|> … <|endoftext|> and pads with 0 (also the id of "!").
      const filled = c.ids.indexOf(EOT) + 1;
      const same =
        filled > 1 &&
        c.ids.slice(0, filled).every((id, i) => BigInt(id) === ids[i] && mask[i] === 1n) &&
        c.ids.slice(filled).every((id, i) => id === 0 && ids[filled + i] === PAD && mask[filled + i] === 0n);
      if (!same) wrong.push(c.label);
    }
    expect(wrong).toEqual([]);
  });

  it('cleaning again changes nothing, except where ftfy left entities because of a literal "<"', () => {
    // OpenAI's basic_clean behaves the same: ftfy skips HTML in a line with '<', html.unescape then
    // decodes only two levels, and a second pass decodes one more.
    const changed = reference.cases
      .filter((c) => clipBasicClean(clipBasicClean(c.text)) !== clipBasicClean(c.text))
      .map((c) => c.label);
    expect(changed).toEqual(["html: literal < disables ftfy's unescape", 'html: < on an earlier line']);
  });
});

describe('clipBasicClean', () => {
  it('fixes UTF-8 read as windows-1252 or Latin-1, in one or two layers', () => {
    expect(clipBasicClean('cafÃ©')).toBe('café');
    expect(clipBasicClean('donâ€™t')).toBe("don't");
    expect(clipBasicClean('Ã¢â‚¬â„¢')).toBe("'");
    expect(clipBasicClean('schÃ¶n und grÃ¼n')).toBe('schön und grün');
    expect(clipBasicClean('voilÃ le travail')).toBe('voilà le travail');
    expect(clipBasicClean('Hi guys ðŸ˜\u008d')).toBe('Hi guys 😍');
    expect(clipBasicClean('\u0093quoted\u0094')).toBe('"quoted"');
  });

  it('leaves text alone that only looks like mojibake', () => {
    for (const legit of [
      'C O N C L U S Ã O',
      'Bremer/Mccoy – DrÃ¥ber',
      'Η ¨ανατροφή¨ δυστυχώς',
      'Crème brûlée à la française',
      'RETWEET SE VOCÊ…',
      '東京タワーの夜景 😍',
    ]) {
      expect(clipBasicClean(legit)).toBe(legit);
    }
  });

  it('applies the other ftfy fixes: quotes, width, ligatures, controls, line breaks, NFC', () => {
    expect(clipBasicClean('“The Starry Night”')).toBe('"The Starry Night"');
    expect(clipBasicClean('ＬＯＵＤ　ＮＯＩＳＥＳ')).toBe('LOUD NOISES');
    expect(clipBasicClean('ﬁsh ﬂoat')).toBe('fish float');
    expect(clipBasicClean('\x1b[36mblue\x1b[0m\x00\ufeff')).toBe('blue');
    expect(clipBasicClean('a\r\nb\u2028c')).toBe('a\nb\nc');
    expect(clipBasicClean('Cafe\u0301')).toBe('Café');
    expect(clipBasicClean(' \t\u3000 ')).toBe('');
  });

  it("decodes HTML as ftfy and then Python's html.unescape (twice) do", () => {
    expect(clipBasicClean('Tom &amp;amp;amp; Jerry')).toBe('Tom & Jerry');
    expect(clipBasicClean('<3 Tom &amp;amp;amp; Jerry')).toBe('<3 Tom &amp; Jerry');
    expect(clipBasicClean('P&EACUTE;REZ')).toBe('PÉREZ');
    expect(clipBasicClean('fish &amp chips, &copy 2019')).toBe('fish & chips, © 2019');
    expect(clipBasicClean('this&not that')).toBe('this¬ that');
  });

  it("htmlUnescape follows Python's rules for numeric and legacy references", () => {
    expect(htmlUnescape('&#0;|&#x80;|&#128|&#xD800;|&#x110000;|&#1;|&#xFFFE;|&#13;')).toBe(
      '\ufffd|€|€|\ufffd|\ufffd|||\r',
    );
    expect(htmlUnescape('&amp|&ampx;|&notit;|&hellip|&#|&#x;')).toBe('&|&x;|¬it;|&hellip|&#|&#x;');
    // entities 7.x and 8.0 decode this to "Á;"; Python leaves it.
    expect(htmlUnescape('&backepsilonx;')).toBe('&backepsilonx;');
  });

  it('fixText keeps line structure and its HTML decision from the first line with "<"', () => {
    expect(fixText('&amp;\n<b>\n&amp;')).toBe('&\n<b>\n&amp;');
  });
});

describe('tokenizer fingerprint', () => {
  it('covers the cleaning version, so workspaces embedded before cleaning differ', async () => {
    const file = await readFile(path.join(BUNDLED_CLIP_TOKENIZER, 'tokenizer.json'));
    const hash = (...parts: (Buffer | string)[]) =>
      parts
        .reduce((h, p) => h.update(p), createHash('sha256'))
        .digest('hex')
        .slice(0, 12);
    const fingerprint = await tokenizerFingerprint(BUNDLED_CLIP_TOKENIZER);
    expect(fingerprint).toBe(hash(file, TEXT_CLEANING_VERSION));
    expect(fingerprint).not.toBe(hash(file));
    expect((await ClipTokenizer.load()).fingerprint).toBe(fingerprint);
  });
});
