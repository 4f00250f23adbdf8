/**
 * The messages between the extension host and the curation panel's webview. Both sides import these
 * types (the webview with `import type`, so nothing from Node reaches the browser bundle) and switch on
 * one discriminant. Requests carry an id that the host's reply settles.
 */

import type { ProxyClipMetrics, ProxySslMetrics, SeededMetric } from '../src/eval/types.js';

export type Filter = 'all' | 'selected' | 'unselected' | 'accepted' | 'rejected' | 'errors';
/** `relevance`: the order of the search shown as a grid filter (`GridQuery.search`). */
export type Sort = 'catalog' | 'score-desc' | 'score-asc' | 'pick-order' | 'relevance';
export type Decision = 'accept' | 'reject';

/** Operators of a field filter (src/curate/fieldFilters.ts has their exact meaning). */
export type FilterOp = '=' | '!=' | '<' | '>' | 'contains';

/** `field op value` on a sample column, `metadata.<key>` or `score`; a grid's filters are ANDed. */
export interface FieldFilter {
  field: string;
  op: FilterOp;
  value: string;
}

export interface FilterField {
  name: string;
  source: 'column' | 'metadata' | 'selection';
  type: 'number' | 'text' | 'json';
}

export interface SearchFilter {
  text: string;
  /** Hits kept (best first). */
  k: number;
}

export interface GridQuery {
  filter: Filter;
  captionKind?: string;
  /** Only these catalog ids (a brush on the map). */
  ids?: number[];
  where?: FieldFilter[];
  /** Only samples with every one of these tags. */
  tags?: string[];
  /** Only the hits of a free-text search, ranked (with sort `relevance`). */
  search?: SearchFilter;
  sort: Sort;
  offset: number;
  limit: number;
}

/** A grid query without paging: what a saved view and a bulk tag act on. */
export type GridScope = Omit<GridQuery, 'offset' | 'limit'>;

export interface SavedView {
  name: string;
  selection: string | null;
  query: GridScope;
  savedAt: string;
}

export interface TagCount {
  tag: string;
  count: number;
}

/** What the selection's score is (src/curate/scoreLegend.ts). */
export interface ScoreLegend {
  method: string;
  name: string;
  meaning: string;
}

export interface GridItem {
  id: number;
  key: string;
  caption: string;
  captionKind: string | null;
  score: number | null;
  rank: number | null;
  review: Decision | null;
  /** Class label from the metadata (`label`, else `cls`). */
  label: string | null;
  tags: string[];
  /** A `data:image/webp` URL, or null with the reason in `problem`. */
  thumbnail: string | null;
  problem: string | null;
  similarity?: number;
}

export interface GridPage {
  total: number;
  offset: number;
  items: GridItem[];
}

export interface Summary {
  workspace: string;
  samples: number;
  selections: string[];
  selection: string | null;
  method: string | null;
  budget: number | null;
  captionKinds: string[];
  embedded: boolean;
  indexed: boolean;
  reviews: { accept: number; reject: number };
  /** What the score under the cards is, when the selection shown has scores. */
  score: ScoreLegend | null;
}

export interface MapData {
  ids: number[];
  x: number[];
  y: number[];
  cluster: number[];
  /** 0 not picked, 1 picked, 2 accepted by hand, 3 rejected by hand. */
  state: number[];
  captionKind: Array<string | null>;
  total: number;
}

export interface Histogram {
  lo: number;
  hi: number;
  selected: number[];
  unselected: number[];
}

/**
 * One method's row of a saved comparison (src/curate/pipeline.ts `CompareRow`, restated here because
 * that module is Node-only). Comparisons saved before proxy training and seeded probes lack `probe`,
 * `proxyClip` and `proxySsl`; the page shows what is there.
 */
export interface CompareTableRow {
  method: string;
  selection: string;
  budget: number;
  kept: number;
  seconds: number;
  probeAccuracy: number | null;
  meanClipScore: number | null;
  classKL: number | null;
  badCaptions: number | null;
  duplicates: number | null;
  probe?: SeededMetric | null;
  proxyClip?: ProxyClipMetrics | null;
  proxySsl?: ProxySslMetrics | null;
  error?: string;
}

/** One budget of a compare run: a saved comparison file. */
export interface CompareTable {
  /** The budget as requested ("10%", "500"). */
  budget: string;
  /** The file it was read from (shown, and named in errors). */
  file: string;
  pool: number;
  heldOut: number;
  /** "the training split: 192 of 240 samples (48 held out for the probe)", when saved. */
  poolDescription: string | null;
  rows: CompareTableRow[];
  /** The whole pool's own values (probe on every sample, pool rates): a reference, never "best". */
  reference: Omit<CompareTableRow, 'method' | 'selection' | 'budget' | 'kept' | 'seconds'>;
}

