/**
 * Where each selection method is documented for users: a path relative to the package root (the
 * `docs/` folder ships with the package), with an anchor when one page documents several methods.
 * `curate methods` prints these; test/select/methodDocs.test.ts checks that every registered method
 * has an entry, that the file exists and that it names every parameter of the method's schema.
 */

const METHOD_DOCS: Readonly<Record<string, string>> = {
  random: 'docs/methods/baselines.md#random',
  'clip-score': 'docs/methods/baselines.md#clip-score',
  semdedup: 'docs/methods/baselines.md#semdedup',
  'k-center': 'docs/methods/baselines.md#k-center',
  herding: 'docs/methods/baselines.md#herding',
  'facility-location': 'docs/methods/baselines.md#facility-location',
  el2n: 'docs/methods/baselines.md#el2n',
  grand: 'docs/methods/baselines.md#grand',
  craig: 'docs/methods/craig.md',
  adacore: 'docs/methods/adacore.md',
  augcoreset: 'docs/methods/augcoreset.md',
  nessa: 'docs/methods/nessa.md',
  crest: 'docs/methods/crest.md',
  seta: 'docs/methods/seta.md',
  graft: 'docs/methods/graft.md',
  clipcov: 'docs/methods/clipcov.md',
  sas: 'docs/methods/sas.md',
  fast: 'docs/methods/fast.md',
  pdd: 'docs/methods/pdd.md#pdd',
  'pdd-synth': 'docs/methods/pdd.md#pdd-synth',
  'caption-filter': 'docs/methods/filters.md#caption-filter',
  'image-filter': 'docs/methods/filters.md#image-filter',
  'exact-dedup': 'docs/methods/filters.md#exact-dedup',
  'eval-dedup': 'docs/methods/filters.md#eval-dedup',
};

/** The index of all method pages. */
export const METHODS_INDEX_DOC = 'docs/methods/README.md';

/** Package-relative doc of a method (`docs/methods/baselines.md#k-center`), or undefined if it has none yet. */
export function methodDoc(name: string): string | undefined {
  return Object.hasOwn(METHOD_DOCS, name) ? METHOD_DOCS[name] : undefined;
}
