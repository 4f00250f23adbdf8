/**
 * Partition → local selection → merge: how the coverage methods run on pools that do not fit one
 * process (GreeDi: Mirzasoleiman, Karbasi, Sarkar & Krause, "Distributed Submodular Maximization",
 * NeurIPS 2013, in its weighted form). The pool is split into N partitions; each partition keeps
 * ⌈κ·k_I⌉ candidates chosen by the method itself (k_I = ⌈r·n_I⌉, its share of the budget at the
 * budget's rate r), each weighted by how many of the partition's items it stands for; the merge runs
 * the method once more on the union of candidates, each counted with that multiplicity, and keeps the
 * budget. A partition's step reads only that partition; the merge only the candidates.
 *
 * The local step depends only on its own partition and the rate, never on the other partitions, so a
 * partition whose inputs did not change keeps its candidates (incremental selection).
 */
import {
  SelectionInputError,
  type Schedule,
  type ScheduleRound,
  type SelectContext,
  type Selection,
  type SelectInput,
  type Selector,
  type SyntheticVectors,
} from './contract.js';
import { gather, topKInnerProduct, type Matrix } from './kernels/similarity.js';
import { sampleKey } from './selectors/random.js';

/**
 * κ: candidates per partition = ⌈κ · k_I⌉ (GreeDi's oversampling). On clustered synthetic data
 * (bench/partitioned.ts, 20k items, 4 partitions) κ = 2 kept 97.8% of the single run's objective, 4
 * kept 99.0%, 8 no more than 4.
 */
export const MERGE_FACTOR = 4;

/**
 * Pools above this many pairs run partitioned by default (methods with a partitioned form): one process
 * would hold the whole n × d matrix (image and caption: 4 GB at 1M × 512 in float32, and a Node buffer
 * stops at 4 GiB, ~2.1M rows at d = 512).
 */
export const AUTO_PARTITION_ABOVE = 1_000_000;
/**
 * Items per partition when the partitions are chosen automatically: the size bench/scale.ts measures
 * (peak RSS 1.1–1.7 GB at 1M and 3M pairs for every method it runs, d = 512, float16 store).
 */
export const AUTO_PARTITION_ITEMS = 100_000;

/** A partition's candidates (rows of its input) and the number of items each stands for. */
export interface Candidates {
  indices: Int32Array;
  weights: Float32Array;
}

/** An exact form's picks from one partition, best first, with the order key of each (higher first). */
export interface Ranked {
  indices: Int32Array;
  keys: Float64Array;
}

/**
 * Per-item-score methods: each partition keeps its best min(n_I, B) items with their order keys, and the
 * merge keeps the B highest keys of the union (ties: the lower catalog id, the single run's order). The
 * union holds the single run's picks, so the merge returns exactly them, and it reads keys only: no
 * vectors, whatever N·B is.
 */
/**
 * What every partition's local step shares, computed once per run from a seeded sample of the pool
 * (the same sample in every task), e.g. a proxy model: JSON-serialisable, written once to a file that
 * all tasks read.
 */
export interface SharedPrepare<P extends object = object> {
  /** Items of the pool sample it is computed from (the whole pool if smaller). */
  readonly sampleSize: number;
  run(sample: SelectInput, params: P, seed: number, signal?: AbortSignal): Promise<unknown>;
}

export interface ExactForm<P extends object = object> {
  readonly exact: true;
  /** A state computed once from a pool sample and passed to every partition's local step. */
  readonly prepare?: SharedPrepare<P>;
  /** What the merge does, in words (for `curate methods`, the docs and the trace). */
  readonly merge: string;
  /**
   * Filters: each partition keeps every item that passes (whatever the budget), and the merge keeps
   * them all in catalog order; more than the budget is an error, as in one process.
   */
  readonly keepsAll?: boolean;
  /** Up to `want` items of one partition, best first (`shared`: what {@link prepare} computed). */
  local(
    input: SelectInput,
    want: number,
    params: P,
    seed: number,
    signal?: AbortSignal,
    shared?: unknown,
  ): Promise<Ranked>;
}

