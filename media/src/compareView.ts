/**
 * The compare view: a saved compare run's table, one budget at a time. Rows are the methods, columns
 * the measurements of what each kept (proxy CLIP and proxy SSL trained on the subset, the linear probe,
 * the mean CLIP score, and the ground-truth rates from the dataset's metadata). Seeded metrics read
 * `mean ± std` in percent; the best mean of a column is bold and entries within noise of it are marked
 * ≈ (`withinNoise`: 2 standard errors). A column no row has a value for is left out, so comparisons
 * saved before the proxy evaluators existed show what they have. Clicking a row opens its selection.
 */
import type { CompareRunInfo, CompareTable, CompareTableRow } from '../../extension/protocol';
import { withinNoise, type SeededMetric } from '../../src/eval/types';
import { button, select } from './controls';
import { el } from './dom';
import { request } from './rpc';

type Metrics = Omit<CompareTableRow, 'method' | 'selection' | 'budget' | 'kept' | 'seconds'>;

/** A cell's value: a metric over seeds, a plain number, or nothing (not measured). */
type Value = SeededMetric | number | null | undefined;

interface Column {
  /** The header group the column sits under ('' = none). */
  group: string;
  label: string;
  title: string;
  /** Which way is better (the bold entry), or null for columns that are not a quality. */
  better: 'higher' | 'lower' | null;
  format: 'percent' | 'score' | 'count' | 'seconds';
  /** Shown even when no row has a value. */
  always?: boolean;
  value(row: Metrics & { kept?: number; seconds?: number }): Value;
}

const TRUTH_GROUP = 'Ground truth from dataset metadata';

const COLUMNS: Column[] = [
  {
    group: '',
    label: 'kept',
    title: 'samples the method kept',
    better: null,
    format: 'count',
    always: true,
    value: (r) => r.kept,
  },
  {
    group: '',
    label: 'seconds',
    title: 'selection time',
    better: null,
    format: 'seconds',
    always: true,
    value: (r) => r.seconds,
  },
  {
    group: 'Proxy CLIP (held-out, %)',
    label: 'zero-shot top-1',
    title: 'zero-shot top-1 from class-name prompts of a small CLIP trained on the subset',
    better: 'higher',
    format: 'percent',
    value: (r) => r.proxyClip?.zeroShotTop1,
  },
  {
    group: 'Proxy CLIP (held-out, %)',
    label: 'i2t R@5',
    title: 'image→text recall@5 of a small CLIP trained on the subset',
    better: 'higher',
    format: 'percent',
    value: (r) => r.proxyClip?.i2tR5,
  },
  {
    group: 'Proxy CLIP (held-out, %)',
    label: 't2i R@5',
    title: 'text→image recall@5 of a small CLIP trained on the subset',
    better: 'higher',
    format: 'percent',
    value: (r) => r.proxyClip?.t2iR5,
  },
  {
    group: 'Proxy SSL (held-out, %)',
    label: 'kNN top-1',
    title: 'kNN top-1 in the space of a self-supervised head trained on the subset',
    better: 'higher',
    format: 'percent',
    value: (r) => r.proxySsl?.knnTop1,
  },
  {
    group: 'Linear probe (%)',
    label: 'accuracy',
    title: 'linear-probe accuracy on the held-out split, trained on the subset',
    better: 'higher',
    format: 'percent',
    value: (r) => r.probe ?? r.probeAccuracy,
  },
  {
    group: 'Embeddings',
    label: 'mean CLIP score',
    title: 'mean image–caption cosine of the kept samples',
    better: 'higher',
    format: 'score',
    value: (r) => r.meanClipScore,
  },
  {
    group: TRUTH_GROUP,
    label: 'bad captions %',
    title: 'share of kept samples whose caption is not clean (caption_kind in the dataset metadata)',
    better: 'lower',
    format: 'percent',
    value: (r) => r.badCaptions,
  },
  {
    group: TRUTH_GROUP,
    label: 'duplicates %',
    title: 'share of kept samples marked as duplicates (dup_of in the dataset metadata)',
    better: 'lower',
    format: 'percent',
    value: (r) => r.duplicates,
  },
];

const isSeeded = (v: Value): v is SeededMetric => typeof v === 'object' && v !== null;
const meanOf = (v: Value): number | null =>
  isSeeded(v) ? v.mean : typeof v === 'number' && Number.isFinite(v) ? v : null;

function formatNumber(x: number, format: Column['format']): string {
  switch (format) {
    case 'percent':
      return (x * 100).toFixed(1);
    case 'score':
      return x.toFixed(3);
    case 'count':
      return x.toLocaleString();
    case 'seconds':
      return x.toFixed(1);
  }
}

