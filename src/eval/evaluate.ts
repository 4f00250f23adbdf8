/**
 * The one evaluation API: `curate compare`, the report, the panel and the demo score a subset here.
 *
 * A subset is judged the way pre-training uses it (DataComp: fix the recipe and the compute, vary only
 * the data): proxy CLIP (two towers trained from scratch with symmetric InfoNCE on the subset's frozen
 * image and caption embeddings, src/eval/proxyClip.ts), proxy SSL (an NT-Xent head on augmented views,
 * src/eval/proxySsl.ts) and, where labels exist, the linear probe. Every subset gets the same steps ×
 * batch ({@link proxyStepsFor}); dynamic methods are trained along their schedule ({@link TrainingPlan}).
 *
 * Noise is measured, not assumed away: each metric is reported over `seeds` runs. Seed s trains with
 * seed s and is tested on its own resample of the held-out split (a seeded ⌈0.8·n⌉ subset, without
 * replacement), so the spread covers both training noise and test-set noise.
 */
import { seededRandom } from '../compute/random.js';
import { SelectionInputError } from '../select/contract.js';
import { linearProbe } from '../select/proxy/probe.js';
import { accuracyFromResiduals, headPass, type SoftmaxHead } from '../select/proxy/softmaxHead.js';
import {
  evaluateProxyClip,
  PROXY_CLIP_DEFAULTS,
  trainProxyClip,
  type ProxyClipOptions,
} from './proxyClip.js';
import { evaluateProxySsl, PROXY_SSL_DEFAULTS, trainProxySsl, type ProxySslOptions } from './proxySsl.js';
import {
  seededMetric,
  type ProxyClipMetrics,
  type ProxySslMetrics,
  type SeededMetric,
  type TrainingPlan,
} from './types.js';

export const EVALUATORS = ['clip', 'ssl', 'probe'] as const;
export type EvaluatorName = (typeof EVALUATORS)[number];

export const EVALUATOR_LABELS: Record<EvaluatorName, string> = {
  clip: 'proxy CLIP (InfoNCE towers on the subset: held-out retrieval, zero-shot from class names)',
  ssl: 'proxy SSL (NT-Xent head on augmented views: held-out kNN / probe accuracy)',
  probe: 'linear probe on image embeddings (needs labels)',
};

/**
 * Default proxy training length: samples seen = 5 × the pool the subsets come from (DataComp fixes
 * samples seen in proportion to its pool), between 50 and 500 steps. It depends on the run's pool, never
 * on the subset, so every subset of a run gets the same compute.
 */
export function proxyStepsFor(pool: number, batch: number): number {
  return Math.min(500, Math.max(50, Math.ceil((5 * pool) / batch)));
}

/** The proxy settings a setup resolves to (defaults, and the pool-sized step count). */
export function proxySettings(setup: Pick<EvaluationSetup, 'pool' | 'clip' | 'ssl'>): {
  clip: ProxyClipOptions;
  ssl: ProxySslOptions;
} {
  const clipBatch = setup.clip?.batch ?? PROXY_CLIP_DEFAULTS.batch;
  const sslBatch = setup.ssl?.batch ?? PROXY_SSL_DEFAULTS.batch;
  return {
    clip: {
      ...PROXY_CLIP_DEFAULTS,
      ...setup.clip,
      steps: setup.clip?.steps ?? proxyStepsFor(setup.pool.n, clipBatch),
    } as ProxyClipOptions,
    ssl: {
      ...PROXY_SSL_DEFAULTS,
      ...setup.ssl,
      steps: setup.ssl?.steps ?? proxyStepsFor(setup.pool.n, sslBatch),
    } as ProxySslOptions,
  };
}

/** Default number of evaluation seeds (training seeds and held-out resamples). */
export const DEFAULT_EVAL_SEEDS = 3;
/** Share of the held-out split each seed tests on. */
export const HELD_OUT_RESAMPLE = 0.8;

/** What the data allows: proxy CLIP always, proxy SSL with augmented views, the probe with labels. */
export function defaultEvaluators(has: { labels: boolean; views: boolean }): EvaluatorName[] {
  return EVALUATORS.filter(
    (e) => e === 'clip' || (e === 'ssl' && has.views) || (e === 'probe' && has.labels),
  );
}

/**
 * `--eval clip,ssl,probe` (or `default`): an evaluator the data cannot feed is an error naming what is
 * missing, never silently dropped.
 */
export function parseEvaluators(text: string, has: { labels: boolean; views: boolean }): EvaluatorName[] {
  if (text.trim() === 'default') return defaultEvaluators(has);
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new SelectionInputError('--eval needs at least one of clip, ssl, probe');
  for (const name of names) {
    if (!(EVALUATORS as readonly string[]).includes(name))
      throw new SelectionInputError(
        `--eval: unknown evaluator '${name}' (choose from ${EVALUATORS.join(', ')})`,
      );
    if (name === 'probe' && !has.labels)
      throw new SelectionInputError('--eval probe needs labels: pass --label-field <metadata field>');
    if (name === 'ssl' && !has.views)
      throw new SelectionInputError(
        '--eval ssl needs augmented-view embeddings: run `curate embed --views <variant>` and pass --views',
      );
  }
  return [...new Set(names)] as EvaluatorName[];
}

