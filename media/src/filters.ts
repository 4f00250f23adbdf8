/**
 * The grid's filter bar: field filters on any catalog field (`field op value`, ANDed, shown as
 * removable chips with the tag and search filters), tagging the marked samples or the whole filter
 * result, and saved views. It only edits `FilterState` and calls back; the page reloads the grid.
 */
import type {
  FieldFilter,
  FilterField,
  FilterOp,
  SavedView,
  SearchFilter,
  TagCount,
} from '../../extension/protocol';
import { button, select, textField } from './controls';
import { el } from './dom';

export interface FilterState {
  where: FieldFilter[];
  tags: string[];
  search?: SearchFilter;
}

export interface FilterBarOptions {
  state: FilterState;
  /** Filters were added or removed: reload the grid. */
  onChange(): void;
  onTag(tag: string, target: 'marked' | 'all', remove: boolean): void;
  onSaveView(name: string): void;
  onOpenView(name: string): void;
  onDeleteView(name: string): void;
  /** A filter that cannot be added (the reason, for the status bar). */
  onError(message: string): void;
}

export const OP_LABELS: Record<FilterOp, string> = {
  '=': '=',
  '!=': '≠',
  '<': '<',
  '>': '>',
  contains: 'contains',
};

export function describeFilter(f: FieldFilter): string {
  return `${f.field} ${OP_LABELS[f.op]} ${f.value}`;
}

export class FilterBar {
  readonly element = el('div', 'filterbar');
  private readonly controls = el('div', 'toolbar-group');
  private readonly chips = el('div', 'chips');
  private fields: FilterField[] = [];
  private tagCounts: TagCount[] = [];
  private views: SavedView[] = [];
  private draftField = '';
  private draftOp: FilterOp = '=';
  private openedView = '';

  constructor(private readonly options: FilterBarOptions) {
    this.element.append(this.controls, this.chips);
    this.element.setAttribute('aria-label', 'filters, tags and saved views');
  }

  update(data: { fields?: FilterField[]; tags?: TagCount[]; views?: SavedView[]; opened?: string }): void {
    if (data.fields) this.fields = data.fields;
    if (data.tags) this.tagCounts = data.tags;
    if (data.views) this.views = data.views;
    if (data.opened !== undefined) this.openedView = data.opened;
    this.render();
  }

  render(): void {
    const { state } = this.options;
    this.controls.textContent = '';
    const names = this.fields.map((f) => f.name);
    if (!names.includes(this.draftField))
      this.draftField = names.includes('metadata.label') ? 'metadata.label' : (names[0] ?? '');
    const fieldSelect = select(
      'Filter field',
      this.fields.map((f) => [f.name, f.name]),
      this.draftField,
      (v) => (this.draftField = v),
    );
    fieldSelect.classList.add('field-select');
    const opSelect = select(
      'Filter operator',
      (Object.keys(OP_LABELS) as FilterOp[]).map((op) => [op, OP_LABELS[op]]),
      this.draftOp,
      (v) => (this.draftOp = v as FilterOp),
    );
    opSelect.classList.add('op-select');
    const value = textField('Filter value', 'value', 'filter-value', () => add());
    const add = () => {
      if (!this.draftField) return;
      const text = value.value.trim();
      if ((this.draftOp === '<' || this.draftOp === '>') && (text === '' || !Number.isFinite(Number(text))))
        return this.options.onError(`${this.draftField} ${this.draftOp} needs a number, not “${text}”`);
      state.where.push({ field: this.draftField, op: this.draftOp, value: text });
      this.options.onChange();
    };
    const tagFilter = select(
      'Tag filter',
      [
        ['', 'Any tag'],
        ...this.tagCounts.map((t) => [t.tag, `Tag: ${t.tag} (${t.count})`] as [string, string]),
      ],
      state.tags[0] ?? '',
      (v) => {
        state.tags = v ? [v] : [];
        this.options.onChange();
      },
    );
    const tagName = textField('Tag name', 'tag…', 'tag-name', (t) => this.options.onTag(t, 'marked', false));
    const tag = (target: 'marked' | 'all', remove: boolean) => () => {
      const t = tagName.value.trim();
      if (t) this.options.onTag(t, target, remove);
    };
    const viewSelect = select(
      'Saved views',
      [['', 'Saved views…'], ...this.views.map((v) => [v.name, `View: ${v.name}`] as [string, string])],
      this.openedView,
      (v) => {
        if (v) this.options.onOpenView(v);
      },
    );
    const viewName = textField('View name', 'view name…', 'view-name', (n) => this.options.onSaveView(n));
    this.controls.append(
      fieldSelect,
      opSelect,
      value,
      button('Add filter', 'Add this filter (all filters must hold)', add),
      tagFilter,
      tagName,
      button('Tag marked', 'Add the tag to the marked samples (or the focused one)', tag('marked', false)),
      button(
        'Tag all shown',
        'Add the tag to every sample the grid shows now (all pages)',
        tag('all', false),
      ),
      button('Untag marked', 'Remove the tag from the marked samples', tag('marked', true)),
      viewSelect,
      viewName,
      button('Save view', 'Save the selection, filters and sort under this name', () => {
        if (viewName.value.trim()) this.options.onSaveView(viewName.value.trim());
      }),
    );
    if (this.openedView)
      this.controls.append(
        button('Delete view', `Delete the saved view ${this.openedView}`, () =>
          this.options.onDeleteView(this.openedView),
        ),
      );
    this.renderChips();
  }

  private renderChips(): void {
    const { state } = this.options;
    this.chips.textContent = '';
    const chip = (text: string, remove: () => void) => {
      const c = el('span', 'chip', text);
      const x = el('button', 'chip-remove', '×');
      x.setAttribute('aria-label', `Remove filter ${text}`);
      x.title = 'Remove this filter';
      x.addEventListener('click', () => {
        remove();
        this.options.onChange();
      });
      c.append(x);
      this.chips.append(c);
    };
    state.where.forEach((f, i) => chip(describeFilter(f), () => state.where.splice(i, 1)));
    for (const t of state.tags) chip(`tag: ${t}`, () => (state.tags = state.tags.filter((x) => x !== t)));
    if (state.search)
      chip(`search: “${state.search.text}” (best ${state.search.k})`, () => delete state.search);
    this.chips.hidden = this.chips.childElementCount === 0;
  }
}
