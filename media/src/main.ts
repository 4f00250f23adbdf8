/**
 * The curation panel: a toolbar of filters, the virtualised grid, and a side bar with the focused
 * sample and its nearest neighbours, free-text search results, the 2-D map and the score histogram.
 * All data comes from the host through `request`; only small UI state is kept with `setState`.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-tab-panel/index.js';
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { Filter, GridItem, HostCommand, Sort, Summary, UiState } from '../../extension/protocol';
import { el, formatScore } from './dom';
import { VirtualGrid } from './grid';
import { renderHistogram } from './histogram';
import { EmbeddingMapView, type MapColouring } from './map';
import { listen, request, vscode } from './rpc';

interface Select extends HTMLElement {
  value: string;
}

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
];

const saved = vscode.getState();
const state: UiState & { ids?: number[] } = {
  filter: saved?.filter ?? 'all',
  sort: saved?.sort ?? 'catalog',
  ...(saved?.captionKind ? { captionKind: saved.captionKind } : {}),
  scrollTop: saved?.scrollTop ?? 0,
};
let summary: Summary | undefined;

const app = document.getElementById('app')!;
const toolbar = el('div', 'toolbar');
const status = el('div', 'status');
status.setAttribute('role', 'status');
const body = el('div', 'body');
const side = el('div', 'side');
app.append(toolbar, body, status);

function option(value: string, label: string, selected: boolean): HTMLElement {
  const o = el('vscode-option' as 'div', undefined, label);
  o.setAttribute('value', value);
  if (selected) o.setAttribute('selected', '');
  return o;
}

function select(
  label: string,
  entries: Array<[string, string]>,
  current: string,
  onChange: (v: string) => void,
) {
  const s = el('vscode-single-select' as 'div') as unknown as Select;
  s.setAttribute('aria-label', label);
  s.title = label;
  for (const [value, text] of entries) s.append(option(value, text, value === current));
  s.addEventListener('change', () => onChange(s.value));
  return s;
}

function button(label: string, title: string, onClick: () => void, secondary = true): HTMLElement {
  const b = el('vscode-button' as 'button', undefined, label);
  if (secondary) b.setAttribute('secondary', '');
  b.title = title;
  b.addEventListener('click', onClick);
  return b;
}

const grid = new VirtualGrid({
  fetch: (offset, limit) =>
    request({
      kind: 'page',
      query: {
        filter: state.filter,
        sort: state.sort,
        offset,
        limit,
        ...(state.captionKind ? { captionKind: state.captionKind } : {}),
        ...(state.ids ? { ids: state.ids } : {}),
      },
    }),
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
  const search = el('vscode-textfield' as 'input') as HTMLInputElement;
  search.setAttribute('placeholder', 'Search images by text…');
  search.setAttribute('aria-label', 'Search images by text');
  search.className = 'search';
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && search.value.trim()) void runSearch(search.value.trim());
  });
  const group = el('div', 'toolbar-group');
  group.append(selectionSelect, filterSelect, kindSelect, sortSelect, search);
  toolbarRight.textContent = '';
  toolbarRight.append(
    button('Accept', 'Accept the marked samples (A)', () => void review('accept')),
    button('Reject', 'Reject the marked samples (R)', () => void review('reject')),
    button('Clear', 'Clear their review (C)', () => void review(null)),
    button('Select…', 'Run a selection method', () => command('select')),
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
    ['score', formatScore(item.score) || '—'],
    ['pick', item.rank === null ? 'not picked' : `#${item.rank + 1}`],
    ['review', item.review ?? '—'],
    ['caption kind', item.captionKind ?? '—'],
  ];
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

async function runSearch(text: string): Promise<void> {
  setStatus(`searching for “${text}”…`);
  try {
    const hits = await request({ kind: 'search', text, k: 48 });
    showList(`Images for “${text}”`, hits);
    setStatus();
  } catch (err) {
    setStatus(`search: ${(err as Error).message}`);
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
  mapLoaded = false;
  await reload();
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
  renderHistogram(histogram, await request({ kind: 'histogram', bins: 30 }), summary?.method ?? null);
}

function setStatus(message?: string): void {
  if (!summary) return;
  const s = summary;
  const parts = [
    `${grid.size.toLocaleString()} of ${s.samples.toLocaleString()} samples shown`,
    s.selection
      ? `selection ${s.selection} (${s.method}, ${s.budget?.toLocaleString()} picks)`
      : 'no selection',
    `${s.reviews.accept} accepted, ${s.reviews.reject} rejected by hand`,
    state.ids ? `map filter: ${state.ids.length} points` : '',
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
  });
}

async function reload(scrollTop = 0): Promise<void> {
  saveState();
  await grid.reset(scrollTop);
  setStatus();
  if (tabs.getAttribute('selected-index') === '2') await loadHistogram();
}

listen((m) => {
  switch (m.type) {
    case 'init':
    case 'changed':
      summary = m.summary;
      buildToolbar(m.summary);
      mapLoaded = false;
      void reload(m.type === 'init' ? state.scrollTop : 0);
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
