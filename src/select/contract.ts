/**
 * The one interface every selection method implements. The contract wrapper (`runSelector`) resolves
 * the budget, checks inputs and parameters once, and checks the result, so no selector repeats that.
 */
import { z } from 'zod';
import type { PartitionedForm } from './partitioned.js';

/** A count, or a fraction of the pool (B = round(f·N), baselines.md §0). */
export type Budget = { count: number } | { fraction: number };

/** `samples`: the catalog facts of each item ({@link SampleFacts}), for the filters. */
export type Need = 'image' | 'text' | 'labels' | 'knn' | 'samples';

/** What the catalog knows of each pool item, row-aligned with the embeddings (for the filters). */
export interface SampleFacts {
  captions: string[];
  /** Image size in pixels as a viewer sees it (EXIF rotation applied). */
  width: Int32Array;
  height: Int32Array;
  /** SHA-256 (hex) of the image file's bytes; null where the catalog predates content hashes. */
  contentHash: Array<string | null>;
  /**
   * For a partition of a larger pool: 1 where the item is the first (lowest catalog id) of its content
   * hash in the whole pool, so exact-dedup can decide without seeing the other partitions.
   */
  firstCopyInPool?: Uint8Array;
}

/** Sparse k-nearest-neighbour graph: row i's neighbours are `neighbors[i*k .. i*k+k)`, -1 when absent. */
export interface KnnGraph {
  k: number;
  neighbors: Int32Array;
  /** Cosine similarities, same layout. */
  similarities: Float32Array;
}

export interface SelectInput {
  /** Pool size. */
  n: number;
  dim: number;
  /** L2-normalised image embeddings, n × dim row-major. */
  image?: Float32Array;
  /** L2-normalised caption embeddings, n × dim. */
  text?: Float32Array;
  /** Class or pseudo-class per item (0-based). */
  labels?: Int32Array;
  /**
   * Text embeddings of class prompts (K × dim, unit rows; e.g. a prompt ensemble per class name) for
   * zero-shot latent classes (ClipCov, SAS).
   */
  classPrompts?: { names: string[]; embeddings: Float32Array };
  /**
   * Mean of A augmented-view image embeddings per item, n × dim, NOT renormalised (sas.md §2): then
   * ⟨z̄_i, z̄_j⟩ estimates E[cos(view of i, view of j)].
   */
  imageViews?: Float32Array;
  knn?: KnnGraph;
  /** Source shard (file) of each item, for per-shard selection (nessa.md N2–N3). */
  shards?: Int32Array;
  /** Payload bytes of each item (image + caption members: nessa.md N1's tier 2), for data-movement accounting. */
  payloadBytes?: Float64Array;
  /** Catalog facts of each item (captions, image sizes, content hashes). */
  samples?: SampleFacts;
  /** The encoder the embeddings come from, where known (checked against an evaluation set's). */
  encoder?: { name: string; fingerprint: string };
  /** Catalog sample id of each item, where the caller has them (a draw keyed by them is the same in any partition). */
  ids?: BigInt64Array;
}

export interface TraceEvent {
  stage: string;
  message: string;
  /** Items the event concerns (e.g. duplicates removed). */
  items?: number[];
}

/**
 * A distillation's learned vectors (rows × dim), each with a label and a stage. `classes` says what the
 * labels are: the pool's label field values (`labels`), indices into the class names (`zero-shot`), or
 * the run's own k-means cluster ids (`kmeans`: meaningful only within one run).
 */
export interface SyntheticVectors {
  dim: number;
  vectors: Float32Array;
  labels: Int32Array;
  stages: Int32Array;
  classes: 'labels' | 'zero-shot' | 'kmeans';
}

export interface Selection {
  /** Picked items in pick order (dataset positions). */
  indices: Int32Array;
  /** How many items each pick stands for (CRAIG-style); absent = all 1. */
  weights?: Float32Array;
  /** A per-item score over the whole pool, where the method has one. */
  scores?: Float32Array;
  /** Marginal gain at each pick, for greedy methods. */
  gains?: Float64Array;
  /** 0-based stage of each pick, for progressive methods (train on stage 0, then stages 0–1, …). */
  stages?: Int32Array;
  /**
   * Learned vectors of a distillation method (not dataset items): rows × dim with a label and stage
   * each, for training heads on frozen embeddings. `indices` then holds their nearest real examples.
   */
  synthetic?: SyntheticVectors;
  /**
   * For dynamic methods (CRAIG/AdaCore schedules, CREST, GRAFT, SeTa, augmentation coresets): what a
   * trainer uses over the run, simulated on the proxy. `indices` then holds one static subset (the
   * method's static analogue, said in the trace).
   */
  schedule?: Schedule;
  /**
   * Why items were kept or dropped: pool position → one short line (at most {@link REASON_MAX}
   * characters), for picks and, where the method knows, for items it left out. `{#i}` inside a reason
   * names pool item i ({@link itemRef}); a saved selection shows that item's key instead.
   */
  reasons?: Map<number, string>;
  trace: TraceEvent[];
}