/** Two-round GreeDi: each partition keeps ⌈κ·k_I⌉ weighted candidates, the merge runs on their union. */
export interface GreediForm<P extends object = object> {
  readonly exact?: false;
  readonly merge: string;
  /**
   * Candidates per partition = ⌈oversample · k_I⌉: κ ({@link MERGE_FACTOR}) unless set. 1 for methods
   * that already run per partition of the pool (per class or cluster) with a proportional budget, whose
   * merge only trims the rounding.
   */
  readonly oversample?: number;
  /** Up to `want` candidates of one partition; weights add up to the partition's size. */
  local(
    input: SelectInput,
    want: number,
    params: P,
    seed: number,
    signal?: AbortSignal,
    shared?: unknown,
  ): Promise<Candidates>;
  /** The final `budget` picks from the union, each row counted `multiplicity[i]` times. */
  combine(
    input: SelectInput,
    multiplicity: Float64Array,
    budget: number,
    params: P,
    seed: number,
    signal?: AbortSignal,
  ): Promise<Candidates>;
  /** The form used instead when the parameters ask for a schedule (`epochs` > 0). */
  readonly dynamic?: { when(params: P): boolean; form: QuotaForm<P> };
}

/**
 * Methods whose result cannot be selected again from candidates: the dynamic ones, whose result is a
 * schedule of rounds over training that follow one proxy's training (CREST, SeTa; GRAFT, CRAIG, AdaCore
 * and augmentation coresets with `epochs` > 0), and staged distillation (pdd-synth). Each partition
 * runs the method itself on its own items at its quota of the budget, with its own proxy (as NeSSA
 * selects per shard), and the merge joins without selecting again ({@link concatenatePartitions}): the
 * partitions' static picks with their stages, and at every moment of training the rounds in force in
 * each partition. The quotas are fixed up front: the largest-remainder split of B over the partitions'
 * sizes ({@link partitionQuotas}), which adds up to B.
 */
export interface QuotaForm<P extends object = object> {
  readonly quotas: true;
  readonly exact?: false;
  readonly merge: string;
  /** The method's own result on one partition's items at its quota. */
  local(input: SelectInput, quota: number, params: P, seed: number, signal?: AbortSignal): Promise<Selection>;
}

export type PartitionedForm<P extends object = object> = ExactForm<P> | GreediForm<P> | QuotaForm<P>;

/** The form a run with these parameters uses: a GreeDi form's quota form when they ask for a schedule. */
export function formFor<P extends object>(form: PartitionedForm<P>, params: P): PartitionedForm<P> {
  return 'dynamic' in form && form.dynamic?.when(params) ? form.dynamic.form : form;
}

export function isQuotaForm<P extends object>(form: PartitionedForm<P>): form is QuotaForm<P> {
  return 'quotas' in form && form.quotas;
}

/** A quota form from the method's own `select`: each partition runs it at its quota ({@link QuotaForm}). */
export function quotaForm<P extends object>(
  select: (input: SelectInput, budget: number, params: P, ctx: SelectContext) => Promise<Selection>,
  merge: string,
): QuotaForm<P> {
  return {
    quotas: true,
    merge,
    local: (input, quota, params, seed, signal) =>
      select(input, quota, params, { seed, ...(signal ? { signal } : {}) }),
  };
}

/**
 * The budget split over partitions of these sizes in proportion to them, adding up to `budget` exactly:
 * ⌊B·n_I/N⌋ each, and the items left over one each to the largest remainders (ties: the lower
 * partition), Hamilton's method. Integer arithmetic: exact while B·N < 2⁵³.
 */
export function partitionQuotas(sizes: readonly number[], budget: number): number[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total === 0) return sizes.map(() => 0);
  const quotas = sizes.map((n) => Math.floor((budget * n) / total));
  const byRemainder = sizes
    .map((n, i) => ({ i, remainder: (budget * n) % total }))
    .sort((a, b) => b.remainder - a.remainder || a.i - b.i);
  let left = budget - quotas.reduce((a, b) => a + b, 0);
  for (const { i } of byRemainder) {
    if (left === 0) break;
    quotas[i]!++;
    left--;
  }
  return quotas;
}

