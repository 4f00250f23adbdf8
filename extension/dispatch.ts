/**
 * Answers the panel's requests from a `CurationView`. No VS Code API here: the extension's panel and
 * the webview UI tests (test/ui) route messages through this same function.
 */
import type { CurationView } from '../src/curate/api.js';
import type { Replies, Request } from './protocol.js';

export async function answer<R extends Request>(view: CurationView, request: R): Promise<Replies[R['kind']]> {
  const reply = await answerAny(view, request);
  return reply as Replies[R['kind']];
}

async function answerAny(view: CurationView, r: Request): Promise<Replies[Request['kind']]> {
  switch (r.kind) {
    case 'summary':
      return view.summary() satisfies Promise<Replies['summary']>;
    case 'page':
      return view.page(r.query) satisfies Promise<Replies['page']>;
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
      return view.summary() satisfies Promise<Replies['useSelection']>;
  }
}
