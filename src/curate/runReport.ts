/**
 * The run report from what a run left in the workspace: comparisons (one per budget) for the table and
 * the metric-vs-budget curves, saved selections for score histograms, sample grids and provenance.
 * Written to `<workspace>/reports/<name>/index.html` (+ `plots/*.png`) by `writeReport`.
 */
import path from 'node:path';
import { partialShuffle, seededRandom } from '../compute/random.js';
import { OFFLINE_ENCODER_NAME } from '../embed/encoders/offline/index.js';
import { SelectionInputError } from '../select/contract.js';
import type { Catalog } from './catalog.js';
import { readSampleImages } from './export/images.js';
import type { Comparison, CompareRow as CompareRowOfComparison } from './pipeline.js';
import { COMPARE_COLUMNS, meanOf } from './compareTable.js';
import { writeReport } from './report/index.js';
import type {
  CompareRow,
  GridSample,
  MetricInfo,
  ReportData,
  ReportResult,
  SampleGrid,
  ScoreHistogram,
} from './report/types.js';
import {
  datasetFingerprint,
  loadPoolIds,
  loadScores,
  loadSelection,
  poolPositions,
  toolVersion,
  type StoredSelection,
} from './selections.js';

export interface RunReportRequest {
  /** Folder name under `<workspace>/reports/` (letters, digits, `.`, `_`, `-`). */
  name: string;
  title?: string;
  /** Comparisons of one pool (an error otherwise); `source` names the file each was read from, for messages. */
  comparisons?: Array<Comparison & { source?: string }>;
  /** Saved selections to show (histograms, grids, provenance); default: those of the first comparison. */
  selections?: string[];
  /** Selected and rejected thumbnails per selection (default 8 each). */
  gridSize?: number;
  /** Overrides the encoder read from the selections' provenance. */
  encoder?: { name: string; fingerprint?: string };
  signal?: AbortSignal;
}

export interface RunReport extends ReportResult {
  dir: string;
  /** Thumbnails that could not be read (source gone or changed), as "key: reason". */
  missingImages: string[];
}

/**
 * How the compare metrics are shown: labels, formats and which way is better, from the one column list
 * of compareTable.ts (every column but the count kept and the selection time, which the report shows
 * on its own).
 */
export const COMPARE_METRICS: Record<string, MetricInfo> = Object.fromEntries(
  COMPARE_COLUMNS.filter((c) => c.key !== 'kept' && c.key !== 'seconds').map((c) => [
    c.key,
    {
      label: c.group === 'subset' ? c.label : `${c.group.split(' (')[0]}: ${c.label}`,
      description: c.help,
      ...(c.format === 'percent' ? { format: 'percent' as const } : {}),
      ...(c.higherIsBetter === null
        ? {}
        : { better: c.higherIsBetter ? ('higher' as const) : ('lower' as const) }),
    },
  ]),
);

const REPORT_NAME = /^[A-Za-z0-9._-]{1,100}$/;

export function reportDir(workspace: string, name: string): string {
  if (!REPORT_NAME.test(name) || name === '.' || name === '..')
    throw new SelectionInputError(`report name '${name}' must be letters, digits, '.', '_' or '-'`);
  return path.join(path.resolve(workspace), 'reports', name);
}

