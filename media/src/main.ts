/**
 * The curation panel: a toolbar of filters, a filter bar (field filters, tags, saved views), the
 * virtualised grid (free-text search results show there, ranked), and a side bar with the focused
 * sample and its nearest neighbours, the 2-D map and the score histogram. The compare view (a saved
 * compare run's table) and the diff view (what one selection kept that another did not) take the
 * grid's place until a selection is opened from them or they are closed. All
 * data comes from the host through `request`; only small UI state is kept with `setState`.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-tab-panel/index.js';
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type {
  Filter,
  GridItem,
  GridScope,
  HostCommand,
  SavedView,
  Sort,
  Summary,
  UiState,
} from '../../extension/protocol';
import { CompareView } from './compareView';
import { DiffView } from './diffView';
import { button, select, textField, type Select } from './controls';
import { el, formatScore } from './dom';
import { FilterBar, type FilterState } from './filters';
import { VirtualGrid } from './grid';
import { renderHistogram } from './histogram';
import { EmbeddingMapView, type MapColouring } from './map';
import { listen, request, vscode } from './rpc';

const FILTERS: Array<[Filter, string]> = [
  ['all', 'All samples'],
  ['selected', 'Picked by the method'],
  ['unselected', 'Not picked'],
  ['accepted', 'Accepted by hand'],
  ['rejected', 'Rejected by hand'],
  ['errors', 'With errors'],
];
const SORTS: Array<[Sort, string]> = [
  ['catalog', 'Catalog order'],
  ['score-desc', 'Score, high first'],
  ['score-asc', 'Score, low first'],
  ['pick-order', 'Pick order'],
  ['relevance', 'Search relevance'],
];
/** Hits a free-text search puts in the grid. */
const SEARCH_K = 48;

const saved = vscode.getState();
const state: UiState & FilterState & { ids?: number[] } = {
  filter: saved?.filter ?? 'all',
  sort: saved?.sort ?? 'catalog',
  ...(saved?.captionKind ? { captionKind: saved.captionKind } : {}),
  where: saved?.where ?? [],
  tags: saved?.tags ?? [],
  ...(saved?.search ? { search: saved.search } : {}),
  scrollTop: saved?.scrollTop ?? 0,
};
let summary: Summary | undefined;

const app = document.getElementById('app')!;
const toolbar = el('div', 'toolbar');
const status = el('div', 'status');
status.setAttribute('role', 'status');
const body = el('div', 'body');
const side = el('div', 'side');
/** What the score under each card is (the shown selection's method). */
const legend = el('div', 'score-legend');
const filterBar = new FilterBar({
  state,
  onChange: () => {
    delete state.ids;
    // Without a search, relevance has no order to keep: back to catalog order.
    if (!state.search && state.sort === 'relevance') {
      state.sort = 'catalog';
      if (summary) buildToolbar(summary);
    }
    void reload();
  },
  onTag: (tag, target, remove) => void tagSamples(tag, target, remove),
  onSaveView: (name) => void saveView(name),
  onOpenView: (name) => void openView(name),
  onDeleteView: (name) => void deleteView(name),
  onError: (message) => setStatus(message),
});
const compareView = new CompareView({
  onOpen: (name) => void openSelection(name),
  onClose: () => showGrid(),
  onCompare: () => command('compare'),
  onStatus: (message) => setStatus(message),
  onShown: () => saveState(),
});
const diffView = new DiffView({
  onOpen: (name) => void openSelection(name),
  onClose: () => showGrid(),
  onStatus: (message) => setStatus(message),
});
/** What takes the page: the grid with its toolbar and filters, or the compare or diff view. */
let mode: 'grid' | 'compare' | 'diff' = 'grid';
const comparing = () => mode === 'compare';
app.append(toolbar, filterBar.element, legend, body, compareView.element, diffView.element, status);

/** The grid's current query without paging (what a page, a bulk tag and a saved view share). */
function scope(): GridScope {
  return {
    filter: state.filter,
    sort: state.sort,
    ...(state.captionKind ? { captionKind: state.captionKind } : {}),
    ...(state.ids ? { ids: state.ids } : {}),
    ...(state.where.length ? { where: state.where } : {}),
    ...(state.tags.length ? { tags: state.tags } : {}),
    ...(state.search ? { search: state.search } : {}),
  };
}

