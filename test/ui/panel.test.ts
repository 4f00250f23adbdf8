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

  it('free-text search lists images ranked by the index', async () => {
    const { page } = panel;
    const field = page.locator('vscode-textfield.search input');
    await field.fill('a photo of a truck');
    await field.press('Enter');
    await page.waitForFunction(() => document.querySelector('.results h3')?.textContent?.includes('truck'));
    const ids = await page
      .locator('.results .mini')
      .evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.id)));
    expect(ids).toEqual((await view.search('a photo of a truck', 48)).map((h) => h.id));
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

  it('the export button asks the host for the export command; no console errors or CSP violations', async () => {
    await panel.page.locator('vscode-button', { hasText: 'Export…' }).click();
    await expect.poll(() => panel.commands).toContain('export');
    expect(panel.errors).toEqual([]);
  });
});
