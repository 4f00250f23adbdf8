/**
 * A virtualised thumbnail grid: only the rows in view (plus a margin) have DOM cells, recycled as
 * the user scrolls, and pages of items are fetched from the host on demand. Stays smooth at any
 * catalog size because work per frame depends on the viewport, not on the item count.
 */
import type { GridItem, GridPage } from '../../extension/protocol';
import { el, formatScore } from './dom';

export const CELL_WIDTH = 132;
export const CELL_HEIGHT = 168;
const PAGE_SIZE = 120;
const OVERSCAN_ROWS = 2;
const FETCH_DELAY_MS = 60;

export interface GridOptions {
  fetch(offset: number, limit: number): Promise<GridPage>;
  /** Enter or double-click on an item. */
  onOpen(item: GridItem): void;
  /** The focused item or the marked set changed. */
  onFocus(item: GridItem | undefined): void;
  onKey(key: string): boolean;
  /** Tooltip of a card's score line: which score it is and what it means. */
  scoreTitle(item: GridItem): string;
}

interface Cell {
  root: HTMLElement;
  img: HTMLImageElement;
  /** Class label badge over the thumbnail (metadata `label` / `cls`). */
  label: HTMLElement;
  /** Tag badge over the thumbnail. */
  tags: HTMLElement;
  caption: HTMLElement;
  meta: HTMLElement;
  index: number;
}

export class VirtualGrid {
  readonly element: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly pages = new Map<number, GridItem[] | Promise<void>>();
  private readonly cells = new Map<number, Cell>();
  private readonly spare: Cell[] = [];
  private total = 0;
  private columns = 1;
  private generation = 0;
  private frame = 0;
  private fetchTimer = 0;
  private readonly wanted = new Set<number>();
  private focusIndex = -1;
  /** Items the user marked (click, shift/ctrl-click, space) for accept/reject. */
  readonly marked = new Set<number>();

  constructor(private readonly options: GridOptions) {
    this.element = el('div', 'grid');
    this.element.tabIndex = 0;
    this.element.setAttribute('role', 'grid');
    this.element.setAttribute('aria-label', 'samples');
    this.spacer = el('div', 'grid-spacer');
    this.element.append(this.spacer);
    this.element.addEventListener('scroll', () => this.schedule());
    this.element.addEventListener('keydown', (e) => this.onKeyDown(e));
    new ResizeObserver(() => this.layout()).observe(this.element);
  }

  get size(): number {
    return this.total;
  }

  get focused(): GridItem | undefined {
    return this.itemAt(this.focusIndex);
  }

  /** Drop every fetched page and start again (new filter, sort or data). */
  async reset(scrollTop = 0): Promise<void> {
    this.generation++;
    this.pages.clear();
    this.wanted.clear();
    this.marked.clear();
    this.focusIndex = -1;
    for (const cell of this.cells.values()) this.recycle(cell);
    this.cells.clear();
    await this.loadPage(0);
    this.layout();
    this.element.scrollTop = scrollTop;
    this.render();
    this.options.onFocus(undefined);
  }

  /** Re-fetch the pages in view (reviews changed), keeping scroll and focus. */
  async refresh(): Promise<void> {
    this.generation++;
    this.pages.clear();
    this.render();
  }

  scrollToIndex(index: number): void {
    const row = Math.floor(index / this.columns);
    const top = row * CELL_HEIGHT;
    const view = this.element.clientHeight;
    if (top < this.element.scrollTop) this.element.scrollTop = top;
    else if (top + CELL_HEIGHT > this.element.scrollTop + view)
      this.element.scrollTop = top + CELL_HEIGHT - view;
  }

  markedIds(): number[] {
    if (this.marked.size) return [...this.marked];
    const f = this.focused;
    return f ? [f.id] : [];
  }