/** One partition's result in the merged pool's rows (what {@link concatenatePartitions} joins). */
export interface PartitionResult {
  indices: Int32Array;
  weights?: Float32Array;
  /** Stage of each pick (progressive methods): stage s of the join is every partition's stage s. */
  stages?: Int32Array;
  schedule?: Schedule;
  /** A distillation's learned vectors (pdd-synth), joined like the picks: by stage, partition order within. */
  synthetic?: SyntheticVectors;
}

/**
 * The partitions' results as one: static picks (with weights, 1 where a partition has none, and
 * stages) one after the other, stably ordered by stage when there are stages (so stage 0 of every
 * partition comes first, as one progressive run orders its picks), and the schedules joined by
 * {@link concatenateSchedules}.
 */
export function concatenatePartitions(parts: readonly PartitionResult[]): PartitionResult {
  const picks = parts.flatMap((p) =>
    Array.from(p.indices, (index, j) => ({
      index,
      weight: p.weights ? p.weights[j]! : 1,
      stage: p.stages ? p.stages[j]! : 0,
    })),
  );
  const staged = parts.some((p) => p.stages);
  if (staged) picks.sort((a, b) => a.stage - b.stage); // stable: partition order within a stage
  const schedules = parts.flatMap((p) => (p.schedule ? [p.schedule] : []));
  return {
    indices: Int32Array.from(picks, (p) => p.index),
    ...(parts.some((p) => p.weights) ? { weights: Float32Array.from(picks, (p) => p.weight) } : {}),
    ...(staged ? { stages: Int32Array.from(picks, (p) => p.stage) } : {}),
    ...(schedules.length ? { schedule: concatenateSchedules(schedules) } : {}),
    ...(parts.some((p) => p.synthetic)
      ? { synthetic: concatenateSynthetic(parts.flatMap((p) => p.synthetic ?? [])) }
      : {}),
  };
}

/**
 * Several partitions' learned vectors as one set, ordered stably by stage (stage s of every partition,
 * in partition order, then stage s + 1) like the picks. k-means cluster ids are each partition's own:
 * they are renumbered (partition t's ids after those of partitions before it) so that clusters of
 * different partitions stay distinct; label values and class-name indices mean the same everywhere.
 */
export function concatenateSynthetic(parts: readonly SyntheticVectors[]): SyntheticVectors {
  const { dim, classes } = parts[0]!;
  if (parts.some((p) => p.dim !== dim || p.classes !== classes))
    throw new Error(
      'partitions disagree on the synthetic vectors’ dimension or classes: one method, one setting',
    );
  const rows: Array<{ part: number; row: number; stage: number; label: number }> = [];
  let offset = 0;
  for (const [part, p] of parts.entries()) {
    let next = offset;
    p.labels.forEach((label, row) => {
      const shifted = classes === 'kmeans' ? offset + label : label;
      next = Math.max(next, shifted + 1);
      rows.push({ part, row, stage: p.stages[row]!, label: shifted });
    });
    offset = next;
  }
  rows.sort((a, b) => a.stage - b.stage); // stable: partition order within a stage
  const vectors = new Float32Array(rows.length * dim);
  rows.forEach((r, j) =>
    vectors.set(parts[r.part]!.vectors.subarray(r.row * dim, (r.row + 1) * dim), j * dim),
  );
  return {
    dim,
    vectors,
    labels: Int32Array.from(rows, (r) => r.label),
    stages: Int32Array.from(rows, (r) => r.stage),
    classes,
  };
}

/**
 * Several partitions' schedules (rows already in one index space) as one: training progress is cut at
 * every partition's round boundaries, and each piece is a round holding, one after the other, the rounds
 * in force there (a partition without one, e.g. in CREST's full-data warm-up, adds nothing). Mini-batch
 * ids are renumbered so each partition's batches stay whole and distinct; weights are 1 where a
 * partition's round has none. Rounds aligned on epochs (SeTa, CRAIG, GRAFT) stay one per epoch; rounds
 * that end at different steps in each partition (CREST) give one piece per boundary. `total`: the
 * epochs (every partition runs the same number), or the sum of the partitions' steps (each runs its
 * share of the steps, and a trainer of the union runs them all).
 */