const grid = new VirtualGrid({
  fetch: (offset, limit) => request({ kind: 'page', query: { ...scope(), offset, limit } }),
  scoreTitle: (item) => scoreTitle(item),
  onOpen: (item) => void showNeighbours(item),
  onFocus: (item) => showDetails(item),
  onKey: (key) => {
    const decisions: Record<string, 'accept' | 'reject' | null> = { a: 'accept', r: 'reject', c: null };
    if (!(key in decisions)) return false;
    void review(decisions[key]!);
    return true;
  },
});

let selectionSelect: Select;
let kindSelect: Select;
const toolbarRight = el('div', 'toolbar-group');

function buildToolbar(s: Summary): void {
  toolbar.textContent = '';
  selectionSelect = select(
    'Selection shown',
    [['', '(catalog only)'], ...s.selections.map((n) => [n, n] as [string, string])],
    s.selection ?? '',
    (v) => void changeSelection(v || null),
  );
  const filterSelect = select('Filter', FILTERS, state.filter, (v) => {
    state.filter = v as Filter;
    void reload();
  });
  kindSelect = select(
    'Caption kind',
    [['', 'Any caption'], ...s.captionKinds.map((k) => [k, `Caption: ${k}`] as [string, string])],
    state.captionKind ?? '',
    (v) => {
      if (v) state.captionKind = v;
      else delete state.captionKind;
      void reload();
    },
  );
  const sortSelect = select('Sort', SORTS, state.sort, (v) => {
    state.sort = v as Sort;
    void reload();
  });
  const search = textField(
    'Search images by text',
    'Search images by text…',
    'search',
    (text) => void runSearch(text),
  );
  const group = el('div', 'toolbar-group');
  group.append(selectionSelect, filterSelect, kindSelect, sortSelect, search);
  toolbarRight.textContent = '';
  toolbarRight.append(
    button('Accept', 'Accept the marked samples (A)', () => void review('accept')),
    button('Reject', 'Reject the marked samples (R)', () => void review('reject')),
    button('Clear', 'Clear their review (C)', () => void review(null)),
    button('Select…', 'Run a selection method', () => command('select')),
    button('Compare runs', 'Show the tables of saved compare runs', () => void showCompare()),
    button('Diff…', 'What one selection kept that another did not', () => command('diff')),
    button('Export…', 'Export the selection shown', () => command('export'), false),
  );
  toolbar.append(group, toolbarRight);
}

function command(c: HostCommand): void {
  vscode.postMessage({ type: 'command', command: c });
}

// Side bar: tabs for the focused sample, the map and the histogram.
const details = el('div', 'details');
const results = el('div', 'results');
const mapView = new EmbeddingMapView({
  onBrush: (ids) => {
    state.ids = ids;
    void reload();
  },
  onPick: (id) => void openById(id),
});
const histogram = el('div', 'histogram-panel');
const tabs = el('vscode-tabs' as 'div');
const tab = (title: string, content: HTMLElement, extra?: HTMLElement) => {
  const header = el('vscode-tab-header' as 'div', undefined, title);
  header.setAttribute('slot', 'header');
  const panel = el('vscode-tab-panel' as 'div');
  if (extra) panel.append(extra);
  panel.append(content);
  tabs.append(header, panel);
};
const mapControls = el('div', 'map-controls');
mapControls.append(
  select(
    'Colour the map by',
    [
      ['selection', 'Colour: selection'],
      ['cluster', 'Colour: cluster'],
      ['caption', 'Colour: caption kind'],
    ],
    'selection',
    (v) => mapView.colourBy(v as MapColouring),
  ),
  button('Show all', 'Clear the map filter', () => {
    delete state.ids;
    void reload();
  }),
);
const sampleTab = el('div', 'sample-tab');
sampleTab.append(details, results);
tab('Sample', sampleTab);
tab('Map', mapView.element, mapControls);
tab('Scores', histogram);
side.append(tabs);
body.append(grid.element, side);
let mapLoaded = false;
tabs.addEventListener('vsc-tabs-select', (e) => {
  const index = (e as CustomEvent<{ selectedIndex: number }>).detail.selectedIndex;
  if (index === 1 && !mapLoaded) void loadMap();
  if (index === 2) void loadHistogram();
});

