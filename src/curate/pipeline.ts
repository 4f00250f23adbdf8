/**
 * The select and compare steps of read → embed → index → select → export, shared by the CLI and the
 * VS Code extension: load the workspace's embeddings once, run registry selectors through the contract,
 * save each result as a stored selection, and score methods against each other.
 */
import { listValue } from '@duckdb/node-api';
import { labelsFromNameField, resolveClassNames, type ClassNamesRequest } from './classNames.js';
import {
  DEFAULT_EVAL_SEEDS,
  defaultEvaluators,
  describeEvaluation,
  evaluateSubset,
  type EvalPart,
  type EvaluationSetup,
  type EvaluatorName,
} from '../eval/evaluate.js';
import type { ProxyClipOptions } from '../eval/proxyClip.js';
import type { ProxySslOptions } from '../eval/proxySsl.js';
import {
  staticPlan,
  type ProxyClipMetrics,
  type ProxySslMetrics,
  type SeededMetric,
  type TrainingPlan,
} from '../eval/types.js';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sampleRows, seededRandom } from '../compute/random.js';
import {
  parseBudget,
  resolveBudget,
  runSelector,
  SelectionInputError,
  type SampleFacts,
  type Schedule,
  type Selection,
  type SelectInput,
  type Selector,
} from '../select/contract.js';
import { AUTO_PARTITION_ABOVE, AUTO_PARTITION_ITEMS } from '../select/partitioned.js';
import { getSelector, partitionedMethods } from '../select/registry.js';
import { sampleWithoutReplacement } from '../select/selectors/random.js';
import type { Catalog } from './catalog.js';
import { embeddedCount, embeddedIdsAt, loadEmbeddings, type WorkspaceEmbeddings } from './embeddings.js';
import { selectPartitioned } from './partitionedSelect.js';
import {
  loadSelection,
  saveSelection,
  selectionDir,
  type SelectionOrigin,
  type StoredSelection,
} from './selections.js';

export interface EmbeddingOptions extends ClassNamesRequest {
  /** Metadata field holding an integer class (e.g. `label_index`); used as labels by per-class methods. */
  labelField?: string;
  /** Augmented-view variant to attach (SAS). */
  views?: string;
}

/**
 * Class names (`--class-names`) as prompt embeddings in the workspace's space: ClipCov and SAS use them
 * as zero-shot latent classes, and proxy CLIP's zero-shot accuracy is measured against them.
 */
interface ResolvedClasses {
  names: string[];
  /** K × dim unit rows (a prompt ensemble per name). */
  embeddings: Float32Array;
  /** Each embedded sample's class among `names` (−1 = unknown), when a metadata field names it. */
  labelsById?: Map<bigint, number>;
}

/** Resolve `request.classNames` once (embedding the prompts with the workspace's encoder). */
async function resolveClasses(
  catalog: Catalog,
  workspace: string,
  request: EmbeddingOptions,
  ids?: BigInt64Array,
): Promise<ResolvedClasses | undefined> {
  if (!request.classNames) return undefined;
  const resolved = await resolveClassNames(catalog, workspace, request.classNames, request.encoder);
  if (!resolved.labelField || !ids) return { names: resolved.names, embeddings: resolved.embeddings };
  const labels = await labelsFromNameField(catalog, ids, resolved.labelField, resolved.names);
  return {
    names: resolved.names,
    embeddings: resolved.embeddings,
    labelsById: new Map(Array.from(ids, (id, i) => [id, labels[i]!])),
  };
}

export interface SelectRequest extends EmbeddingOptions {
  method: string;
  /** "500", "10%" or "0.1"; optional for filters, which keep everything that passes. */
  budget?: string;
  /** Saved under this name (default: `<method>-<budget>`, or `<method>` for a filter without a budget). */
  name?: string;
  /** Select within an earlier selection's picks (its name) instead of the whole pool. */
  from?: string;
  params?: Record<string, unknown>;
  seed?: number;
  signal?: AbortSignal;
  progress?: (done: number, total: number) => void;
  /**
   * Run in one process on the whole pool even when it is larger than {@link AUTO_PARTITION_ABOVE}
   * (where a method with a partitioned form otherwise runs partitioned).
   */
  oneProcess?: boolean;
  /** The large-pool rules' thresholds (defaults: {@link AUTO_PARTITION_ABOVE}, …; tests lower them). */
  largePool?: Partial<LargePoolLimits>;
}

export interface LargePoolLimits {
  /** Pools above this many pairs run partitioned when the method can. */
  partitionAbove: number;
  /** Items per partition then. */
  partitionItems: number;
  /** Bytes one process's pool matrix may take (a Node typed array's limit). */
  matrixBytes: number;
}

/** Default selection name: method and budget, file-name safe ("craig-10pct", "k-center-500"). */
export function defaultSelectionName(method: string, budget: string): string {
  return `${method}-${budget.trim().replace('%', 'pct')}`;
}

