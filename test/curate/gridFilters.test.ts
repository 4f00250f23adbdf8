/**
 * The panel's grid beyond accept/reject, on a real workspace: field filters against a brute-force
 * evaluation of every sample, tags that persist across reopening, saved views, and a free-text search
 * shown as a ranked grid filter.
 */
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answer } from '../../extension/dispatch.js';
import { SelectionBrowser, type BrowseQuery } from '../../src/curate/browse.js';
import { FilterInputError, parseFilter, type FieldFilter } from '../../src/curate/fieldFilters.js';
import {
  deleteSavedView,
  listSavedViews,
  loadSavedView,
  saveView,
  SavedViewError,
} from '../../src/curate/savedViews.js';
import type { StoredSelection } from '../../src/curate/selections.js';
import { SampleTags, TagInputError, TAGS_FILE } from '../../src/curate/tags.js';
import { CurationView } from '../../src/curate/view.js';
import { MINI_COUNT } from '../helpers.js';
import { miniWorkspace } from '../support/miniWorkspace.js';

interface Row {
  id: number;
  key: string;
  caption: string;
  image_bytes: number;
  metadata: Record<string, unknown>;
  score: number | null;
}

let workspace: string;
let model: string;
let stored: StoredSelection;
let view: CurationView;
let rows: Row[];

beforeAll(async () => {
  ({ workspace, model, stored } = await miniWorkspace());
  view = await CurationView.open(workspace, { encoder: model });
  const scored = await browse({ limit: MINI_COUNT });
  const score = new Map(scored.map((i) => [i.id, i.score]));
  rows = (
    await view.withCatalog((c) =>
      c.rows<{ id: bigint; key: string; caption: string; image_bytes: number; metadata: string }>(
        'SELECT id, key, caption, image_bytes, metadata::VARCHAR AS metadata FROM samples ORDER BY id',
      ),
    )
  ).map((r) => ({
    ...r,
    id: Number(r.id),
    metadata: JSON.parse(r.metadata),
    score: score.get(Number(r.id))!,
  }));
}, 120_000);

afterAll(async () => {
  await view?.close();
});

/** Every item of a query, through a browser of the shown selection (no thumbnails). */
async function browse(q: BrowseQuery) {
  return view.withCatalog(async (catalog) => {
    const browser = await SelectionBrowser.open(catalog, workspace, stored.name);
    try {
      return (await browser.page({ limit: 10_000, ...q })).items;
    } finally {
      await browser.close();
    }
  });
}