function showDetails(item: GridItem | undefined): void {
  details.textContent = '';
  if (!item) {
    details.append(
      el('p', 'empty', 'Click a sample; Enter shows its nearest neighbours. A / R / C review it.'),
    );
    return;
  }
  const img = el('img', 'large');
  if (item.thumbnail) img.src = item.thumbnail;
  img.alt = item.problem ?? item.key;
  const rows: Array<[string, string]> = [
    ['key', item.key],
    ['label', item.label ?? '—'],
    [summary?.score?.name ?? 'score', formatScore(item.score) || '—'],
    ['pick', item.rank === null ? 'not picked' : `#${item.rank + 1}`],
    ['review', item.review ?? '—'],
    ['tags', item.tags.join(', ') || '—'],
    ['caption kind', item.captionKind ?? '—'],
  ];
  if (item.similarity !== undefined) rows.push(['search similarity', item.similarity.toFixed(3)]);
  if (item.problem) rows.push(['problem', item.problem]);
  const table = el('dl', 'facts');
  for (const [k, v] of rows) table.append(el('dt', undefined, k), el('dd', undefined, v));
  details.append(img, el('p', 'caption-full', item.caption), table);
  details.append(
    button('Nearest neighbours', 'Find similar images (Enter)', () => void showNeighbours(item)),
  );
}

function showList(title: string, items: GridItem[]): void {
  results.textContent = '';
  results.append(el('h3', undefined, title));
  const list = el('div', 'mini-grid');
  list.setAttribute('role', 'list');
  for (const item of items) {
    const card = el('div', 'mini');
    card.setAttribute('role', 'listitem');
    card.tabIndex = 0;
    card.dataset.id = String(item.id);
    const img = el('img');
    if (item.thumbnail) img.src = item.thumbnail;
    img.alt = item.key;
    card.title = `${item.key}\n${item.caption}`;
    card.append(img, el('div', 'sim', item.similarity === undefined ? '' : item.similarity.toFixed(3)));
    card.classList.toggle('picked', item.rank !== null);
    card.addEventListener('click', () => showDetails(item));
    list.append(card);
  }
  results.append(list);
}

async function showNeighbours(item: GridItem): Promise<void> {
  setStatus(`finding neighbours of ${item.key}…`);
  try {
    showList(`Nearest to ${item.key}`, await request({ kind: 'neighbours', id: item.id, k: 12 }));
    setStatus();
  } catch (err) {
    setStatus(`neighbours: ${(err as Error).message}`);
  }
}

async function openById(id: number): Promise<void> {
  const [item] = (
    await request({ kind: 'page', query: { filter: 'all', sort: 'catalog', ids: [id], offset: 0, limit: 1 } })
  ).items;
  if (!item) return;
  showDetails(item);
  await showNeighbours(item);
}

/** Show a free-text search's hits in the grid, best first, as a filter like any other. */
async function runSearch(text: string): Promise<void> {
  state.search = { text, k: SEARCH_K };
  state.sort = 'relevance';
  delete state.ids;
  if (summary) buildToolbar(summary);
  filterBar.render();
  setStatus(`searching for “${text}”…`);
  await reload();
}

/** The tooltip of a card's score: which score it is and what it means. */
function scoreTitle(item: GridItem): string {
  const parts: string[] = [];
  const s = summary?.score;
  if (item.score !== null)
    parts.push(
      s
        ? `${s.name} ${formatScore(item.score)} (${s.method}): ${s.meaning}`
        : `score ${formatScore(item.score)}`,
    );
  if (item.rank !== null) parts.push(`#${item.rank + 1}: picked ${ordinal(item.rank + 1)} by the method`);
  if (item.similarity !== undefined) parts.push(`search similarity ${item.similarity.toFixed(3)}`);
  return parts.join('\n');
}

function ordinal(n: number): string {
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] ?? 'th');
  return `${n}${suffix}`;
}

