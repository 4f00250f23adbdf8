/**
 * The diff view: what one selection kept that another did not. Two columns (only in A, only in B) of
 * samples in pick order, each with its thumbnail (fetched as grid items), caption, both methods'
 * reasons and the ground truth the dataset's metadata has; above them, how the two differences break
 * down by each ground-truth field. Dataset text goes in through `textContent` only.
 */
import type { DiffSample, GridItem, PanelDiff } from '../../extension/protocol';
import { button } from './controls';
import { el } from './dom';
import { request } from './rpc';

export interface DiffViewOptions {
  /** Show a selection in the grid. */
  onOpen(selection: string): void;
  onClose(): void;
  onStatus(message: string): void;
}

export class DiffView {
  readonly element = el('div', 'diff-view');

  constructor(private readonly options: DiffViewOptions) {
    this.element.hidden = true;
    this.element.setAttribute('aria-label', 'selection diff');
  }

  async show(a: string, b: string): Promise<void> {
    this.element.hidden = false;
    this.element.textContent = '';
    this.options.onStatus(`comparing ${a} with ${b}…`);
    try {
      const diff = await request({ kind: 'diff', a, b });
      this.render(diff);
      this.options.onStatus(
        `diff ${a} / ${b}: ${diff.both} kept by both, ${diff.onlyA.total} only by A, ${diff.onlyB.total} only by B`,
      );
      await this.loadThumbnails([...diff.onlyA.samples, ...diff.onlyB.samples]);
    } catch (err) {
      this.element.append(this.header(), el('p', 'row-error', (err as Error).message));
      this.options.onStatus(`diff: ${(err as Error).message}`);
    }
  }

  hide(): void {
    this.element.hidden = true;
  }

  private header(d?: PanelDiff): HTMLElement {
    const bar = el('div', 'toolbar diff-toolbar');
    const group = el('div', 'toolbar-group');
    group.append(el('strong', undefined, 'Selection diff'));
    if (d)
      group.append(
        button(`Open A in the grid`, `Show ${d.a.name} in the grid`, () => this.options.onOpen(d.a.name)),
        button(`Open B in the grid`, `Show ${d.b.name} in the grid`, () => this.options.onOpen(d.b.name)),
      );
    const right = el('div', 'toolbar-group');
    right.append(button('Back to the grid', 'Show the grid of samples again', () => this.options.onClose()));
    bar.append(group, right);
    return bar;
  }

  private render(d: PanelDiff): void {
    const about = el('p', 'diff-about');
    about.append(
      el('strong', undefined, 'A'),
      ` ${d.a.name} (${d.a.method}, ${d.a.kept.toLocaleString()} kept) · `,
      el('strong', undefined, 'B'),
      ` ${d.b.name} (${d.b.method}, ${d.b.kept.toLocaleString()} kept) · ${d.both.toLocaleString()} kept by both`,
    );
    const columns = el('div', 'diff-columns');
    columns.append(
      this.side('a', `Only in A: ${d.onlyA.total.toLocaleString()}`, d.onlyA),
      this.side('b', `Only in B: ${d.onlyB.total.toLocaleString()}`, d.onlyB),
    );
    this.element.append(this.header(d), about, ...truthTable(d), columns);
  }

  private side(which: 'a' | 'b', title: string, part: PanelDiff['onlyA']): HTMLElement {
    const column = el('section', `diff-side ${which}`);
    column.append(el('h3', undefined, title));
    if (part.samples.length < part.total)
      column.append(el('p', 'empty', `the first ${part.samples.length} in pick order`));
    const list = el('div', 'diff-list');
    list.setAttribute('role', 'list');
    for (const s of part.samples) list.append(sampleCard(s));
    column.append(list);
    return column;
  }

  /** Thumbnails as the grid has them: grid items of exactly these ids. */
  private async loadThumbnails(samples: DiffSample[]): Promise<void> {
    if (!samples.length) return;
    const ids = samples.map((s) => s.id);
    let items: GridItem[];
    try {
      items = (
        await request({
          kind: 'page',
          query: { filter: 'all', sort: 'catalog', ids, offset: 0, limit: ids.length },
        })
      ).items;
    } catch (err) {
      this.options.onStatus(`diff thumbnails: ${(err as Error).message}`);
      return;
    }
    const byId = new Map(items.map((i) => [i.id, i]));
    for (const img of this.element.querySelectorAll<HTMLImageElement>('img.diff-thumb')) {
      const item = byId.get(Number(img.dataset.id));
      if (item?.thumbnail) img.src = item.thumbnail;
      else if (item?.problem) img.alt = item.problem;
    }
  }
}

function sampleCard(s: DiffSample): HTMLElement {
  const card = el('div', 'diff-item');
  card.setAttribute('role', 'listitem');
  card.dataset.id = String(s.id);
  const img = el('img', 'diff-thumb');
  img.dataset.id = String(s.id);
  img.alt = s.key;
  const text = el('div', 'diff-text');
  text.append(el('div', 'diff-key', s.key), el('div', 'diff-caption', s.caption));
  const reasons = el('dl', 'diff-reasons');
  reasons.append(
    el('dt', undefined, 'A'),
    el('dd', 'reason-a', s.reasonA ?? 'no reason recorded'),
    el('dt', undefined, 'B'),
    el('dd', 'reason-b', s.reasonB ?? 'no reason recorded'),
  );
  text.append(reasons);
  const truth = Object.entries(s.groundTruth).filter(([, v]) => v !== null);
  if (truth.length) text.append(el('div', 'diff-truth', truth.map(([k, v]) => `${k}: ${v}`).join(' · ')));
  card.append(img, text);
  return card;
}

/** Per ground-truth field: its values' counts among the samples only A and only B kept. */
function truthTable(d: PanelDiff): HTMLElement[] {
  if (!d.truth.length) return [];
  const table = el('table', 'compare-table diff-truth-table');
  const head = el('tr');
  head.append(
    el('th', undefined, 'ground truth (dataset metadata)'),
    el('th', undefined, 'value'),
    el('th', undefined, 'only in A'),
    el('th', undefined, 'only in B'),
  );
  table.append(el('thead'));
  table.tHead!.append(head);
  const body = el('tbody');
  for (const t of d.truth) {
    const values = [...new Set([...Object.keys(t.onlyA), ...Object.keys(t.onlyB)])].sort();
    for (const [i, value] of values.entries()) {
      const tr = el('tr');
      tr.dataset.field = t.field;
      tr.dataset.value = value;
      tr.append(
        el('th', 'method', i === 0 ? t.field : ''),
        el('td', undefined, value),
        el('td', 'num', String(t.onlyA[value] ?? 0)),
        el('td', 'num', String(t.onlyB[value] ?? 0)),
      );
      body.append(tr);
    }
  }
  table.append(body);
  return [table];
}