/** Longest reason a selector may record for one item. */
export const REASON_MAX = 120;

/** How a reason names another pool item (replaced by its key when the selection is saved). */
export function itemRef(i: number): string {
  return `{#${i}}`;
}

/**
 * Rounds over training progress: round r applies for progress in [start, end) (fractions of the run),
 * so a trainer with any number of epochs or steps can map them (craig.md §4 [R]).
 */
export interface Schedule {
  /** What the proxy simulation counted (epochs or SGD steps) and how many in all. */
  unit: 'epoch' | 'step';
  total: number;
  rounds: ScheduleRound[];
}

export interface ScheduleRound {
  start: number;
  end: number;
  indices: Int32Array;
  /** Raw γ (cluster sizes) where the method weights; absent = all 1. */
  weights?: Float32Array;
  /** Mini-batch id of each pick when the round is a set of exact mini-batches (CREST). */
  batches?: Int32Array;
  /** Method-specific facts about the round (rank, thresholds, loss checks…), for inspection. */
  info?: Record<string, number | string>;
}

export interface SelectContext {
  seed: number;
  signal?: AbortSignal;
  progress?: (done: number, total: number) => void;
}

export interface Selector<P extends object = object> {
  /** Registry key = CLI `--method` value = panel label. */
  readonly name: string;
  readonly description: string;
  /** One schema for CLI flags, panel options and provenance; defaults live here. */
  readonly params: z.ZodType<P>;
  readonly needs: readonly Need[];
  /**
   * `filter`: keeps every item that passes its test, in pool order, whatever the budget (a budget
   * smaller than what passes is an error, never a silent cut); chain a selector after it with `from`.
   */
  readonly kind?: 'filter';
  select(input: SelectInput, budget: number, params: P, ctx: SelectContext): Promise<Selection>;
  /** Partition → local selection → merge, for pools split over processes (src/select/partitioned.ts). */
  readonly partitioned?: PartitionedForm<P>;
}

/** Input the user gave is unusable for this method (exit code 2 in the CLI). */
export class SelectionInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectionInputError';
  }
}

export function resolveBudget(budget: Budget, n: number): number {
  if ('count' in budget) {
    if (!Number.isInteger(budget.count) || budget.count < 1 || budget.count > n) {
      throw new SelectionInputError(
        `budget ${budget.count} must be a whole number between 1 and the pool size ${n}`,
      );
    }
    return budget.count;
  }
  if (!(budget.fraction > 0 && budget.fraction <= 1)) {
    throw new SelectionInputError(`budget fraction ${budget.fraction} must be in (0, 1]`);
  }
  return Math.max(1, Math.round(budget.fraction * n));
}

/** `"500"` → count 500, `"10%"` → fraction 0.1, `"0.1"` → fraction 0.1. */
export function parseBudget(text: string): Budget {
  const t = text.trim();
  if (t.endsWith('%')) return { fraction: Number(t.slice(0, -1)) / 100 };
  const v = Number(t);
  if (!Number.isFinite(v))
    throw new SelectionInputError(`budget '${text}' is neither a count nor a fraction`);
  return v < 1 ? { fraction: v } : { count: v };
}

export async function runSelector<P extends object>(
  selector: Selector<P>,
  input: SelectInput,
  budget: Budget,
  rawParams: unknown,
  ctx: SelectContext,
): Promise<Selection> {
  for (const need of selector.needs) {
    const missing = need === 'knn' ? !input.knn : !input[need];
    if (missing)
      throw new SelectionInputError(
        need === 'samples'
          ? `${selector.name} needs the catalog's captions, image sizes and content hashes of the pool`
          : `${selector.name} needs ${need} ${need === 'labels' ? '(or pseudo-labels)' : 'embeddings'}`,
      );
  }
  const facts = input.samples;
  if (
    facts &&
    [facts.captions, facts.width, facts.height, facts.contentHash].some((a) => a.length !== input.n)
  )
    throw new SelectionInputError(`catalog facts do not cover the ${input.n} pool items one each`);
  for (const [name, m] of [
    ['image', input.image],
    ['text', input.text],
    ['augmented-view', input.imageViews],
  ] as const) {
    if (m && m.length !== input.n * input.dim) {
      throw new SelectionInputError(
        `${name} embeddings have ${m.length} values, expected ${input.n} × ${input.dim}`,
      );
    }
  }
  if (input.labels && input.labels.length !== input.n) {
    throw new SelectionInputError(`${input.labels.length} labels for ${input.n} items`);
  }
  // Safety net behind loadEmbeddings (which drops such rows): a NaN or infinite value would win or lose
  // every comparison it meets and silently change the picks.
  for (const [name, m] of [
    ['image', input.image],
    ['text', input.text],
    ['augmented-view', input.imageViews],
  ] as const) {
    const bad = m ? firstNonFiniteRow(m, input.dim) : -1;
    if (bad >= 0) {
      throw new SelectionInputError(
        `${name} embedding of item ${bad} is not finite (${nonFiniteReason(m!, input.dim, bad)}): ` +
          'drop it from the pool before selecting',
      );
    }
  }
  if (input.classPrompts && firstNonFiniteRow(input.classPrompts.embeddings, input.dim) >= 0)
    throw new SelectionInputError('class-prompt embeddings hold NaN or infinite values');
  // Unknown option names are errors, not silently dropped (a typo would otherwise run the defaults).
  const schema = (
    selector.params instanceof z.ZodObject ? selector.params.strict() : selector.params
  ) as z.ZodType<P>;
  const parsed = schema.safeParse(rawParams ?? {});
  if (!parsed.success) {
    throw new SelectionInputError(
      `${selector.name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')}`,
    );
  }
  const b = resolveBudget(budget, input.n);
  const selection = await selector.select(input, b, parsed.data, ctx);
  checkSelection(selector.name, selection, input.n, b);
  return selection;
}