export interface CompareRunTables {
  run: string;
  /** One table per budget, smallest budget first. */
  tables: CompareTable[];
}

export interface CompareRunInfo {
  run: string;
  /** Its comparison files' budgets (file names: "10pct", "500"). */
  budgets: string[];
}

/** One sample of a selection diff (src/curate/diff.ts `DiffItem`, restated: that module is Node-only). */
export interface DiffSample {
  id: number;
  key: string;
  caption: string;
  /** What selection A's method recorded for the sample (kept or dropped), null when nothing. */
  reasonA: string | null;
  reasonB: string | null;
  /** Ground-truth metadata fields (`caption_kind`, `dup_of`, `label`) the dataset has. */
  groundTruth: Record<string, string | null>;
}

export interface DiffSelectionSide {
  name: string;
  method: string;
  kept: number;
}

/** Two selections side by side; the sample lists hold the first samples of each side (dispatch.ts). */
export interface PanelDiff {
  a: DiffSelectionSide;
  b: DiffSelectionSide;
  both: number;
  onlyA: { total: number; samples: DiffSample[] };
  onlyB: { total: number; samples: DiffSample[] };
  truth: Array<{ field: string; onlyA: Record<string, number>; onlyB: Record<string, number> }>;
}

/** What the page can ask; `Replies[kind]` is what comes back. */
export type Request =
  | { kind: 'summary' }
  | { kind: 'page'; query: GridQuery }
  | { kind: 'neighbours'; id: number; k: number }
  | { kind: 'search'; text: string; k: number }
  | { kind: 'map' }
  | { kind: 'histogram'; bins: number }
  | { kind: 'review'; ids: number[]; decision: Decision | null }
  | { kind: 'useSelection'; name: string | null }
  | { kind: 'fields' }
  | { kind: 'tags' }
  /** Tag (or untag) the given samples, or every sample of a grid scope (bulk tagging a filter result). */
  | { kind: 'tag'; target: { ids: number[] } | { scope: GridScope }; tags: string[]; remove: boolean }
  | { kind: 'views' }
  | { kind: 'saveView'; name: string; query: GridScope }
  | { kind: 'deleteView'; name: string }
  /** Show a saved view's selection; the reply is the view, to restore its query in the page. */
  | { kind: 'openView'; name: string }
  /** The saved compare runs (`<workspace>/compare/<run>/`). */
  | { kind: 'compareRuns' }
  /** A compare run's tables, one per budget. */
  | { kind: 'compareRun'; run: string }
  /** What one selection kept that the other did not, with each method's reasons. */
  | { kind: 'diff'; a: string; b: string };

export interface Replies {
  summary: Summary;
  page: GridPage;
  neighbours: GridItem[];
  search: GridItem[];
  map: MapData;
  histogram: Histogram | null;
  review: number;
  useSelection: Summary;
  fields: FilterField[];
  tags: TagCount[];
  tag: number;
  views: SavedView[];
  saveView: SavedView[];
  deleteView: SavedView[];
  openView: { view: SavedView; summary: Summary };
  compareRuns: CompareRunInfo[];
  compareRun: CompareRunTables;
  diff: PanelDiff;
}

/** Palette commands the page's buttons run on the host (dialogs, progress and files stay there). */
export type HostCommand = 'select' | 'compare' | 'export' | 'report' | 'diff';

export type ToHost =
  | { type: 'ready' }
  | { type: 'request'; requestId: number; request: Request }
  | { type: 'command'; command: HostCommand };

export type ToPage =
  | { type: 'init'; summary: Summary }
  | { type: 'reply'; requestId: number; ok: true; body: unknown }
  | { type: 'reply'; requestId: number; ok: false; error: string }
  /** The workspace changed under the page (a new selection, reviews, an export): reload. */
  | { type: 'changed'; summary: Summary }
  | { type: 'status'; text: string }
  /** Run a free-text search in the page (the palette's search command). */
  | { type: 'search'; text: string }
  /** Show a compare run's table (after `compare` ran, or the palette's "Show compare run"). */
  | { type: 'showCompare'; run: string }
  /** Show two selections' difference (the palette's diff command). */
  | { type: 'showDiff'; a: string; b: string };

/** The UI state the page keeps with `setState` across reloads; the data stays on the host. */
export interface UiState {
  filter: Filter;
  sort: Sort;
  captionKind?: string;
  where?: FieldFilter[];
  tags?: string[];
  search?: SearchFilter;
  scrollTop: number;
  /** The compare run shown in place of the grid, if one is. */
  compareRun?: string;
}