export async function writeRunReport(
  catalog: Catalog,
  workspace: string,
  request: RunReportRequest,
): Promise<RunReport> {
  const dir = reportDir(workspace, request.name);
  const comparisons = request.comparisons ?? [];
  assertOnePool(comparisons);
  const names =
    request.selections ?? comparisons[0]?.rows.filter((r) => !r.error).map((r) => r.selection) ?? [];
  const selections: StoredSelection[] = [];
  for (const name of names) selections.push(await loadSelection(workspace, name));

  const summary = await catalog.summary();
  const dataset = await datasetFingerprint(catalog);
  const encoder = request.encoder ?? selections[0]?.provenance.encoder ?? { name: 'unknown' };
  const offline = encoder.name === OFFLINE_ENCODER_NAME;
  const gridSize = request.gridSize ?? 8;
  const grids = await sampleGrids(catalog, workspace, selections, gridSize, request.signal);

  const data: ReportData = {
    ...(request.title ? { title: request.title } : {}),
    createdAt: new Date(),
    workspace: path.resolve(workspace),
    tool: await toolVersion(),
    dataset: {
      samples: summary.samples,
      issues: summary.issues.reduce((a, i) => a + i.count, 0),
      datasets: summary.datasets.map((d) => ({ name: d.name, spec: d.spec, samples: d.samples })),
      fingerprint: dataset.fingerprint,
    },
    encoder: {
      name: encoder.name,
      ...('fingerprint' in encoder && encoder.fingerprint ? { fingerprint: encoder.fingerprint } : {}),
      offline,
    },
    metrics: COMPARE_METRICS,
    compare: compareRows(comparisons),
    ...(comparisons[0]?.poolInfo ? { comparePool: comparisons[0].poolInfo.description } : {}),
    histograms: await histograms(workspace, selections),
    grids: grids.grids,
    provenance: selections.map((s) => ({
      name: s.name,
      method: s.method,
      params: s.params,
      seed: s.seed,
      budget: s.budget,
      pool: s.pool,
      provenance: s.provenance,
      timings: { select: s.provenance.seconds },
    })),
  };
  const result = await writeReport(dir, data);
  return { ...result, dir, missingImages: grids.missing };
}

/**
 * The table and curves compare methods on one pool: comparisons whose methods picked from different
 * samples (another held-out split, seed, label field, encoder or catalog) cannot share a report.
 */
export function assertOnePool(comparisons: Array<Comparison & { source?: string }>): void {
  if (comparisons.length < 2) return;
  const where = (c: Comparison & { source?: string }) => c.source ?? `${c.run ?? 'compare'} at ${c.budget}`;
  const pools = new Map<string, Array<Comparison & { source?: string }>>();
  for (const c of comparisons) {
    const key = c.poolInfo?.fingerprint ?? `unrecorded: ${where(c)}`;
    pools.set(key, [...(pools.get(key) ?? []), c]);
  }
  if (pools.size === 1) return;
  const groups = [...pools.entries()].map(([key, list]) => {
    const first = list[0]!;
    const pool = first.poolInfo
      ? `pool ${key} (${first.poolInfo.description})`
      : 'a pool that was not recorded (saved by an older compare)';
    return `${list.map(where).join(', ')}: ${pool}`;
  });
  throw new SelectionInputError(
    `these comparisons were run on different pools and cannot share one report: ${groups.join('; ')}. ` +
      'Write one report per compare run (curate report --compare <run>).',
  );
}

/** Table rows and curve points: every method at every budget, and the whole pool once as reference. */
export function compareRows(comparisons: Comparison[]): CompareRow[] {
  const rows: CompareRow[] = [];
  for (const c of comparisons)
    for (const r of c.rows) {
      if (r.error) continue;
      rows.push({
        method: r.method,
        selection: r.selection,
        // The resolved budget, not the count kept: a method that keeps fewer stays in its budget's group.
        budget: { count: r.budget, fraction: c.pool ? r.budget / c.pool : 0 },
        seconds: r.seconds,
        metrics: metricsOf(r),
        spread: spreadOf(r),
      });
    }
  const first = comparisons[0];
  if (first)
    rows.push({
      method: 'whole pool',
      budget: { count: first.pool, fraction: 1 },
      seconds: 0,
      metrics: metricsOf(first.reference),
      spread: spreadOf(first.reference),
    });
  return rows;
}

function metricsOf(r: Comparison['reference']): Record<string, number | null> {
  const row = r as CompareRowOfComparison;
  return Object.fromEntries(Object.keys(COMPARE_METRICS).map((key) => [key, meanOf(columnValue(key, row))]));
}

/** Standard deviation and seed count of each seeded metric (the ± and the error bars). */
function spreadOf(r: Comparison['reference']): Record<string, { std: number; seeds: number }> {
  const row = r as CompareRowOfComparison;
  const out: Record<string, { std: number; seeds: number }> = {};
  for (const key of Object.keys(COMPARE_METRICS)) {
    const v = columnValue(key, row);
    if (v !== null && typeof v === 'object' && v.seeds.length > 1)
      out[key] = { std: v.std, seeds: v.seeds.length };
  }
  return out;
}

