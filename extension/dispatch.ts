/**
 * Answers the panel's requests from a `CurationView`. No VS Code API here: the extension's panel and
 * the webview UI tests (test/ui) route messages through this same function.
 */
import type { CurationView } from '../src/curate/api.js';
import { deleteSavedView, listSavedViews, loadSavedView, saveView, scoreLegend } from '../src/curate/api.js';
import type { GridQuery, GridScope, Replies, Request, Summary } from './protocol.js';

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
  }
}

/** A grid page; a search scope becomes the search's ranked hits (CurationView.searchPage). */
function gridPage(view: CurationView, query: GridQuery): Promise<Replies['page']> {
  const { search, ...rest } = query;
  return search ? view.searchPage(rest, search) : view.page(rest);
}

function tagScope({ search, ...query }: GridScope) {
  return search ? { query, search } : { query };
}
