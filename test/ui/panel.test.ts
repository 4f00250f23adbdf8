/// <reference lib="dom" />
/**
 * The curation panel's page in headless Chromium against a real workspace: grid, filters, keyboard
 * review, neighbours, search, map and histograms. Run by `npm run test:ui` (from .ci/run), not by the
 * README's `npm test`: it needs Debian's chromium. Screenshots go to test-output/ui/.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CurationView } from '../../src/curate/api.js';
import { miniWorkspace, type MiniWorkspace } from '../support/miniWorkspace.js';
import { buildPanel, openPanelPage, type PanelPage } from './harness.js';

const SHOTS = path.resolve(import.meta.dirname, '../../test-output/ui');
let ws: MiniWorkspace;
let view: CurationView;
let panel: PanelPage;

beforeAll(async () => {
  buildPanel();
  mkdirSync(SHOTS, { recursive: true });
  ws = await miniWorkspace();
  view = await CurationView.open(ws.workspace, { encoder: ws.model, mapPoints: 200 });
  panel = await openPanelPage(view);
  await panel.page.waitForSelector('.cell:not(.loading) img.thumb[src^="data:image/webp"]');
}, 120_000);

afterAll(async () => {
  await panel?.close();
  await view?.close();
});

const status = () => panel.page.locator('.status').innerText();
const statusStartsWith = (prefix: string) =>
  panel.page.waitForFunction((p) => document.querySelector('.status')?.textContent?.startsWith(p), prefix);

/** Ids of the loaded cells in grid order (cells are recycled, so DOM order is not grid order). */
function gridOrder(): Promise<number[]> {
  return panel.page.locator('.cell:not([hidden]):not(.loading)').evaluateAll((els) =>
    els
      .map((e) => {
        const m = /translate\((\d+)px, (\d+)px\)/.exec((e as HTMLElement).style.transform)!;
        return { id: Number((e as HTMLElement).dataset.id), x: Number(m[1]), y: Number(m[2]) };
      })
      .sort((a, b) => a.y - b.y || a.x - b.x)
      .map((c) => c.id),
  );
}
const cells = () => panel.page.locator('.cell:not([hidden])');

async function chooseOption(label: string, optionText: string): Promise<void> {
  const select = panel.page.locator(`vscode-single-select[aria-label="${label}"]`);
  await select.click();
  await select.locator('li, .option', { hasText: optionText }).first().click();
}

