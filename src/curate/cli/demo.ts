/**
 * The demo's steps after embedding: index → every method at a few budgets (compare, which saves each
 * selection) → export the best selection at 10% as WebDataset shards → the HTML report. The bundled
 * sample has CIFAR-10 labels (`label_index`) and ground truth for caption noise and duplicates, so the
 * tables and the report show what each method keeps.
 */
import path from 'node:path';
import { z } from 'zod';
import { getSelector, selectionMethods } from '../../select/registry.js';
import { WorkspaceIndex, writeRunReport, type Catalog, type Comparison } from '../api.js';
import { exportWithProgress, formatExport } from './exportCommands.js';
import { warn } from './escape.js';
import { compareWithProgress } from './selectCommands.js';
import { proxyClipScore } from '../compareTable.js';
import { DEFAULT_EVAL_SEEDS } from '../../eval/evaluate.js';

/** The budget whose table is the demo's headline, whose selections the report shows, and whose best is exported. */
export const DEMO_BUDGET = '10%';
/** Budgets of the metric-vs-budget curves. */
export const DEMO_BUDGETS = ['5%', DEMO_BUDGET, '20%'];
export const DEMO_LABEL_FIELD = 'label_index';
/** The bundled sample names each image's class in this metadata field: the zero-shot class names. */
export const DEMO_CLASS_FIELD = 'label';
/**
 * The demo's evaluation, lighter than `compare`'s defaults so the whole demo stays short (stated in its
 * output): proxy CLIP at 50 steps × 128 and the label probe, 2 seeds each (default 3). The evaluation is
 * most of the compare time: about 70 trainings of each evaluator per seed.
 */
export const DEMO_PROXY = { steps: 50, batch: 128 } as const;
export const DEMO_EVAL_SEEDS = 2;
/**
 * Lighter settings of the slowest methods, for the demo only (each method's defaults are unchanged, and
 * `curate compare` runs them). Stated in the demo's output with the defaults they replace; without them
 * PDD-Synth and FAST alone took minutes of the demo on two cores.
 */
export const DEMO_METHOD_PARAMS: Readonly<Record<string, Record<string, unknown>>> = {
  // 4 experts, 20 distillation iterations of 5 unrolled steps per stage (defaults 10, 200, 20).
  'pdd-synth': { experts: 4, iterations: 20, syntheticSteps: 5 },
  // 50 optimisation steps with 16 frequencies each (defaults 400, 64).
  fast: { iterations: 50, frequencies: 16 },
};
/**
 * The demo's offline-encoder fit when it has no CLIP model: a 128-word dictionary from 50,000 patches
 * (defaults 256 and 200,000), which fits in a fraction of the time on the 2,000-pair sample. Stated in
 * the demo's output; `curate embed` fits at the defaults.
 */
export const DEMO_OFFLINE_FIT = { dictionary: 128, patches: 50_000 } as const;
/** The line the demo prints when it fitted the offline encoder (defaults: OfflineEncoder.fit). */
export const DEMO_OFFLINE_FIT_NOTE =
  `offline encoder fitted at demo settings: dictionary=${DEMO_OFFLINE_FIT.dictionary} (default 256), ` +
  `patches=${DEMO_OFFLINE_FIT.patches} (default 200000); \`curate embed\` fits at the defaults`;
/** Used by the demo when it is in the local transformers.js cache; never downloaded unless asked for. */
export const DEMO_CLIP_MODEL = 'Xenova/clip-vit-base-patch32';

/**
 * The demo's lighter method settings, each with the default it replaces, as one line of its output:
 * `pdd-synth experts=4 (default 10), …; fast …`. A demo setting that its method no longer accepts (an
 * option renamed) is an error here, before any work, rather than a failed row in the tables.
 */
export function describeDemoSettings(
  params: Readonly<Record<string, Record<string, unknown>>> = DEMO_METHOD_PARAMS,
): string {
  const methods = Object.entries(params).map(([method, values]) => {
    const schema = getSelector(method).params;
    const strict = schema instanceof z.ZodObject ? schema.strict() : schema;
    const checked = strict.safeParse(values);
    if (!checked.success)
      throw new Error(`demo settings of ${method}: ${checked.error.issues.map((i) => i.message).join('; ')}`);
    const defaults = schema.parse({}) as Record<string, unknown>;
    const set = Object.entries(values).map(
      ([name, value]) => `${name}=${JSON.stringify(value)} (default ${JSON.stringify(defaults[name])})`,
    );
    return `${method} ${set.join(', ')}`;
  });
  return (
    `demo settings, lighter than the defaults to keep the demo short: ${methods.join('; ')}; ` +
    `evaluation seeds=${DEMO_EVAL_SEEDS} (default ${DEFAULT_EVAL_SEEDS}), proxy CLIP and the label probe at the ${DEMO_BUDGET} budget only (default: every budget). ` +
    'Every other method runs at its defaults; `curate compare --methods all` runs every method at its defaults.'
  );
}