// The brute force: the documented semantics of fieldFilters.ts, evaluated in JS on every row.
function valueOf(row: Row, field: string): string | null {
  if (field === 'score') return row.score === null ? null : String(row.score);
  if (field.startsWith('metadata.')) {
    const v = row.metadata[field.slice('metadata.'.length)];
    if (v === undefined || v === null) return null;
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return String(row[field as keyof Row]);
}
const num = (s: string | null) =>
  s === null || s.trim() === '' || !Number.isFinite(Number(s)) ? null : Number(s);
function holds(row: Row, f: FieldFilter): boolean {
  const v = valueOf(row, f.field);
  const equal = num(v) !== null && num(f.value) !== null ? num(v) === num(f.value) : v === f.value;
  switch (f.op) {
    case '=':
      return v !== null && equal;
    case '!=':
      return v === null || !equal;
    case '<':
      return num(v) !== null && num(v)! < Number(f.value);
    case '>':
      return num(v) !== null && num(v)! > Number(f.value);
    case 'contains':
      return v !== null && v.toLowerCase().includes(f.value.toLowerCase());
  }
}
const expected = (filters: FieldFilter[]) =>
  rows.filter((r) => filters.every((f) => holds(r, f))).map((r) => r.id);

describe('field filters: any catalog field, AND-combined, in SQL', () => {
  it('lists the sample columns, the metadata keys and the score as fields', async () => {
    const names = (await view.fields()).map((f) => f.name);
    expect(names).toEqual(
      expect.arrayContaining(['key', 'caption', 'width', 'image_bytes', 'metadata.label', 'score']),
    );
    const keys = new Set(rows.flatMap((r) => Object.keys(r.metadata)));
    expect(names.filter((n) => n.startsWith('metadata.')).sort()).toEqual(
      [...keys].map((k) => `metadata.${k}`).sort(),
    );
    expect(names).not.toContain('metadata');
  });

  const medianOf = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const median = () => medianOf(rows.map((r) => r.score!));
  const cases: Array<[string, () => FieldFilter[]]> = [
    ['metadata text =', () => [{ field: 'metadata.label', op: '=', value: 'bird' }]],
    ['metadata text !=', () => [{ field: 'metadata.label', op: '!=', value: 'bird' }]],
    ['metadata number > (and 2.0 = 2)', () => [{ field: 'metadata.label_index', op: '>', value: '6' }]],
    ['numeric equality across spellings', () => [{ field: 'metadata.label_index', op: '=', value: '2.0' }]],
    [
      'AND of three, with the selection score',
      () => [
        { field: 'metadata.label_index', op: '<', value: '5' },
        { field: 'metadata.caption_kind', op: '=', value: 'clean' },
        { field: 'score', op: '>', value: String(median()) },
      ],
    ],
    ['caption contains, case-insensitive', () => [{ field: 'caption', op: 'contains', value: 'PHOTO' }]],
    [
      'a column, numerically',
      () => [{ field: 'image_bytes', op: '<', value: String(medianOf(rows.map((r) => r.image_bytes))) }],
    ],
    ['key contains', () => [{ field: 'key', op: 'contains', value: rows[7]!.key.slice(-5).toUpperCase() }]],
    ['a metadata key some samples lack', () => [{ field: 'metadata.dup_of', op: '!=', value: 'x' }]],
  ];
  it.each(cases)('%s: exactly the rows the brute force keeps', async (_name, make) => {
    const filters = make();
    const want = expected(filters);
    const got = (await browse({ where: filters })).map((i) => i.id);
    expect(got).toEqual(want);
    // Not vacuous: every case except the last splits the catalog.
    if (_name !== 'a metadata key some samples lack') {
      expect(want.length).toBeGreaterThan(0);
      expect(want.length).toBeLessThan(MINI_COUNT);
    }
  });

  it('user text is bound, never spliced: a quote-laden value is just text that matches nothing', async () => {
    const evil = "x' OR 1=1; DROP TABLE samples; --";
    expect(await browse({ where: [{ field: 'caption', op: '=', value: evil }] })).toEqual([]);
    expect(await browse({ where: [{ field: 'metadata.label', op: 'contains', value: evil }] })).toEqual([]);
    expect(await browse({ limit: MINI_COUNT })).toHaveLength(MINI_COUNT);
  });

  it('rejects unknown fields, unknown operators and non-numbers for < and >, naming the filter', async () => {
    await expect(browse({ where: [{ field: 'samples; --', op: '=', value: '1' }] })).rejects.toThrow(
      FilterInputError,
    );
    await expect(browse({ where: [{ field: 'width', op: '<', value: 'wide' }] })).rejects.toThrow(
      /width < wide: < compares numbers/,
    );
    await expect(browse({ where: [{ field: 'width', op: 'LIKE' as '=', value: '1' }] })).rejects.toThrow(
      /unknown operator 'LIKE'/,
    );
    expect(parseFilter('metadata.label=cat')).toEqual({ field: 'metadata.label', op: '=', value: 'cat' });
    expect(parseFilter('width > 32')).toEqual({ field: 'width', op: '>', value: '32' });
    expect(parseFilter('caption~dog')).toEqual({ field: 'caption', op: 'contains', value: 'dog' });
    expect(() => parseFilter('nothing')).toThrow(FilterInputError);
  });
});

describe('tags: free-form, per sample, in the workspace', () => {
  it('tags samples by id, filters by tag, shows tags on items, and survives reopening the workspace', async () => {
    const [a, b, c] = rows.map((r) => r.id);
    expect(await view.tag({ ids: [a!, b!] }, ['hard', 'look-again'])).toBe(2);
    expect(await view.tag({ ids: [b!, c!] }, ['hard'])).toBe(1); // b had it already
    expect((await browse({ tags: ['hard'] })).map((i) => i.id)).toEqual([a, b, c]);
    expect((await browse({ tags: ['hard', 'look-again'] })).map((i) => [i.id, i.tags])).toEqual([
      [a, ['hard', 'look-again']],
      [b, ['hard', 'look-again']],
    ]);
    expect(existsSync(path.join(workspace, TAGS_FILE))).toBe(true);
    expect(readdirSync(workspace).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    await view.close();
    view = await CurationView.open(workspace, { encoder: model });
    expect((await browse({ tags: ['look-again'] })).map((i) => i.id)).toEqual([a, b]);
    expect(await view.tagCounts()).toEqual([
      { tag: 'hard', count: 3 },
      { tag: 'look-again', count: 2 },
    ]);
    expect(await view.tag({ ids: [a!, b!, c!] }, ['hard', 'look-again'], true)).toBe(3);
    expect(await browse({ tags: ['hard'] })).toEqual([]);
    expect((await SampleTags.load(workspace)).counts()).toEqual([]);
  });

  it('bulk-tags exactly the current filter result', async () => {
    const where: FieldFilter[] = [
      { field: 'metadata.label', op: '=', value: 'cat' },
      { field: 'metadata.caption_kind', op: '=', value: 'clean' },
    ];
    const want = expected(where);
    expect(await view.tag({ query: { where, filter: 'selected' } }, ['clean-cat-pick'])).toBe(
      (await browse({ where, filter: 'selected' })).length,
    );
    const picked = new Set(stored.sampleIds.map(Number));
    expect((await browse({ tags: ['clean-cat-pick'] })).map((i) => i.id)).toEqual(
      want.filter((id) => picked.has(id)),
    );
    await view.tag({ query: { tags: ['clean-cat-pick'] } }, ['clean-cat-pick'], true);
  });

  it('refuses empty or control-character tags and unknown ids without writing anything', async () => {
    const before = (await SampleTags.load(workspace)).counts();
    await expect(view.tag({ ids: [rows[0]!.id] }, ['  '])).rejects.toThrow(TagInputError);
    await expect(view.tag({ ids: [rows[0]!.id] }, ['a\nb'])).rejects.toThrow(/control characters/);
    await expect(view.tag({ ids: [999_999] }, ['x'])).rejects.toThrow(/999999 is not in the catalog/);
    expect((await SampleTags.load(workspace)).counts()).toEqual(before);
  });
});

describe('saved views', () => {
  it('round-trip: save, list, reopen (restoring the selection), replace by name, delete', async () => {
    const query = {
      filter: 'selected' as const,
      sort: 'score-desc' as const,
      where: [{ field: 'metadata.label', op: '=' as const, value: 'ship' }],
      tags: ['hard'],
    };
    const listed = await answer(view, { kind: 'saveView', name: 'ships', query });
    expect(listed.map((v) => [v.name, v.selection, v.query])).toEqual([['ships', stored.name, query]]);
    await view.useSelection(null);
    const opened = await answer(view, { kind: 'openView', name: 'ships' });
    expect(opened.view.query).toEqual(query);
    expect(opened.summary.selection).toBe(stored.name);
    expect(view.selection).toBe(stored.name);

    await saveView(workspace, { name: 'ships', selection: null, query: { filter: 'all', sort: 'catalog' } });
    await saveView(workspace, { name: 'all', selection: null, query: { filter: 'all', sort: 'catalog' } });
    expect((await listSavedViews(workspace)).map((v) => [v.name, v.selection])).toEqual([
      ['ships', null],
      ['all', null],
    ]);
    await deleteSavedView(workspace, 'ships');
    await expect(loadSavedView(workspace, 'ships')).rejects.toThrow(/no saved view named 'ships'/);
    await expect(
      saveView(workspace, { name: ' ', selection: null, query: { filter: 'all', sort: 'catalog' } }),
    ).rejects.toThrow(SavedViewError);
  });

  it('a damaged views file is an error naming the file', async () => {
    await writeFile(path.join(workspace, 'views.json'), '{"version": 1, "views": [{"name": 3}]}');
    await expect(listSavedViews(workspace)).rejects.toThrow(/views\.json is damaged/);
    await writeFile(path.join(workspace, 'views.json'), '{"version": 1, "views": []}');
  });
});

describe('search results as a grid filter', () => {
  it('ranked in search order, filterable, reviewable and taggable like any page', async () => {
    const text = 'a photo of a truck';
    const hits = await view.search(text, 30);
    const page = await view.searchPage({ sort: 'relevance', limit: 100 }, { text, k: 30 });
    expect(page.total).toBe(hits.length);
    expect(page.items.map((i) => i.id)).toEqual(hits.map((h) => h.id));
    expect(page.items.map((i) => i.similarity)).toEqual(hits.map((h) => h.similarity));
    expect(page.items.every((i) => i.thumbnail?.startsWith('data:image/webp'))).toBe(true);

    // Paged, the pages join up to the same order.
    const first = await view.searchPage({ sort: 'relevance', limit: 7 }, { text, k: 30 });
    const second = await view.searchPage({ sort: 'relevance', offset: 7, limit: 7 }, { text, k: 30 });
    expect([...first.items, ...second.items].map((i) => i.id)).toEqual(hits.slice(0, 14).map((h) => h.id));

    // AND with a field filter keeps the search order.
    const where: FieldFilter[] = [{ field: 'metadata.caption_kind', op: '=', value: 'clean' }];
    const keep = new Set(expected(where));
    const filtered = await view.searchPage({ sort: 'relevance', where, limit: 100 }, { text, k: 30 });
    expect(filtered.items.map((i) => i.id)).toEqual(hits.map((h) => h.id).filter((id) => keep.has(id)));

    // Bulk-tag the search result.
    expect(await view.tag({ query: {}, search: { text, k: 30 } }, ['trucks?'])).toBe(hits.length);
    expect((await browse({ tags: ['trucks?'] })).map((i) => i.id)).toEqual(
      hits.map((h) => h.id).sort((a, b) => a - b),
    );
    const tagged = await answer(view, {
      kind: 'page',
      query: { filter: 'all', sort: 'relevance', search: { text, k: 30 }, offset: 0, limit: 5 },
    });
    expect(tagged.items.map((i) => [i.id, i.tags])).toEqual(hits.slice(0, 5).map((h) => [h.id, ['trucks?']]));
  });
});
