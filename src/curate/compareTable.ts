/**
 * The columns of a comparison, once, for every place that shows one: the CLI's Markdown table, the HTML
 * report and the panel's compare view. A column exists only when some row has a value (ground-truth
 * columns are omitted on data without the metadata, not shown blank); seeded metrics carry their spread,
 * and each column knows which direction is better, so "best" and "within noise of the best" are decided
 * here and nowhere else.
 */
import { withinNoise, type SeededMetric } from '../eval/types.js';
import type { Comparison, CompareRow } from './pipeline.js';

export type CellValue = SeededMetric | number | null;

export interface CompareColumn {
  key: string;
  /** Short header ("zero-shot", "i2t R@5"). */
  label: string;
  /** Header group: "proxy CLIP", "proxy SSL", "label probe", "subset", "ground truth (dataset metadata)". */
  group: string;
  /** What the column means, for legends and tooltips. */
  help: string;
  format: 'percent' | 'number' | 'count' | 'seconds';
  /** Whether higher is better (null: neither, e.g. kept, seconds). */
  higherIsBetter: boolean | null;
  value(row: Pick<CompareRow, keyof CompareRow>): CellValue;
}

const GT = 'ground truth (dataset metadata)';

const seeded =
  (pick: (r: CompareRow) => SeededMetric | null | undefined) =>
  (r: CompareRow): CellValue =>
    pick(r) ?? null;

/** Every column a comparison can have, in display order. */
export const COMPARE_COLUMNS: readonly CompareColumn[] = [
  {
    key: 'kept',
    label: 'kept',
    group: 'subset',
    help: 'samples in the subset',
    format: 'count',
    higherIsBetter: null,
    value: (r) => r.kept,
  },
  {
    key: 'clip.zeroShotTop1',
    label: 'zero-shot',
    group: 'proxy CLIP',
    help: 'held-out zero-shot top-1 from class-name prompts, proxy CLIP trained on the subset',
    format: 'percent',
    higherIsBetter: true,
    value: seeded((r) => r.proxyClip?.zeroShotTop1),
  },
  {
    key: 'clip.i2tR1',
    label: 'i2t R@1',
    group: 'proxy CLIP',
    help: 'held-out image→text recall@1',
    format: 'percent',
    higherIsBetter: true,
    value: seeded((r) => r.proxyClip?.i2tR1),
  },
  {
    key: 'clip.i2tR5',
    label: 'i2t R@5',
    group: 'proxy CLIP',
    help: 'held-out image→text recall@5',
    format: 'percent',
    higherIsBetter: true,
    value: seeded((r) => r.proxyClip?.i2tR5),
  },
  {
    key: 'clip.t2iR1',
    label: 't2i R@1',
    group: 'proxy CLIP',
    help: 'held-out text→image recall@1',
    format: 'percent',
    higherIsBetter: true,
    value: seeded((r) => r.proxyClip?.t2iR1),
  },
  {
    key: 'clip.t2iR5',
    label: 't2i R@5',
    group: 'proxy CLIP',
    help: 'held-out text→image recall@5',
    format: 'percent',
    higherIsBetter: true,
    value: seeded((r) => r.proxyClip?.t2iR5),
  },
  {
    key: 'ssl.knnTop1',
    label: 'kNN top-1',
    group: 'proxy SSL',
    help: 'held-out kNN accuracy in the space of an NT-Xent head trained on the subset’s augmented views',
    format: 'percent',
    higherIsBetter: true,
    value: seeded((r) => r.proxySsl?.knnTop1),
  },
  {
    key: 'ssl.probeTop1',
    label: 'probe top-1',
    group: 'proxy SSL',
    help: 'held-out linear-probe accuracy on the NT-Xent head’s outputs',
    format: 'percent',
    higherIsBetter: true,
    value: seeded((r) => r.proxySsl?.probeTop1),
  },
  {
    key: 'ssl.uniformity',
    label: 'uniformity',
    group: 'proxy SSL',
    help: 'log E exp(−2‖f(x)−f(y)‖²) on held-out pairs (lower = more uniform)',
    format: 'number',
    higherIsBetter: false,
    value: seeded((r) => r.proxySsl?.uniformity),
  },
  {
    key: 'probeAccuracy',
    label: 'accuracy',
    group: 'label probe',
    help: 'held-out accuracy of a linear probe on the subset’s image embeddings (needs labels; sees no captions)',
    format: 'percent',
    higherIsBetter: true,
    value: (r) => r.probe ?? r.probeAccuracy ?? null,
  },
  {
    key: 'meanClipScore',
    label: 'CLIP score',
    group: 'subset',
    help: 'mean image–caption cosine of the subset',
    format: 'number',
    higherIsBetter: null,
    value: (r) => (Number.isFinite(r.meanClipScore) ? r.meanClipScore : null),
  },
  {
    key: 'classKL',
    label: 'class KL',
    group: 'subset',
    help: 'KL(subset class histogram ‖ pool histogram): 0 = the pool’s class balance',
    format: 'number',
    higherIsBetter: false,
    value: (r) => r.classKL,
  },
  {
    key: 'badCaptions',
    label: 'bad captions',
    group: GT,
    help: 'share of mismatched or generic captions, from the dataset’s own metadata (caption_kind)',
    format: 'percent',
    higherIsBetter: false,
    value: (r) => r.badCaptions,
  },
  {
    key: 'duplicates',
    label: 'duplicates',
    group: GT,
    help: 'share of duplicate images, from the dataset’s own metadata (dup_of)',
    format: 'percent',
    higherIsBetter: false,
    value: (r) => r.duplicates,
  },
  {
    key: 'seconds',
    label: 'seconds',
    group: 'subset',
    help: 'selection time',
    format: 'seconds',
    higherIsBetter: null,
    value: (r) => r.seconds,
  },
];