/** Wall seconds per demo phase, printed at its end so a user sees where the time went. */
export class DemoClock {
  private readonly started = performance.now();
  private lapStarted = this.started;
  readonly phases: { name: string; seconds: number }[] = [];

  /** Ends the phase that ran since the previous lap (or since the clock started). */
  lap(name: string): void {
    const now = performance.now();
    this.phases.push({ name, seconds: (now - this.lapStarted) / 1000 });
    this.lapStarted = now;
  }

  summary(): string {
    const total = (performance.now() - this.started) / 1000;
    const phases = this.phases.map((p) => `${p.name} ${p.seconds.toFixed(1)}`).join(', ');
    return `demo took ${total.toFixed(1)} s (${phases})`;
  }
}

export interface DemoResult {
  comparisons: Comparison[];
  exported: { selection: string; out: string };
  report: string;
}

export async function runDemoPipeline(
  catalog: Catalog,
  workspace: string,
  out: (text: string) => void,
  budgets: string[] = DEMO_BUDGETS,
  signal?: AbortSignal,
  /** The encoder spec the workspace was embedded with (class names are embedded by it). */
  encoder = 'default',
  /** Started by the caller when the demo started; the phases before this function are lapped already. */
  clock = new DemoClock(),
): Promise<DemoResult> {
  const settings = describeDemoSettings();
  const index = await WorkspaceIndex.build(catalog, workspace, 'image');
  out(`image index of ${index.ids.length} samples → ${WorkspaceIndex.dir(workspace)}\n\n`);
  clock.lap('index');
  out(`${settings}\n\n`);

  const headline = budgets.includes(DEMO_BUDGET) ? DEMO_BUDGET : budgets[0]!;
  const comparisons = await compareWithProgress(catalog, workspace, out, {
    methods: selectionMethods(),
    budgets,
    // The demo owns this run: a second demo replaces its own comparisons and selections.
    run: 'demo',
    overwrite: true,
    labelField: DEMO_LABEL_FIELD,
    classNames: { kind: 'field', field: DEMO_CLASS_FIELD },
    encoder,
    evaluators: ['clip', 'probe'],
    // Proxy training only at the headline budget; the other budgets' curves show the cheap columns.
    evaluateAt: [headline],
    evalSeeds: DEMO_EVAL_SEEDS,
    proxy: { clip: DEMO_PROXY },
    params: DEMO_METHOD_PARAMS,
    ...(signal ? { signal } : {}),
  });
  clock.lap('compare');
  const main = comparisons.find((c) => c.budget === headline)!;

  // The best selection by proxy CLIP (held-out zero-shot from the class names): a model trained on it
  // generalises best, which is what a user would train on next.
  const scored = main.rows.filter((r) => proxyClipScore(r) !== null);
  if (scored.length === 0)
    throw new Error('the demo comparison has no proxy CLIP scores: every method failed');
  const best = scored.reduce((a, b) => (proxyClipScore(b)! > proxyClipScore(a)! ? b : a));
  const exportDir = path.join(path.resolve(workspace), 'exports', best.selection);
  const exported = await exportWithProgress(catalog, workspace, best.selection, {
    format: 'webdataset',
    out: exportDir,
    // The demo owns this folder: a second demo run replaces its own previous export.
    overwrite: true,
    ...(signal ? { signal } : {}),
  });
  out(
    `best at ${main.budget} by proxy CLIP zero-shot (${(100 * proxyClipScore(best)!).toFixed(1)}%): ${best.method}\n` +
      formatExport(exported) +
      '\n',
  );
  clock.lap('export');

  const report = await writeRunReport(catalog, workspace, {
    name: 'demo',
    title: 'clipcurate demo: CIFAR-10 with noisy captions',
    comparisons,
    selections: main.rows.filter((r) => !r.error).map((r) => r.selection),
    ...(signal ? { signal } : {}),
  });
  for (const m of report.missingImages) warn(`warning: thumbnail ${m}`);
  out(`report: ${report.html}\n`);
  clock.lap('report');
  out(`${clock.summary()}\n${settings}\n`);
  return { comparisons, exported: { selection: best.selection, out: exported.out }, report: report.html };
}