function checkSelection(name: string, s: Selection, n: number, budget: number): void {
  const seen = new Set<number>();
  for (const i of s.indices) {
    if (i < 0 || i >= n || seen.has(i)) throw new Error(`${name} returned an invalid or repeated index ${i}`);
    seen.add(i);
  }
  if (s.indices.length > budget)
    throw new Error(`${name} returned ${s.indices.length} items for a budget of ${budget}`);
  if (s.weights && s.weights.length !== s.indices.length)
    throw new Error(`${name}: one weight per pick expected`);
  if (s.stages && s.stages.length !== s.indices.length)
    throw new Error(`${name}: one stage per pick expected`);
  if (s.scores && s.scores.length !== n) throw new Error(`${name}: one score per pool item expected`);
  for (const [i, reason] of s.reasons ?? []) {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new Error(`${name}: a reason for invalid item ${i}`);
    if (reason.length > REASON_MAX)
      throw new Error(`${name}: the reason for item ${i} is longer than ${REASON_MAX} characters`);
  }
  for (const [r, round] of (s.schedule?.rounds ?? []).entries()) {
    if (!(round.start >= 0 && round.end <= 1 + 1e-9 && round.start < round.end))
      throw new Error(`${name}: schedule round ${r} spans [${round.start}, ${round.end})`);
    for (const i of round.indices)
      if (i < 0 || i >= n) throw new Error(`${name}: schedule round ${r} has an invalid index ${i}`);
    if (round.weights && round.weights.length !== round.indices.length)
      throw new Error(`${name}: schedule round ${r} needs one weight per index`);
  }
}

/** Row i of a row-major matrix. */
export function row(m: Float32Array, dim: number, i: number): Float32Array {
  return m.subarray(i * dim, (i + 1) * dim);
}

/** Row index of the first row of an n × dim matrix holding a NaN or ±Infinity value, or -1. */
export function firstNonFiniteRow(m: Float32Array, dim: number): number {
  if (dim <= 0) return -1;
  // v * 0 is 0 for every finite v and NaN otherwise, so one sum per row tells.
  for (let r = 0, i = 0; i < m.length; r++) {
    let probe = 0;
    for (const end = i + dim; i < end; i++) probe += m[i]! * 0;
    if (probe !== 0) return r;
  }
  return -1;
}

/** What is wrong with row i ("2 NaN and 1 infinite of 512 values"), or undefined when it is finite. */
export function nonFiniteReason(m: Float32Array, dim: number, i: number): string | undefined {
  let probe = 0;
  for (let k = i * dim; k < (i + 1) * dim; k++) probe += m[k]! * 0;
  if (probe === 0) return undefined;
  let nan = 0;
  let infinite = 0;
  for (let k = i * dim; k < (i + 1) * dim; k++) {
    const v = m[k]!;
    if (Number.isNaN(v)) nan++;
    else if (!Number.isFinite(v)) infinite++;
  }
  if (nan + infinite === 0) return undefined;
  const parts = [nan ? `${nan} NaN` : '', infinite ? `${infinite} infinite` : ''].filter(Boolean);
  return `${parts.join(' and ')} of ${dim} values`;
}

/**
 * For a long synchronous loop: call `await checkpoint()` once per step. It throws the signal's reason
 * as soon as the signal is aborted, and about every `everyMs` of work it lets queued events run, so a
 * SIGINT handler or a cancel from the panel gets the chance to abort the signal at all.
 */
export function abortCheckpoint(signal?: AbortSignal, everyMs = 20): () => Promise<void> {
  let last = performance.now();
  return async () => {
    signal?.throwIfAborted();
    if (!signal || performance.now() - last < everyMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    last = performance.now();
    signal.throwIfAborted();
  };
}
