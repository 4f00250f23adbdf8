/**
 * Saved views of the grid: a name for the selection shown and the grid's filters and sort, to reopen
 * later (the panel's "Views" menu). Kept in `<workspace>/views.json`, written atomically.
 *
 *   { "version": 1, "views": [{ "name", "selection", "query": {filter, sort, where, tags, …}, "savedAt" }] }
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../io/atomic.js';
import { BROWSE_FILTERS, BROWSE_SORTS } from './browse.js';
import { FILTER_OPS } from './fieldFilters.js';

export const VIEWS_FILE = 'views.json';

const savedQuery = z.strictObject({
  filter: z.enum(BROWSE_FILTERS),
  sort: z.enum(BROWSE_SORTS),
  captionKind: z.string().optional(),
  where: z.array(z.strictObject({ field: z.string(), op: z.enum(FILTER_OPS), value: z.string() })).optional(),
  tags: z.array(z.string()).optional(),
  search: z.strictObject({ text: z.string().min(1), k: z.number().int().positive() }).optional(),
  ids: z.array(z.number().int()).optional(),
});

const savedView = z.strictObject({
  name: z.string().trim().min(1).max(80),
  selection: z.string().nullable(),
  query: savedQuery,
  savedAt: z.string(),
});

const viewsFile = z.strictObject({ version: z.literal(1), views: z.array(savedView) });

export type SavedViewQuery = z.infer<typeof savedQuery>;
export type SavedView = z.infer<typeof savedView>;

/** A view with a bad name or query, a missing view, or a damaged views file. */
export class SavedViewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SavedViewError';
  }
}

function viewsPath(workspace: string): string {
  return path.join(workspace, VIEWS_FILE);
}

/** Every saved view, in the order they were first saved. */
export async function listSavedViews(workspace: string): Promise<SavedView[]> {
  const file = viewsPath(workspace);
  if (!existsSync(file)) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new SavedViewError(`${file} is damaged (${(err as Error).message}); fix or delete it`);
  }
  const result = viewsFile.safeParse(parsed);
  if (!result.success)
    throw new SavedViewError(`${file} is damaged: ${z.prettifyError(result.error).replaceAll('\n', ' ')}`);
  return result.data.views;
}

export async function loadSavedView(workspace: string, name: string): Promise<SavedView> {
  const found = (await listSavedViews(workspace)).find((v) => v.name === name);
  if (!found) throw new SavedViewError(`no saved view named '${name}' in ${viewsPath(workspace)}`);
  return found;
}

/** Save `view` under its name (replacing a view of the same name); returns the stored view. */
export async function saveView(
  workspace: string,
  view: Omit<SavedView, 'savedAt'> & { savedAt?: string },
): Promise<SavedView> {
  const result = savedView.safeParse({ savedAt: new Date().toISOString(), ...view });
  if (!result.success)
    throw new SavedViewError(
      `view '${String(view.name)}': ${z.prettifyError(result.error).replaceAll('\n', ' ')}`,
    );
  const stored = result.data;
  const views = await listSavedViews(workspace);
  const at = views.findIndex((v) => v.name === stored.name);
  if (at >= 0) views[at] = stored;
  else views.push(stored);
  await write(workspace, views);
  return stored;
}

export async function deleteSavedView(workspace: string, name: string): Promise<void> {
  const views = await listSavedViews(workspace);
  const rest = views.filter((v) => v.name !== name);
  if (rest.length === views.length)
    throw new SavedViewError(`no saved view named '${name}' in ${viewsPath(workspace)}`);
  await write(workspace, rest);
}

async function write(workspace: string, views: SavedView[]): Promise<void> {
  await writeFileAtomic(viewsPath(workspace), `${JSON.stringify({ version: 1, views }, null, 2)}\n`);
}
