/**
 * Caption filter, as in DataComp's "basic filtering" baseline (Gadre et al. 2023): keep a pair when
 * its caption has between minWords and maxWords words (whitespace-separated), between minChars and
 * maxChars characters (Unicode code points, after trimming), and, when languages are given, is
 * identified as one of them (ISO 639-1 codes; see ../filters/language.ts). Every bound is optional and
 * inclusive; everything that passes is kept, in pool order.
 */
import { z } from 'zod';
import { filterForm } from '../partitioned.js';
import { SelectionInputError, type Selector, type TraceEvent } from '../contract.js';
import { knownLanguages, languageDetector } from '../filters/language.js';
import { items, keepPassing } from '../filters/keep.js';

const count = z.number().int().min(0);
const params = z.object({
  minWords: count.optional().describe('fewest words a caption may have'),
  maxWords: count.optional().describe('most words a caption may have'),
  minChars: count.optional().describe('fewest characters (after trimming)'),
  maxChars: count.optional().describe('most characters (after trimming)'),
  languages: z
    .array(z.string().regex(/^[a-z]{2}$/, 'an ISO 639-1 code such as "en"'))
    .min(1)
    .optional()
    .describe('keep captions identified as one of these languages, e.g. ["en"] (ISO 639-1)'),
});
type Params = z.infer<typeof params>;

/** Whitespace-separated words of a caption. */
export function wordCount(caption: string): number {
  const t = caption.trim();
  return t === '' ? 0 : t.split(/\s+/u).length;
}

/** Characters (Unicode code points) of a caption, after trimming. */
export function charCount(caption: string): number {
  return [...caption.trim()].length;
}

function checkBounds(p: Params): void {
  const given = [p.minWords, p.maxWords, p.minChars, p.maxChars, p.languages];
  if (given.every((v) => v === undefined))
    throw new SelectionInputError(
      'caption-filter needs at least one of minWords, maxWords, minChars, maxChars, languages',
    );
  for (const [lo, hi, what] of [
    [p.minWords, p.maxWords, 'Words'],
    [p.minChars, p.maxChars, 'Chars'],
  ] as const) {
    if (lo !== undefined && hi !== undefined && lo > hi)
      throw new SelectionInputError(`caption-filter: min${what} ${lo} is above max${what} ${hi}`);
  }
}

export const captionFilter: Selector<Params> = {
  name: 'caption-filter',
  description: 'filter: keep captions within word/character bounds and in the given languages',
  params,
  needs: ['samples'],
  kind: 'filter',
  async select(input, budget, p) {
    checkBounds(p);
    const captions = input.samples!.captions;
    const wanted = p.languages ? new Set(p.languages) : undefined;
    if (wanted) {
      const known = await knownLanguages();
      const unknown = [...wanted].filter((l) => !known.has(l));
      if (unknown.length)
        throw new SelectionInputError(
          `caption-filter: the language identifier does not know ${unknown.join(', ')}; it knows ${[...known].join(', ')}`,
        );
    }
    const eld = wanted ? await languageDetector() : undefined;
    const dropped = { short: 0, long: 0, language: 0 };
    const otherLanguages = new Map<string, number>();
    const reasons = new Map<number, string>();
    const fail = (i: number, reason: string) => (reasons.set(i, reason), false);
    const pass = (i: number) => {
      const c = captions[i]!;
      const words = wordCount(c);
      const chars = charCount(c);
      if (p.minWords !== undefined && words < p.minWords)
        return (dropped.short++, fail(i, `${words} words, below minWords ${p.minWords}`));
      if (p.minChars !== undefined && chars < p.minChars)
        return (dropped.short++, fail(i, `${chars} characters, below minChars ${p.minChars}`));
      if (p.maxWords !== undefined && words > p.maxWords)
        return (dropped.long++, fail(i, `${words} words, above maxWords ${p.maxWords}`));
      if (p.maxChars !== undefined && chars > p.maxChars)
        return (dropped.long++, fail(i, `${chars} characters, above maxChars ${p.maxChars}`));
      if (eld) {
        const language = eld.detect(c).language || 'undetermined';
        if (!wanted!.has(language)) {
          dropped.language++;
          otherLanguages.set(language, (otherLanguages.get(language) ?? 0) + 1);
          return fail(i, `language ${language}, not ${[...wanted!].join('/')}`.slice(0, 120));
        }
      }
      return true;
    };
    const trace: TraceEvent[] = [];
    const selection = keepPassing('caption-filter', pass, input.n, budget, trace);
    selection.reasons = reasons;
    const top = [...otherLanguages].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 5);
    selection.trace.unshift({
      stage: 'captions',
      message:
        `dropped ${items(dropped.short)} below the minimum length, ${items(dropped.long)} above the maximum` +
        (wanted
          ? `, ${items(dropped.language)} not in ${[...wanted].join('/')}` +
            (top.length ? ` (${top.map(([l, k]) => `${l} ${k}`).join(', ')})` : '')
          : ''),
    });
    return selection;
  },
  partitioned: filterForm((input, budget, p, ctx) => captionFilter.select(input, budget, p, ctx)),
};
