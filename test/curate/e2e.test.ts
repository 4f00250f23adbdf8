/**
 * The whole way through on fixtures, as a user drives it: curate init → embed (a tiny CLIP ONNX model,
 * real sessions) → index → select → export → report, then the exported shards read back by the
 * project's own WebDataset reader, byte-identical to the originals.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WebDatasetReader } from '../../src/embed/readers/webdataset.js';
import { MINI, readAll, tempDir } from '../helpers.js';
import { captureCli } from '../support/cli.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate, stderr } = captureCli();

/** `curate export` of the test's selection. */
const exportSelection = (ws: string, out: string, ...flags: string[]) =>
  curate('-w', ws, 'export', '--selection', 'facility-location-25pct', '--out', out, ...flags);

const SOURCES = ['000', '001', '002'].map((i) => path.join(MINI, `wds/mini-${i}.tar`));

async function shardsIn(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter((f) => /^selection-\d+\.tar$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

async function sha(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

describe('end to end: init → embed → index → select → export', () => {
  it('exports a weighted selection whose shards read back byte-identical to the sources', async () => {
    const ws = await tempDir();
    const model = await writeTinyClip(path.join(ws, 'tiny-clip'));
    expect((await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-{000..002}.tar'))).code).toBe(0);
    expect((await curate('-w', ws, 'embed', '--encoder', model, '--batch-size', '32')).code).toBe(0);
    expect((await curate('-w', ws, 'index')).code).toBe(0);
    const select = await curate(
      '-w',
      ws,
      'select',
      '--method',
      'facility-location',
      '--budget',
      '25%',
      '--label-field',
      'label_index',
    );
    expect(select.code).toBe(0);
    const stored = JSON.parse(
      await readFile(path.join(ws, 'selections/facility-location-25pct/selection.json'), 'utf8'),
    ) as { keys: string[]; weights: number[] };
    expect(stored.keys).toHaveLength(60);

    const out = path.join(ws, 'export-wds');
    const exported = await exportSelection(ws, out, '--format', 'webdataset', '--shard-size', '25');
    expect(exported.code).toBe(0);
    expect(exported.out).toMatch(/exported 60 of 60 picks of 'facility-location-25pct' as webdataset/);
    const shards = await shardsIn(out);
    expect(shards.map((s) => path.basename(s))).toEqual([
      'selection-000000.tar',
      'selection-000001.tar',
      'selection-000002.tar',
    ]);

    // Read the export and the sources with the same reader: same keys in pick order, same bytes.
    const back = (await readAll(new WebDatasetReader(shards))).samples;
    const originals = new Map(
      (await readAll(new WebDatasetReader(SOURCES))).samples.map((s) => [s.key, s] as const),
    );
    expect(back.map((s) => decodeURIComponent(s.key))).toEqual(stored.keys);
    const weights: number[] = [];
    for (const s of back) {
      const original = originals.get(decodeURIComponent(s.key))!;
      expect(Buffer.compare(await s.image(), await original.image())).toBe(0);
      expect(s.caption).toBe(original.caption);
      // clipcurate's facts are in NAME.curate.json (the source's own NAME.json travels unchanged).
      const factsMember = s.members!.find((m) => m.name.endsWith('.curate.json'))!;
      const json = JSON.parse(factsMember.bytes.toString('utf8')) as { weight: number; selection: string };
      expect(json.selection).toBe('facility-location-25pct');
      weights.push(json.weight);
    }
    // Facility-location weights are cluster sizes (Σγ = pool); exported as mean-1 loss weights.
    expect(weights.reduce((a, w) => a + w, 0) / weights.length).toBeCloseTo(1, 6);
    const weightsTxt = (await readFile(path.join(out, 'weights.txt'), 'utf8')).trim().split('\n').map(Number);
    expect(weightsTxt).toEqual(weights);
    const total = stored.weights.reduce((a, w) => a + w, 0);
    weights.forEach((w, i) => expect(w).toBeCloseTo((stored.weights[i]! * 60) / total, 9));

    const provenance = JSON.parse(await readFile(path.join(out, 'provenance.json'), 'utf8'));
    expect(provenance.selection.method).toBe('facility-location');
    expect(provenance.selection.provenance.encoder.fingerprint).toMatch(/\S/);
    expect(provenance.selection.provenance.dataset.fingerprint).toMatch(/\S/);
    expect(provenance.export.samples).toBe(60);

    // A second export into the same folder is refused (exit 2), then with --overwrite gives the same bytes.
    const hashes = await Promise.all(shards.map(sha));
    const again = ['--shard-size', '25'];
    expect((await exportSelection(ws, out, ...again)).code).toBe(2);
    expect(stderr()).toMatch(/is not empty.*--overwrite/);
    expect((await exportSelection(ws, out, ...again, '--overwrite')).code).toBe(0);
    expect(await Promise.all((await shardsIn(out)).map(sha))).toEqual(hashes);

    // keys.txt: one key per line, in selection order.
    const keysOut = path.join(ws, 'export-keys');
    expect((await exportSelection(ws, keysOut, '--format', 'keys')).code).toBe(0);
    expect((await readFile(path.join(keysOut, 'keys.txt'), 'utf8')).split('\n').slice(0, -1)).toEqual(
      stored.keys,
    );

    // Manual review is kept in the catalog and respected by every export: a rejected pick is left out,
    // an accepted sample the method did not pick is added after the picks.
    const [rejected] = stored.keys;
    const accepted = [...originals.keys()].find((k) => !stored.keys.includes(k))!;
    expect((await curate('-w', ws, 'review', 'reject', rejected!)).code).toBe(0);
    expect((await curate('-w', ws, 'review', 'accept', accepted)).code).toBe(0);
    const listed = (await curate('-w', ws, 'review', 'list')).out;
    expect(listed).toMatch(new RegExp(`^reject\t${rejected}\t`, 'm'));
    expect(listed).toMatch(new RegExp(`^accept\t${accepted}\t`, 'm'));
    expect((await curate('-w', ws, 'review', 'accept', 'no-such-key')).code).toBe(2);
    expect(stderr()).toMatch(/1 key is not in the catalog: no-such-key/);
    const reviewedOut = path.join(ws, 'export-reviewed');
    const reviewed = await exportSelection(ws, reviewedOut, '--format', 'keys');
    expect(reviewed.out).toContain('manual review: 1 rejected picks left out, 1 accepted samples added');
    expect((await readFile(path.join(reviewedOut, 'keys.txt'), 'utf8')).split('\n').slice(0, -1)).toEqual([
      ...stored.keys.slice(1),
      accepted,
    ]);
    const reviewedProvenance = JSON.parse(await readFile(path.join(reviewedOut, 'provenance.json'), 'utf8'));
    expect(reviewedProvenance.export.review).toMatchObject({ rejected: [rejected], accepted: [accepted] });
    expect((await curate('-w', ws, 'review', 'clear', rejected!, accepted)).code).toBe(0);
    expect((await curate('-w', ws, 'review', 'list')).out).toBe('');

    // Bad requests exit 2 and name what is wrong.
    expect((await curate('-w', ws, 'export', '--selection', 'nope', '--out', path.join(ws, 'x'))).code).toBe(
      2,
    );
    expect(stderr()).toMatch(/no selection 'nope'.*facility-location-25pct/);
    expect((await exportSelection(ws, out, '--format', 'zip')).code).toBe(2);
    expect(stderr()).toMatch(/zip/);

    // The report of that selection: a page with its score histogram and thumbnails.
    const report = await curate(
      '-w',
      ws,
      'report',
      '--selections',
      'facility-location-25pct',
      '--name',
      'e2e',
    );
    expect(report.code).toBe(0);
    const html = path.join(ws, 'reports/e2e/index.html');
    expect(report.out).toContain(html);
    const page = await readFile(html, 'utf8');
    expect(page).toContain('facility-location @ 25%');
    expect((page.match(/<img /g) ?? []).length).toBe(16);
    expect(existsSync(path.join(ws, 'reports/e2e/plots'))).toBe(true);
  }, 120_000);
});