/** `61.3 ± 1.2` for a metric over two or more seeds; the mean alone for one seed or a plain number. */
export function formatValue(v: Value, format: Column['format']): string {
  const mean = meanOf(v);
  if (mean === null) return '—';
  if (isSeeded(v) && v.seeds.length > 1)
    return `${formatNumber(mean, format)} ± ${formatNumber(v.std, format)}`;
  return formatNumber(mean, format);
}

/** The columns with a value on at least one method row (kept and seconds always). */
function shownColumns(rows: CompareTableRow[]): Column[] {
  const ok = rows.filter((r) => !r.error);
  return COLUMNS.filter((c) => c.always || ok.some((r) => meanOf(c.value(r)) !== null));
}

/** The best value of a column among the methods that ran (null when none has one or no side is better). */
function bestOf(column: Column, rows: CompareTableRow[]): Value {
  if (!column.better) return null;
  let best: Value = null;
  for (const r of rows) {
    if (r.error) continue;
    const v = column.value(r);
    const m = meanOf(v);
    if (m === null) continue;
    const b = meanOf(best);
    if (b === null || (column.better === 'higher' ? m > b : m < b)) best = v;
  }
  return best;
}

/** "over 3 seeds", "over 2–5 seeds": the seed counts of the seeded cells shown. */
function seedCounts(columns: Column[], rows: CompareTableRow[]): number[] {
  const counts = new Set<number>();
  for (const c of columns)
    for (const r of rows) {
      const v = c.value(r);
      if (!r.error && isSeeded(v)) counts.add(v.seeds.length);
    }
  return [...counts].sort((a, b) => a - b);
}

export interface CompareTableOptions {
  /** A method row was picked (click or Enter): open its selection. */
  onOpen(selection: string): void;
}

/** The table of one comparison, with its legend lines below. */
export function renderCompareTable(t: CompareTable, options: CompareTableOptions): HTMLElement {
  const wrap = el('div', 'compare-table-wrap');
  const columns = shownColumns(t.rows);
  const table = el('table', 'compare-table');
  const head = el('thead');
  const groups = el('tr', 'groups');
  const labels = el('tr', 'labels');
  groups.append(el('th'));
  labels.append(el('th', undefined, 'method'));
  for (let i = 0; i < columns.length;) {
    const group = columns[i]!.group;
    let span = 0;
    while (columns[i + span]?.group === group) span++;
    const th = el('th', group === TRUTH_GROUP ? 'group truth' : 'group', group);
    th.colSpan = span;
    groups.append(th);
    i += span;
  }
  for (const c of columns) {
    const th = el('th', c.group === TRUTH_GROUP ? 'truth' : undefined, c.label);
    th.title = c.title + (c.better ? ` (${c.better} is better)` : '');
    labels.append(th);
  }
  head.append(groups, labels);
  table.append(head);

  const bests = columns.map((c) => bestOf(c, t.rows));
  const body = el('tbody');
  for (const row of t.rows) {
    const tr = el('tr', 'method-row');
    tr.dataset.selection = row.selection;
    tr.append(el('th', 'method', row.method));
    if (row.error) {
      tr.classList.add('failed');
      const td = el('td', 'row-error', `failed: ${row.error}`);
      td.colSpan = columns.length;
      tr.append(td);
    } else {
      columns.forEach((c, i) => tr.append(cell(c, c.value(row), bests[i])));
      tr.tabIndex = 0;
      tr.title = `Open ${row.selection} in the grid`;
      tr.addEventListener('click', () => options.onOpen(row.selection));
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') options.onOpen(row.selection);
      });
    }
    body.append(tr);
  }
  const ref = el('tr', 'reference');
  ref.title = 'every sample of the pool: what selecting nothing away gives (never marked best)';
  ref.append(el('th', 'method', 'whole pool'));
  for (const c of columns) {
    const v = c.label === 'kept' ? t.pool : c.label === 'seconds' ? null : c.value(t.reference);
    ref.append(el('td', 'num', formatValue(v, c.format)));
  }
  body.append(ref);
  table.append(body);
  wrap.append(table, ...legend(columns, t.rows));
  return wrap;
}

function cell(c: Column, v: Value, best: Value): HTMLTableCellElement {
  const td = el('td', 'num');
  const text = formatValue(v, c.format);
  const mean = meanOf(v);
  const bestMean = meanOf(best);
  if (mean !== null && bestMean !== null && mean === bestMean) {
    td.classList.add('best');
    td.append(el('strong', undefined, text));
  } else if (isSeeded(v) && isSeeded(best) && withinNoise(v, best)) {
    td.classList.add('near');
    td.append(el('span', 'near-mark', '≈ '), text);
  } else td.textContent = text;
  if (isSeeded(v)) td.title = `per seed: ${v.seeds.map((s) => formatNumber(s, c.format)).join(', ')}`;
  return td;
}

