/**
 * The messages between the extension host and the curation panel's webview. Both sides import these
 * types (the webview with `import type`, so nothing from Node reaches the browser bundle) and switch on
 * one discriminant. Requests carry an id that the host's reply settles.
 */

export type Filter = 'all' | 'selected' | 'unselected' | 'accepted' | 'rejected' | 'errors';
export type Sort = 'catalog' | 'score-desc' | 'score-asc' | 'pick-order';
export type Decision = 'accept' | 'reject';

export interface GridQuery {
  filter: Filter;
  captionKind?: string;
  /** Only these catalog ids (a brush on the map). */
  ids?: number[];
  sort: Sort;
  offset: number;
  limit: number;
}

export interface GridItem {
  id: number;
  key: string;
  caption: string;
  captionKind: string | null;
  score: number | null;
  rank: number | null;
  review: Decision | null;
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

/** What the page can ask; `Replies[kind]` is what comes back. */
export type Request =
  | { kind: 'summary' }
  | { kind: 'page'; query: GridQuery }
  | { kind: 'neighbours'; id: number; k: number }
  | { kind: 'search'; text: string; k: number }
  | { kind: 'map' }
  | { kind: 'histogram'; bins: number }
  | { kind: 'review'; ids: number[]; decision: Decision | null }
  | { kind: 'useSelection'; name: string | null };

export interface Replies {
  summary: Summary;
  page: GridPage;
  neighbours: GridItem[];
  search: GridItem[];
  map: MapData;
  histogram: Histogram | null;
  review: number;
  useSelection: Summary;
}

/** Palette commands the page's buttons run on the host (dialogs, progress and files stay there). */
export type HostCommand = 'select' | 'compare' | 'export' | 'report';

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
  | { type: 'search'; text: string };

/** The UI state the page keeps with `setState` across reloads; the data stays on the host. */
export interface UiState {
  filter: Filter;
  sort: Sort;
  captionKind?: string;
  scrollTop: number;
}
