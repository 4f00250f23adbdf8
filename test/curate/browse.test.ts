import { beforeAll, describe, expect, it } from 'vitest';
import { Catalog, setReview } from '../../src/curate/api.js';
import { SelectionBrowser, type BrowseItem } from '../../src/curate/api.js';
import { selectSubset } from '../../src/curate/pipeline.js';
import type { StoredSelection } from '../../src/curate/selections.js';
import { MINI_COUNT } from '../helpers.js';
import { embeddedMini } from '../support/miniWorkspace.js';

let workspace: string;
let catalog: Catalog;
let stored: StoredSelection;

beforeAll(async () => {
  ({ workspace } = await embeddedMini());
  catalog = await Catalog.open(workspace);
  stored = await selectSubset(catalog, workspace, { method: 'clip-score', budget: '25%' });
});

async function everything(browser: SelectionBrowser, q: Parameters<SelectionBrowser['page']>[0] = {}) {
  return (await browser.page({ ...q, offset: 0, limit: 10_000 })).items;
}

describe('SelectionBrowser: grid pages from the catalog, a selection and the reviews', () => {
  it('pages through the bare catalog in id order; pages join up to the whole', async () => {
    const browser = await SelectionBrowser.open(catalog, workspace);
    const all = await everything(browser);
    expect(all).toHaveLength(MINI_COUNT);
    expect(all.map((i) => i.id)).toEqual([...all.map((i) => i.id)].sort((a, b) => a - b));
    expect(all.every((i) => i.rank === null && i.score === null)).toBe(true);
    const paged: BrowseItem[] = [];
    for (let offset = 0; offset < MINI_COUNT; offset += 7) {
      const page = await browser.page({ offset, limit: 7 });
      expect(page.total).toBe(MINI_COUNT);
      paged.push(...page.items);
    }
    expect(paged).toEqual(all);
    await browser.close();
  });

  it('filters by the method verdict and sorts by score; clip-score picks exactly the top scores', async () => {
    const browser = await SelectionBrowser.open(catalog, workspace, stored.name);
    const selected = await everything(browser, { filter: 'selected', sort: 'pick-order' });
    expect(selected.map((i) => i.key)).toEqual(stored.keys);
    expect(selected.map((i) => i.rank)).toEqual(stored.keys.map((_, r) => r));
    const unselected = await everything(browser, { filter: 'unselected' });
    expect(selected.length + unselected.length).toBe(MINI_COUNT);
    const byScore = await everything(browser, { sort: 'score-desc' });
    const scores = byScore.map((i) => i.score!);
    expect(scores.every((s, i) => i === 0 || s <= scores[i - 1]!)).toBe(true);
    const minSelected = Math.min(...selected.map((i) => i.score!));
    expect(Math.max(...unselected.map((i) => i.score!))).toBeLessThanOrEqual(minSelected);
    const ascending = await browser.page({ sort: 'score-asc', limit: 1 });
    expect(ascending.items[0]!.score).toBe(scores.at(-1));
    await browser.close();
  });

  it('filters by caption kind from the metadata and by manual review', async () => {
    const browser = await SelectionBrowser.open(catalog, workspace, stored.name);
    const kinds = await catalog.rows<{ kind: string; n: bigint }>(
      `SELECT metadata->>'caption_kind' AS kind, count(*) AS n FROM samples GROUP BY 1`,
    );
    for (const { kind, n } of kinds) {
      const page = await browser.page({ captionKind: kind, limit: 5 });
      expect(page.total).toBe(Number(n));
      expect(page.items.every((i) => i.captionKind === kind)).toBe(true);
    }
    const [first, second] = stored.keys;
    await setReview(catalog, [first!], 'reject');
    await setReview(catalog, [second!], 'accept');
    expect((await everything(browser, { filter: 'rejected' })).map((i) => [i.key, i.review])).toEqual([
      [first, 'reject'],
    ]);
    expect((await everything(browser, { filter: 'accepted' })).map((i) => i.key)).toEqual([second]);
    await setReview(catalog, [first!, second!], null);
    expect((await browser.page({ filter: 'rejected' })).total).toBe(0);
    await browser.close();
  });
});
