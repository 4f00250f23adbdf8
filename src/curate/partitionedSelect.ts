/**
 * `curate select … --partitions N [--partition I/N]`: a method's partition → local → merge form
 * (src/select/partitioned.ts) over the workspace, as N tasks of an array job or in one process.
 *
 * Partition I holds the samples of the catalog parts at positions I, I + N, … of the part list (the
 * rule `curate embed --shard I/N` uses, so a select task reads what the embed task of the same index
 * wrote). A task (`--partition I/N`) reads only its partition's embeddings, with the catalog open
 * read-only, and writes its candidates to one immutable file; the finishing run (`--partitions N`)
 * takes every file whose inputs still match, computes the partitions that have none, merges, and saves
 * the selection. Run alone, the finishing run does the whole job.
 *
 * A partition file is keyed by everything its candidates depend on: the method and its parameters,
 * the seed, N, the budget's rate, the encoder, and the partition's parts with their embedded row
 * counts. Adding a dataset or re-embedding a part changes only the partitions that hold them, so a
 * re-run recomputes those and reuses the others (the trace says which).
 */
import { createHash } from 'node:crypto';
import { listValue } from '@duckdb/node-api';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EmbeddingStore } from '../embed/store.js';
import { writeFileAtomic } from '../io/atomic.js';
import {
  parseBudget,
  resolveBudget,
  SelectionInputError,
  type Schedule,
  type SyntheticVectors,
  type TraceEvent,
} from '../select/contract.js';
import {
  candidatesWanted,
  checkFilterBudget,
  concatenatePartitions,
  formFor,
  isQuotaForm,
  mergeRanked,
  oversampleOf,
  partitionedFormOf,
  partitionQuotas,
  partitionSeed,
  type PartitionedForm,
  type PartitionedSelector,
  type PartitionResult,
} from '../select/partitioned.js';
import { getSelector, partitionedMethods } from '../select/registry.js';
import type { Catalog } from './catalog.js';
import { resolveClassNames } from './classNames.js';
import { embeddingsDir } from './embed.js';
import { embeddedRowsPerPart, loadEmbeddings } from './embeddings.js';
import { listParts } from './parts.js';
import { defaultSelectionName, embeddingOptions, sampleFacts, type SelectRequest } from './pipeline.js';
import { saveSelection, type StoredSelection } from './selections.js';

export interface PartitionedRequest extends SelectRequest {
  /** N: how many partitions. */
  partitions: number;
  /** Why the run is partitioned when nobody asked (the automatic scale mode), first in the trace. */
  scaleNote?: string;
}

/** `--partition I/N` (I counted from 0). */
export function parsePartitionSlice(text: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!(count >= 1 && index >= 0 && index < count))
    throw new SelectionInputError(
      `--partition ${text}: expected I/N with 0 ≤ I < N (partition I of N, counted from 0)`,
    );
  return { index, count };
}

/** One partition's inputs: its parts and their embedded row counts. */
interface PartitionInputs {
  parts: Array<{ part: string; rows: number }>;
  items: number;
}

/** What a partition's local step leaves behind (one JSON file, written once). */
interface PartitionFile {
  fingerprint: string;
  partition: number;
  partitions: number;
  inputs: PartitionInputs;
  /** Candidates as catalog sample ids (decimal strings: they are 64-bit), best first for exact forms. */
  sampleIds: string[];
  /** GreeDi forms: the items each candidate stands for. */
  weights: number[];
  /** Exact forms: each candidate's order key (higher first). */
  keys?: number[];
  /** Quota forms: each candidate's stage (progressive methods), the partition's own schedule (rows as sample ids) and trace. */
  stages?: number[];
  schedule?: StoredSchedule;
  /** Quota forms of a distillation (pdd-synth): its learned vectors, as base64 of little-endian float32. */
  synthetic?: Omit<SyntheticVectors, 'vectors' | 'labels' | 'stages'> & {
    vectors: string;
    labels: number[];
    stages: number[];
  };
  trace?: TraceEvent[];
  excluded: Array<{ key: string; reason: string }>;
  seconds: number;
}

