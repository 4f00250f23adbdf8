/**
 * The report's charts: Vega specs rendered headlessly to SVG (no browser, no canvas), inlined in the
 * page, and rasterised by sharp into `plots/*.png` from the very same SVG.
 */
import { parse, View, type Spec } from 'vega';
import sharp from 'sharp';
import { formatCount, formatFraction, slug } from './format.js';
import type { CompareRow, MetricInfo, ScoreHistogram } from './types.js';

/** Method colours (Tableau 10 without its grey, then a few more), assigned in first-seen order. */
export const PALETTE = [
  '#4c78a8',
  '#f58518',
  '#e45756',
  '#72b7b2',
  '#54a24b',
  '#eeca3b',
  '#b279a2',
  '#ff9da6',
  '#9d755d',
  '#17becf',
  '#7b4173',
  '#637939',
];
/** Colour of the rejected items in the score histograms. */
export const REJECTED_COLOR = '#9aa0a6';
/** PNGs are rasterised at this many dots per inch (SVG user units are 1/72 inch to librsvg: 2×). */
export const PNG_DENSITY = 144;

export function methodColors(methods: Iterable<string>): Map<string, string> {
  const colors = new Map<string, string>();
  for (const m of methods) if (!colors.has(m)) colors.set(m, PALETTE[colors.size % PALETTE.length]!);
  return colors;
}

export interface Plot {
  /** File-name stem of the PNG, unique within the report. */
  id: string;
  kind: 'curve' | 'histogram';
  title: string;
  /** One line under the chart (plain text). */
  caption: string;
  /** Standalone SVG document, as Vega wrote it. */
  svg: string;
}

const LOG_ERROR = 1; // vega.Error: log only errors

const CONFIG = {
  font: 'sans-serif',
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 'normal',
    domainColor: '#888',
    tickColor: '#888',
    gridColor: '#e3e3e3',
  },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelLimit: 200 },
  title: { fontSize: 14, fontWeight: 'bold', anchor: 'start', offset: 8 },
} as const;

export async function renderSvg(spec: Spec): Promise<string> {
  const view = new View(parse(spec), { renderer: 'none', logLevel: LOG_ERROR });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG bytes of an SVG document, on white. */
export async function rasterise(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: PNG_DENSITY })
    .flatten({ background: '#ffffff' })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

/** The metric keys of the rows, `metrics` keys first (in their order), then the rest as first seen. */
export function metricKeys(rows: CompareRow[], metrics: Record<string, MetricInfo> = {}): string[] {
  const keys = new Set(Object.keys(metrics));
  for (const row of rows) for (const k of Object.keys(row.metrics)) keys.add(k);
  return [...keys];
}

interface CurvePoint {
  method: string;
  x: number;
  y: number | null;
  /** ±1 standard deviation over seeds, where the metric was measured over several. */
  lo?: number;
  hi?: number;
}

/**
 * One line chart per metric (and one for selection time): value against budget, a line per method.
 * Metrics with no value in any row get no chart.
 */
export async function curvePlots(
  rows: CompareRow[],
  metrics: Record<string, MetricInfo>,
  colors: Map<string, string>,
): Promise<Plot[]> {
  const series: Array<{
    key: string;
    info: MetricInfo;
    value: (r: CompareRow) => number | null;
    std?: (r: CompareRow) => number | undefined;
  }> = [
    ...metricKeys(rows, metrics).map((key) => ({
      key,
      info: metrics[key] ?? {},
      value: (r: CompareRow) => r.metrics[key] ?? null,
      std: (r: CompareRow) => r.spread?.[key]?.std,
    })),
    { key: 'seconds', info: { label: 'selection time (s)' }, value: (r: CompareRow) => r.seconds },
  ];
  const plots: Plot[] = [];
  for (const { key, info, value, std } of series) {
    let points: CurvePoint[] = rows
      .filter((r) => Number.isFinite(r.budget.fraction))
      .map((r) => {
        const y = value(r);
        const sd = std?.(r);
        const ok = y !== null && Number.isFinite(y);
        return {
          method: r.method,
          x: r.budget.fraction,
          y: ok ? y : null,
          ...(ok && sd !== undefined ? { lo: y - sd, hi: y + sd } : {}),
        };
      });
    if (!points.some((p) => p.y !== null)) continue;
    // Methods with at least one value: a method the metric does not apply to gets no legend entry.
    const methods = [...new Set(points.filter((p) => p.y !== null).map((p) => p.method))];
    points = points.filter((p) => methods.includes(p.method));
    points.sort((a, b) => methods.indexOf(a.method) - methods.indexOf(b.method) || a.x - b.x);
    const label = info.label ?? key;
    plots.push({
      id: `curve-${slug(key)}`,
      kind: 'curve',
      title: label,
      caption: info.description ?? `${label} against budget, one line per method`,
      svg: await renderSvg(curveSpec(points, methods, colors, label, info)),
    });
  }
  return plots;
}

