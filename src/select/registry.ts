/**
 * Every selection method by its registry name (= CLI `--method` value = panel label). The CLI and the
 * panel build their option lists from `describeMethods()`.
 */
import { z } from 'zod';
import { SelectionInputError, type Selector } from './contract.js';
import { methodDoc } from './methodDocs.js';
import { clipcov } from './selectors/clipcov.js';
import { clipScore } from './selectors/clipScore.js';
import { crest } from './selectors/crest.js';
import { adacore, craig } from './selectors/craig.js';
import { augcoreset } from './selectors/augcoreset.js';
import { captionFilter } from './selectors/captionFilter.js';
import { evalDedup } from './selectors/evalDedup.js';
import { exactDedup } from './selectors/exactDedup.js';
import { imageFilter } from './selectors/imageFilter.js';
import { el2n, grand } from './selectors/difficulty.js';
import { fast } from './selectors/fast.js';
import { facilityLocation } from './selectors/facilityLocation.js';
import { graft } from './selectors/graft.js';
import { herding } from './selectors/herding.js';
import { kCenter } from './selectors/kCenter.js';
import { nessa } from './selectors/nessa.js';
import { pdd } from './selectors/pdd.js';
import { pddSynth } from './selectors/pddSynth.js';
import { random } from './selectors/random.js';
import { sas } from './selectors/sas.js';
import { semdedup } from './selectors/semdedup.js';
import { seta } from './selectors/seta.js';
import { AUTO_PARTITION_ABOVE } from './partitioned.js';

const SELECTORS: readonly Selector<never>[] = [
  random,
  clipScore,
  semdedup,
  kCenter,
  herding,
  facilityLocation,
  craig,
  adacore,
  augcoreset,
  el2n,
  grand,
  nessa,
  crest,
  seta,
  graft,
  clipcov,
  sas,
  fast,
  pdd,
  pddSynth,
  captionFilter,
  imageFilter,
  exactDedup,
  evalDedup,
] as unknown as Selector<never>[];

export const registry: ReadonlyMap<string, Selector<never>> = new Map(SELECTORS.map((s) => [s.name, s]));

/**
 * The selection methods, without the filters (which keep whatever passes, whatever the budget): what
 * `compare --methods all` and the demo run at each budget.
 */
export function selectionMethods(): string[] {
  return SELECTORS.filter((s) => s.kind !== 'filter').map((s) => s.name);
}

/** Methods with a partition → local → merge form (`curate select --partitions N`). */
export function partitionedMethods(): string[] {
  return SELECTORS.filter((s) => (s as Selector<object>).partitioned).map((s) => s.name);
}

/** How a method runs when the pool is large: its scale mode, in words (`curate methods`, the docs). */
export function scaleModeOf(selector: Selector<never>): string {
  const form = (selector as Selector<object>).partitioned;
  return form
    ? `partition → local selection → merge (--partitions N, and by itself above ${AUTO_PARTITION_ABOVE.toLocaleString('en-US')} pairs; tasks: --partition I/N): ${form.merge}` +
        ('dynamic' in form && form.dynamic
          ? `; with a schedule (epochs > 0): ${form.dynamic.form.merge}`
          : '')
    : 'one process: the whole pool in memory (up to ~2.1M pairs at d = 512 with float32 vectors)';
}

export function getSelector(name: string): Selector<never> {
  const found = registry.get(name);
  if (!found)
    throw new SelectionInputError(`unknown method '${name}'; available: ${[...registry.keys()].join(', ')}`);
  return found;
}

export interface MethodDescription {
  name: string;
  description: string;
  needs: readonly string[];
  /** `filter`: keeps everything that passes (no budget needed); absent for selection methods. */
  kind?: 'filter';
  /** JSON Schema of the parameters (types, defaults, descriptions). */
  params: unknown;
  /** User documentation, relative to the package root (`docs/methods/craig.md`); absent if none yet. */
  docs?: string;
  /** How it runs on pools too large for one process ({@link scaleModeOf}). */
  scale: string;
}

export function describeMethods(): MethodDescription[] {
  return SELECTORS.map((s) => ({
    name: s.name,
    description: s.description,
    needs: s.needs,
    ...(s.kind ? { kind: s.kind } : {}),
    params: z.toJSONSchema(s.params as z.ZodType),
    docs: methodDoc(s.name),
    scale: scaleModeOf(s),
  }));
}