describe('curation panel page (headless Chromium, real workspace)', () => {
  it('shows a virtualised grid of thumbnails with captions, scores and the selection', async () => {
    const { page } = panel;
    expect(await status()).toContain(`240 of 240 samples shown`);
    expect(await status()).toContain(
      `selection ${ws.stored.name} (clip-score, ${ws.stored.sampleIds.length} picks)`,
    );
    const shown = await cells().count();
    expect(shown).toBeGreaterThan(20);
    expect(shown).toBeLessThan(240);
    const first = await page.locator('.cell').first().locator('.caption').innerText();
    const [item] = (await view.page({ limit: 1 })).items;
    expect(first).toBe(item!.caption);
    await page.screenshot({ path: path.join(SHOTS, 'grid.png') });
  });

  it('filters to the picks and sorts by score', async () => {
    const { page } = panel;
    await chooseOption('Filter', 'Picked by the method');
    await page.waitForFunction(
      (n) => document.querySelector('.status')?.textContent?.startsWith(`${n} of`),
      ws.stored.sampleIds.length,
    );
    await chooseOption('Sort', 'Score, high first');
    await page.waitForTimeout(300);
    const metas = await page.locator('.cell:not([hidden]):not(.loading) .meta').allInnerTexts();
    expect(metas.length).toBeGreaterThan(0);
    const scores = metas.map((m) => Number(m.split(' · ')[1]));
    expect(scores.every((s, i) => i === 0 || s <= scores[i - 1]!)).toBe(true);
    expect(await page.locator('.cell:not([hidden]):not(.picked)').count()).toBe(0);
    await chooseOption('Filter', 'All samples');
    await page.waitForFunction(() => document.querySelector('.status')?.textContent?.startsWith('240 of'));
  });

  it('keyboard: arrows move the focus, R rejects (saved in the catalog), C clears, Enter shows neighbours', async () => {
    const { page } = panel;
    await page.locator('.grid').focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    const focusedId = Number(await page.locator('.cell.focused').getAttribute('data-id'));
    await page.keyboard.press('r');
    await page.waitForSelector(`.cell.rejected[data-id="${focusedId}"]`);
    const rejected = await view.page({ filter: 'rejected' });
    expect(rejected.items.map((i) => i.id)).toEqual([focusedId]);
    await page.keyboard.press('Enter');
    await page.waitForSelector('.results .mini');
    const shownIds = await page
      .locator('.results .mini')
      .evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.id)));
    expect(shownIds).toEqual((await view.neighbours(focusedId, 12)).map((n) => n.id));
    await page.screenshot({ path: path.join(SHOTS, 'neighbours.png') });
    await page.locator('.grid').focus();
    await page.keyboard.press('c');
    await page.waitForSelector(`.cell:not(.rejected)[data-id="${focusedId}"]`);
    expect((await view.page({ filter: 'rejected' })).total).toBe(0);
  });

  it('free-text search shows its hits in the grid, ranked by the index, as a removable filter', async () => {
    const { page } = panel;
    const hits = (await view.search('a photo of a truck', 48)).map((h) => h.id);
    const field = page.locator('vscode-textfield.search input');
    await field.fill('a photo of a truck');
    await field.press('Enter');
    await page.waitForFunction(
      (n) => document.querySelector('.status')?.textContent?.startsWith(`${n} of 240`),
      hits.length,
    );
    await page.waitForTimeout(300);
    const shown = await gridOrder();
    expect(shown.length).toBeGreaterThan(10);
    expect(shown).toEqual(hits.slice(0, shown.length));
    expect(await page.locator('.chip', { hasText: 'search: “a photo of a truck”' }).count()).toBe(1);
    await page.screenshot({ path: path.join(SHOTS, 'search-grid.png') });
    await page.locator('.chip', { hasText: 'search:' }).locator('.chip-remove').click();
    await page.waitForFunction(() => document.querySelector('.status')?.textContent?.startsWith('240 of'));
  });

  it('map: draws the UMAP points, a drag filters the grid to the points inside', async () => {
    const { page } = panel;
    await page.locator('vscode-tab-header', { hasText: 'Map' }).click();
    await page.waitForSelector('.legend-note');
    expect(await page.locator('.legend-note').innerText()).toContain('200 of 240 samples');
    const painted = await page.locator('canvas.map-canvas').evaluate((c) => {
      const canvas = c as HTMLCanvasElement;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++;
      return n;
    });
    expect(painted).toBeGreaterThan(200);
    await page.screenshot({ path: path.join(SHOTS, 'map.png') });
    // Brush the left half of the map: the grid shows exactly the mapped points with x < 0.5.
    const box = (await page.locator('canvas.map-canvas').boundingBox())!;
    const map = await view.map();
    const pad = 8;
    const xCut = box.width / 2;
    const inside = map.ids.filter((_, i) => pad + map.x[i]! * (box.width - 2 * pad) <= xCut);
    await page.mouse.move(box.x + 1, box.y + 1);
    await page.mouse.down();
    await page.mouse.move(box.x + xCut / 2, box.y + box.height / 2, { steps: 4 });
    await page.mouse.move(box.x + xCut, box.y + box.height - 1, { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction(
      (n) => document.querySelector('.status')?.textContent?.startsWith(`${n} of 240`),
      inside.length,
    );
    expect(await status()).toContain(`map filter: ${inside.length} points`);
    await page.locator('vscode-button', { hasText: 'Show all' }).click();
    await page.waitForFunction(() => document.querySelector('.status')?.textContent?.startsWith('240 of'));
  });

  it('scores tab: a histogram whose bars add up to the scored pool', async () => {
    const { page } = panel;
    await page.locator('vscode-tab-header', { hasText: 'Scores' }).click();
    await page.waitForSelector('svg.histogram rect');
    const titles = await page.locator('svg.histogram rect title').allTextContents();
    const counts = titles.map((t) => Number(/: (\d+) /.exec(t)![1]));
    const picked = titles.filter((t) => t.endsWith(' picked') && !t.includes('not picked'));
    const h = (await view.histogram(30))!;
    expect(counts.reduce((a, b) => a + b, 0)).toBe(
      [...h.selected, ...h.unselected].reduce((a, b) => a + b, 0),
    );
    expect(picked.map((t) => Number(/: (\d+) /.exec(t)![1])).reduce((a, b) => a + b, 0)).toBe(
      ws.stored.sampleIds.length,
    );
    await page.screenshot({ path: path.join(SHOTS, 'histogram.png') });
  });

  it('cards show the class label, and the score is explained (legend and tooltip)', async () => {
    const { page } = panel;
    const labels = await page.locator('.cell:not([hidden]):not(.loading) .label-badge').allInnerTexts();
    const { items } = await view.page({ limit: 5 });
    for (const item of items) {
      expect(item.label).not.toBeNull();
      expect(await page.locator(`.cell[data-id="${item.id}"] .label-badge`).innerText()).toBe(item.label);
    }
    expect(labels.length).toBeGreaterThan(10);
    expect(await page.locator('.score-legend').innerText()).toContain('Score under each card: CLIP score');
    const title = await page.locator(`.cell[data-id="${items[0]!.id}"] .meta`).getAttribute('title');
    expect(title).toContain('CLIP score');
    expect(title).toContain('cosine similarity of the image and caption embeddings');
  });

  it('filter bar: a metadata filter, bulk tagging of its result, the tag filter, a saved view, tagging marked samples', async () => {
    const { page } = panel;
    const where = [{ field: 'metadata.label', op: '=' as const, value: 'bird' }];
    const birds = (await view.page({ where, limit: 1 })).total;
    expect(birds).toBeGreaterThan(0);
    expect(birds).toBeLessThan(240);
    // The field select starts on metadata.label and the operator on =.
    const value = page.locator('vscode-textfield.filter-value input');
    await value.fill('bird');
    await value.press('Enter');
    await statusStartsWith(`${birds} of 240`);
    expect(await page.locator('.chip', { hasText: 'metadata.label = bird' }).count()).toBe(1);
    await page.waitForTimeout(300);
    const labels = await page.locator('.cell:not([hidden]):not(.loading) .label-badge').allInnerTexts();
    expect(labels.length).toBe(Math.min(birds, labels.length));
    expect(new Set(labels)).toEqual(new Set(['bird']));

    // Tag every sample the grid shows (all pages), then filter by the tag alone.
    await page.locator('vscode-textfield.tag-name input').fill('birdy');
    await page.locator('vscode-button', { hasText: 'Tag all shown' }).click();
    await page.waitForFunction(
      (n) => document.querySelector('.status')?.textContent?.includes(`${n} samples tagged “birdy”`),
      birds,
    );
    expect((await view.page({ tags: ['birdy'], limit: 240 })).items.map((i) => i.id)).toEqual(
      (await view.page({ where, limit: 240 })).items.map((i) => i.id),
    );
    await page.waitForSelector('.cell:not([hidden]) .tag-badge:not([hidden])');
    await page.locator('.chip', { hasText: 'metadata.label = bird' }).locator('.chip-remove').click();
    await statusStartsWith('240 of');
    await chooseOption('Tag filter', `Tag: birdy (${birds})`);
    await statusStartsWith(`${birds} of 240`);

    // Save the view, clear the filter, reopen the view.
    await page.locator('vscode-textfield.view-name input').fill('birds');
    await page.locator('vscode-button', { hasText: 'Save view' }).click();
    await page.waitForFunction(() =>
      document.querySelector('.status')?.textContent?.includes('view “birds” saved'),
    );
    await page.locator('.chip', { hasText: 'tag: birdy' }).locator('.chip-remove').click();
    await statusStartsWith('240 of');
    await chooseOption('Saved views', 'View: birds');
    await statusStartsWith(`${birds} of 240`);
    expect(await page.locator('.chip', { hasText: 'tag: birdy' }).count()).toBe(1);
    await page.screenshot({ path: path.join(SHOTS, 'filters-tags.png') });
    await page.locator('.chip', { hasText: 'tag: birdy' }).locator('.chip-remove').click();
    await statusStartsWith('240 of');

    // Mark two cells (ctrl-click each) and tag just those.
    const [first, second] = (await view.page({ limit: 2 })).items.map((i) => i.id);
    await page.locator(`.cell[data-id="${first}"]`).click({ modifiers: ['Control'] });
    await page.locator(`.cell[data-id="${second}"]`).click({ modifiers: ['Control'] });
    await page.locator('vscode-textfield.tag-name input').fill('pair');
    await page.getByRole('button', { name: 'Tag marked', exact: true }).click();
    await page.waitForFunction(() =>
      document.querySelector('.status')?.textContent?.includes('2 samples tagged'),
    );
    expect((await view.page({ tags: ['pair'] })).items.map((i) => i.id)).toEqual([first, second]);
    await page.waitForSelector(`.cell[data-id="${first}"] .tag-badge:not([hidden])`);
  });

  it('the export button asks the host for the export command; no console errors or CSP violations', async () => {
    await panel.page.locator('vscode-button', { hasText: 'Export…' }).click();
    await expect.poll(() => panel.commands).toContain('export');
    expect(panel.errors).toEqual([]);
  });
});
