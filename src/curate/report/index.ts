/**
 * The run report (issue 7): `dir/index.html`, one self-contained page (comparison table, metric curves,
 * score histograms, sample thumbnails, provenance) that renders offline under a strict CSP, and
 * `dir/plots/*.png`, each chart rasterised from the same SVG the page inlines.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { renderPage } from './html.js';
import { curvePlots, histogramPlot, methodColors, PALETTE, rasterise, type Plot } from './plots.js';
import { thumbnail, type Thumbnail } from './thumbs.js';
import type { GridSample, ReportData, ReportResult } from './types.js';

export type * from './types.js';
export { escapeHtml, formatCount, formatFraction, formatMetric, formatSeconds } from './format.js';
export { contentSecurityPolicy } from './html.js';
export { methodColors, PALETTE, REJECTED_COLOR } from './plots.js';

/** Write the report into `dir` (created if needed; earlier `plots/*.png` there are replaced). */
export async function writeReport(dir: string, data: ReportData): Promise<ReportResult> {
  check(data);
  const plotsDir = path.join(dir, 'plots');
  await mkdir(plotsDir, { recursive: true });
  for (const name of await readdir(plotsDir)) {
    if (name.endsWith('.png')) await rm(path.join(plotsDir, name), { force: true });
  }

  const colors = methodColors([
    ...data.compare.map((r) => r.method),
    ...data.histograms.map((h) => h.method),
    ...data.grids.map((g) => g.method),
    ...data.provenance.map((p) => p.method),
  ]);
  const curves = await curvePlots(data.compare, data.metrics ?? {}, colors);
  const histograms: Plot[] = [];
  for (const h of data.histograms)
    histograms.push(await histogramPlot(h, colors.get(h.method) ?? PALETTE[0]!));
  uniqueIds([...curves, ...histograms]);

  const pngs: string[] = [];
  for (const plot of [...curves, ...histograms]) {
    const file = path.join(plotsDir, `${plot.id}.png`);
    await writeFile(file, await rasterise(plot.svg));
    pngs.push(file);
  }

  const samples = data.grids.flatMap((g) => [...g.selected, ...g.rejected]);
  const thumbs = new Map<GridSample, Thumbnail>();
  await Promise.all(samples.map(async (s) => thumbs.set(s, await thumbnail(s.image))));

  const html = path.join(dir, 'index.html');
  await writeFile(html, renderPage(data, { curves, histograms, thumbs, colors }));
  return { html, pngs };
}

/** Make plot ids (PNG names) unique: a second "curve-x" becomes "curve-x-2". */
function uniqueIds(plots: Plot[]): void {
  const seen = new Set<string>();
  for (const p of plots) {
    let id = p.id;
    for (let k = 2; seen.has(id); k++) id = `${p.id}-${k}`;
    seen.add(id);
    p.id = id;
  }
}

function check(data: ReportData): void {
  for (const r of data.compare) {
    if (!r.method) throw new Error('report: a compare row has no method');
    if (!Number.isFinite(r.budget.count) || r.budget.count < 0)
      throw new Error(`report: ${r.method}: budget count ${r.budget.count} is not a count`);
  }
  for (const h of data.histograms) {
    if (!(h.scores instanceof Float32Array))
      throw new Error(`report: histogram '${h.label ?? h.method}': scores must be a Float32Array`);
  }
}
