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
import { diffSelections } from '../../src/curate/diff.js';
import { comparisonFile, saveComparison, selectSubset, type Comparison } from '../../src/curate/pipeline.js';
import { loadSelection } from '../../src/curate/selections.js';
import { seededMetric, withinNoise, type SeededMetric } from '../../src/eval/types.js';
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

  describe('compare view (saved comparison files, values written by the test)', () => {
    const run = 'bench';
    const random = 'bench/random-25pct';
    const kCenter = 'bench/k-center-25pct';
    // Seeded metrics written by the test: clip-score best, random within noise of it, k-center not.
    const zeroShot = {
      clip: seededMetric([0.39, 0.4, 0.41]),
      random: seededMetric([0.38, 0.395, 0.41]),
      kCenter: seededMetric([0.29, 0.3, 0.31]),
    };
    const recall = (base: number) => seededMetric([base - 0.02, base, base + 0.02]);
    const proxyClip = (z: SeededMetric, r5: number) => ({
      zeroShotTop1: z,
      i2tR1: recall(r5 / 2),
      i2tR5: recall(r5),
      i2tR10: recall(Math.min(1, r5 * 1.5)),
      t2iR1: recall(r5 / 2),
      t2iR5: recall(r5 - 0.05),
      t2iR10: recall(Math.min(1, r5 * 1.5)),
    });
    const proxySsl = (knn: number) => ({
      knnTop1: seededMetric([knn - 0.01, knn, knn + 0.01]),
      probeTop1: seededMetric([knn, knn, knn]),
      alignment: seededMetric([0.5, 0.5, 0.5]),
      uniformity: seededMetric([-2, -2, -2]),
    });
    const pct = (x: number) => (x * 100).toFixed(1);
    const pm = (m: SeededMetric) => `${pct(m.mean)} ± ${pct(m.std)}`;

    /** Header label → text of that column's cell in the row of `method`. */
    async function rowCells(method: string): Promise<Record<string, string>> {
      const labels = await panel.page.locator('.compare-table thead tr.labels th').allInnerTexts();
      const row = panel.page.locator('.compare-table tbody tr', {
        has: panel.page.locator(`th.method`, { hasText: method }),
      });
      const cellsText = await row.locator('th, td').allInnerTexts();
      return Object.fromEntries(labels.map((l, i) => [l, cellsText[i] ?? '']));
    }

    beforeAll(async () => {
      await view.withCatalog(async (catalog) => {
        for (const [method, name] of [
          ['random', random],
          ['k-center', kCenter],
        ] as const)
          await selectSubset(catalog, ws.workspace, { method, budget: '25%', name });
      });
      await view.refresh();
      const kept = ws.stored.sampleIds.length;
      const base = { budget: kept, kept, classKL: 0.01, duplicates: null };
      const comparison: Comparison = {
        budget: '25%',
        run,
        pool: 240,
        heldOut: 0,
        rows: [
          {
            ...base,
            method: 'clip-score',
            selection: ws.stored.name,
            seconds: 0.5,
            probeAccuracy: 0.61,
            probe: seededMetric([0.6, 0.61, 0.62]),
            meanClipScore: 0.31,
            badCaptions: 0.05,
            proxyClip: proxyClip(zeroShot.clip, 0.5),
            proxySsl: proxySsl(0.44),
          },
          {
            ...base,
            method: 'random',
            selection: random,
            seconds: 0.1,
            probeAccuracy: 0.55,
            probe: seededMetric([0.5, 0.55, 0.6]),
            meanClipScore: 0.25,
            badCaptions: 0.2,
            proxyClip: proxyClip(zeroShot.random, 0.45),
            proxySsl: proxySsl(0.46),
          },
          {
            ...base,
            method: 'k-center',
            selection: kCenter,
            seconds: 2.5,
            probeAccuracy: 0.4,
            probe: seededMetric([0.39, 0.4, 0.41]),
            meanClipScore: 0.27,
            badCaptions: 0.15,
            proxyClip: proxyClip(zeroShot.kCenter, 0.3),
            proxySsl: proxySsl(0.3),
          },
          {
            ...base,
            method: 'herding',
            selection: 'bench/herding-25pct',
            kept: 0,
            seconds: 0,
            probeAccuracy: null,
            meanClipScore: NaN,
            classKL: null,
            badCaptions: null,
            error: 'out of memory in the test',
          },
        ],
        reference: {
          probeAccuracy: 0.66,
          meanClipScore: 0.27,
          classKL: 0,
          badCaptions: 0.18,
          duplicates: null,
        },
      };
      await saveComparison(ws.workspace, comparison);
      // A second budget of the same run (its table comes second: budgets in increasing size).
      await saveComparison(ws.workspace, {
        ...comparison,
        budget: '50%',
        rows: comparison.rows.map((r) => ({ ...r, budget: 120, kept: r.error ? 0 : 120 })),
      });
      // A comparison saved before seeded and proxy metrics: scalar probe, no proxy fields, no truth.
      const old = {
        budget: '25%',
        pool: 240,
        heldOut: 48,
        rows: [
          {
            method: 'clip-score',
            selection: ws.stored.name,
            budget: kept,
            kept,
            seconds: 0.4,
            probeAccuracy: 0.52,
            meanClipScore: 0.3,
            classKL: 0.1,
            badCaptions: null,
            duplicates: null,
          },
          {
            method: 'random',
            selection: random,
            budget: kept,
            kept,
            seconds: 0.1,
            probeAccuracy: 0.57,
            meanClipScore: 0.24,
            classKL: 0.02,
            badCaptions: null,
            duplicates: null,
          },
        ],
        reference: {
          probeAccuracy: 0.6,
          meanClipScore: 0.26,
          classKL: 0,
          badCaptions: null,
          duplicates: null,
        },
      };
      await saveComparison(ws.workspace, old as Comparison, comparisonFile(ws.workspace, 'old', '25%'));
    });

    it('shows a saved comparison: mean ± std in percent, the best bold, ≈ within noise, absent truth columns left out', async () => {
      // The test's values must make all three cases happen.
      expect(withinNoise(zeroShot.random, zeroShot.clip)).toBe(true);
      expect(withinNoise(zeroShot.kCenter, zeroShot.clip)).toBe(false);
      const { page } = panel;
      await panel.post({ type: 'showCompare', run: 'bench' });
      await page.waitForSelector('.compare-table');
      expect(await page.locator('.grid').isVisible()).toBe(false);
      const labels = await page.locator('.compare-table thead tr.labels th').allInnerTexts();
      expect(labels).toEqual([
        'method',
        'kept',
        'seconds',
        'zero-shot top-1',
        'i2t R@5',
        't2i R@5',
        'kNN top-1',
        'accuracy',
        'mean CLIP score',
        'bad captions %',
      ]);
      const groups = await page.locator('.compare-table thead tr.groups th').allInnerTexts();
      expect(groups).toContain('Ground truth from dataset metadata');

      const clip = await rowCells('clip-score');
      expect(clip['zero-shot top-1']).toBe(pm(zeroShot.clip));
      expect(clip['accuracy']).toBe('61.0 ± 1.0');
      expect(clip['mean CLIP score']).toBe('0.310');
      expect(clip['bad captions %']).toBe('5.0');
      const rnd = await rowCells('random');
      expect(rnd['zero-shot top-1']).toBe(`≈ ${pm(zeroShot.random)}`);
      expect(rnd['kNN top-1']).toBe(pm(seededMetric([0.45, 0.46, 0.47])));
      const kc = await rowCells('k-center');
      expect(kc['zero-shot top-1']).toBe(pm(zeroShot.kCenter));

      // Bold: the best mean of each quality column (higher is better; lower for bad captions).
      const bold = async (method: string) =>
        page
          .locator('.compare-table tbody tr', { has: page.locator('th.method', { hasText: method }) })
          .locator('td.best')
          .count();
      const cell = (method: string, column: number) =>
        page
          .locator('.compare-table tbody tr', { has: page.locator('th.method', { hasText: method }) })
          .locator('td')
          .nth(column);
      expect(await cell('clip-score', 2).locator('strong').count()).toBe(1); // zero-shot top-1
      expect(await cell('random', 2).locator('strong').count()).toBe(0);
      expect(await cell('random', 2).getAttribute('class')).toContain('near');
      expect(await cell('k-center', 2).getAttribute('class')).not.toContain('near');
      expect(await cell('random', 5).locator('strong').count()).toBe(1); // kNN top-1: random best
      expect(await cell('clip-score', 8).locator('strong').count()).toBe(1); // bad captions: lowest
      expect(await bold('k-center')).toBe(0);

      const legend = await page.locator('.compare-legend').allInnerTexts();
      expect(legend.join(' ')).toContain('≈ within noise of the best (2 standard errors over 3 seeds)');
      expect(await page.locator('tr.failed .row-error').innerText()).toBe(
        'failed: out of memory in the test',
      );
      const reference = await rowCells('whole pool');
      expect(reference['kept']).toBe('240');
      expect(reference['accuracy']).toBe('66.0');
      await page.screenshot({ path: path.join(SHOTS, 'compare.png') });
    });

    it('shows an old comparison (no seeded or proxy metrics) with what it has', async () => {
      const { page } = panel;
      await panel.post({ type: 'showCompare', run: 'old' });
      await page.waitForFunction(() =>
        document.querySelector('.compare-source')?.textContent?.includes('/old/'),
      );
      const labels = await page.locator('.compare-table thead tr.labels th').allInnerTexts();
      expect(labels).toEqual(['method', 'kept', 'seconds', 'accuracy', 'mean CLIP score']);
      expect(await page.locator('.compare-table thead .truth').count()).toBe(0);
      const rnd = await rowCells('random');
      expect(rnd['accuracy']).toBe('57.0');
      expect(await page.locator('.compare-table td.best', { hasText: '57.0' }).count()).toBe(1);
      expect(await page.locator('.compare-table td.near').count()).toBe(0);
      expect(await page.locator('.noise-legend').count()).toBe(0);
    });

    it('an unknown compare run is an error naming the run and the folder', async () => {
      const { page } = panel;
      await panel.post({ type: 'showCompare', run: 'nope' });
      const message = page.locator('.compare-view .row-error');
      await message.waitFor();
      expect(await message.innerText()).toBe(
        `no compare run 'nope' in ${path.join(ws.workspace, 'compare')} (run Curate: Compare Methods…)`,
      );
      expect(await status()).toContain("compare: no compare run 'nope'");
    });

    it('the run menu switches runs; clicking a method row opens its selection in the grid', async () => {
      const { page } = panel;
      await chooseOption('Compare run', 'bench');
      await page.waitForFunction(() =>
        document.querySelector('.compare-source')?.textContent?.endsWith('/bench/25pct.json'),
      );
      expect((await rowCells('k-center'))['kept']).toBe('60');
      await chooseOption('Budget', 'Budget 50%');
      await page.waitForFunction(() =>
        document.querySelector('.compare-source')?.textContent?.endsWith('/bench/50pct.json'),
      );
      expect((await rowCells('k-center'))['kept']).toBe('120');
      const before = panel.requests.length;
      await page
        .locator('.compare-table tbody tr', { has: page.locator('th.method', { hasText: 'k-center' }) })
        .click();
      await expect
        .poll(() => panel.requests.slice(before))
        .toContainEqual({ kind: 'useSelection', name: kCenter });
      await page.waitForFunction(
        (name) => document.querySelector('.status')?.textContent?.includes(`selection ${name} (k-center, `),
        kCenter,
      );
      expect(await status()).toMatch(/^240 of 240 samples shown/);
      expect(view.selection).toBe(kCenter);
      expect(await page.locator('.compare-view').isVisible()).toBe(false);
      expect(await page.locator('.grid').isVisible()).toBe(true);
      // The failed row opens nothing.
      await panel.post({ type: 'showCompare', run: 'bench' });
      await page.waitForSelector('.compare-table');
      const count = panel.requests.length;
      await page.locator('tr.failed').click();
      await page.waitForTimeout(200);
      expect(panel.requests.slice(count).filter((r) => r.kind === 'useSelection')).toEqual([]);
      await page.locator('vscode-button', { hasText: 'Back to the grid' }).click();
      await page.waitForSelector('.grid', { state: 'visible' });
    });
  });

  it('diff view: only-in-A and only-in-B samples in pick order with thumbnails, reasons and ground truth', async () => {
    const { page } = panel;
    const a = ws.stored.name;
    const b = 'bench/random-25pct'; // saved by the compare view's tests
    const [picksA, picksB] = [
      (await loadSelection(ws.workspace, a)).sampleIds,
      (await loadSelection(ws.workspace, b)).sampleIds,
    ];
    const onlyA = picksA.filter((id) => !picksB.includes(id));
    const onlyB = picksB.filter((id) => !picksA.includes(id));
    expect(onlyA.length).toBeGreaterThan(0);
    const d = await view.withCatalog((catalog) => diffSelections(catalog, ws.workspace, a, b));
    await panel.post({ type: 'showDiff', a, b });
    await page.waitForSelector('.diff-side.a h3');
    expect(await page.locator('.grid').isVisible()).toBe(false);
    expect(await page.locator('.diff-side.a h3').innerText()).toBe(`Only in A: ${onlyA.length}`);
    expect(await page.locator('.diff-side.b h3').innerText()).toBe(`Only in B: ${onlyB.length}`);
    const shownIds = (side: string) =>
      page
        .locator(`.diff-side.${side} .diff-item`)
        .evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.id)));
    expect(await shownIds('a')).toEqual(onlyA.slice(0, 120));
    expect(await shownIds('b')).toEqual(onlyB.slice(0, 120));
    expect(await page.locator('.diff-about').innerText()).toContain(
      `${picksA.length - onlyA.length} kept by both`,
    );
    // Each method's reason for the first sample only A kept, and its ground truth.
    const first = page.locator('.diff-side.a .diff-item').first();
    expect(await first.locator('.reason-a').innerText()).toBe(d.onlyA[0]!.reasonA ?? 'no reason recorded');
    expect(await first.locator('.reason-b').innerText()).toBe(d.onlyA[0]!.reasonB ?? 'no reason recorded');
    expect(d.onlyA[0]!.reasonA).toMatch(/^score /); // clip-score records why it kept each sample
    expect(await first.locator('.diff-key').innerText()).toBe(d.onlyA[0]!.key);
    expect(d.truth.map((t) => t.field)).toContain('label');
    for (const t of d.truth)
      for (const [value, n] of Object.entries(t.onlyA))
        expect(
          await page
            .locator(`.diff-truth-table tr[data-field="${t.field}"][data-value="${value}"] td`)
            .nth(1)
            .innerText(),
        ).toBe(String(n));
    // Thumbnails as in the grid (data: URLs), one per sample shown.
    await page.waitForFunction(
      (n) => document.querySelectorAll('.diff-view img.diff-thumb[src^="data:image/webp"]').length === n,
      Math.min(120, onlyA.length) + Math.min(120, onlyB.length),
    );
    await page.screenshot({ path: path.join(SHOTS, 'diff.png') });
    const before = panel.requests.length;
    await page.locator('vscode-button', { hasText: 'Open B in the grid' }).click();
    await expect.poll(() => panel.requests.slice(before)).toContainEqual({ kind: 'useSelection', name: b });
    await page.waitForSelector('.grid', { state: 'visible' });
    expect(await page.locator('.diff-view').isVisible()).toBe(false);
  });

  it('the export button asks the host for the export command; no console errors or CSP violations', async () => {
    await panel.page.locator('vscode-button', { hasText: 'Export…' }).click();
    await expect.poll(() => panel.commands).toContain('export');
    expect(panel.errors).toEqual([]);
  });
});