/** Embeddings of one side of the split (rows of the pool, or of the held-out part). */
export interface EvalPart {
  n: number;
  dim: number;
  image: Float32Array;
  text: Float32Array;
  /** Class per row (0-based), where labels exist. */
  labels?: Int32Array;
  /** Mean augmented-view embedding per row (`curate embed --views`), where asked. */
  views?: Float32Array;
}

export interface EvaluationSetup {
  evaluators: readonly EvaluatorName[];
  seeds: number;
  /** What subsets are drawn from (plan indices are its rows). */
  pool: EvalPart;
  /** Rows no method saw. */
  heldOut: EvalPart;
  /**
   * Class-name prompt embeddings (K × dim, the workspace's space) and each held-out row's class among
   * them, for proxy CLIP's zero-shot accuracy.
   */
  zeroShot?: { prompts: Float32Array; heldOutLabels: Int32Array };
  clip?: Partial<ProxyClipOptions>;
  ssl?: Partial<ProxySslOptions>;
}

export interface SubsetEvaluation {
  probe: SeededMetric | null;
  proxyClip: ProxyClipMetrics | null;
  proxySsl: ProxySslMetrics | null;
}

/** The settings a comparison records, so a table says what its numbers mean. */
export function describeEvaluation(setup: EvaluationSetup): string {
  const { clip, ssl } = proxySettings(setup);
  const parts = setup.evaluators.map((e) =>
    e === 'clip'
      ? `proxy CLIP ${clip.tower} towers, ${clip.steps} steps × ${clip.batch}`
      : e === 'ssl'
        ? `proxy SSL ${ssl.head} head, ${ssl.steps} steps × ${ssl.batch}`
        : 'linear probe',
  );
  return (
    `${parts.join('; ')}; ${setup.seeds} seed${setup.seeds === 1 ? '' : 's'} ` +
    `(training seed + a ${Math.round(HELD_OUT_RESAMPLE * 100)}% resample of ${setup.heldOut.n} held-out samples)`
  );
}

/** Train and test every asked evaluator on one subset (or schedule), over the setup's seeds. */
export async function evaluateSubset(
  setup: EvaluationSetup,
  plan: TrainingPlan,
  signal?: AbortSignal,
): Promise<SubsetEvaluation> {
  if (setup.heldOut.n < 2) throw new SelectionInputError('evaluation needs at least 2 held-out samples');
  const wants = (e: EvaluatorName) => setup.evaluators.includes(e);
  const clip: Array<Awaited<ReturnType<typeof evaluateProxyClip>>> = [];
  const ssl: Array<Awaited<ReturnType<typeof evaluateProxySsl>>> = [];
  const probe: number[] = [];
  const picks = planRows(plan);
  const settings = proxySettings(setup);
  // The probe trains deterministically (full batch, zero init): one head, tested on every resample.
  const probeHead = wants('probe') ? await trainProbe(setup, plan) : undefined;
  for (let seed = 0; seed < setup.seeds; seed++) {
    signal?.throwIfAborted();
    const rows = resample(setup.heldOut.n, seed);
    const test = gatherPart(setup.heldOut, rows);
    if (wants('clip')) {
      const model = await trainProxyClip(setup.pool, plan, { ...settings.clip, seed });
      const prompts = setup.zeroShot?.prompts;
      const labels = setup.zeroShot ? gatherInt(setup.zeroShot.heldOutLabels, rows) : undefined;
      clip.push(await evaluateProxyClip(model, { ...test, ...(labels ? { labels } : {}) }, prompts));
    }
    if (wants('ssl')) {
      if (!setup.pool.views || !test.views) throw new SelectionInputError('proxy SSL needs augmented views');
      const model = await trainProxySsl(
        { n: setup.pool.n, dim: setup.pool.dim, views: [setup.pool.image, setup.pool.views] },
        plan,
        { ...settings.ssl, seed },
      );
      const train = gatherPart(setup.pool, picks);
      ssl.push(
        await evaluateProxySsl(
          model,
          {
            n: train.n,
            dim: train.dim,
            image: train.image,
            ...(train.labels ? { labels: train.labels } : {}),
          },
          {
            n: test.n,
            dim: test.dim,
            image: test.image,
            ...(test.labels ? { labels: test.labels } : {}),
            views: [test.image, test.views],
          },
        ),
      );
    }
    if (probeHead) {
      const pass = await headPass(
        probeHead,
        { rows: test.n, cols: test.dim, data: test.image },
        test.labels!,
      );
      probe.push(accuracyFromResiduals(pass.residuals, test.labels!, probeHead.classes));
    }
  }
  const over = <T>(list: T[], pick: (t: T) => number | null): SeededMetric | null => {
    const values = list.map(pick);
    return values.every((v): v is number => v !== null && Number.isFinite(v)) && values.length
      ? seededMetric(values)
      : null;
  };
  return {
    probe: wants('probe') ? over(probe, (v) => v) : null,
    proxyClip: wants('clip')
      ? {
          zeroShotTop1: over(clip, (m) => m.zeroShotTop1),
          i2tR1: over(clip, (m) => m.i2tR1)!,
          i2tR5: over(clip, (m) => m.i2tR5)!,
          i2tR10: over(clip, (m) => m.i2tR10)!,
          t2iR1: over(clip, (m) => m.t2iR1)!,
          t2iR5: over(clip, (m) => m.t2iR5)!,
          t2iR10: over(clip, (m) => m.t2iR10)!,
        }
      : null,
    proxySsl: wants('ssl')
      ? {
          knnTop1: over(ssl, (m) => m.knnTop1),
          probeTop1: over(ssl, (m) => m.probeTop1),
          alignment: over(ssl, (m) => m.alignment),
          uniformity: over(ssl, (m) => m.uniformity)!,
        }
      : null,
  };
}