/** Run one method on the workspace's embeddings and save the result. */
export async function selectSubset(
  catalog: Catalog,
  workspace: string,
  request: SelectRequest,
  embeddings?: WorkspaceEmbeddings,
): Promise<StoredSelection> {
  // Bad input is reported before the (possibly large) embeddings are read.
  budgetOf(request);
  if (!embeddings && request.from === undefined) {
    const partitioned = await largePoolMode(catalog, workspace, request);
    if (partitioned) return partitioned;
  }
  const earlier = request.from === undefined ? undefined : await loadSelection(workspace, request.from);
  // A wrong encoder or class-name field fails here, before the (possibly large) embeddings are read.
  const classes = await resolveClasses(catalog, workspace, request);
  const e = embeddings ?? (await loadEmbeddings(catalog, workspace, embeddingOptions(request)));
  if (!earlier) {
    const input = classes
      ? { ...e, classPrompts: { names: classes.names, embeddings: classes.embeddings } }
      : e;
    return (await runAndSave(catalog, workspace, input, e.ids, request, e.encoder, e.excluded)).stored;
  }
  // Chaining: the pool is the earlier selection's picks that are still in the embedded pool, in pool
  // order; a budget given as a share is a share of them.
  const picked = new Set(earlier.sampleIds.map(String));
  const rows: number[] = [];
  e.ids.forEach((id, i) => {
    if (picked.has(String(id))) rows.push(i);
  });
  const gone = picked.size - rows.length;
  if (rows.length === 0)
    throw new SelectionInputError(
      `none of the ${picked.size} picks of selection '${earlier.name}' is in the embedded pool now`,
    );
  const from = { selection: earlier.name, method: earlier.method, pool: rows.length, missing: gone };
  const excluded = e.excluded.filter((x) => picked.has(String(x.id)));
  const { stored } = await runAndSave(
    catalog,
    workspace,
    restrict(e, rows, classes),
    BigInt64Array.from(rows, (i) => e.ids[i]!),
    request,
    e.encoder,
    excluded,
    from,
  );
  return stored;
}

/** The budget text of a request: a filter may leave it out (= keep everything that passes). */
function budgetOf(request: SelectRequest): { text: string; budget: ReturnType<typeof parseBudget> } {
  const selector = getSelector(request.method);
  const text = request.budget ?? (selector.kind === 'filter' ? '100%' : undefined);
  if (text === undefined)
    throw new SelectionInputError(
      `${request.method} needs a budget (a count such as 500, or a share such as 10%)`,
    );
  return { text, budget: parseBudget(text) };
}

/** Bytes a Node typed array can hold: the whole pool's matrix must fit one (~2.1M rows at d = 512). */
const MAX_MATRIX_BYTES = 2 ** 32;

/**
 * A pool larger than {@link AUTO_PARTITION_ABOVE}: a method with a partitioned form runs partitioned
 * (⌈n / AUTO_PARTITION_ITEMS⌉ partitions, said in the trace) unless one process is asked for; a method
 * without one runs in one process if the matrix fits a buffer, and is refused, naming the alternatives,
 * if it does not.
 */
async function largePoolMode(
  catalog: Catalog,
  workspace: string,
  request: SelectRequest,
): Promise<StoredSelection | undefined> {
  const limits: LargePoolLimits = {
    partitionAbove: AUTO_PARTITION_ABOVE,
    partitionItems: AUTO_PARTITION_ITEMS,
    matrixBytes: MAX_MATRIX_BYTES,
    ...request.largePool,
  };
  const { count, dim } = await embeddedCount(catalog, workspace);
  const selector = getSelector(request.method) as Selector<object>;
  const fits = count * dim * 4 < limits.matrixBytes;
  if (!fits && (request.oneProcess || !selector.partitioned))
    throw new SelectionInputError(
      `${request.method} in one process needs the pool's ${count.toLocaleString('en-US')} × ${dim} matrix in one ` +
        `buffer, more than ${(limits.matrixBytes / 2 ** 30).toPrecision(3)} GiB (${Math.floor(limits.matrixBytes / (4 * dim)).toLocaleString('en-US')} rows ` +
        `at d = ${dim}); ` +
        (selector.partitioned
          ? 'leave out --one-process to run it partitioned'
          : `methods that run partitioned: ${partitionedMethods().join(', ')}`),
    );
  if (count <= limits.partitionAbove || request.oneProcess || !selector.partitioned) return undefined;
  const partitions = Math.ceil(count / limits.partitionItems);
  return selectPartitioned(catalog, workspace, {
    ...request,
    partitions,
    scaleNote:
      `the pool's ${count.toLocaleString('en-US')} pairs are more than ${limits.partitionAbove.toLocaleString('en-US')}: ` +
      `${partitions} partitions of about ${limits.partitionItems.toLocaleString('en-US')} (--partitions N to choose, ` +
      '--one-process for the whole pool in one process)',
  });
}