function curveSpec(
  points: CurvePoint[],
  methods: string[],
  colors: Map<string, string>,
  label: string,
  info: MetricInfo,
): Spec {
  const xs = [...new Set(points.map((p) => p.x))].sort((a, b) => a - b);
  const lo = xs[0]!;
  const hi = xs[xs.length - 1]!;
  const log = lo > 0 && hi / lo >= 10;
  return {
    width: 440,
    height: 220,
    padding: 8,
    config: CONFIG,
    title: { text: label },
    data: [
      { name: 'lines', values: points },
      { name: 'points', source: 'lines', transform: [{ type: 'filter', expr: 'isValid(datum.y)' }] },
      { name: 'bars', source: 'lines', transform: [{ type: 'filter', expr: 'isValid(datum.lo)' }] },
    ],
    scales: [
      {
        name: 'x',
        type: log ? 'log' : 'linear',
        domain: lo === hi ? [lo * 0.5, hi * 1.5 || 1] : [lo, hi],
        range: 'width',
        padding: 12,
        nice: false,
        zero: false,
      },
      {
        name: 'y',
        type: 'linear',
        domain: points.some((p) => p.lo !== undefined)
          ? {
              fields: [
                { data: 'points', field: 'y' },
                { data: 'bars', field: 'lo' },
                { data: 'bars', field: 'hi' },
              ],
            }
          : { data: 'points', field: 'y' },
        range: 'height',
        nice: true,
        zero: false,
        padding: 8,
      },
      {
        name: 'color',
        type: 'ordinal',
        domain: methods,
        range: methods.map((m) => colors.get(m) ?? PALETTE[0]!),
      },
    ],
    axes: [
      {
        orient: 'bottom',
        scale: 'x',
        title: 'budget (fraction of pool)',
        format: '.3~%',
        ...(xs.length <= 12 ? { values: xs } : {}),
      },
      {
        orient: 'left',
        scale: 'y',
        title: label,
        grid: true,
        tickCount: 5,
        ...(info.format === 'percent' ? { format: '.1~%' } : {}),
      },
    ],
    legends: [{ stroke: 'color', fill: 'color', title: 'method', symbolType: 'circle', orient: 'right' }],
    marks: [
      {
        type: 'group',
        from: { facet: { name: 'series', data: 'lines', groupby: 'method' } },
        marks: [
          {
            type: 'line',
            from: { data: 'series' },
            encode: {
              enter: {
                x: { scale: 'x', field: 'x' },
                y: { scale: 'y', field: 'y' },
                stroke: { scale: 'color', field: 'method' },
                strokeWidth: { value: 2.5 },
                defined: { signal: 'isValid(datum.y)' },
              },
            },
          },
        ],
      },
      {
        // Error bars: ±1 standard deviation over evaluation seeds.
        type: 'rule',
        from: { data: 'bars' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'x' },
            y: { scale: 'y', field: 'lo' },
            y2: { scale: 'y', field: 'hi' },
            stroke: { scale: 'color', field: 'method' },
            strokeWidth: { value: 1.5 },
            opacity: { value: 0.7 },
          },
        },
      },
      {
        type: 'symbol',
        from: { data: 'points' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'x' },
            y: { scale: 'y', field: 'y' },
            fill: { scale: 'color', field: 'method' },
            stroke: { value: '#ffffff' },
            strokeWidth: { value: 1 },
            size: { value: 50 },
          },
        },
      },
    ],
  };
}

export interface HistogramStats {
  pool: number;
  selected: number;
  /** Scores that were NaN or infinite (left out of the histogram). */
  nonFinite: number;
  meanSelected: number | null;
  meanRejected: number | null;
  bins: Array<{ x0: number; x1: number; selected: number; rejected: number }>;
}