/** The label probe on a plan's (weighted) rows, trained once. */
async function trainProbe(setup: EvaluationSetup, plan: TrainingPlan): Promise<SoftmaxHead> {
  if (!setup.pool.labels || !setup.heldOut.labels)
    throw new SelectionInputError('the linear probe needs labels');
  const { rows, weights } = planWeights(plan);
  const { head } = await linearProbe(
    {
      x: {
        rows: rows.length,
        cols: setup.pool.dim,
        data: gatherRows(setup.pool.image, setup.pool.dim, rows),
      },
      labels: gatherInt(setup.pool.labels, rows),
      ...(weights ? { weights } : {}),
    },
    {
      x: { rows: setup.heldOut.n, cols: setup.heldOut.dim, data: setup.heldOut.image },
      labels: setup.heldOut.labels,
    },
    { classes: 1 + Math.max(largest(setup.pool.labels), largest(setup.heldOut.labels)) },
  );
  return head;
}

/**
 * The rows a plan trains on (all rounds and the warm-up, first-seen order), each once: the labelled
 * "training set" of the kNN monitor.
 */
export function planRows(plan: TrainingPlan): Int32Array {
  const seen = new Set<number>();
  const out: number[] = [];
  const add = (rows: ArrayLike<number>) => {
    for (let t = 0; t < rows.length; t++)
      if (!seen.has(rows[t]!)) {
        seen.add(rows[t]!);
        out.push(rows[t]!);
      }
  };
  if (plan.warmup) add(plan.warmup);
  for (const r of plan.rounds) add(r.indices);
  return Int32Array.from(out);
}

/**
 * The probe's weighted training set: a static plan's rows and weights as given; a schedule's rows with
 * each row's weight summed over rounds in proportion to each round's share of the run (the probe is
 * trained full-batch, so this is what the schedule's average gradient sees).
 */
function planWeights(plan: TrainingPlan): { rows: number[]; weights?: Float32Array } {
  if (plan.rounds.length === 1 && !plan.warmup) {
    const r = plan.rounds[0]!;
    return { rows: Array.from(r.indices), ...(r.weights ? { weights: r.weights } : {}) };
  }
  const total = new Map<number, number>();
  for (const r of plan.rounds) {
    const span = Math.max(0, r.end - r.start);
    const sum = r.weights ? r.weights.reduce((a, b) => a + b, 0) : r.indices.length;
    r.indices.forEach((i, t) => total.set(i, (total.get(i) ?? 0) + (span * (r.weights?.[t] ?? 1)) / sum));
  }
  const rows = [...total.keys()];
  const scale = rows.length / rows.reduce((a, i) => a + total.get(i)!, 0);
  return { rows, weights: Float32Array.from(rows, (i) => total.get(i)! * scale) };
}

/** Seed s's held-out rows: a seeded ⌈0.8·n⌉ subset, sorted. */
function resample(n: number, seed: number): number[] {
  const random = seededRandom(7_919 * (seed + 1));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, Math.max(2, Math.ceil(HELD_OUT_RESAMPLE * n))).sort((a, b) => a - b);
}

function gatherRows(m: Float32Array, dim: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let t = 0; t < rows.length; t++) out.set(m.subarray(rows[t]! * dim, (rows[t]! + 1) * dim), t * dim);
  return out;
}

function gatherInt(a: Int32Array, rows: ArrayLike<number>): Int32Array {
  return Int32Array.from({ length: rows.length }, (_, t) => a[rows[t]!]!);
}

function gatherPart(p: EvalPart, rows: ArrayLike<number>): EvalPart {
  return {
    n: rows.length,
    dim: p.dim,
    image: gatherRows(p.image, p.dim, rows),
    text: gatherRows(p.text, p.dim, rows),
    ...(p.labels ? { labels: gatherInt(p.labels, rows) } : {}),
    ...(p.views ? { views: gatherRows(p.views, p.dim, rows) } : {}),
  };
}

function largest(values: ArrayLike<number>): number {
  let m = -1;
  for (let i = 0; i < values.length; i++) m = Math.max(m, values[i]!);
  return m;
}