  private layout(): void {
    this.columns = Math.max(1, Math.floor(this.element.clientWidth / CELL_WIDTH));
    this.spacer.style.height = `${Math.ceil(this.total / this.columns) * CELL_HEIGHT}px`;
    this.render();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private render(): void {
    const top = this.element.scrollTop;
    const height = this.element.clientHeight || 600;
    const firstRow = Math.max(0, Math.floor(top / CELL_HEIGHT) - OVERSCAN_ROWS);
    const lastRow = Math.ceil((top + height) / CELL_HEIGHT) + OVERSCAN_ROWS;
    const first = firstRow * this.columns;
    const last = Math.min(this.total, lastRow * this.columns);
    for (const [index, cell] of this.cells) {
      if (index < first || index >= last) {
        this.recycle(cell);
        this.cells.delete(index);
      }
    }
    for (let index = first; index < last; index++) {
      let cell = this.cells.get(index);
      if (!cell) {
        cell = this.spare.pop() ?? this.makeCell();
        cell.index = -1;
        this.cells.set(index, cell);
        if (!cell.root.isConnected) this.element.append(cell.root);
      }
      this.fill(cell, index);
    }
  }

  private fill(cell: Cell, index: number): void {
    const col = index % this.columns;
    const row = Math.floor(index / this.columns);
    cell.root.style.transform = `translate(${col * CELL_WIDTH}px, ${row * CELL_HEIGHT}px)`;
    cell.root.hidden = false;
    const item = this.itemAt(index);
    cell.root.classList.toggle('focused', index === this.focusIndex);
    cell.root.setAttribute('aria-selected', String(index === this.focusIndex));
    if (!item) {
      if (cell.index !== index) {
        cell.img.removeAttribute('src');
        cell.caption.textContent = '';
        cell.meta.textContent = '';
        cell.label.hidden = true;
        cell.tags.hidden = true;
        cell.root.className = 'cell loading';
      }
      cell.index = index;
      this.wanted.add(Math.floor(index / PAGE_SIZE));
      this.scheduleFetch();
      return;
    }
    cell.index = index;
    cell.root.className = 'cell';
    cell.root.classList.toggle('focused', index === this.focusIndex);
    cell.root.classList.toggle('picked', item.rank !== null);
    cell.root.classList.toggle('accepted', item.review === 'accept');
    cell.root.classList.toggle('rejected', item.review === 'reject');
    cell.root.classList.toggle('marked', this.marked.has(item.id));
    cell.root.classList.toggle('problem', item.problem !== null);
    cell.root.dataset.id = String(item.id);
    if (item.thumbnail) {
      if (cell.img.getAttribute('src') !== item.thumbnail) cell.img.src = item.thumbnail;
    } else cell.img.removeAttribute('src');
    cell.img.alt = item.problem ?? item.key;
    cell.caption.textContent = item.caption;
    cell.caption.title = `${item.key}\n${item.caption}${item.problem ? `\n⚠ ${item.problem}` : ''}`;
    const parts = [
      item.rank !== null ? `#${item.rank + 1}` : '',
      // In a search the similarity ranks the grid, so it comes first.
      item.similarity !== undefined ? `sim ${item.similarity.toFixed(3)}` : '',
      formatScore(item.score),
      item.review === 'accept' ? '✓ accepted' : item.review === 'reject' ? '✗ rejected' : '',
      item.captionKind ?? '',
    ].filter(Boolean);
    cell.meta.textContent = parts.join(' · ');
    cell.meta.title = this.options.scoreTitle(item);
    cell.label.hidden = item.label === null;
    cell.label.textContent = item.label ?? '';
    cell.label.title = item.label === null ? '' : `class label: ${item.label}`;
    cell.tags.hidden = item.tags.length === 0;
    cell.tags.textContent = item.tags.join(' · ');
    cell.tags.title = `tags: ${item.tags.join(', ')}`;
  }

  /**
   * Pages are fetched once scrolling pauses (FETCH_DELAY_MS), and only those still in view then: a
   * fling across 100k items must not queue hundreds of thumbnail requests on the host.
   */
  private scheduleFetch(): void {
    clearTimeout(this.fetchTimer);
    this.fetchTimer = window.setTimeout(() => {
      const top = this.element.scrollTop;
      const height = this.element.clientHeight || 600;
      const first = Math.max(0, Math.floor(top / CELL_HEIGHT) - OVERSCAN_ROWS) * this.columns;
      const last = (Math.ceil((top + height) / CELL_HEIGHT) + OVERSCAN_ROWS) * this.columns;
      for (const page of this.wanted)
        if ((page + 1) * PAGE_SIZE > first && page * PAGE_SIZE < last) void this.loadPage(page);
      this.wanted.clear();
    }, FETCH_DELAY_MS);
  }

  private makeCell(): Cell {
    const root = el('div', 'cell');
    root.setAttribute('role', 'gridcell');
    const img = el('img', 'thumb');
    img.decoding = 'async';
    img.draggable = false;
    const label = el('span', 'label-badge');
    const tags = el('span', 'tag-badge');
    label.hidden = true;
    tags.hidden = true;
    const caption = el('div', 'caption');
    const meta = el('div', 'meta');
    root.append(img, label, tags, caption, meta);
    const cell: Cell = { root, img, label, tags, caption, meta, index: -1 };
    root.addEventListener('click', (e) => this.onClick(cell.index, e));
    root.addEventListener('dblclick', () => {
      const item = this.itemAt(cell.index);
      if (item) this.options.onOpen(item);
    });
    return cell;
  }

  private recycle(cell: Cell): void {
    cell.root.hidden = true;
    cell.index = -1;
    this.spare.push(cell);
  }

  private itemAt(index: number): GridItem | undefined {
    if (index < 0) return undefined;
    const page = this.pages.get(Math.floor(index / PAGE_SIZE));
    return Array.isArray(page) ? page[index % PAGE_SIZE] : undefined;
  }

  private loadPage(page: number): Promise<void> {
    const existing = this.pages.get(page);
    if (existing) return Array.isArray(existing) ? Promise.resolve() : existing;
    const generation = this.generation;
    const loading = this.options.fetch(page * PAGE_SIZE, PAGE_SIZE).then((result) => {
      if (generation !== this.generation) return;
      this.pages.set(page, result.items);
      if (result.total !== this.total) {
        this.total = result.total;
        this.layout();
      } else this.schedule();
    });
    this.pages.set(page, loading);
    return loading;
  }

  private onClick(index: number, e: MouseEvent): void {
    const item = this.itemAt(index);
    if (!item) return;
    if (e.ctrlKey || e.metaKey) this.toggleMark(item.id);
    else if (e.shiftKey && this.focusIndex >= 0) {
      const [a, b] = [Math.min(index, this.focusIndex), Math.max(index, this.focusIndex)];
      for (let i = a; i <= b; i++) {
        const it = this.itemAt(i);
        if (it) this.marked.add(it.id);
      }
    } else this.marked.clear();
    this.focus(index);
    this.element.focus();
  }

  private toggleMark(id: number): void {
    if (this.marked.has(id)) this.marked.delete(id);
    else this.marked.add(id);
  }

  focus(index: number): void {
    if (this.total === 0) return;
    this.focusIndex = Math.max(0, Math.min(this.total - 1, index));
    this.scrollToIndex(this.focusIndex);
    this.render();
    this.options.onFocus(this.focused);
  }

  private onKeyDown(e: KeyboardEvent): void {
    const rowsInView = Math.max(1, Math.floor(this.element.clientHeight / CELL_HEIGHT));
    const moves: Record<string, number> = {
      ArrowRight: 1,
      ArrowLeft: -1,
      ArrowDown: this.columns,
      ArrowUp: -this.columns,
      PageDown: this.columns * rowsInView,
      PageUp: -this.columns * rowsInView,
    };
    const at = Math.max(0, this.focusIndex);
    if (e.key in moves) this.focus(this.focusIndex < 0 ? 0 : at + moves[e.key]!);
    else if (e.key === 'Home') this.focus(0);
    else if (e.key === 'End') this.focus(this.total - 1);
    else if (e.key === 'Enter' && this.focused) this.options.onOpen(this.focused);
    else if (e.key === ' ' && this.focused) {
      this.toggleMark(this.focused.id);
      this.render();
    } else if (!this.options.onKey(e.key)) return;
    e.preventDefault();
  }
}