/**
 * Captions, image sizes and content hashes of the pool rows, from the catalog (for the filters). With
 * `onlyThese` the catalog returns those rows only (a partition), not one JS object per catalog sample.
 */
export async function sampleFacts(
  catalog: Catalog,
  ids: BigInt64Array,
  onlyThese = false,
): Promise<SampleFacts> {
  const rows = await catalog.rows<{
    id: bigint;
    caption: string;
    width: number;
    height: number;
    hash: string | null;
  }>(
    `SELECT id, caption, width, height, content_hash AS hash FROM samples
     ${onlyThese ? 'WHERE id IN (SELECT unnest($ids))' : ''}`,
    onlyThese ? { ids: listValue(Array.from(ids)) } : {},
  );
  const byId = new Map(rows.map((r) => [BigInt(r.id), r]));
  const at = (id: bigint) => {
    const r = byId.get(id);
    if (!r) throw new Error(`sample ${id} is embedded but not in the catalog`);
    return r;
  };
  return {
    captions: Array.from(ids, (id) => at(id).caption),
    width: Int32Array.from(ids, (id) => at(id).width),
    height: Int32Array.from(ids, (id) => at(id).height),
    contentHash: Array.from(ids, (id) => at(id).hash),
  };
}

async function runAndSave(
  catalog: Catalog,
  workspace: string,
  input: SelectInput,
  poolIds: BigInt64Array,
  request: SelectRequest,
  encoder: WorkspaceEmbeddings['encoder'],
  excluded: WorkspaceEmbeddings['excluded'] = [],
  from?: SelectedFrom,
  origin?: SelectionOrigin,
): Promise<{ stored: StoredSelection; selection: Selection }> {
  const selector = getSelector(request.method);
  const { text: budgetText, budget } = budgetOf(request);
  const seed = request.seed ?? 0;
  const started = performance.now();
  // The filters read catalog facts (captions, sizes, hashes) and eval-dedup checks the encoder.
  const withFacts: SelectInput = {
    ...input,
    encoder,
    ...(selector.needs.includes('samples') && !input.samples
      ? { samples: await sampleFacts(catalog, poolIds) }
      : {}),
  };
  const selection = await runSelector(selector, withFacts, budget, request.params ?? {}, {
    seed,
    ...(request.signal ? { signal: request.signal } : {}),
    ...(request.progress ? { progress: request.progress } : {}),
  });
  const seconds = (performance.now() - started) / 1000;
  // Every parameter after defaults, so the stored selection says exactly what ran.
  const params = (selector.params as { parse(v: unknown): Record<string, unknown> }).parse(
    request.params ?? {},
  );
  const stored = await saveSelection(catalog, workspace, {
    name:
      request.name ??
      (request.budget === undefined ? request.method : defaultSelectionName(request.method, request.budget)),
    method: request.method,
    params,
    seed,
    budget: { requested: budgetText, count: resolveBudget(budget, input.n) },
    selection,
    poolIds,
    encoder,
    seconds,
    excluded: excluded.map(({ key, reason }) => ({ key, reason })),
    ...(from ? { from } : {}),
    ...(origin ? { origin } : {}),
  });
  return { stored, selection };
}

/** The earlier selection a chained selection ran within (`SelectRequest.from`). */
export interface SelectedFrom {
  selection: string;
  method: string;
  /** Its picks that were in the pool, i.e. the chained selection's pool size. */
  pool: number;
  /** Its picks no longer in the embedded pool (left out). */
  missing: number;
}

export interface CompareRequest extends EmbeddingOptions {
  methods: string[];
  budget: string;
  /**
   * Name of the compare run (default `compare-<budget>`): its selections are saved as
   * `<run>/<method>-<budget>` and its table as `<workspace>/compare/<run>/<budget>.json`.
   */
  run?: string;
  seed?: number;
  /** Share of the pool held out for the evaluators (default 0.2; stratified by class with labels). */
  heldOut?: number;
  /**
   * Compare on a seeded uniform sample of this many embedded samples instead of the whole pool (the
   * seed is `seed`'s): memory and time follow the sample, so a 10M-pair workspace can be compared on,
   * say, 200,000 of its pairs. Unset, a pool above {@link AUTO_PARTITION_ABOVE} is refused with the hint.
   */
  poolSample?: number;
  /** Evaluators to run (default: what the data allows, see {@link defaultEvaluators}); [] = none. */
  evaluators?: EvaluatorName[];
  /** Hold the evaluation split out even when no evaluator runs (budgets of one run then share one pool). */
  holdOutAlways?: boolean;
  /** Evaluation seeds per metric (default 3). */
  evalSeeds?: number;
  /** Proxy training settings (the same for every subset of the run). */
  proxy?: { clip?: Partial<ProxyClipOptions>; ssl?: Partial<ProxySslOptions> };
  /** What the compare is doing between methods (evaluating, …), for progress displays. */
  onStage?: (stage: string) => void;
  params?: Record<string, Record<string, unknown>>;
  signal?: AbortSignal;
  onMethod?: (method: string, done: number, total: number) => void;
}