function legend(columns: Column[], rows: CompareTableRow[]): HTMLElement[] {
  const lines: HTMLElement[] = [];
  const bold = el('p', 'compare-legend');
  bold.append(
    el('strong', undefined, 'bold'),
    ' best mean in its column (higher is better; lower for the ground-truth rates). Click a method to open its selection.',
  );
  lines.push(bold);
  const counts = seedCounts(columns, rows);
  if (counts.length) {
    const max = counts[counts.length - 1]!;
    const over = counts.length === 1 ? `${max}` : `${counts[0]}–${max}`;
    lines.push(
      el(
        'p',
        'compare-legend noise-legend',
        max < 2
          ? 'One seed per metric: no spread is known, so nothing is marked within noise.'
          : `≈ within noise of the best (2 standard errors over ${over} seeds); values are mean ± std in percent.`,
      ),
    );
  }
  if (columns.some((c) => c.group === TRUTH_GROUP))
    lines.push(
      el(
        'p',
        'compare-legend',
        `${TRUTH_GROUP}: rates computed from the dataset's own labels (caption_kind, dup_of), not by a model.`,
      ),
    );
  return lines;
}

export interface CompareViewOptions extends CompareTableOptions {
  /** Back to the grid. */
  onClose(): void;
  /** Run the palette's compare command (when there is no run to show). */
  onCompare(): void;
  /** Something to say in the status bar. */
  onStatus(message: string): void;
  /** A run's table is shown (to remember it across reloads). */
  onShown(run: string): void;
}

/** The view: run and budget pickers, the table, and the way back to the grid. */
export class CompareView {
  readonly element = el('div', 'compare-view');
  private run = '';
  private budget = '';
  /** Counts calls of `show`, so only the latest one renders. */
  private turn = 0;

  constructor(private readonly options: CompareViewOptions) {
    this.element.hidden = true;
    this.element.setAttribute('aria-label', 'compare run');
  }

  get shownRun(): string {
    return this.run;
  }

  /** Show a run (default: the last saved one); `budget` picks its table. */
  async show(run?: string, budget?: string): Promise<void> {
    const turn = ++this.turn;
    this.element.hidden = false;
    this.options.onStatus(`reading ${run ? `compare run ${run}` : 'the compare runs'}…`);
    let runs: CompareRunInfo[] = [];
    try {
      runs = await request({ kind: 'compareRuns' });
      const name = run ?? runs[runs.length - 1]?.run;
      if (!name) return this.renderEmpty();
      const { tables } = await request({ kind: 'compareRun', run: name });
      // A later show (another run picked meanwhile) wins.
      if (turn !== this.turn) return;
      this.run = name;
      const table = tables.find((t) => t.budget === budget) ?? tables[0]!;
      this.budget = table.budget;
      this.element.textContent = '';
      this.render(runs, tables, table);
      this.options.onStatus(`budget ${table.budget}: ${table.rows.length} methods`);
      this.options.onShown(name);
    } catch (err) {
      if (turn !== this.turn) return;
      // The run menu stays, to pick a run that can be read.
      this.element.textContent = '';
      this.element.append(this.header(runs), el('p', 'row-error', (err as Error).message));
      this.options.onStatus(`compare: ${(err as Error).message}`);
    }
  }

  hide(): void {
    this.element.hidden = true;
  }

  private header(runs: CompareRunInfo[], tables: CompareTable[] = []): HTMLElement {
    const bar = el('div', 'toolbar compare-toolbar');
    const group = el('div', 'toolbar-group');
    group.append(el('strong', undefined, 'Compare run'));
    if (runs.length)
      group.append(
        select(
          'Compare run',
          runs.map((r) => [r.run, r.run] as [string, string]),
          this.run,
          (v) => void this.show(v),
        ),
      );
    if (tables.length > 1)
      group.append(
        select(
          'Budget',
          tables.map((t) => [t.budget, `Budget ${t.budget}`] as [string, string]),
          this.budget,
          (v) => void this.show(this.run, v),
        ),
      );
    const right = el('div', 'toolbar-group');
    right.append(button('Back to the grid', 'Show the grid of samples again', () => this.options.onClose()));
    bar.append(group, right);
    return bar;
  }

  private render(runs: CompareRunInfo[], tables: CompareTable[], t: CompareTable): void {
    const about = el(
      'p',
      'compare-about',
      `${t.rows.length} methods at budget ${t.budget}, picking from ${t.poolDescription ?? `${t.pool} samples`}` +
        (t.heldOut ? `; held-out metrics on ${t.heldOut} samples no method saw.` : '.'),
    );
    const source = el('p', 'compare-source', t.file);
    this.element.append(this.header(runs, tables), about, renderCompareTable(t, this.options), source);
  }

  private renderEmpty(): void {
    this.element.textContent = '';
    this.element.append(
      this.header([]),
      el('p', 'empty', 'No compare run yet in this workspace.'),
      button('Compare methods…', 'Run several methods at one budget', () => this.options.onCompare(), false),
    );
    this.options.onStatus('no compare run yet');
  }
}