/** A partition's schedule in its file: each round's rows as catalog sample ids (decimal strings). */
interface StoredSchedule {
  unit: Schedule['unit'];
  total: number;
  rounds: Array<{
    start: number;
    end: number;
    sampleIds: string[];
    weights?: number[];
    batches?: number[];
    info?: Record<string, number | string>;
  }>;
}

/** Everything a run's partition files are keyed by, resolved once. */
interface Plan {
  selector: PartitionedSelector;
  /** The form these parameters use ({@link formFor}: a quota form when they ask for a schedule). */
  form: PartitionedForm;
  /** Quota forms: each partition's share of the budget (largest remainder, adding up to B). */
  quotas?: number[];
  params: Record<string, unknown>;
  seed: number;
  count: number;
  /** Budget rate r: k_I = ⌈r·n_I⌉. */
  rate: number;
  budget: number;
  total: number;
  encoder: { name: string; fingerprint: string };
  /** `--class-names` as prompt embeddings (zero-shot latent classes of ClipCov and SAS), for every partition. */
  classPrompts?: { names: string[]; embeddings: Float32Array };
  inputs: PartitionInputs[];
  dir: string;
  runKey: string;
  /** The budget as requested ("1%", "500"; "100%" for a filter without one). */
  budgetText: string;
}

/** Folder of a run's partition files: `<workspace>/partitions/<run key>/`. */
export function partitionsDir(workspace: string): string {
  return path.join(path.resolve(workspace), 'partitions');
}

async function planOf(catalog: Catalog, workspace: string, request: PartitionedRequest): Promise<Plan> {
  const selector = partitionedFormOf(getSelector(request.method), partitionedMethods());
  if (request.from !== undefined)
    throw new SelectionInputError('--partitions with --from is not supported yet: select the whole pool');
  if (!(Number.isInteger(request.partitions) && request.partitions >= 1))
    throw new SelectionInputError(`--partitions ${request.partitions}: expected a whole number ≥ 1`);
  // A filter keeps what passes: its budget may be left out (100%), as in one process.
  const budgetText = request.budget ?? (selector.kind === 'filter' ? '100%' : undefined);
  if (budgetText === undefined) throw new SelectionInputError(`${request.method} needs a budget`);
  const params = (selector.params as { parse(v: unknown): Record<string, unknown> }).parse(
    request.params ?? {},
  );
  const store = await EmbeddingStore.read(embeddingsDir(path.resolve(workspace)));
  const encoder = { name: store.meta.encoder.name, fingerprint: store.meta.encoder.fingerprint };
  const rowsOf = await embeddedRowsPerPart(catalog, encoder.fingerprint);
  const count = request.partitions;
  const inputs: PartitionInputs[] = Array.from({ length: count }, () => ({ parts: [], items: 0 }));
  (await listParts(catalog)).forEach((p, position) => {
    const part = `${p.dataset_id}:${p.path}`;
    const rows = rowsOf.get(part) ?? 0;
    if (rows === 0) return;
    const target = inputs[position % count]!;
    target.parts.push({ part, rows });
    target.items += rows;
  });
  const total = inputs.reduce((n, p) => n + p.items, 0);
  if (total === 0) throw new Error(`no embeddings in ${store.dir}: run curate embed first`);
  const parsed = parseBudget(budgetText);
  const budget = resolveBudget(parsed, total);
  const rate = 'fraction' in parsed ? parsed.fraction : budget / total;
  const seed = request.seed ?? 0;
  const classes = request.classNames
    ? await resolveClassNames(catalog, workspace, request.classNames, request.encoder)
    : undefined;
  const classPrompts = classes && { names: classes.names, embeddings: classes.embeddings };
  const form = formFor(selector.partitioned, params);
  const quotas = isQuotaForm(form)
    ? partitionQuotas(
        inputs.map((p) => p.items),
        budget,
      )
    : undefined;
  const runKey = hash({
    method: selector.name,
    params,
    seed,
    count,
    rate,
    // An exact form keeps the budget's best in every partition: its files depend on B itself.
    ...(form.exact ? { budget } : {}),
    kappa: oversampleOf(form),
    ...(quotas ? { quotas: true } : {}),
    encoder: encoder.fingerprint,
    labelField: request.labelField ?? null,
    classNames: classes?.names ?? null,
  }).slice(0, 16);
  return {
    selector,
    form,
    ...(quotas ? { quotas } : {}),
    params,
    seed,
    count,
    rate,
    budget,
    total,
    encoder,
    ...(classPrompts ? { classPrompts } : {}),
    inputs,
    dir: path.join(partitionsDir(workspace), runKey),
    runKey,
    budgetText,
  };
}