export interface CompareRow {
  method: string;
  selection: string;
  budget: number;
  kept: number;
  seconds: number;
  /** Linear-probe accuracy on the held-out split (labels only), weighted by the method's weights. */
  probeAccuracy: number | null;
  /** Mean image–caption cosine of the picks (the CLIP score of what is kept). */
  meanClipScore: number;
  /** KL(subset class histogram ‖ pool histogram), labels only: 0 = same class balance. */
  classKL: number | null;
  /** Ground-truth rates when the metadata has them (`caption_kind`, `dup_of`, as in the CIFAR captions). */
  badCaptions: number | null;
  duplicates: number | null;
  /** Linear-probe accuracy over evaluation seeds (labels only); `probeAccuracy` is its mean. */
  probe?: SeededMetric | null;
  /** Proxy CLIP trained on the subset (or along its schedule) at fixed compute; absent when not asked. */
  proxyClip?: ProxyClipMetrics | null;
  /** Proxy SSL (NT-Xent head on augmented views) trained on the subset; absent when not asked. */
  proxySsl?: ProxySslMetrics | null;
  /** A dynamic method: the metrics above come from training along its schedule. */
  scheduled?: boolean;
  /** A dynamic method's static subset evaluated at the same compute, for comparison. */
  staticAnalogue?: {
    probe: SeededMetric | null;
    proxyClip: ProxyClipMetrics | null;
    proxySsl: ProxySslMetrics | null;
  };
  error?: string;
}

export interface Comparison {
  /** The budget as requested ("10%", "500"). */
  budget: string;
  /** The compare run it belongs to (absent in comparisons saved before runs were named). */
  run?: string;
  rows: CompareRow[];
  pool: number;
  heldOut: number;
  /** Which samples the methods picked from: comparisons of different pools cannot share a report. */
  poolInfo?: ComparePool;
  /** Which evaluators ran, over how many seeds, at what settings (absent in older comparisons). */
  evaluation?: { evaluators: EvaluatorName[]; seeds: number; description: string };
  /** Class names the zero-shot metric and the latent classes used. */
  classNames?: string[];
  /** The probe on the whole selection pool, and the pool's own rates: the reference row. */
  reference: Omit<CompareRow, 'method' | 'selection' | 'budget' | 'kept' | 'seconds'>;
}

export interface ComparePool {
  /** Hash of the pool's sample ids, the held-out ids and the encoder fingerprint. */
  fingerprint: string;
  /** "the training split: 192 of 240 samples (48 held out for the probe)" or "all 240 embedded samples". */
  description: string;
  samples: number;
  heldOut: number;
  heldOutShare: number | null;
  seed: number;
  labelField: string | null;
  encoder: string;
}

function describePool(
  ids: ArrayLike<bigint>,
  heldOutIds: ArrayLike<bigint>,
  total: number,
  request: CompareRequest,
  encoder: string,
  /** The embedded count when the pool is a sample of it (`poolSample`). */
  sampledFrom: number | undefined,
): ComparePool {
  const hash = createHash('sha256').update(`encoder\0${encoder}\n`);
  for (const id of Array.from(ids).sort()) hash.update(`p${String(id)}\n`);
  for (const id of Array.from(heldOutIds).sort()) hash.update(`t${String(id)}\n`);
  const heldOut = heldOutIds.length;
  return {
    fingerprint: hash.digest('hex').slice(0, 16),
    description:
      (sampledFrom !== undefined
        ? `a seeded sample of ${total} of the ${sampledFrom} embedded samples; `
        : '') +
      (heldOut
        ? `the training split: ${ids.length} of ${total} samples (${heldOut} held out for evaluation)`
        : `all ${total} ${sampledFrom !== undefined ? 'sampled' : 'embedded'} samples`),
    samples: ids.length,
    heldOut,
    heldOutShare: heldOut ? (request.heldOut ?? 0.2) : null,
    seed: request.seed ?? 0,
    labelField: request.labelField ?? null,
    encoder,
  };
}

/**
 * Every method at one budget on the same pool. With labels, a seeded stratified share of the pool is held
 * out first: methods select from the rest and the probe is tested on the held-out part. A method that fails
 * is reported with its error and the others go on.
 */
