/**
 * Answers the panel's requests from a `CurationView`. No VS Code API here: the extension's panel and
 * the webview UI tests (test/ui) route messages through this same function.
 */
import path from 'node:path';
import type { CurationView } from '../src/curate/api.js';
import { deleteSavedView, listSavedViews, loadSavedView, saveView, scoreLegend } from '../src/curate/api.js';
import { diffSelections } from '../src/curate/diff.js';
import { listCompareRuns, readComparisonFile } from '../src/curate/pipeline.js';
import type {
  CompareRunInfo,
  CompareRunTables,
  CompareTable,
  GridQuery,
  GridScope,
  PanelDiff,
  Replies,
  Request,
  Summary,
} from './protocol.js';

export async function answer<R extends Request>(view: CurationView, request: R): Promise<Replies[R['kind']]> {
  const reply = await answerAny(view, request);
  return reply as Replies[R['kind']];
}

/** The summary the page shows: the view's, with the legend of the shown selection's score. */
export async function panelSummary(view: CurationView): Promise<Summary> {
  const s = await view.summary();
  return { ...s, score: s.method ? scoreLegend(s.method) : null };
}

async function answerAny(view: CurationView, r: Request): Promise<Replies[Request['kind']]> {
  switch (r.kind) {
    case 'summary':
      return panelSummary(view) satisfies Promise<Replies['summary']>;
    case 'page':
      return gridPage(view, r.query) satisfies Promise<Replies['page']>;
    case 'neighbours':
      return view.neighbours(r.id, r.k) satisfies Promise<Replies['neighbours']>;
    case 'search':
      return view.search(r.text, r.k) satisfies Promise<Replies['search']>;
    case 'map':
      return view.map() satisfies Promise<Replies['map']>;
    case 'histogram':
      return view.histogram(r.bins) satisfies Promise<Replies['histogram']>;
    case 'review':
      return view.review(r.ids, r.decision) satisfies Promise<Replies['review']>;
    case 'useSelection':
      await view.useSelection(r.name);
      return panelSummary(view) satisfies Promise<Replies['useSelection']>;
    case 'fields':
      return view.fields() satisfies Promise<Replies['fields']>;
    case 'tags':
      return view.tagCounts() satisfies Promise<Replies['tags']>;
    case 'tag':
      return view.tag(
        'ids' in r.target ? r.target : tagScope(r.target.scope),
        r.tags,
        r.remove,
      ) satisfies Promise<Replies['tag']>;
    case 'views':
      return listSavedViews(view.workspace) satisfies Promise<Replies['views']>;
    case 'saveView':
      await saveView(view.workspace, { name: r.name, selection: view.selection, query: r.query });
      return listSavedViews(view.workspace) satisfies Promise<Replies['saveView']>;
    case 'deleteView':
      await deleteSavedView(view.workspace, r.name);
      return listSavedViews(view.workspace) satisfies Promise<Replies['deleteView']>;
    case 'openView': {
      const saved = await loadSavedView(view.workspace, r.name);
      await view.useSelection(saved.selection);
      return { view: saved, summary: await panelSummary(view) } satisfies Replies['openView'];
    }
    case 'compareRuns':
      return compareRuns(view.workspace) satisfies Promise<Replies['compareRuns']>;
    case 'compareRun':
      return compareRunTables(view.workspace, r.run) satisfies Promise<Replies['compareRun']>;
    case 'diff':
      return panelDiff(view, r.a, r.b) satisfies Promise<Replies['diff']>;
  }
}

/** Samples of each side a diff reply carries (in pick order); the totals count them all. */
export const DIFF_SAMPLES = 120;

async function panelDiff(view: CurationView, a: string, b: string): Promise<PanelDiff> {
  if (a === b) throw new Error(`diff needs two different selections (both are '${a}')`);
  const d = await view.withCatalog((catalog) => diffSelections(catalog, view.workspace, a, b));
  return {
    a: d.a,
    b: d.b,
    both: d.both,
    onlyA: { total: d.onlyA.length, samples: d.onlyA.slice(0, DIFF_SAMPLES) },
    onlyB: { total: d.onlyB.length, samples: d.onlyB.slice(0, DIFF_SAMPLES) },
    truth: d.truth,
  };
}

export async function compareRuns(workspace: string): Promise<CompareRunInfo[]> {
  return [...(await listCompareRuns(workspace))].map(([run, files]) => ({
    run,
    budgets: files.map((f) => path.basename(f, '.json')),
  }));
}

/** A saved compare run's tables, smallest budget first; an unknown run is an error naming the folder. */
export async function compareRunTables(workspace: string, run: string): Promise<CompareRunTables> {
  const files = (await listCompareRuns(workspace)).get(run);
  if (!files)
    throw new Error(
      `no compare run '${run}' in ${path.join(workspace, 'compare')} (run Curate: Compare Methods…)`,
    );
  const tables: CompareTable[] = [];
  for (const file of files) {
    const c = await readComparisonFile(file);
    tables.push({
      budget: c.budget,
      file,
      pool: c.pool,
      heldOut: c.heldOut,
      poolDescription: c.poolInfo?.description ?? null,
      // NaN (a failed method's CLIP score) was saved as null; the protocol's row type says so.
      rows: c.rows as CompareTable['rows'],
      reference: c.reference as CompareTable['reference'],
    });
  }
  const size = (t: CompareTable) => Math.max(0, ...t.rows.map((r) => r.budget));
  return { run, tables: tables.sort((a, b) => size(a) - size(b)) };
}

/** A grid page; a search scope becomes the search's ranked hits (CurationView.searchPage). */
function gridPage(view: CurationView, query: GridQuery): Promise<Replies['page']> {
  const { search, ...rest } = query;
  return search ? view.searchPage(rest, search) : view.page(rest);
}

function tagScope({ search, ...query }: GridScope) {
  return search ? { query, search } : { query };
}
