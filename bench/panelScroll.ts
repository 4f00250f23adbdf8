/**
 * Grid scroll smoothness of the curation panel at 100k samples, in headless Chromium (Debian's
 * chromium; skipped when absent). A synthetic WebDataset of 100,000 small JPEGs (10 shards) is read
 * into a real catalog; the panel page runs against it through the same dispatch as the extension.
 * Measured: frame times while scrolling continuously and while jumping across the whole grid (like
 * dragging the scroll bar), the number of DOM cells alive, and how long thumbnails take to show
 * after a jump (host-side data latency, separate from frame time).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import tar from 'tar-stream';
import { addDataset, Catalog, CurationView } from '../src/curate/api.js';
import { CHROMIUM, buildPanel, openPanelPage } from '../test/ui/harness.js';
import { writeSection } from './results.js';

const SAMPLES = Number(process.env.SCROLL_SAMPLES ?? 100_000);
const SHARDS = 10;

if (!existsSync(CHROMIUM)) {
  console.log(`panel scroll bench skipped: no chromium at ${CHROMIUM}`);
  process.exit(0);
}

const scratch = await mkdtemp(path.join(tmpdir(), 'clipcurate-scroll-'));
try {
  const t0 = performance.now();
  const palette = await Promise.all(
    Array.from({ length: 64 }, (_, i) =>
      sharp({
        create: {
          width: 32,
          height: 32,
          channels: 3,
          background: { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 53) % 256 },
        },
      })
        .jpeg()
        .toBuffer(),
    ),
  );
  for (let s = 0; s < SHARDS; s++) {
    const pack = tar.pack();
    const done = pipeline(pack, createWriteStream(path.join(scratch, `scroll-${s}.tar`)));
    for (let i = s * (SAMPLES / SHARDS); i < (s + 1) * (SAMPLES / SHARDS); i++) {
      const key = `s${String(i).padStart(6, '0')}`;
      pack.entry({ name: `${key}.jpg` }, palette[i % palette.length]!);
      pack.entry({ name: `${key}.txt` }, `synthetic sample ${i} in colour ${i % palette.length}`);
    }
    pack.finalize();
    await done;
  }
  const workspace = path.join(scratch, 'ws');
  const catalog = await Catalog.open(workspace);
  await addDataset(catalog, `scroll-{0..${SHARDS - 1}}.tar`, { cwd: scratch });
  catalog.close();
  const setupSeconds = (performance.now() - t0) / 1000;

  buildPanel();
  const view = await CurationView.open(workspace);
  const panel = await openPanelPage(view, { width: 1400, height: 900 });
  await panel.page
    .waitForSelector('.cell:not(.loading) img.thumb[src^="data:image/webp"]', { timeout: 120_000 })
    .catch(async (err: Error) => {
      throw new Error(
        `${err.message}\nstatus: ${await panel.page.locator('.status').innerText()}\n${panel.errors.join('\n')}`,
      );
    });
  const status = await panel.page.locator('.status').innerText();
  if (!status.startsWith(`${SAMPLES.toLocaleString('en-US')} of`)) throw new Error(`grid shows: ${status}`);

  const measure = (mode: 'continuous' | 'jumps') =>
    panel.page.evaluate(
      ({ mode, seconds }) =>
        new Promise<{ frames: number[]; cells: number; maxScroll: number }>((resolve) => {
          const grid = document.querySelector('.grid') as HTMLElement;
          const frames: number[] = [];
          let last = performance.now();
          const end = last + seconds * 1000;
          let position = 0;
          const step = (now: number) => {
            frames.push(now - last);
            last = now;
            if (mode === 'continuous') position += 600;
            else position = ((frames.length * 7919) % 997) / 997;
            grid.scrollTop =
              mode === 'continuous'
                ? position % grid.scrollHeight
                : position * (grid.scrollHeight - grid.clientHeight);
            if (now < end) requestAnimationFrame(step);
            else
              resolve({
                frames: frames.slice(1),
                cells: grid.querySelectorAll('.cell:not([hidden])').length,
                maxScroll: grid.scrollHeight,
              });
          };
          requestAnimationFrame(step);
        }),
      { mode, seconds: 5 },
    );
  const continuous = await measure('continuous');
  const jumps = await measure('jumps');

  // Data latency: jump to an unvisited region and time until every cell in view has its thumbnail.
  const latency = await panel.page.evaluate(async () => {
    const grid = document.querySelector('.grid') as HTMLElement;
    const t = performance.now();
    grid.scrollTop = grid.scrollHeight * 0.73;
    for (;;) {
      await new Promise((r) => requestAnimationFrame(r));
      const cells = Array.from(grid.querySelectorAll('.cell:not([hidden])'));
      if (cells.length && cells.every((c) => !c.classList.contains('loading'))) return performance.now() - t;
    }
  });
  await panel.page.screenshot({ path: path.join(scratch, 'scroll.png') });
  await panel.close();
  await view.close();

  const stats = (f: number[]) => {
    const s = [...f].sort((a, b) => a - b);
    const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
    return {
      frames: s.length,
      p50: q(0.5),
      p95: q(0.95),
      p99: q(0.99),
      max: s[s.length - 1]!,
      over33ms: s.filter((x) => x > 33.4).length,
    };
  };
  const c = stats(continuous.frames);
  const j = stats(jumps.frames);
  const fmt = (x: number) => x.toFixed(1);
  const row = (name: string, s: ReturnType<typeof stats>, cells: number) =>
    `| ${name} | ${s.frames} | ${fmt(s.p50)} | ${fmt(s.p95)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${s.over33ms} | ${cells} |`;
  const markdown = [
    `Headless Chromium, 1400×900 viewport, ${SAMPLES.toLocaleString('en-US')} samples in the grid ` +
      `(${(continuous.maxScroll / 1e6).toFixed(1)} M px tall); catalog built in ${setupSeconds.toFixed(0)} s.`,
    '',
    '| scrolling | frames | p50 ms | p95 ms | p99 ms | max ms | frames > 33 ms | DOM cells |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    row('continuous, 600 px per frame', c, continuous.cells),
    row('jumps anywhere, every frame', j, jumps.cells),
    '',
    `Thumbnails of a fresh region all shown ${fmt(latency)} ms after a jump (host reads the archive and ` +
      'makes WebP thumbnails; frames keep running meanwhile).',
  ].join('\n');
  console.log(markdown);
  await writeSection('panel-scroll', markdown, { continuous: c, jumps: j, latencyMs: latency, setupSeconds });
} finally {
  await rm(scratch, { recursive: true, force: true });
}