/** The columns this comparison has values for (over its rows and its reference row). */
export function columnsOf(c: Comparison): CompareColumn[] {
  const rows = c.rows.filter((r) => !r.error);
  return COMPARE_COLUMNS.filter((col) => rows.some((r) => col.value(r) !== null));
}

export const meanOf = (v: CellValue): number | null =>
  v === null ? null : typeof v === 'number' ? (Number.isFinite(v) ? v : null) : v.mean;

export type CellMark = 'best' | 'within-noise' | null;

/**
 * Per row, per column: the best mean ('best'), or a mean within noise of the best ('within-noise', see
 * {@link withinNoise}); only for columns with a direction, and only among rows without errors.
 */
export function marksOf(
  c: Comparison,
  columns: readonly CompareColumn[],
): Map<CompareRow, Map<string, CellMark>> {
  const marks = new Map<CompareRow, Map<string, CellMark>>(c.rows.map((r) => [r, new Map()]));
  for (const col of columns) {
    if (col.higherIsBetter === null) continue;
    const candidates = c.rows.filter((r) => !r.error && meanOf(col.value(r)) !== null);
    if (candidates.length < 2) continue;
    const sign = col.higherIsBetter ? 1 : -1;
    const best = candidates.reduce((a, b) =>
      sign * meanOf(col.value(b))! > sign * meanOf(col.value(a))! ? b : a,
    );
    const bestValue = col.value(best);
    for (const r of candidates) {
      const v = col.value(r);
      if (sign * meanOf(v)! >= sign * meanOf(bestValue)!) marks.get(r)!.set(col.key, 'best');
      else if (
        typeof v === 'object' &&
        v &&
        typeof bestValue === 'object' &&
        bestValue &&
        withinNoise(v, bestValue)
      )
        marks.get(r)!.set(col.key, 'within-noise');
    }
  }
  return marks;
}

/** "57.8 ± 0.9%" for a seeded percent, "0.312" for a plain number, "–" for nothing. */
export function formatCell(col: CompareColumn, v: CellValue): string {
  if (v === null || (typeof v === 'number' && !Number.isFinite(v))) return '–';
  const one = (x: number) =>
    col.format === 'percent'
      ? (100 * x).toFixed(1)
      : col.format === 'count'
        ? String(Math.round(x))
        : col.format === 'seconds'
          ? x.toFixed(1)
          : x.toFixed(3);
  const unit = col.format === 'percent' ? '%' : '';
  if (typeof v === 'number') return `${one(v)}${unit}`;
  return v.seeds.length > 1 ? `${one(v.mean)} ± ${one(v.std)}${unit}` : `${one(v.mean)}${unit}`;
}

/** The legend line for the marks, with the seeds the comparison used. */
export function noiseLegend(c: Comparison): string {
  const seeds = c.evaluation?.seeds;
  return (
    'bold = best; ≈ = within noise of the best (means closer than 2 standard errors' +
    (seeds ? ` over ${seeds} seeds` : '') +
    '); ground-truth columns come from the dataset’s own metadata'
  );
}

/** The proxy CLIP mean that names the demo's "best" subset (zero-shot when known, else mean R@5). */
export function proxyClipScore(r: CompareRow): number | null {
  const m = r.proxyClip;
  if (!m || r.error) return null;
  if (m.zeroShotTop1) return m.zeroShotTop1.mean;
  return (m.i2tR5.mean + m.t2iR5.mean) / 2;
}