/** Bin a method's pool scores into `binCount` equal bins, selected and rejected counted apart. */
export function binScores(h: ScoreHistogram, binCount = 40): HistogramStats {
  const n = h.scores.length;
  const mask = new Uint8Array(n);
  for (let j = 0; j < h.selected.length; j++) {
    const i = h.selected[j]!;
    if (!Number.isInteger(i) || i < 0 || i >= n)
      throw new Error(`histogram '${h.label ?? h.method}': selected index ${i} is outside the pool (${n})`);
    mask[i] = 1;
  }
  let lo = Infinity;
  let hi = -Infinity;
  let nonFinite = 0;
  for (let i = 0; i < n; i++) {
    const s = h.scores[i]!;
    if (!Number.isFinite(s)) nonFinite++;
    else {
      if (s < lo) lo = s;
      if (s > hi) hi = s;
    }
  }
  if (lo > hi) [lo, hi] = [0, 1];
  else if (lo === hi) [lo, hi] = [lo - 0.5, hi + 0.5];
  const width = (hi - lo) / binCount;
  const bins = Array.from({ length: binCount }, (_, b) => ({
    x0: lo + b * width,
    x1: b === binCount - 1 ? hi : lo + (b + 1) * width,
    selected: 0,
    rejected: 0,
  }));
  let sumSel = 0;
  let nSel = 0;
  let sumRej = 0;
  let nRej = 0;
  for (let i = 0; i < n; i++) {
    const s = h.scores[i]!;
    if (!Number.isFinite(s)) continue;
    const bin = bins[Math.min(binCount - 1, Math.floor((s - lo) / width))]!;
    if (mask[i]) {
      bin.selected++;
      sumSel += s;
      nSel++;
    } else {
      bin.rejected++;
      sumRej += s;
      nRej++;
    }
  }
  let selected = 0;
  for (let i = 0; i < n; i++) selected += mask[i]!;
  return {
    pool: n,
    selected,
    nonFinite,
    meanSelected: nSel ? sumSel / nSel : null,
    meanRejected: nRej ? sumRej / nRej : null,
    bins,
  };
}

export async function histogramPlot(h: ScoreHistogram, color: string): Promise<Plot> {
  const stats = binScores(h);
  const title = h.label ?? h.method;
  const selLabel = `selected (${formatCount(stats.selected)})`;
  const rejLabel = `rejected (${formatCount(stats.pool - stats.selected)})`;
  const values = [
    ...stats.bins.map((b) => ({ x0: b.x0, x1: b.x1, count: b.rejected, group: rejLabel })),
    ...stats.bins.map((b) => ({ x0: b.x0, x1: b.x1, count: b.selected, group: selLabel })),
  ];
  const spec: Spec = {
    width: 440,
    height: 180,
    padding: 8,
    config: CONFIG,
    title: { text: `${title}: scores`, subtitle: 'selected vs rejected' },
    data: [{ name: 'bins', values }],
    scales: [
      {
        name: 'x',
        type: 'linear',
        domain: [stats.bins[0]!.x0, stats.bins.at(-1)!.x1],
        range: 'width',
        zero: false,
        nice: false,
      },
      { name: 'y', type: 'linear', domain: { data: 'bins', field: 'count' }, range: 'height', nice: true },
      { name: 'color', type: 'ordinal', domain: [rejLabel, selLabel], range: [REJECTED_COLOR, color] },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: h.scoreName ?? 'score', tickCount: 8 },
      { orient: 'left', scale: 'y', title: 'items', grid: true, tickCount: 5, format: '~s' },
    ],
    legends: [{ fill: 'color', orient: 'right', symbolType: 'square' }],
    marks: [
      {
        type: 'rect',
        from: { data: 'bins' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'x0', offset: 0.5 },
            x2: { scale: 'x', field: 'x1', offset: -0.5 },
            y: { scale: 'y', field: 'count' },
            y2: { scale: 'y', value: 0 },
            fill: { scale: 'color', field: 'group' },
            fillOpacity: { signal: `datum.group === ${JSON.stringify(selLabel)} ? 0.85 : 0.6` },
          },
        },
      },
    ],
  };
  const mean = (v: number | null) => (v === null ? '—' : v.toPrecision(3));
  const caption =
    `pool ${formatCount(stats.pool)} · selected ${formatCount(stats.selected)} ` +
    `(${formatFraction(stats.pool ? stats.selected / stats.pool : NaN)}) · mean score selected ` +
    `${mean(stats.meanSelected)} vs rejected ${mean(stats.meanRejected)}` +
    (stats.nonFinite ? ` · ${formatCount(stats.nonFinite)} non-finite scores left out` : '');
  return { id: `hist-${slug(title)}`, kind: 'histogram', title, caption, svg: await renderSvg(spec) };
}

/**
 * The SVG as an element of the HTML page: no XML namespace declarations (HTML needs none; this also
 * keeps the page free of any URL), and element ids prefixed so several charts can share one page.
 */
export function inlineSvg(svg: string, prefix: string): string {
  let out = svg
    .replace(/^<\?xml[^>]*>\s*/, '')
    .replace(/^<svg\b[^>]*>/, (tag) =>
      tag.replace(/\s+xmlns(:\w+)?="[^"]*"/g, '').replace(/\s+version="[^"]*"/, ''),
    );
  if (/\sid="/.test(out)) {
    out = out
      .replace(/\sid="([^"]+)"/g, ` id="${prefix}-$1"`)
      .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
      .replace(/(\s(?:xlink:)?href)="#([^"]+)"/g, `$1="#${prefix}-$2"`);
  }
  return out;
}