function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

function fileOf(plan: Plan, index: number): string {
  return path.join(plan.dir, `partition-${index}-of-${plan.count}.json`);
}

function fingerprintOf(plan: Plan, index: number): string {
  // A form with a shared state (proxies from a pool sample) depends on the whole pool, not just its part;
  // a quota form's partition on its quota (which the other partitions' sizes move).
  const pool = plan.form.exact && plan.form.prepare ? plan.inputs : undefined;
  const quota = plan.quotas?.[index];
  // Quota-form files carry more since format 2 (a distillation's learned vectors): older ones are redone.
  const format = plan.quotas ? QUOTA_FILE_FORMAT : undefined;
  return hash({ run: plan.runKey, index, inputs: plan.inputs[index], pool, quota, format });
}

const QUOTA_FILE_FORMAT = 2;

/** The partition's file when it exists and was computed from the current inputs. */
async function finishedPartition(plan: Plan, index: number): Promise<PartitionFile | undefined> {
  try {
    const file = JSON.parse(await readFile(fileOf(plan, index), 'utf8')) as PartitionFile;
    return file.fingerprint === fingerprintOf(plan, index) ? file : undefined;
  } catch {
    return undefined; // missing, or cut short by a kill before the rename: computed again
  }
}

/** Partition I's local step: read its parts' embeddings, pick its candidates, write its file. */
async function computePartition(
  catalog: Catalog,
  workspace: string,
  plan: Plan,
  index: number,
  request: SelectRequest,
): Promise<PartitionFile> {
  const shared = await sharedState(catalog, workspace, plan, request);
  const started = performance.now();
  const inputs = plan.inputs[index]!;
  let sampleIds: string[] = [];
  let weights: number[] = [];
  let keys: number[] | undefined;
  let stages: number[] | undefined;
  let schedule: StoredSchedule | undefined;
  let synthetic: PartitionFile['synthetic'];
  let trace: TraceEvent[] | undefined;
  let excluded: PartitionFile['excluded'] = [];
  if (inputs.items > 0) {
    const e = await loadEmbeddings(catalog, workspace, {
      ...embeddingOptions(request),
      only: { parts: new Set(inputs.parts.map((p) => p.part)) },
    });
    excluded = e.excluded.map(({ key, reason }) => ({ key, reason }));
    const form = plan.form;
    const want = isQuotaForm(form)
      ? Math.min(e.n, plan.quotas![index]!)
      : candidatesWanted(form, e.n, plan.budget, plan.rate);
    if (want > 0) {
      // The filters read catalog facts (captions, sizes, hashes): this partition's rows only.
      const input = {
        ...e,
        ...(plan.classPrompts ? { classPrompts: plan.classPrompts } : {}),
        ...(plan.selector.needs.includes('samples')
          ? {
              samples: {
                ...(await sampleFacts(catalog, e.ids, true)),
                firstCopyInPool: await firstCopiesInPool(catalog, plan.encoder.fingerprint, e.ids),
              },
            }
          : {}),
      };
      const seed = partitionSeed(form, plan.seed, index);
      const idOf = (row: number) => String(e.ids[row]!);
      if (isQuotaForm(form)) {
        const local = await form.local(input, want, plan.params, seed, request.signal);
        sampleIds = Array.from(local.indices, idOf);
        weights = local.weights ? Array.from(local.weights) : [];
        stages = local.stages && Array.from(local.stages);
        schedule = local.schedule && storedSchedule(local.schedule, idOf);
        synthetic = local.synthetic && storedSynthetic(local.synthetic);
        trace = local.trace;
      } else {
        const local = await form.local(input, want, plan.params, seed, request.signal, shared);
        sampleIds = Array.from(local.indices, idOf);
        if ('keys' in local) keys = Array.from(local.keys);
        else weights = Array.from(local.weights);
      }
    }
  }
  const file: PartitionFile = {
    fingerprint: fingerprintOf(plan, index),
    partition: index,
    partitions: plan.count,
    inputs,
    sampleIds,
    weights,
    ...(keys ? { keys } : {}),
    ...(stages ? { stages } : {}),
    ...(schedule ? { schedule } : {}),
    ...(synthetic ? { synthetic } : {}),
    ...(trace ? { trace } : {}),
    excluded,
    seconds: (performance.now() - started) / 1000,
  };
  await mkdir(plan.dir, { recursive: true });
  await writeFileAtomic(fileOf(plan, index), JSON.stringify(file) + '\n');
  return file;
}