export function concatenateSchedules(schedules: readonly Schedule[]): Schedule {
  const unit = schedules[0]!.unit;
  if (schedules.some((s) => s.unit !== unit))
    throw new Error('partitions disagree on the schedule unit (epochs and steps): one method, one unit');
  const cuts = [...new Set(schedules.flatMap((s) => s.rounds.flatMap((r) => [r.start, r.end])))].sort(
    (a, b) => a - b,
  );
  const rounds: ScheduleRound[] = [];
  for (let c = 0; c + 1 < cuts.length; c++) {
    const [start, end] = [cuts[c]!, cuts[c + 1]!];
    const inForce = schedules.flatMap((s) => s.rounds.find((r) => r.start <= start && r.end >= end) ?? []);
    if (inForce.length === 0) continue;
    const weighted = inForce.some((r) => r.weights);
    const batched = inForce.some((r) => r.batches);
    let batchOffset = 0;
    const batches: number[] = [];
    for (const r of inForce) {
      const ids = r.batches ?? new Int32Array(r.indices.length);
      let last = -1;
      for (const b of ids) {
        batches.push(batchOffset + b);
        last = Math.max(last, b);
      }
      batchOffset += last + 1;
    }
    rounds.push({
      start,
      end,
      indices: Int32Array.from(inForce.flatMap((r) => Array.from(r.indices))),
      ...(weighted
        ? {
            weights: Float32Array.from(
              inForce.flatMap((r) => Array.from(r.weights ?? new Float32Array(r.indices.length).fill(1))),
            ),
          }
        : {}),
      ...(batched ? { batches: Int32Array.from(batches) } : {}),
      info: { partitions: inForce.length },
    });
  }
  const total =
    unit === 'epoch'
      ? Math.max(...schedules.map((s) => s.total))
      : schedules.reduce((n, s) => n + s.total, 0);
  return { unit, total, rounds };
}

/**
 * The exact merge: the `budget` highest keys over every partition's ranked list, ties to the lower
 * `order` value (catalog id, or row of the concatenated pool), best first. Lists are folded in one at a
 * time, so memory is the budget plus one list.
 */