export async function compareMethods(
  catalog: Catalog,
  workspace: string,
  request: CompareRequest,
  embeddings?: WorkspaceEmbeddings,
  resolvedClasses?: ResolvedClasses,
): Promise<Comparison> {
  const e = embeddings ?? (await loadComparePool(catalog, workspace, request));
  const classes = resolvedClasses ?? (await resolveClasses(catalog, workspace, request, e.ids));
  const seed = request.seed ?? 0;
  const evaluators =
    request.evaluators ?? defaultEvaluators({ labels: Boolean(e.labels), views: Boolean(e.imageViews) });
  // A held-out share no method sees: stratified by class where labels exist, uniform otherwise.
  const share = request.heldOut ?? 0.2;
  const { train, test } =
    evaluators.length === 0 && !request.holdOutAlways
      ? { train: null, test: [] as number[] }
      : e.labels
        ? splitHeldOut(e.labels, share, seed)
        : splitHeldOutUniform(e.n, share, seed);
  const rowsOfPool = train ?? Array.from({ length: e.n }, (_, i) => i);
  const pool = restrict(e, rowsOfPool, classes);
  const truth = await groundTruth(catalog, pool.ids);
  const setup: EvaluationSetup | undefined = evaluators.length
    ? {
        evaluators,
        seeds: request.evalSeeds ?? DEFAULT_EVAL_SEEDS,
        pool: evalPart(pool),
        heldOut: evalPart(restrict(e, test)),
        ...zeroShotOf(classes, e, test),
        ...(request.proxy?.clip ? { clip: request.proxy.clip } : {}),
        ...(request.proxy?.ssl ? { ssl: request.proxy.ssl } : {}),
      }
    : undefined;
  const evaluate = async (plan: TrainingPlan) =>
    setup ? evaluateSubset(setup, plan, request.signal) : { probe: null, proxyClip: null, proxySsl: null };
  const score = async (plan: TrainingPlan, picks: ArrayLike<number>) => {
    const evaluation = await evaluate(plan);
    return {
      probeAccuracy: evaluation.probe?.mean ?? null,
      probe: evaluation.probe,
      proxyClip: evaluation.proxyClip,
      proxySsl: evaluation.proxySsl,
      meanClipScore: meanCosine(pool, picks),
      classKL: pool.labels ? classKL(pool.labels, picks) : null,
      badCaptions: truth.kind ? rate(picks, (i) => truth.kind![i] !== 'clean') : null,
      duplicates: truth.dup ? rate(picks, (i) => truth.dup![i]!) : null,
    };
  };
  const everyone = Array.from({ length: pool.n }, (_, i) => i);
  request.onStage?.('evaluating the whole pool (the reference row)');
  const reference = await score(staticPlan(everyone), everyone);
  const run = request.run ?? defaultCompareRun([request.budget]);
  const poolInfo = describePool(
    pool.ids,
    test.map((i) => e.ids[i]!),
    e.n,
    request,
    e.encoder.fingerprint,
    request.poolSample !== undefined ? await sampledFrom(catalog, workspace, request.poolSample) : undefined,
  );
  const origin: SelectionOrigin = { compareRun: run, pool: poolInfo.description };
  const rows: CompareRow[] = [];
  for (const [t, method] of request.methods.entries()) {
    request.signal?.throwIfAborted();
    request.onMethod?.(method, t, request.methods.length);
    const name = `${run}/${defaultSelectionName(method, request.budget)}`;
    try {
      const { stored, selection } = await runAndSave(
        catalog,
        workspace,
        pool,
        pool.ids,
        {
          method,
          budget: request.budget,
          name,
          params: request.params?.[method] ?? {},
          seed,
          ...(request.signal ? { signal: request.signal } : {}),
        },
        e.encoder,
        [],
        undefined,
        origin,
      );
      const picks = Array.from(selection.indices);
      const weights = selection.weights;
      request.onStage?.(`evaluating ${method}`);
      // A dynamic method is trained along its schedule (what a trainer would do with it); its static
      // analogue is scored too, at the same compute.
      const row: CompareRow = {
        method,
        selection: name,
        budget: stored.budget.count,
        kept: picks.length,
        seconds: stored.provenance.seconds,
        ...(await score(
          selection.schedule ? schedulePlan(selection.schedule) : staticPlan(picks, weights),
          picks,
        )),
      };
      if (selection.schedule && setup) {
        const staticAnalogue = await evaluate(staticPlan(picks, weights));
        row.scheduled = true;
        row.staticAnalogue = {
          proxyClip: staticAnalogue.proxyClip,
          proxySsl: staticAnalogue.proxySsl,
          probe: staticAnalogue.probe,
        };
      }
      rows.push(row);
    } catch (error) {
      if (request.signal?.aborted) throw error;
      rows.push({
        method,
        selection: name,
        budget: 0,
        kept: 0,
        seconds: 0,
        probeAccuracy: null,
        meanClipScore: NaN,
        classKL: null,
        badCaptions: null,
        duplicates: null,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
  request.onMethod?.('', request.methods.length, request.methods.length);
  return {
    budget: request.budget,
    run,
    rows,
    pool: pool.n,
    heldOut: test.length,
    poolInfo,
    reference,
    ...(setup
      ? {
          evaluation: {
            evaluators: [...evaluators],
            seeds: setup.seeds,
            description: describeEvaluation(setup),
          },
        }
      : {}),
    ...(classes ? { classNames: classes.names } : {}),
  };
}

/** A schedule as a training plan: its rounds over progress, the first round's rows before it starts. */
function schedulePlan(schedule: Schedule): TrainingPlan {
  return {
    rounds: schedule.rounds.map((r) => ({
      start: r.start,
      end: r.end,
      indices: r.indices,
      ...(r.weights ? { weights: r.weights } : {}),
    })),
  };
}

function evalPart(input: SelectInput): EvalPart {
  return {
    n: input.n,
    dim: input.dim,
    image: input.image!,
    text: input.text!,
    ...(input.labels ? { labels: input.labels } : {}),
    ...(input.imageViews ? { views: input.imageViews } : {}),
  };
}

/** Zero-shot needs class prompts and each held-out row's class among them. */
function zeroShotOf(
  classes: ResolvedClasses | undefined,
  e: WorkspaceEmbeddings,
  test: number[],
): Pick<EvaluationSetup, 'zeroShot'> {
  if (!classes) return {};
  const labels = classes.labelsById
    ? test.map((i) => classes.labelsById!.get(e.ids[i]!) ?? -1)
    : e.labels && test.every((i) => e.labels![i]! < classes.names.length)
      ? test.map((i) => e.labels![i]!)
      : undefined;
  if (!labels || labels.some((l) => l < 0)) return {};
  return { zeroShot: { prompts: classes.embeddings, heldOutLabels: Int32Array.from(labels) } };
}

export interface CompareBudgetsRequest extends Omit<CompareRequest, 'budget' | 'onMethod'> {
  budgets: string[];
  /** Replace a compare run of the same name (its comparisons and selections); without it, that is an error. */
  overwrite?: boolean;
  /** Methods done over all budgets. */
  onMethod?: (method: string, budget: string, done: number, total: number) => void;
  /** Run the evaluators only at these budgets (the others get the cheap columns only); default: all. */
  evaluateAt?: string[];
}

/**
 * {@link compareMethods} at several budgets on one load of the embeddings and one held-out split: the
 * metric-vs-budget curves of the report. Every budget is checked before any work starts.
 */
export async function compareAtBudgets(
  catalog: Catalog,
  workspace: string,
  request: CompareBudgetsRequest,
): Promise<Comparison[]> {
  if (request.budgets.length === 0) throw new SelectionInputError('compare needs at least one budget');
  for (const b of request.budgets) parseBudget(b);
  const run = request.run ?? defaultCompareRun(request.budgets);
  await prepareCompareRun(workspace, run, request.overwrite ?? false);
  const e = await loadComparePool(catalog, workspace, request);
  const classes = await resolveClasses(catalog, workspace, request, e.ids);
  const total = request.budgets.length * request.methods.length;
  const out: Comparison[] = [];
  for (const [k, budget] of request.budgets.entries()) {
    const { budgets: _budgets, onMethod, overwrite: _overwrite, evaluateAt, ...rest } = request;
    out.push(
      await compareMethods(
        catalog,
        workspace,
        {
          ...rest,
          ...(evaluateAt && !evaluateAt.includes(budget) ? { evaluators: [], holdOutAlways: true } : {}),
          run,
          budget,
          ...(onMethod
            ? {
                onMethod: (m: string, done: number) =>
                  onMethod(m, budget, k * request.methods.length + done, total),
              }
            : {}),
        },
        e,
        classes,
      ),
    );
  }
  return out;
}

/**
 * The pool a compare runs on: every embedded sample, or with `poolSample` a seeded uniform sample of
 * them (the catalog returns only the sampled ids, the store only their rows). Every method holds its
 * pool in memory, so a pool above {@link AUTO_PARTITION_ABOVE} without a sample is refused.
 */
async function loadComparePool(
  catalog: Catalog,
  workspace: string,
  request: Pick<CompareRequest, 'poolSample' | 'seed' | 'labelField' | 'views'>,
): Promise<WorkspaceEmbeddings> {
  const { count, fingerprint } = await embeddedCount(catalog, workspace);
  const size = request.poolSample;
  if (size !== undefined && !(Number.isInteger(size) && size >= 2))
    throw new SelectionInputError(`compare: the pool sample must be a whole number ≥ 2; got ${size}`);
  if (size === undefined || size >= count) {
    if (count > AUTO_PARTITION_ABOVE)
      throw new SelectionInputError(
        `compare holds its pool in memory and runs every method on it: ${count} embedded samples is ` +
          `above ${AUTO_PARTITION_ABOVE}; compare on a seeded sample (--pool-sample 200000, say)`,
      );
    return loadEmbeddings(catalog, workspace, embeddingOptions(request));
  }
  const rows = sampleRows(count, size, seededRandom((request.seed ?? 0) + 7_919));
  const ids = await embeddedIdsAt(catalog, fingerprint, rows);
  return loadEmbeddings(catalog, workspace, { ...embeddingOptions(request), only: { ids: new Set(ids) } });
}

/** The embedded count a `poolSample` is drawn from, or undefined when the sample is the whole pool. */
async function sampledFrom(
  catalog: Catalog,
  workspace: string,
  poolSample: number,
): Promise<number | undefined> {
  const { count } = await embeddedCount(catalog, workspace);
  return poolSample < count ? count : undefined;
}

const budgetSlug = (budget: string) => budget.trim().replace('%', 'pct');

/** Default compare run name: the budgets, file-name safe ("compare-10pct", "compare-5pct-10pct"). */
export function defaultCompareRun(budgets: string[]): string {
  return `compare-${budgets.map(budgetSlug).join('-')}`;
}

export function comparisonsDir(workspace: string): string {
  return path.join(path.resolve(workspace), 'compare');
}

/** Where `compare` keeps a comparison: `<workspace>/compare/<run>/<budget>.json`. */
export function comparisonFile(workspace: string, run: string, budget: string): string {
  checkRunName(workspace, run);
  return path.join(comparisonsDir(workspace), run, `${budgetSlug(budget)}.json`);
}

/** A run names a folder of selections and one of comparisons: a selection name without '/'. */
function checkRunName(workspace: string, run: string): void {
  if (run.includes('/')) throw new SelectionInputError(`compare run name '${run}' must not contain '/'`);
  selectionDir(workspace, run);
}

export async function saveComparison(workspace: string, c: Comparison, file?: string): Promise<string> {
  const target = file ?? comparisonFile(workspace, c.run ?? defaultCompareRun([c.budget]), c.budget);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, JSON.stringify(c, null, 1));
  return target;
}

/**
 * A compare run's name must be free: no earlier run of that name (unless `overwrite`, which removes the
 * earlier run's comparisons and selections first, so nothing of the two runs is mixed), and no
 * selection saved under it by `curate select`.
 */
export async function prepareCompareRun(workspace: string, run: string, overwrite: boolean): Promise<void> {
  checkRunName(workspace, run);
  const selections = selectionDir(workspace, run);
  if (existsSync(path.join(selections, 'selection.json')))
    throw new SelectionInputError(
      `compare run name '${run}' is taken by a selection saved with curate select (${selections}): pass another --name`,
    );
  const tables = path.join(comparisonsDir(workspace), run);
  const earlier = [tables, selections].filter((p) => existsSync(p));
  if (earlier.length === 0) return;
  if (!overwrite)
    throw new SelectionInputError(
      `compare run '${run}' exists (${earlier.join(', ')}): pass --name <other> for a new run, ` +
        'or --overwrite to replace it',
    );
  for (const dir of earlier) {
    const aside = `${dir}.tmp-rm-${randomBytes(4).toString('hex')}`;
    await rename(dir, aside);
    await rm(aside, { recursive: true, force: true });
  }
}

/** A saved comparison, or a SelectionInputError naming the file and what is wrong. */
export async function readComparisonFile(file: string): Promise<Comparison> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new SelectionInputError(`no comparison ${file} (run curate compare)`);
  }
  try {
    const c = JSON.parse(text) as Comparison;
    if (typeof c?.budget !== 'string' || !Array.isArray(c.rows)) throw new Error('no budget or rows');
    return c;
  } catch (err) {
    throw new SelectionInputError(
      `comparison ${file} is damaged (${(err as Error).message}): run curate compare again`,
    );
  }
}

/** The saved compare runs and their comparison files, by run name. */
export async function listCompareRuns(workspace: string): Promise<Map<string, string[]>> {
  const dir = comparisonsDir(workspace);
  const runs = new Map<string, string[]>();
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory() || entry.name.includes('.tmp-')) continue;
    const files = (await readdir(path.join(dir, entry.name)).catch(() => [] as string[]))
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => path.join(dir, entry.name, f));
    if (files.length) runs.set(entry.name, files);
  }
  return new Map([...runs].sort(([a], [b]) => a.localeCompare(b)));
}