function showLegend(s: Summary): void {
  legend.textContent = '';
  if (!s.score || mode !== 'grid') {
    legend.hidden = true;
    return;
  }
  legend.hidden = false;
  legend.append(
    el('strong', undefined, `Score under each card: ${s.score.name}`),
    el('span', undefined, ` (${s.score.method}) — ${s.score.meaning}. #n = pick order.`),
  );
  legend.title = `${s.score.name}: ${s.score.meaning}`;
}

async function tagSamples(tag: string, target: 'marked' | 'all', remove: boolean): Promise<void> {
  const ids = grid.markedIds();
  if (target === 'marked' && !ids.length)
    return setStatus('mark samples first (click, ctrl/shift-click, space)');
  try {
    const changed = await request({
      kind: 'tag',
      target: target === 'marked' ? { ids } : { scope: scope() },
      tags: [tag],
      remove,
    });
    filterBar.update({ tags: await request({ kind: 'tags' }) });
    await grid.refresh();
    setStatus(`${changed} sample${changed === 1 ? '' : 's'} ${remove ? 'untagged' : 'tagged'} “${tag}”`);
  } catch (err) {
    setStatus(`tag: ${(err as Error).message}`);
  }
}

async function saveView(name: string): Promise<void> {
  try {
    const views = await request({ kind: 'saveView', name, query: scope() });
    filterBar.update({ views, opened: name });
    setStatus(`view “${name}” saved`);
  } catch (err) {
    setStatus(`save view: ${(err as Error).message}`);
  }
}

async function openView(name: string): Promise<void> {
  try {
    const opened = await request({ kind: 'openView', name });
    summary = opened.summary;
    applyView(opened.view);
    buildToolbar(opened.summary);
    showLegend(opened.summary);
    filterBar.update({ opened: name });
    mapLoaded = false;
    await reload();
    setStatus(`view “${name}”`);
  } catch (err) {
    setStatus(`open view: ${(err as Error).message}`);
  }
}

function applyView(view: SavedView): void {
  const q = view.query;
  state.filter = q.filter;
  state.sort = q.sort;
  state.where = q.where ? [...q.where] : [];
  state.tags = q.tags ? [...q.tags] : [];
  if (q.captionKind) state.captionKind = q.captionKind;
  else delete state.captionKind;
  if (q.ids) state.ids = q.ids;
  else delete state.ids;
  if (q.search) state.search = q.search;
  else delete state.search;
}

async function deleteView(name: string): Promise<void> {
  try {
    filterBar.update({ views: await request({ kind: 'deleteView', name }), opened: '' });
    setStatus(`view “${name}” deleted`);
  } catch (err) {
    setStatus(`delete view: ${(err as Error).message}`);
  }
}

/** Fields, tags and saved views for the filter bar (after init and whenever the workspace changed). */
async function loadFilterBar(): Promise<void> {
  try {
    const [fields, tags, views] = await Promise.all([
      request({ kind: 'fields' }),
      request({ kind: 'tags' }),
      request({ kind: 'views' }),
    ]);
    filterBar.update({ fields, tags, views });
  } catch (err) {
    setStatus(`filters: ${(err as Error).message}`);
  }
}

async function review(decision: 'accept' | 'reject' | null): Promise<void> {
  const ids = grid.markedIds();
  if (!ids.length) return;
  const changed = await request({ kind: 'review', ids, decision });
  summary = await request({ kind: 'summary' });
  await grid.refresh();
  setStatus(`${changed} sample${changed === 1 ? '' : 's'} ${decision ? `${decision}ed` : 'cleared'}`);
  mapLoaded = false;
}

async function changeSelection(name: string | null): Promise<void> {
  summary = await request({ kind: 'useSelection', name });
  showLegend(summary);
  mapLoaded = false;
  await reload();
}

/** The compare or diff view in place of the toolbar, filters and grid. */
function leaveGrid(to: 'compare' | 'diff'): void {
  mode = to;
  for (const part of [toolbar, filterBar.element, legend, body]) part.hidden = true;
  compareView.element.hidden = to !== 'compare';
  diffView.element.hidden = to !== 'diff';
}

async function showCompare(run?: string): Promise<void> {
  leaveGrid('compare');
  await compareView.show(run);
}

async function showDiff(a: string, b: string): Promise<void> {
  leaveGrid('diff');
  await diffView.show(a, b);
}