function columnValue(key: string, row: CompareRowOfComparison) {
  return COMPARE_COLUMNS.find((c) => c.key === key)!.value(row);
}

async function histograms(workspace: string, selections: StoredSelection[]): Promise<ScoreHistogram[]> {
  const out: ScoreHistogram[] = [];
  for (const s of selections) {
    const scores = await loadScores(workspace, s);
    if (!scores) continue;
    const poolIds = await loadPoolIds(workspace, s);
    if (scores.length !== poolIds.length) continue;
    const position = poolPositions(poolIds, s.sampleIds);
    const selected = s.sampleIds.map((id) => position.get(id)).filter((i): i is number => i !== undefined);
    out.push({ method: s.method, label: `${s.method} @ ${s.budget.requested}`, scores, selected });
  }
  return out;
}

/**
 * `size` pool ids not in `chosen`, drawn by a seeded partial Fisher–Yates shuffle of the left-out ids
 * (in pool order) without building that list: the shuffle runs over ranks (`partialShuffle`) and the
 * r-th left-out id is found from the chosen rows, sorted.
 */
export function seededLeftOut(
  poolIds: ArrayLike<number>,
  chosen: readonly number[],
  size: number,
  seed: number,
): number[] {
  const chosenRows = [...poolPositions(poolIds, chosen).values()].sort((a, b) => a - b);
  const leftCount = poolIds.length - chosenRows.length;
  // The r-th left-out row is r + t, t the number of chosen rows before it: the first t whose chosen
  // row c[t] satisfies c[t] − t > r (c[t] − t never decreases).
  const leftRow = (r: number) => {
    let lo = 0;
    let hi = chosenRows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (chosenRows[mid]! - mid > r) hi = mid;
      else lo = mid + 1;
    }
    return r + lo;
  };
  return partialShuffle(leftCount, size, seededRandom(seed)).map((r) => poolIds[leftRow(r)]!);
}

/**
 * Per selection: its first picks (pick order is the method's priority) and a seeded random draw of
 * pool samples it left out, so the grid shows what the method drops, not only what it likes.
 */
async function sampleGrids(
  catalog: Catalog,
  workspace: string,
  selections: StoredSelection[],
  size: number,
  signal?: AbortSignal,
): Promise<{ grids: SampleGrid[]; missing: string[] }> {
  const plans = await Promise.all(
    selections.map(async (s) => {
      const scores = await loadScores(workspace, s);
      const poolIds = await loadPoolIds(workspace, s);
      const selected = s.sampleIds.slice(0, size).map((id, rank) => ({ id, weight: s.weights?.[rank] }));
      const rejected = seededLeftOut(poolIds, s.sampleIds, size, s.seed).map((id) => ({
        id,
        weight: undefined,
      }));
      const shown = [...selected, ...rejected].map((x) => x.id);
      return { s, scores, position: poolPositions(poolIds, shown), selected, rejected };
    }),
  );
  const ids = plans.flatMap((p) => [...p.selected, ...p.rejected].map((x) => x.id));
  const { images, missing } = await readSampleImages(catalog, ids, signal);
  const grids = plans.map((p): SampleGrid => {
    const sample = (x: { id: number; weight: number | undefined }): GridSample | undefined => {
      const found = images.get(x.id);
      if (!found) return undefined;
      const at = p.position.get(x.id);
      const score = p.scores && at !== undefined ? p.scores[at] : undefined;
      return {
        key: found.key,
        caption: found.caption,
        image: found.bytes,
        ...(score !== undefined && Number.isFinite(score) ? { score } : {}),
        ...(x.weight !== undefined ? { weight: x.weight } : {}),
      };
    };
    return {
      method: p.s.method,
      label: `${p.s.method} @ ${p.s.budget.requested}`,
      selected: p.selected.map(sample).filter((g): g is GridSample => g !== undefined),
      rejected: p.rejected.map(sample).filter((g): g is GridSample => g !== undefined),
    };
  });
  return { grids, missing: missing.map((m) => `${m.key}: ${m.reason}`) };
}
