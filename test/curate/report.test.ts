import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  formatMetric,
  methodColors,
  REJECTED_COLOR,
  writeReport,
  type GridSample,
  type ReportData,
} from '../../src/curate/report/index.js';
import { seededRandom } from '../../src/compute/random.js';
import { MINI, tempDir } from '../helpers.js';

const METHODS = ['clipscore', 'semdedup', 'random'];
const POOL = 1000;
const FRACTIONS = [0.1, 0.3, 0.5];
const XSS = '<script>alert(1)</script>';

/** A few real CIFAR-mini images with their captions. */
async function fixtureSamples(): Promise<GridSample[]> {
  const out: GridSample[] = [];
  for (const cls of ['bird', 'cat', 'ship', 'truck']) {
    const dir = path.join(MINI, 'folder', cls);
    const files = new Set(await readdir(dir));
    const jpgs = [...files]
      .filter((f) => f.endsWith('.jpg') && files.has(f.replace(/\.jpg$/, '.txt')))
      .sort();
    for (const jpg of jpgs.slice(0, 2)) {
      const caption = (await readFile(path.join(dir, jpg.replace(/\.jpg$/, '.txt')), 'utf8')).trim();
      out.push({ key: `${cls}/${jpg}`, caption, image: await readFile(path.join(dir, jpg)) });
    }
  }
  return out;
}

function syntheticData(samples: GridSample[], offline: boolean): ReportData {
  const random = seededRandom(7);
  const compare: ReportData['compare'] = [];
  METHODS.forEach((method, m) => {
    for (const fraction of FRACTIONS) {
      compare.push({
        method,
        selection: `${method}-${fraction * 100}`,
        budget: { count: Math.round(fraction * POOL), fraction },
        seconds: 0.5 + m * 2 + fraction * 10,
        metrics: {
          probe_acc: 0.5 + 0.1 * m + 0.3 * fraction + 0.001 * random(),
          bad_caption_rate: 0.2 - 0.05 * m + 0.01 * random(),
          duplicate_rate: 0.01 * (m + 1) + fraction / 100,
          // Not applicable to random selection: a gap in the table and the curve.
          class_kl: method === 'random' ? null : 0.05 * (m + 1) * (1 - fraction),
        },
      });
    }
  });
  const histograms: ReportData['histograms'] = METHODS.map((method, m) => {
    const scores = new Float32Array(POOL);
    for (let i = 0; i < POOL; i++) scores[i] = (random() + random() + random()) / 3 + m * 0.2;
    scores[3] = NaN; // left out and counted
    // clipscore keeps its top 30%, the others a random 30%.
    const order = Array.from({ length: POOL }, (_, i) => i);
    if (m === 0) order.sort((a, b) => (scores[b] || -1) - (scores[a] || -1));
    else order.sort(() => random() - 0.5);
    return { method, label: `${method} @ 30%`, scores, selected: Int32Array.from(order.slice(0, 300)) };
  });
  const [a, b, c, d, e, f, g, h] = samples;
  const grids: ReportData['grids'] = [
    {
      method: 'clipscore',
      selected: [
        { ...a!, score: 0.91, weight: 2 },
        { ...b!, score: 0.87 },
      ],
      rejected: [
        { ...c!, caption: XSS, score: 0.12 },
        { key: 'broken/0001.jpg', caption: 'bytes that are not an image', image: Buffer.from('nope') },
      ],
    },
    { method: 'semdedup', selected: [d!, e!], rejected: [f!] },
    { method: 'random', selected: [g!], rejected: [h!] },
  ];
  return {
    title: 'Test run',
    createdAt: '2024-05-01T12:34:56.000Z',
    workspace: '/tmp/ws',
    tool: { name: 'clipcurate', version: '0.1.0' },
    dataset: {
      samples: POOL,
      issues: 3,
      datasets: [{ name: 'cifar-mini', spec: 'folder:cifar-mini', samples: POOL }],
      fingerprint: 'abcd1234abcd1234',
    },
    encoder: offline
      ? { name: 'offline-v1', offline: true, note: 'No CLIP model was found.' }
      : { name: 'clip-vit-b32', fingerprint: 'ffee0011', offline: false },
    metrics: {
      probe_acc: { label: 'probe accuracy', format: 'percent', better: 'higher' },
      bad_caption_rate: { label: 'bad captions', format: 'percent', better: 'lower' },
      duplicate_rate: { label: 'duplicates', format: 'percent', digits: 2, better: 'lower' },
      class_kl: { label: 'class-coverage KL', better: 'lower', digits: 4 },
    },
    compare,
    histograms,
    grids,
    provenance: compare.map((r, i) => ({
      name: r.selection!,
      method: r.method,
      params: { k: 10, threshold: 0.25, nested: { deep: [1, 2] } },
      seed: i,
      budget: { requested: `${r.budget.fraction * 100}%`, count: r.budget.count },
      pool: POOL,
      timings: { embed: 1.5, select: r.seconds },
      provenance: {
        tool: { name: 'clipcurate', version: '0.1.0' },
        dataset: {
          fingerprint: 'abcd1234abcd1234',
          datasets: [{ id: 1, name: 'cifar-mini', spec: 'folder:cifar-mini' }],
        },
        encoder: { name: 'clip-vit-b32', fingerprint: `enc-fp-${i}` },
        createdAt: '2024-05-01T12:00:00.000Z',
        seconds: r.seconds,
      },
    })),
  };
}