function showGrid(): void {
  mode = 'grid';
  compareView.hide();
  diffView.hide();
  for (const part of [toolbar, filterBar.element, body]) part.hidden = false;
  if (summary) showLegend(summary);
  setStatus();
  saveState();
}

/** A compare row or a diff side was picked: show that selection in the grid (as the selection menu does). */
async function openSelection(name: string): Promise<void> {
  showGrid();
  try {
    summary = await request({ kind: 'useSelection', name });
    buildToolbar(summary);
    showLegend(summary);
    mapLoaded = false;
    await reload();
  } catch (err) {
    setStatus(`open ${name}: ${(err as Error).message}`);
  }
}

async function loadMap(): Promise<void> {
  setStatus('computing the 2-D map (UMAP)…');
  try {
    mapView.set(await request({ kind: 'map' }));
    mapLoaded = true;
    setStatus();
  } catch (err) {
    setStatus(`map: ${(err as Error).message}`);
  }
}

async function loadHistogram(): Promise<void> {
  renderHistogram(
    histogram,
    await request({ kind: 'histogram', bins: 30 }),
    summary?.method ?? null,
    summary?.score ?? null,
  );
}

function setStatus(message?: string): void {
  if (mode === 'diff') {
    status.textContent = message ?? '';
    return;
  }
  if (comparing()) {
    const run = compareView.shownRun;
    status.textContent = [run ? `compare run ${run}` : '', message ?? ''].filter(Boolean).join(' · ');
    return;
  }
  if (!summary) return;
  const s = summary;
  const parts = [
    `${grid.size.toLocaleString()} of ${s.samples.toLocaleString()} samples shown`,
    s.selection
      ? `selection ${s.selection} (${s.method}, ${s.budget?.toLocaleString()} picks)`
      : 'no selection',
    `${s.reviews.accept} accepted, ${s.reviews.reject} rejected by hand`,
    state.ids ? `map filter: ${state.ids.length} points` : '',
    state.where.length ? `${state.where.length} field filter${state.where.length === 1 ? '' : 's'}` : '',
    state.search ? `search “${state.search.text}”, best ${state.search.k}` : '',
    message ?? '',
  ].filter(Boolean);
  status.textContent = parts.join(' · ');
}

let saveTimer = 0;
grid.element.addEventListener('scroll', () => {
  clearTimeout(saveTimer);
  saveTimer = window.setTimeout(() => saveState(), 200);
});

function saveState(): void {
  vscode.setState({
    filter: state.filter,
    sort: state.sort,
    scrollTop: grid.element.scrollTop,
    ...(state.captionKind ? { captionKind: state.captionKind } : {}),
    ...(state.where.length ? { where: state.where } : {}),
    ...(state.tags.length ? { tags: state.tags } : {}),
    ...(state.search ? { search: state.search } : {}),
    ...(comparing() && compareView.shownRun ? { compareRun: compareView.shownRun } : {}),
  });
}

async function reload(scrollTop = 0): Promise<void> {
  saveState();
  filterBar.render();
  try {
    await grid.reset(scrollTop);
    setStatus();
  } catch (err) {
    setStatus(`grid: ${(err as Error).message}`);
  }
  if (tabs.getAttribute('selected-index') === '2') await loadHistogram();
}

listen((m) => {
  switch (m.type) {
    case 'init':
    case 'changed':
      summary = m.summary;
      buildToolbar(m.summary);
      showLegend(m.summary);
      void loadFilterBar();
      mapLoaded = false;
      void reload(m.type === 'init' ? state.scrollTop : 0);
      // A compare run may have been replaced (the palette's compare): read the shown one again.
      if (comparing() && m.type === 'changed') void compareView.show(compareView.shownRun || undefined);
      // After a reload of the page (hidden and shown again), the compare run it showed comes back.
      if (m.type === 'init' && saved?.compareRun) void showCompare(saved.compareRun);
      break;
    case 'showCompare':
      void showCompare(m.run);
      break;
    case 'showDiff':
      void showDiff(m.a, m.b);
      break;
    case 'status':
      setStatus(m.text);
      break;
    case 'search':
      void runSearch(m.text);
      break;
  }
});
showDetails(undefined);
vscode.postMessage({ type: 'ready' });