/**
 * The state a form's partitions share (`prepare`: e.g. proxies trained on a pool sample), from
 * `<run>/shared-<fingerprint>.json` when a task already wrote it for this pool, else computed from the seeded sample
 * (the `sampleSize` catalog ids with the smallest DuckDB hash of id and seed) and published with a hard
 * link, which fails if another task got there first: then that task's state is used, so every partition
 * sees one state.
 */
async function sharedState(
  catalog: Catalog,
  workspace: string,
  plan: Plan,
  request: SelectRequest,
): Promise<unknown> {
  const form = plan.form;
  if (!form.exact || !form.prepare) return undefined;
  const cached = sharedStates.get(plan);
  if (cached) return cached;
  // Named by everything it depends on, so a file once published is never replaced, only used.
  const fingerprint = hash({ run: plan.runKey, pool: plan.inputs, sample: form.prepare.sampleSize });
  const file = path.join(plan.dir, `shared-${fingerprint.slice(0, 16)}.json`);
  const read = async () => {
    try {
      const stored = JSON.parse(await readFile(file, 'utf8')) as { fingerprint: string; state: unknown };
      return stored.fingerprint === fingerprint ? stored.state : undefined;
    } catch {
      return undefined;
    }
  };
  let state = await read();
  if (state === undefined) {
    const rows = await catalog.rows<{ id: bigint }>(
      `SELECT s.id FROM embeddings e JOIN samples s ON s.id = e.sample_id
       JOIN embedding_shards es ON es.shard = e.shard AND es.fingerprint = $fp
       ORDER BY hash(s.id + $seed), s.id LIMIT $size`,
      { fp: plan.encoder.fingerprint, seed: plan.seed, size: form.prepare.sampleSize },
    );
    const sample = await loadEmbeddings(catalog, workspace, {
      ...embeddingOptions(request),
      only: { ids: new Set(rows.map((r) => BigInt(r.id))) },
    });
    state = await form.prepare.run(
      plan.classPrompts ? { ...sample, classPrompts: plan.classPrompts } : sample,
      plan.params,
      plan.seed,
      request.signal,
    );
    await mkdir(plan.dir, { recursive: true });
    const temporary = `${file}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(temporary, JSON.stringify({ fingerprint, state }) + '\n');
    try {
      await link(temporary, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await rm(temporary, { force: true });
    state = (await read()) ?? state;
  }
  sharedStates.set(plan, state);
  return state;
}

const sharedStates = new WeakMap<Plan, unknown>();

export interface PartitionTaskReport {
  index: number;
  count: number;
  items: number;
  parts: number;
  candidates: number;
  /** The file was already there from an earlier run of this task with the same inputs. */
  reused: boolean;
  file: string;
}

/** One task of an array job (`--partition I/N`): partition I's candidates, nothing else. */
export async function selectPartitionTask(
  catalog: Catalog,
  workspace: string,
  request: PartitionedRequest,
  index: number,
): Promise<PartitionTaskReport> {
  const plan = await planOf(catalog, workspace, request);
  if (index >= plan.count) throw new SelectionInputError(`--partition ${index}/${plan.count}: I must be < N`);
  const earlier = await finishedPartition(plan, index);
  const file = earlier ?? (await computePartition(catalog, workspace, plan, index, request));
  return {
    index,
    count: plan.count,
    items: file.inputs.items,
    parts: file.inputs.parts.length,
    candidates: file.sampleIds.length,
    reused: earlier !== undefined,
    file: fileOf(plan, index),
  };
}

/**
 * The finishing run: every partition's candidates (from the tasks' files where their inputs match,
 * computed here otherwise), merged into the final selection, saved under the request's name.
 */
export async function selectPartitioned(
  catalog: Catalog,
  workspace: string,
  request: PartitionedRequest,
): Promise<StoredSelection> {
  const started = performance.now();
  const plan = await planOf(catalog, workspace, request);
  const form = plan.form;
  // What is kept of each file: its size and exclusions, and its candidates folded into `ranked` (exact
  // forms: the budget's best so far), `weightOf` (GreeDi: every candidate and its weight) or, for a
  // quota form, the file itself (its picks and schedule are joined at the end).
  const sizes: number[] = [];
  const excluded: PartitionFile['excluded'] = [];
  const computed: number[] = [];
  let ranked: { keys: Float64Array; order: bigint[] } = { keys: new Float64Array(0), order: [] };
  let candidates = 0;
  const weightOf = new Map<bigint, number>();
  const quotaParts: QuotaPart[] = [];
  for (let index = 0; index < plan.count; index++) {
    request.signal?.throwIfAborted();
    let file = await finishedPartition(plan, index);
    if (!file) {
      file = await computePartition(catalog, workspace, plan, index, request);
      computed.push(index);
    }
    sizes.push(file.inputs.items);
    excluded.push(...file.excluded);
    candidates += file.sampleIds.length;
    if (form.exact) {
      const ids = file.sampleIds.map(BigInt);
      ranked = mergeRanked([ranked, { keys: file.keys ?? [], order: ids }], plan.budget);
    } else if (isQuotaForm(form)) quotaParts.push(quotaPart(file));
    else file.sampleIds.forEach((id, j) => weightOf.set(BigInt(id), file.weights[j]!));
    request.progress?.(index + 1, plan.count + 1);
  }
  if (form.exact && form.keepsAll) checkFilterBudget(candidates, plan.total, plan.budget);
  let merged: {
    indices: Int32Array;
    weights: Float32Array;
    stages?: Int32Array;
    schedule?: Schedule;
    synthetic?: SyntheticVectors;
  };
  let poolIds: BigInt64Array;
  if (isQuotaForm(form)) {
    const joined = joinQuotaParts(quotaParts);
    poolIds = joined.poolIds;
    merged = {
      indices: joined.indices,
      weights: joined.weights ?? new Float32Array(joined.indices.length).fill(1),
      ...(joined.stages ? { stages: joined.stages } : {}),
      ...(joined.schedule ? { schedule: joined.schedule } : {}),
      ...(joined.synthetic ? { synthetic: joined.synthetic } : {}),
    };
  } else if (form.exact) {
    // Keys only: the picks are the budget's best keys, saved in that order.
    poolIds = BigInt64Array.from(ranked.order);
    merged = {
      indices: Int32Array.from(poolIds, (_, j) => j),
      weights: new Float32Array(poolIds.length).fill(1),
    };
  } else {
    // The union in sample-id order (independent of partition order), first-round weights as multiplicities.
    const union = await loadEmbeddings(catalog, workspace, {
      ...embeddingOptions(request),
      only: { ids: new Set(weightOf.keys()) },
    });
    const multiplicity = Float64Array.from(union.ids, (id) => weightOf.get(id)!);
    merged = await form.combine(
      plan.classPrompts ? { ...union, classPrompts: plan.classPrompts } : union,
      multiplicity,
      Math.min(plan.budget, union.n),
      plan.params,
      plan.seed,
      request.signal,
    );
    poolIds = union.ids;
  }
  request.progress?.(plan.count + 1, plan.count + 1);
  const reused = plan.count - computed.length;
  const trace: TraceEvent[] = [
    ...(request.scaleNote ? [{ stage: 'scale', message: request.scaleNote }] : []),
    {
      stage: 'partitions',
      message:
        `${plan.count} partitions of ${plan.total} items (catalog part i → partition i mod ${plan.count}; sizes ` +
        `${sizes.join(', ')}); ` +
        (plan.quotas
          ? `each runs ${plan.selector.name} at its quota of B = ${plan.budget} (largest remainder over the sizes: ` +
            `${plan.quotas.join(', ')})`
          : form.exact
            ? `each keeps its best min(n_I, ${plan.budget})`
            : `each keeps ⌈${oversampleOf(form)}·k_I⌉ candidates, k_I = ⌈${(100 * plan.rate).toPrecision(3)}% · n_I⌉`) +
        `; ${computed.length} computed in this run` +
        (computed.length ? ` (${computed.join(', ')})` : '') +
        `, ${reused} reused from task files or an earlier run with the same inputs`,
    },
    ...quotaParts.flatMap((file) =>
      file.trace.map((e) => ({
        stage: `partition ${file.partition}: ${e.stage}`,
        message: e.message,
      })),
    ),
    {
      stage: 'merge',
      message: merged.schedule
        ? `${merged.indices.length} static picks and ${merged.schedule.rounds.length} schedule rounds from ` +
          `${quotaParts.reduce((n, f) => n + (f.schedule?.rounds.length ?? 0), 0)} partition rounds: ${form.merge}`
        : `${candidates} candidates → ${merged.indices.length} picks: ${form.merge}`,
    },
  ];
  return saveSelection(catalog, workspace, {
    name:
      request.name ??
      (request.budget === undefined ? request.method : defaultSelectionName(request.method, request.budget)),
    method: request.method,
    params: plan.params,
    seed: plan.seed,
    budget: { requested: plan.budgetText, count: plan.budget },
    selection: {
      indices: merged.indices,
      weights: merged.weights,
      ...(merged.stages ? { stages: merged.stages } : {}),
      ...(merged.schedule ? { schedule: merged.schedule } : {}),
      ...(merged.synthetic ? { synthetic: merged.synthetic } : {}),
      trace,
    },
    poolIds,
    poolSize: plan.total,
    encoder: plan.encoder,
    seconds: (performance.now() - started) / 1000,
    excluded,
  });
}

/** Learned vectors for a partition file (little-endian hosts: the bytes are the array's own). */
function storedSynthetic(v: SyntheticVectors): NonNullable<PartitionFile['synthetic']> {
  return {
    dim: v.dim,
    classes: v.classes,
    vectors: Buffer.from(v.vectors.buffer, v.vectors.byteOffset, v.vectors.byteLength).toString('base64'),
    labels: Array.from(v.labels),
    stages: Array.from(v.stages),
  };
}

function syntheticOf(stored: NonNullable<PartitionFile['synthetic']>): SyntheticVectors {
  const bytes = Buffer.from(stored.vectors, 'base64');
  return {
    dim: stored.dim,
    classes: stored.classes,
    vectors: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
    labels: Int32Array.from(stored.labels),
    stages: Int32Array.from(stored.stages),
  };
}

/** A schedule with each row named by its catalog sample id, for a partition file. */
function storedSchedule(schedule: Schedule, idOf: (row: number) => string): StoredSchedule {
  return {
    unit: schedule.unit,
    total: schedule.total,
    rounds: schedule.rounds.map((r) => ({
      start: r.start,
      end: r.end,
      sampleIds: Array.from(r.indices, idOf),
      ...(r.weights ? { weights: Array.from(r.weights) } : {}),
      ...(r.batches ? { batches: Array.from(r.batches) } : {}),
      ...(r.info ? { info: r.info } : {}),
    })),
  };
}

/**
 * A quota form's partition file with its rows as sample ids in typed arrays: the finishing run holds
 * every partition's schedule at once (SeTa: ~0.1·N keys an epoch), 8 bytes an id instead of a string.
 */
interface QuotaPart {
  partition: number;
  trace: TraceEvent[];
  picks: Float64Array;
  weights?: Float32Array;
  stages?: Int32Array;
  synthetic?: SyntheticVectors;
  schedule?: {
    unit: Schedule['unit'];
    total: number;
    rounds: Array<{
      start: number;
      end: number;
      ids: Float64Array;
      weights?: Float32Array;
      batches?: Int32Array;
      info?: Record<string, number | string>;
    }>;
  };
}

/** Catalog ids fit a double exactly (they are row numbers far below 2^53). */
const idsOf = (ids: readonly string[]) => Float64Array.from(ids, Number);

function quotaPart(file: PartitionFile): QuotaPart {
  return {
    partition: file.partition,
    trace: file.trace ?? [],
    picks: idsOf(file.sampleIds),
    ...(file.weights.length ? { weights: Float32Array.from(file.weights) } : {}),
    ...(file.stages ? { stages: Int32Array.from(file.stages) } : {}),
    ...(file.synthetic ? { synthetic: syntheticOf(file.synthetic) } : {}),
    ...(file.schedule
      ? {
          schedule: {
            unit: file.schedule.unit,
            total: file.schedule.total,
            rounds: file.schedule.rounds.map((r) => ({
              start: r.start,
              end: r.end,
              ids: idsOf(r.sampleIds),
              ...(r.weights ? { weights: Float32Array.from(r.weights) } : {}),
              ...(r.batches ? { batches: Int32Array.from(r.batches) } : {}),
              ...(r.info ? { info: r.info } : {}),
            })),
          },
        }
      : {}),
  };
}

/**
 * A quota form's partitions as one result: every sample they mention (static picks and schedule
 * rounds) in id order is the saved pool, and the partitions' results are concatenated over it in
 * partition order ({@link concatenatePartitions}). Rows are found by binary search in the sorted ids
 * (no map of the pool).
 */
function joinQuotaParts(parts: readonly QuotaPart[]): PartitionResult & { poolIds: BigInt64Array } {
  const lists = parts.flatMap((p) => [p.picks, ...(p.schedule?.rounds.map((r) => r.ids) ?? [])]);
  const all = new Float64Array(lists.reduce((n, l) => n + l.length, 0));
  let at = 0;
  for (const l of lists) {
    all.set(l, at);
    at += l.length;
  }
  all.sort();
  let unique = 0;
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[unique - 1]) all[unique++] = all[i]!;
  const sorted = all.subarray(0, unique);
  const rowOf = (id: number) => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const rows = (ids: Float64Array) => Int32Array.from(ids, rowOf);
  const results = parts.map((p): PartitionResult => ({
    indices: rows(p.picks),
    ...(p.weights ? { weights: p.weights } : {}),
    ...(p.stages ? { stages: p.stages } : {}),
    ...(p.synthetic ? { synthetic: p.synthetic } : {}),
    ...(p.schedule
      ? {
          schedule: {
            unit: p.schedule.unit,
            total: p.schedule.total,
            rounds: p.schedule.rounds.map(({ ids, ...round }) => ({ ...round, indices: rows(ids) })),
          },
        }
      : {}),
  }));
  return { ...concatenatePartitions(results), poolIds: BigInt64Array.from(sorted, (id) => BigInt(id)) };
}

/**
 * 1 for each of `ids` that is the first (lowest id) of its content hash among every embedded sample (or
 * has no hash): one grouped catalog query, so a partition's exact-dedup sees copies in other partitions.
 */
async function firstCopiesInPool(
  catalog: Catalog,
  fingerprint: string,
  ids: BigInt64Array,
): Promise<Uint8Array> {
  const rows = await catalog.rows<{ id: bigint; first: boolean }>(
    `WITH pool AS (
       SELECT s.id, s.content_hash FROM samples s JOIN embeddings e ON e.sample_id = s.id
       JOIN embedding_shards es ON es.shard = e.shard AND es.fingerprint = $fp),
     firsts AS (SELECT min(id) AS id FROM pool WHERE content_hash IS NOT NULL GROUP BY content_hash)
     SELECT s.id, (s.content_hash IS NULL OR s.id IN (SELECT id FROM firsts)) AS first
     FROM samples s WHERE s.id IN (SELECT unnest($ids))`,
    { fp: fingerprint, ids: listValue(Array.from(ids)) },
  );
  const firstOf = new Map(rows.map((r) => [BigInt(r.id), r.first]));
  return Uint8Array.from(ids, (id) => (firstOf.get(id) ? 1 : 0));
}
