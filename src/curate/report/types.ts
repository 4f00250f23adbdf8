/**
 * What the run report shows: a plain object that the pipeline fills and `writeReport` renders. Nothing
 * here is read from disk by the report itself, so the same data can come from a fresh run or from
 * saved selections (`StoredSelection` fits `ReportProvenance` as it is).
 */
import type { Provenance } from '../selections.js';

export interface ReportData {
  /** Page title; default "clipcurate report". */
  title?: string;
  /** When the run (or the report) was made: a Date or an ISO string. */
  createdAt: Date | string;
  workspace: string;
  tool: { name: string; version: string };
  dataset: ReportDataset;
  encoder: ReportEncoder;
  /**
   * How to show each metric column of `compare` (label, format, which way is better). Its key order
   * is the column order; metrics only found in the rows follow, in first-seen order.
   */
  metrics?: Record<string, MetricInfo>;
  /** One row per method × budget. Drives the comparison table and the metric-vs-budget curves. */
  compare: CompareRow[];
  /** What the compared methods picked from ("the training split: 1,600 of 2,000 samples …"). */
  comparePool?: string;
  /** Per method (or selection): score of every pool item, with the picks marked. */
  histograms: ScoreHistogram[];
  /** Per method (or selection): a few selected and rejected samples, shown as thumbnails. */
  grids: SampleGrid[];
  /** Per saved selection: how it was made. */
  provenance: ReportProvenance[];
}

export interface ReportDataset {
  /** Catalogued samples (the pool). */
  samples: number;
  /** Samples or files that could not be read (ingest issues). */
  issues: number;
  datasets: Array<{ name: string; spec?: string; samples?: number }>;
  /** `Provenance['dataset'].fingerprint`, when known. */
  fingerprint?: string;
}

export interface ReportEncoder {
  name: string;
  fingerprint?: string;
  /** The offline fallback encoder (not CLIP) was used: the report then carries a warning banner. */
  offline: boolean;
  /** Extra text for the banner (e.g. why the fallback was used). */
  note?: string;
}

export interface MetricInfo {
  /** Column header and chart title; default the key. */
  label?: string;
  /** Shown as the header's tooltip and under the chart. */
  description?: string;
  /** 'percent' shows 0.123 as "12.3%"; 'number' (default) as "0.123". */
  format?: 'number' | 'percent';
  /** Decimals: default 3 for 'number', 1 for 'percent'. */
  digits?: number;
  /** Which way is better: the best value at each budget is then highlighted in the table. */
  better?: 'higher' | 'lower';
}

export interface CompareRow {
  method: string;
  /** The saved selection this row comes from, if any. */
  selection?: string;
  /** Picks, and picks as a fraction of the pool (0–1). */
  budget: { count: number; fraction: number };
  /** Wall-clock seconds of the selection. */
  seconds: number;
  /** Metric key → value; null (or absent) where the metric does not apply or was not measured. */
  metrics: Record<string, number | null>;
  /** Spread of the metrics measured over several seeds: the table's ± and the curves' error bars. */
  spread?: Record<string, { std: number; seeds: number }>;
}

export interface ScoreHistogram {
  method: string;
  /** Heading, when one method has several histograms (e.g. "clipscore @ 10%"); default the method. */
  label?: string;
  /** The method's score of every pool item. Non-finite scores are left out (and counted). */
  scores: Float32Array;
  /** Pool indices (into `scores`) of the selected items, e.g. `Selection.indices`. */
  selected: ArrayLike<number>;
  /** Axis title for the score; default "score". */
  scoreName?: string;
}

export interface SampleGrid {
  method: string;
  /** Heading; default the method. */
  label?: string;
  selected: GridSample[];
  rejected: GridSample[];
}

export interface GridSample {
  key: string;
  caption: string;
  score?: number;
  weight?: number;
  /** Original image bytes, any format sharp reads. */
  image: Buffer | Uint8Array;
}

export interface ReportProvenance {
  /** Saved selection name. */
  name: string;
  method: string;
  params: Record<string, unknown>;
  seed: number;
  budget?: { requested: string; count: number };
  pool?: number;
  provenance: Provenance;
  /** Seconds per stage (e.g. embed, index, select, evaluate), where measured. */
  timings?: Record<string, number>;
}

export interface ReportResult {
  /** Path of `dir/index.html`. */
  html: string;
  /** Paths of `dir/plots/*.png`, one per plot, in page order. */
  pngs: string[];
}