export function mergeRanked<T extends number | bigint>(
  lists: Iterable<{ keys: ArrayLike<number>; order: ArrayLike<T> }>,
  budget: number,
): { keys: Float64Array; order: T[] } {
  let keys: number[] = [];
  let order: T[] = [];
  for (const list of lists) {
    const rows = [...keys.keys()].map((j) => ({ key: keys[j]!, order: order[j]! }));
    for (let j = 0; j < list.keys.length; j++) rows.push({ key: list.keys[j]!, order: list.order[j]! });
    rows.sort((a, b) => b.key - a.key || (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    rows.length = Math.min(rows.length, budget);
    keys = rows.map((r) => r.key);
    order = rows.map((r) => r.order);
  }
  return { keys: Float64Array.from(keys), order };
}

/** A selector that has a partitioned form. */
export type PartitionedSelector = Selector<object> & { partitioned: PartitionedForm };

export function partitionedFormOf(
  selector: Selector<never>,
  methods: readonly string[],
): PartitionedSelector {
  const s = selector as Selector<object>;
  if (!s.partitioned)
    throw new SelectionInputError(
      `${s.name} has no partitioned form yet (methods with one: ${methods.join(', ')}); run it without --partitions`,
    );
  return s as PartitionedSelector;
}

/** k_I and the candidate count ⌈oversample·k_I⌉ of a partition of `size` items at budget rate `rate`. */
export function localWant(
  size: number,
  rate: number,
  oversample: number = MERGE_FACTOR,
): { share: number; want: number } {
  const share = Math.min(size, Math.ceil(rate * size));
  return { share, want: Math.min(size, Math.ceil(oversample * share)) };
}

/** The oversampling factor of a form's first round (1 for exact forms' own rule, see {@link candidatesWanted}). */
export function oversampleOf(form: PartitionedForm<never>): number {
  return form.exact || isQuotaForm(form) ? 1 : (form.oversample ?? MERGE_FACTOR);
}

/** How many candidates a partition of `size` items keeps for `form` (see {@link PartitionedForm.exact}). */
export function candidatesWanted(
  form: PartitionedForm<never>,
  size: number,
  budget: number,
  rate: number,
): number {
  if (form.exact) return form.keepsAll ? size : Math.min(size, budget);
  return localWant(size, rate, oversampleOf(form)).want;
}

/**
 * Seed of partition I's local step: distinct per partition for the GreeDi and quota forms, the run's
 * own seed for exact forms (whose result must not depend on how the pool was split). A quota form's
 * partition 0 keeps the run's seed, so one partition is exactly the one-process run.
 */
export function partitionSeed(form: PartitionedForm<never>, seed: number, partition: number): number {
  if (form.exact) return seed;
  return seed + 104_729 * (isQuotaForm(form) ? partition : partition + 1);
}

/**
 * The whole scheme in one process over in-memory partitions (tests and benchmarks; the workspace form
 * in src/curate/partitionedSelect.ts runs the same two steps over files). Returns rows of the
 * concatenated partitions.
 */
export async function selectByPartitions<P extends object>(
  form: PartitionedForm<P>,
  partitions: readonly SelectInput[],
  budget: number,
  params: P,
  seed: number,
): Promise<
  Candidates & { candidates: number; stages?: Int32Array; schedule?: Schedule; synthetic?: SyntheticVectors }
> {
  form = formFor(form, params);
  const total = partitions.reduce((n, x) => n + x.n, 0);
  if (isQuotaForm(form)) {
    const quotas = partitionQuotas(
      partitions.map((x) => x.n),
      budget,
    );
    const parts: PartitionResult[] = [];
    let offset = 0;
    for (const [t, x] of partitions.entries()) {
      if (quotas[t]! > 0) {
        const local = await form.local(x, quotas[t]!, params, partitionSeed(form as never, seed, t));
        parts.push(shiftRows(local, offset));
      }
      offset += x.n;
    }
    const merged = concatenatePartitions(parts);
    return {
      indices: merged.indices,
      weights: merged.weights ?? new Float32Array(merged.indices.length).fill(1),
      candidates: merged.indices.length,
      ...(merged.stages ? { stages: merged.stages } : {}),
      ...(merged.schedule ? { schedule: merged.schedule } : {}),
      ...(merged.synthetic ? { synthetic: merged.synthetic } : {}),
    };
  }
  if (form.exact) {
    const shared =
      form.prepare &&
      (await form.prepare.run(poolSample(partitions, form.prepare.sampleSize, seed), params, seed));
    const lists: Array<{ keys: Float64Array; order: number[] }> = [];
    let start = 0;
    for (const x of partitions) {
      const want = candidatesWanted(form as never, x.n, budget, 0);
      const local = await form.local(x, want, params, seed, undefined, shared);
      lists.push({ keys: local.keys, order: Array.from(local.indices, (row) => start + row) });
      start += x.n;
    }
    const candidates = lists.reduce((n, l) => n + l.keys.length, 0);
    if (form.keepsAll) checkFilterBudget(candidates, total, budget);
    const merged = mergeRanked(lists, budget);
    return {
      indices: Int32Array.from(merged.order),
      weights: new Float32Array(merged.order.length).fill(1),
      candidates,
    };
  }
  const rate = budget / total;
  const union: number[] = []; // rows of the concatenated partitions
  const from: Array<[SelectInput, number]> = [];
  const multiplicity: number[] = [];
  let offset = 0;
  for (const [t, x] of partitions.entries()) {
    const want = candidatesWanted(form as PartitionedForm<never>, x.n, budget, rate);
    const local =
      want > 0
        ? await form.local(x, want, params, partitionSeed(form as PartitionedForm<never>, seed, t))
        : undefined;
    local?.indices.forEach((row, j) => {
      union.push(offset + row);
      from.push([x, row]);
      multiplicity.push(local.weights[j]!);
    });
    offset += x.n;
  }
  const merged = await form.combine(
    rowsOfPartitions(partitions, from),
    Float64Array.from(multiplicity),
    Math.min(budget, union.length),
    params,
    seed,
  );
  return {
    indices: Int32Array.from(merged.indices, (j) => union[j]!),
    weights: merged.weights,
    candidates: union.length,
  };
}

/** A partition's result with every row moved by `offset` (its first row in the concatenated pool). */
function shiftRows(local: Selection, offset: number): PartitionResult {
  const shift = (rows: Int32Array) => Int32Array.from(rows, (i) => i + offset);
  return {
    indices: shift(local.indices),
    ...(local.weights ? { weights: local.weights } : {}),
    ...(local.stages ? { stages: local.stages } : {}),
    ...(local.schedule
      ? {
          schedule: {
            ...local.schedule,
            rounds: local.schedule.rounds.map((r) => ({ ...r, indices: shift(r.indices) })),
          },
        }
      : {}),
    ...(local.synthetic ? { synthetic: local.synthetic } : {}),
  };
}

/** A matrix of image vectors as a selector's input. */
export function imageInput(x: Matrix): SelectInput {
  return { n: x.rows, dim: x.cols, image: x.data };
}

/**
 * Weights that account for every item: each row (counted `multiplicity[i]` times, else once) goes to
 * its most similar pick. For methods whose own weights can leave items out (CRAIG's per-class quotas
 * trimmed to the budget drop the trimmed picks' clusters), so that a merge round sees all the mass.
 */
export async function weightsByNearest(
  x: Matrix,
  picks: Int32Array,
  multiplicity?: Float64Array,
): Promise<Float32Array> {
  const weights = new Float32Array(picks.length);
  if (picks.length === 0) return weights;
  const nearest = await topKInnerProduct(x, gather(x, picks), 1);
  for (let i = 0; i < x.rows; i++) weights[nearest.indices[i]!]! += multiplicity ? multiplicity[i]! : 1;
  return weights;
}

/**
 * The two-round scheme for a method without a weighted form of its own: the local step is the method
 * itself at budget ⌈κ·k_I⌉, each pick weighted by the partition items nearest to it; the merge runs the
 * method again on the union (each candidate once) and weights each final pick by the multiplicity
 * nearest to it, so the weights still add up to the pool. Nearness is measured in the image space.
 */
export function twoRoundForm<P extends object>(
  select: (input: SelectInput, budget: number, params: P, ctx: SelectContext) => Promise<Selection>,
  merge: string,
  oversample: number = MERGE_FACTOR,
): GreediForm<P> {
  const space = (input: SelectInput): Matrix => {
    if (!input.image) throw new SelectionInputError('the partitioned form needs image embeddings');
    return { rows: input.n, cols: input.dim, data: input.image };
  };
  const run = async (
    input: SelectInput,
    budget: number,
    params: P,
    seed: number,
    signal: AbortSignal | undefined,
    multiplicity?: Float64Array,
  ): Promise<Candidates> => {
    const picked = await select(input, budget, params, { seed, ...(signal ? { signal } : {}) });
    return {
      indices: picked.indices,
      weights: await weightsByNearest(space(input), picked.indices, multiplicity),
    };
  };
  return {
    merge,
    oversample,
    local: (input, want, params, seed, signal) => run(input, want, params, seed, signal),
    combine: (input, multiplicity, budget, params, seed, signal) =>
      run(input, budget, params, seed, signal, multiplicity),
  };
}

/**
 * For methods that already split the pool (per class or k-means cluster) and give each piece a budget
 * proportional to its size: each partition is one more such piece, runs the method for its own share
 * k_I = ⌈r·n_I⌉, and the merge runs the method on the union (B plus at most N items of rounding) for
 * the budget.
 */
export function perPartitionForm<P extends object>(
  select: (input: SelectInput, budget: number, params: P, ctx: SelectContext) => Promise<Selection>,
  merge: string,
): GreediForm<P> {
  return twoRoundForm(select, merge, 1);
}

/** What a quota form's merge of schedules does, in words, for `method` (the name users know). */
export function scheduleMerge(method: string): string {
  return (
    `each partition runs ${method} on its own items, with its own proxy, at its quota of the budget ` +
    '(largest remainder over the partition sizes, adding up to B); the merge selects nothing again but ' +
    'concatenates: the static picks, and at every moment of training the rounds in force in each ' +
    'partition (one merged round per epoch when rounds follow epochs; mini-batch ids renumbered)'
  );
}

/**
 * The per-partition form of a proxy-trained method that can also simulate a schedule (`epochs` > 0):
 * each partition trains its own proxy on its own items (as NeSSA selects per shard) and builds the
 * static subset at its share, merged by {@link perPartitionForm}; with a schedule, the partitions'
 * schedules are concatenated ({@link QuotaForm}).
 */
export function staticPerPartitionForm<P extends { epochs: number }>(
  name: string,
  select: (input: SelectInput, budget: number, params: P, ctx: SelectContext) => Promise<Selection>,
  merge: string,
): GreediForm<P> {
  return {
    ...perPartitionForm(select, merge),
    dynamic: { when: (p) => p.epochs > 0, form: quotaForm(select, scheduleMerge(name)) },
  };
}

/**
 * A filter's partitioned form: each partition keeps what passes the filter there, and the merge keeps
 * all of it in catalog order — exactly the one-process result, for filters that judge each item alone.
 */
export function filterForm<P extends object>(
  select: (input: SelectInput, budget: number, params: P, ctx: SelectContext) => Promise<Selection>,
): ExactForm<P> {
  return {
    exact: true,
    keepsAll: true,
    merge: 'every item that passes in its partition, in catalog order: exactly the one-process result',
    async local(input, want, params, seed, signal) {
      const kept = await select(input, want, params, { seed, ...(signal ? { signal } : {}) });
      return { indices: kept.indices, keys: new Float64Array(kept.indices.length) };
    },
  };
}

/** A filter keeps everything that passes: a budget below that is refused, as in one process. */
export function checkFilterBudget(passing: number, total: number, budget: number): void {
  if (passing > budget)
    throw new SelectionInputError(
      `the filter keeps ${passing} of ${total} items, more than the budget of ${budget}: a filter keeps ` +
        'everything that passes, so leave the budget out (or give 100%), and select from its result ' +
        'with a second method (`from`) to cut it further',
    );
}

/**
 * The in-memory scheme's pool sample for {@link SharedPrepare}: the `size` rows with the smallest keys
 * hashed from their ids (or, without ids, their row in the concatenated pool) and the seed.
 */
function poolSample(partitions: readonly SelectInput[], size: number, seed: number): SelectInput {
  const rows: Array<{ key: number; x: SelectInput; row: number }> = [];
  let start = 0;
  for (const x of partitions) {
    for (let row = 0; row < x.n; row++)
      rows.push({ key: sampleKey(x.ids ? x.ids[row]! : BigInt(start + row), seed), x, row });
    start += x.n;
  }
  rows.sort((a, b) => a.key - b.key);
  rows.length = Math.min(rows.length, size);
  return rowsOfPartitions(
    partitions,
    rows.map((r) => [r.x, r.row]),
  );
}

/** Rows `from` ([partition, row] pairs) of in-memory partitions as one input: vectors, ids, labels. */
function rowsOfPartitions(
  partitions: readonly SelectInput[],
  from: ReadonlyArray<readonly [SelectInput, number]>,
): SelectInput {
  const first = partitions[0]!;
  const dim = first.dim;
  const rowsOf = (which: 'image' | 'text' | 'imageViews') => {
    if (!first[which]) return undefined;
    const out = new Float32Array(from.length * dim);
    from.forEach(([x, row], j) => out.set(x[which]!.subarray(row * dim, (row + 1) * dim), j * dim));
    return out;
  };
  const image = rowsOf('image');
  const text = rowsOf('text');
  const imageViews = rowsOf('imageViews');
  const ids = first.ids && BigInt64Array.from(from, ([x, row]) => x.ids![row]!);
  const labels = first.labels && Int32Array.from(from, ([x, row]) => x.labels![row]!);
  return {
    n: from.length,
    dim,
    ...(image ? { image } : {}),
    ...(text ? { text } : {}),
    ...(imageViews ? { imageViews } : {}),
    ...(ids ? { ids } : {}),
    ...(labels ? { labels } : {}),
    ...(first.classPrompts ? { classPrompts: first.classPrompts } : {}),
  };
}