export function embeddingOptions(o: EmbeddingOptions): { labelField?: string; views?: string } {
  return { ...(o.labelField ? { labelField: o.labelField } : {}), ...(o.views ? { views: o.views } : {}) };
}

/** A seeded, class-stratified held-out share (at least one item per class stays in the pool). */
export function splitHeldOut(
  labels: Int32Array,
  share: number,
  seed: number,
): { train: number[]; test: number[] } {
  const random = seededRandom(seed + 1_000_003);
  const byClass = new Map<number, number[]>();
  labels.forEach((c, i) => byClass.set(c, [...(byClass.get(c) ?? []), i]));
  const train: number[] = [];
  const test: number[] = [];
  for (const members of byClass.values()) {
    for (let i = members.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [members[i], members[j]] = [members[j]!, members[i]!];
    }
    const held = Math.min(members.length - 1, Math.round(share * members.length));
    test.push(...members.slice(0, held));
    train.push(...members.slice(held));
  }
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

/** A seeded uniform held-out share (for pools without labels); at least one row stays on each side. */
export function splitHeldOutUniform(
  n: number,
  share: number,
  seed: number,
): { train: number[]; test: number[] } {
  const held = Math.min(n - 1, Math.max(n > 1 ? 1 : 0, Math.round(share * n)));
  const test = sampleWithoutReplacement(
    Array.from({ length: n }, (_, i) => i),
    held,
    seededRandom(seed + 1_000_003),
  ).sort((a, b) => a - b);
  const isTest = new Set(test);
  return { train: Array.from({ length: n }, (_, i) => i).filter((i) => !isTest.has(i)), test };
}

/** The pool restricted to some rows (every per-row array of the input follows). */
function restrict(
  e: WorkspaceEmbeddings,
  rows: number[],
  classes?: ResolvedClasses,
): SelectInput & { ids: BigInt64Array } {
  const pick = <T extends Float32Array | Int32Array | Float64Array>(a: T | undefined, width = 1) =>
    a ? (gatherTyped(a, width, rows) as T) : undefined;
  const out: SelectInput & { ids: BigInt64Array } = {
    n: rows.length,
    dim: e.dim,
    ids: BigInt64Array.from(rows, (i) => e.ids[i]!),
  };
  const image = pick(e.image, e.dim);
  const text = pick(e.text, e.dim);
  const labels = pick(e.labels);
  const views = pick(e.imageViews, e.dim);
  const shards = pick(e.shards);
  const bytes = pick(e.payloadBytes);
  return {
    ...out,
    ...(image ? { image } : {}),
    ...(text ? { text } : {}),
    ...(labels ? { labels } : {}),
    ...(views ? { imageViews: views } : {}),
    ...(shards ? { shards } : {}),
    ...(bytes ? { payloadBytes: bytes } : {}),
    ...(classes
      ? { classPrompts: { names: classes.names, embeddings: classes.embeddings } }
      : e.classPrompts
        ? { classPrompts: e.classPrompts }
        : {}),
  };
}

function gatherTyped(a: Float32Array | Int32Array | Float64Array, width: number, rows: number[]) {
  const out = new (a.constructor as new (n: number) => typeof a)(rows.length * width);
  rows.forEach((r, t) => out.set(a.subarray(r * width, (r + 1) * width), t * width));
  return out;
}

async function groundTruth(
  catalog: Catalog,
  ids: BigInt64Array,
): Promise<{ kind?: Array<string | null>; dup?: boolean[] }> {
  const rows = await catalog.rows<{ id: bigint; kind: string | null; dup: boolean | null }>(
    `SELECT id, metadata->>'caption_kind' AS kind, (metadata->>'dup_of') IS NOT NULL AS dup FROM samples`,
  );
  const byId = new Map(rows.map((r) => [BigInt(r.id), r]));
  const kinds = Array.from(ids, (id) => byId.get(id)?.kind ?? null);
  const hasKind = kinds.some((k) => k !== null);
  const dups = Array.from(ids, (id) => byId.get(id)?.dup === true);
  const hasDupField = rows.some((r) => r.dup === true);
  return { ...(hasKind ? { kind: kinds } : {}), ...(hasDupField ? { dup: dups } : {}) };
}

function rate(picks: ArrayLike<number>, predicate: (i: number) => boolean): number {
  let hits = 0;
  for (let t = 0; t < picks.length; t++) if (predicate(picks[t]!)) hits++;
  return picks.length ? hits / picks.length : 0;
}

function meanCosine(input: SelectInput, picks: ArrayLike<number>): number {
  if (!input.image || !input.text || picks.length === 0) return NaN;
  const d = input.dim;
  let sum = 0;
  for (let t = 0; t < picks.length; t++) {
    const i = picks[t]!;
    let dot = 0;
    for (let k = 0; k < d; k++) dot += input.image[i * d + k]! * input.text[i * d + k]!;
    sum += dot;
  }
  return sum / picks.length;
}

function classKL(labels: Int32Array, picks: ArrayLike<number>): number {
  const k = labels.reduce((m, v) => Math.max(m, v), 0) + 1;
  const pool = new Float64Array(k);
  const sub = new Float64Array(k);
  for (const l of labels) pool[l]! += 1 / labels.length;
  for (let t = 0; t < picks.length; t++) sub[labels[picks[t]!]!]! += 1 / picks.length;
  let kl = 0;
  for (let c = 0; c < k; c++) if (sub[c]! > 0) kl += sub[c]! * Math.log(sub[c]! / pool[c]!);
  return kl;
}
