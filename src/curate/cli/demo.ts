/**
 * The demo's steps after embedding: index → every method at a few budgets (compare, which saves each
 * selection) → export the best selection at 10% as WebDataset shards → the HTML report. The bundled
 * sample has CIFAR-10 labels (`label_index`) and ground truth for caption noise and duplicates, so the
 * tables and the report show what each method keeps.
 */
import path from 'node:path';
import { selectionMethods } from '../../select/registry.js';
import { WorkspaceIndex, writeRunReport, type Catalog, type Comparison } from '../api.js';
import { exportWithProgress, formatExport } from './exportCommands.js';
import { warn } from './escape.js';
import { compareWithProgress } from './selectCommands.js';
import { proxyClipScore } from '../compareTable.js';

/** The budget whose table is the demo's headline, whose selections the report shows, and whose best is exported. */
export const DEMO_BUDGET = '10%';
/** Budgets of the metric-vs-budget curves. */
export const DEMO_BUDGETS = ['5%', DEMO_BUDGET, '20%'];
export const DEMO_LABEL_FIELD = 'label_index';
/** The bundled sample names each image's class in this metadata field: the zero-shot class names. */
export const DEMO_CLASS_FIELD = 'label';
/**
 * The demo's evaluation, lighter than `compare`'s defaults so the whole demo stays short (stated in its
 * output): proxy CLIP at 50 steps × 128 and the label probe, 3 seeds each.
 */
export const DEMO_PROXY = { steps: 50, batch: 128 } as const;
/** Used by the demo when it is in the local transformers.js cache; never downloaded unless asked for. */
export const DEMO_CLIP_MODEL = 'Xenova/clip-vit-base-patch32';

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
): Promise<DemoResult> {
  const index = await WorkspaceIndex.build(catalog, workspace, 'image');
  out(`image index of ${index.ids.length} samples → ${WorkspaceIndex.dir(workspace)}\n\n`);

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
    proxy: { clip: DEMO_PROXY },
    ...(signal ? { signal } : {}),
  });
  const main = comparisons.find((c) => c.budget === DEMO_BUDGET) ?? comparisons[0]!;

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

  const report = await writeRunReport(catalog, workspace, {
    name: 'demo',
    title: 'clipcurate demo: CIFAR-10 with noisy captions',
    comparisons,
    selections: main.rows.filter((r) => !r.error).map((r) => r.selection),
    ...(signal ? { signal } : {}),
  });
  for (const m of report.missingImages) warn(`warning: thumbnail ${m}`);
  out(`report: ${report.html}\n`);
  return { comparisons, exported: { selection: best.selection, out: exported.out }, report: report.html };
}