interface Raw {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

async function raw(file: string): Promise<Raw> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function hex(color: string): [number, number, number] {
  const n = parseInt(color.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** `color` drawn at `opacity` over white. */
function overWhite(color: string, opacity: number): [number, number, number] {
  return hex(color).map((c) => Math.round(c * opacity + 255 * (1 - opacity))) as [number, number, number];
}

/** Pixels within `tolerance` (per channel) of `rgb`. */
function countNear(img: Raw, rgb: [number, number, number], tolerance = 12): number {
  let n = 0;
  for (let i = 0; i < img.data.length; i += img.channels) {
    if (
      Math.abs(img.data[i]! - rgb[0]) <= tolerance &&
      Math.abs(img.data[i + 1]! - rgb[1]) <= tolerance &&
      Math.abs(img.data[i + 2]! - rgb[2]) <= tolerance
    )
      n++;
  }
  return n;
}

function distinctColors(img: Raw): number {
  const seen = new Set<number>();
  for (let i = 0; i < img.data.length; i += img.channels)
    seen.add((img.data[i]! << 16) | (img.data[i + 1]! << 8) | img.data[i + 2]!);
  return seen.size;
}

describe('run report', () => {
  let dir: string;
  let data: ReportData;
  let result: { html: string; pngs: string[] };
  let html: string;

  beforeAll(async () => {
    dir = await tempDir({ forFile: true });
    data = syntheticData(await fixtureSamples(), true);
    result = await writeReport(dir, data);
    html = await readFile(result.html, 'utf8');
  });

  it('writes a self-contained index.html: no URLs, no scripts, no inline style attributes', () => {
    expect(result.html).toBe(path.join(dir, 'index.html'));
    expect(existsSync(result.html)).toBe(true);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/\/\/[a-z0-9.-]+\.[a-z]{2,}\//i); // no protocol-relative URLs either
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/\sstyle="/i);
    expect(html).not.toMatch(/\son[a-z]+="/i); // no event handlers
    // Every src is a data URI.
    for (const m of html.matchAll(/\ssrc="([^"]*)"/g)) expect(m[1]).toMatch(/^data:image\//);
  });

  it('declares a strict CSP whose style hash matches the one inline stylesheet', () => {
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
    expect(csp).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain('img-src data:');
    expect(csp).not.toContain('unsafe');
    const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)];
    expect(styles).toHaveLength(1);
    const hash = createHash('sha256').update(styles[0]![1]!, 'utf8').digest('base64');
    expect(csp).toContain(`'sha256-${hash}'`);
    expect(html).toContain('prefers-color-scheme: dark');
  });

  it('shows every method and the comparison table values', () => {
    for (const m of METHODS) expect(html).toContain(m);
    const table = /<table>[\s\S]*<\/table>/.exec(html)![0];
    for (const header of ['probe accuracy', 'bad captions', 'duplicates', 'class-coverage KL', 'Seconds'])
      expect(table).toContain(header);
    const cells = [...table.matchAll(/<t[dh][^>]*>([\s\S]*?)<\/t[dh]>/g)].map((m) => m[1]!);
    for (const row of data.compare) {
      expect(cells).toContain(String(row.budget.count));
      for (const [key, value] of Object.entries(row.metrics))
        expect(cells).toContain(formatMetric(value, data.metrics![key]));
    }
    // Hand-checked formats: percent with 1 decimal, 2 where asked, plain with 4 digits, the gap as —.
    const first = data.compare[0]!; // clipscore at 10%
    expect(cells).toContain(`${(first.metrics.probe_acc! * 100).toFixed(1)}%`);
    expect(cells).toContain('1.10%'); // duplicate_rate of clipscore @ 10%: 0.01 + 0.001
    expect(cells).toContain('0.0450'); // class_kl of clipscore @ 10%: 0.05 × 0.9
    expect(cells).toContain('—'); // random has no class_kl
    expect(cells).toContain('10%');
    expect(cells).toContain('50%');
    // 9 rows, in budget order; the best probe accuracy at each budget (clipscore is lowest, random highest) is highlighted.
    expect(table.match(/<tr[ >]/g)).toHaveLength(1 + 9);
    expect(table.match(/class="best"/g)!.length).toBeGreaterThanOrEqual(3 * 3);
  });

  it('embeds every chart inline and writes each as a PNG', () => {
    // 4 metrics + selection time as curves, 3 histograms.
    expect(result.pngs).toHaveLength(5 + 3);
    expect(result.pngs.every((p) => path.dirname(p) === path.join(dir, 'plots'))).toBe(true);
    const names = result.pngs.map((p) => path.basename(p));
    expect(names).toContain('curve-probe-acc.png');
    expect(names).toContain('curve-seconds.png');
    expect(names.filter((n) => n.startsWith('hist-'))).toHaveLength(3);
    const figures = [...html.matchAll(/<figure class="plot"[^>]*>\s*<svg\b/g)];
    expect(figures).toHaveLength(result.pngs.length);
    for (const n of names) expect(html).toContain(`plots/${n}`);
  });

  it('PNGs decode, have a sensible size and are not blank; line charts show every method colour', async () => {
    const colors = methodColors(METHODS);
    for (const file of result.pngs) {
      const meta = await sharp(file).metadata();
      expect(meta.format).toBe('png');
      expect(meta.width).toBeGreaterThanOrEqual(600);
      expect(meta.width).toBeLessThanOrEqual(2400);
      expect(meta.height).toBeGreaterThanOrEqual(250);
      expect(meta.height).toBeLessThanOrEqual(1200);
      const stats = await sharp(file).stats();
      expect(stats.channels.slice(0, 3).every((c) => c.stdev > 0)).toBe(true);
      const img = await raw(file);
      expect(distinctColors(img)).toBeGreaterThan(10);
      const name = path.basename(file);
      if (name.startsWith('curve-')) {
        // One line per method (random has no class_kl line), each in its own colour.
        const expected = name === 'curve-class-kl.png' ? METHODS.slice(0, 2) : METHODS;
        for (const m of METHODS) {
          const near = countNear(img, hex(colors.get(m)!));
          if (expected.includes(m)) expect(near, `${name} ${m}`).toBeGreaterThan(50);
          else expect(near, `${name} ${m}`).toBeLessThan(5);
        }
      }
    }
    // Histograms: rejected bars in grey, selected bars in the method's colour.
    for (const [m, method] of METHODS.entries()) {
      const file = result.pngs.find((p) => path.basename(p).startsWith(`hist-${method}`))!;
      const img = await raw(file);
      expect(countNear(img, overWhite(REJECTED_COLOR, 0.6)), file).toBeGreaterThan(200);
      if (m === 0) expect(countNear(img, overWhite(colors.get(method)!, 0.85)), file).toBeGreaterThan(200);
    }
  });

  it('embeds resized thumbnails with escaped captions, and a placeholder for unreadable images', async () => {
    const thumbs = [
      ...html.matchAll(/<img src="data:image\/jpeg;base64,([A-Za-z0-9+/=]+)" width="(\d+)" height="(\d+)"/g),
    ];
    const readable = data.grids.flatMap((g) => [...g.selected, ...g.rejected]).length - 1;
    expect(thumbs).toHaveLength(readable);
    for (const t of thumbs) {
      const meta = await sharp(Buffer.from(t[1]!, 'base64')).metadata();
      expect(meta.format).toBe('jpeg');
      expect(Math.max(meta.width!, meta.height!)).toBe(96);
      expect([meta.width, meta.height]).toEqual([Number(t[2]), Number(t[3])]);
    }
    expect(html).toContain('unreadable image');
    expect(html).not.toContain(XSS);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('a low-resolution image of'); // a real fixture caption
    expect(html).toMatch(/Selected \(2 shown\)[\s\S]*Rejected \(2 shown\)/);
  });

  it('shows the run summary and a collapsible provenance section', () => {
    expect(html).toContain('<title>Test run</title>');
    expect(html).toContain('2024-05-01 12:34:56 UTC');
    expect(html).toContain('abcd1234abcd1234');
    const prov = /<section id="provenance">[\s\S]*?<\/section>/.exec(html)![0];
    expect(prov).toMatch(/^<section id="provenance">\s*<h2>Provenance<\/h2>\s*<details/);
    expect(prov.match(/<details class="prov">/g)).toHaveLength(9);
    for (const r of data.compare) expect(prov).toContain(r.selection!);
    expect(prov).toContain('enc-fp-8');
    expect(prov).toContain('&quot;threshold&quot;: 0.25');
  });

  it('carries the offline-encoder warning only when flagged, and replaces earlier plots', async () => {
    expect(html).toContain('id="offline-encoder-warning"');
    expect(html).toContain('No CLIP model was found.');
    const clip = syntheticData(await fixtureSamples(), false);
    clip.histograms = clip.histograms.slice(0, 1);
    const again = await writeReport(dir, clip);
    const html2 = await readFile(again.html, 'utf8');
    expect(html2).not.toContain('offline-encoder-warning');
    expect(html2).not.toContain('Offline fallback encoder');
    expect(again.pngs).toHaveLength(5 + 1);
    expect((await readdir(path.join(dir, 'plots'))).sort()).toEqual(
      again.pngs.map((p) => path.basename(p)).sort(),
    );
  });

  it('renders a report with nothing to compare yet', async () => {
    const empty = { ...syntheticData([], false), compare: [], histograms: [], grids: [], provenance: [] };
    const out = await writeReport(await tempDir(), empty);
    expect(out.pngs).toEqual([]);
    const page = await readFile(out.html, 'utf8');
    expect(page).toContain('<h1>Test run</h1>');
    expect(page).not.toContain('<section');
    expect(page).not.toMatch(/https?:\/\//i);
  });

  it('rejects a histogram whose selection points outside the pool', async () => {
    const bad = syntheticData([], false);
    bad.grids = [];
    bad.histograms = [{ method: 'x', scores: new Float32Array(4), selected: [0, 4] }];
    await expect(writeReport(await tempDir(), bad)).rejects.toThrow(/outside the pool/);
  });
});
