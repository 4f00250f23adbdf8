/**
 * Caption language identification, offline: eld (Efficient Language Detector, nitotm, Apache-2.0), its
 * `small` n-gram database (60 languages, ISO 639-1 codes such as `en`, `de`, `zh`). Chosen over franc-min
 * (trigram model, wrong on about 3 in 10 short captions in our check) and tinyld (as accurate, but
 * ~1.4 ms per caption against eld's ~40 µs, which matters at millions of captions). Like DataComp's
 * fastText filter, it is a statistical guess: captions of one or two words are often misread, so a
 * minimum word count belongs before a language filter.
 */
export type Eld = { detect(text: string): { language: string } };

let detector: Promise<Eld> | undefined;

/** The detector, loaded on first use (its n-gram table is 1.6 MB; most runs never need it). */
export function languageDetector(): Promise<Eld> {
  detector ??= import('eld/small').then((m) => m.eld);
  return detector;
}

/** The languages eld can name (ISO 639-1), for checking a requested list before any work. */
export async function knownLanguages(): Promise<Set<string>> {
  const eld = (await import('eld/small')).eld;
  return new Set(Object.values(eld.info().Languages));
}
