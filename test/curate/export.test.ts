import { createReadStream } from 'node:fs';
import { appendFile, copyFile, cp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { parse as parseCsv } from 'csv-parse/sync';
import tar from 'tar-stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { addDataset, Catalog } from '../../src/curate/api.js';
import { exportSelection, type ExportOptions, type ExportReport } from '../../src/curate/export/index.js';
import { exportName } from '../../src/curate/export/names.js';
import { loadSelection, saveSelection, selectionDir } from '../../src/curate/selections.js';
import { WebDatasetReader } from '../../src/embed/readers/webdataset.js';
import type { Sample } from '../../src/embed/readers/types.js';
import type { Selection } from '../../src/select/contract.js';
import { MINI, readAll, tempDir } from '../helpers.js';

interface Row {
  id: bigint;
  key: string;
  file: string;
  member: string | null;
  row_index: bigint | null;
  image_path: string | null;
  caption: string;
  dataset: string;
}

const EVIL_KEYS = [
  '../../evil',
  '/abs/path',
  'back\\slash',
  'dot.ted',
  'new\nline',
  '__hidden',
  'nul',
  'a\0b',
];
const EVIL_CAPTION = 'a "quoted", comma caption\nover two lines';

/** Tar members of a file, in order, with headers. */
async function tarMembers(file: string): Promise<Array<{ header: tar.Header; bytes: Buffer }>> {
  const extract = tar.extract();
  createReadStream(file).pipe(extract);
  const out: Array<{ header: tar.Header; bytes: Buffer }> = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
    out.push({ header: entry.header, bytes: Buffer.concat(chunks) });
  }
  return out;
}

async function readShards(out: string, report: ExportReport): Promise<Sample[]> {
  const shards = report.files.filter((f) => f.name.endsWith('.tar')).map((f) => path.join(out, f.name));
  return (await readAll(new WebDatasetReader(shards))).samples;
}

/** All files under a folder, relative, recursively. */
async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

async function filesOf(out: string): Promise<Map<string, Buffer>> {
  const names = (await readdir(out)).sort();
  return new Map(await Promise.all(names.map(async (n) => [n, await readFile(path.join(out, n))] as const)));
}

async function pickSelection(
  catalog: Catalog,
  workspace: string,
  name: string,
  choose: (rows: Row[]) => number[],
  extra: Partial<Selection> = {},
  weighted = true,
): Promise<Row[]> {
  const rows = await catalog.rows<Row>(
    `SELECT s.id, s.key, s.file, s.member, s.row_index, s.image_path, s.caption, d.name AS dataset
     FROM samples s JOIN datasets d ON d.id = s.dataset_id ORDER BY s.id`,
  );
  const indices = Int32Array.from(choose(rows));
  await saveSelection(catalog, workspace, {
    name,
    method: 'hand',
    params: { note: 'test' },
    seed: 7,
    budget: { requested: String(indices.length), count: indices.length },
    selection: {
      indices,
      ...(weighted
        ? {
            weights: Float32Array.from(indices, (_, t) => 1 + (t % 5)),
            stages: Int32Array.from(indices, (_, t) => t % 3),
          }
        : {}),
      trace: [],
      ...extra,
    },
    poolIds: BigInt64Array.from(rows, (r) => r.id),
    encoder: { name: 'test', fingerprint: 'x' },
    seconds: 0,
  });
  return Array.from(indices, (i) => rows[i]!);
}

describe('exportSelection', () => {
  let workspace: string;
  let catalog: Catalog;
  let picked: Row[];
  /** Original image bytes per key, from the source tar member, folder file or parquet cell. */
  const original = new Map<string, Buffer>();

  beforeAll(async () => {
    workspace = await tempDir({ forFile: true });
    catalog = await Catalog.open(workspace);
    await addDataset(catalog, 'wds/mini-000.tar', { cwd: MINI });
    await addDataset(catalog, 'folder', { cwd: MINI });
    await addDataset(catalog, 'img2dataset.parquet', { cwd: MINI }); // keys clash: img2dataset/<key>
    const evilDir = path.join(workspace, 'evil');
    await mkdir(evilDir);
    const image = path.join(MINI, 'folder/airplane/train000000.jpg');
    await writeFile(
      path.join(evilDir, 'evil.jsonl'),
      EVIL_KEYS.map((key) => JSON.stringify({ key, image_path: image, caption: EVIL_CAPTION })).join('\n'),
    );
    await addDataset(catalog, 'evil/evil.jsonl', { cwd: workspace });

    // Originals, independently of the export code: raw tar members, files, parquet cells.
    for (const m of await tarMembers(path.join(MINI, 'wds/mini-000.tar')))
      if (m.header.name.endsWith('.jpg')) original.set(m.header.name.replace(/\.jpg$/, ''), m.bytes);
    const cells = await catalog.rows<{ key: string; jpg: Uint8Array }>(
      `SELECT key, jpg FROM read_parquet('${path.join(MINI, 'img2dataset.parquet')}')`,
    );
    for (const c of cells) original.set(`img2dataset/${c.key}`, Buffer.from(c.jpg));
    const rows = await catalog.rows<Row>('SELECT key, file, image_path FROM samples WHERE member IS NULL');
    for (const r of rows)
      if (r.image_path || !r.file.endsWith('.parquet'))
        original.set(r.key, await readFile(r.image_path ?? r.file));

    // 25 wds + 25 folder + 10 parquet samples + the evil keys, interleaved in a fixed scrambled order.
    picked = await pickSelection(catalog, workspace, 'sel', (all) => {
      const of = (pred: (r: Row) => boolean, n: number) =>
        all
          .flatMap((r, i) => (pred(r) ? [i] : []))
          .filter((_, j) => j % 3 === 1)
          .slice(0, n);
      const chosen = [
        ...of((r) => r.dataset === 'mini-000', 25),
        ...of((r) => r.dataset === 'folder', 25),
        ...of((r) => r.dataset === 'img2dataset', 10),
        ...all.flatMap((r, i) => (r.dataset === 'evil' ? [i] : [])),
      ];
      return chosen.map((_, t) => chosen[(t * 37) % chosen.length]!);
    });
    return () => catalog.close();
  });

  it('picks: 68 samples from four sources, the evil keys among them', () => {
    expect(picked).toHaveLength(68);
    expect(new Set(picked.map((p) => p.key)).size).toBe(68);
    expect(picked.filter((p) => EVIL_KEYS.includes(p.key))).toHaveLength(EVIL_KEYS.length);
  });

  it('webdataset: shards hold the picks in order, byte-identical images, captions, selection facts', async () => {
    const out = path.join(await tempDir(), 'wds');
    const phases = new Set<string>();
    const report = await exportSelection(catalog, workspace, 'sel', {
      format: 'webdataset',
      out,
      shardSize: 25,
      memoryBytes: 0, // every archive member goes through the spool file
      onProgress: (_d, _t, phase) => phases.add(phase),
    });
    expect(report).toMatchObject({ picks: 68, samples: 68, skipped: [] });
    expect(report.files.map((f) => f.name)).toEqual([
      'selection-000000.tar',
      'selection-000001.tar',
      'selection-000002.tar',
      'weights.txt',
      'provenance.json',
    ]);
    expect(report.files.slice(0, 3).map((f) => f.samples)).toEqual([25, 25, 18]);
    expect([...phases]).toEqual(['collect', 'write']);
    expect(report.bytes.payloadRead).toBe(picked.reduce((a, p) => a + original.get(p.key)!.length, 0));
    expect(report.bytes.tier2Pool).toBeGreaterThan(report.bytes.tier2Selected!);

    const samples = await readShards(out, report);
    expect(samples.map((s) => s.key)).toEqual(picked.map((p) => exportName(p.key)));
    const weightsTxt = (await readFile(path.join(out, 'weights.txt'), 'utf8')).trim().split('\n').map(Number);
    const sumRaw = picked.reduce((a, _, t) => a + 1 + (t % 5), 0);
    for (const [t, s] of samples.entries()) {
      const p = picked[t]!;
      expect(decodeURIComponent(s.key)).toBe(p.key);
      expect((await s.image()).equals(original.get(p.key)!)).toBe(true);
      expect(s.caption).toBe(p.caption.trim());
      // Selection facts are in NAME.curate.json, beside (never instead of) a source's own NAME.json.
      const factsMember = s.members!.find((m) => m.name === `${s.key}.curate.json`)!;
      const facts = JSON.parse(factsMember.bytes.toString('utf8')) as Record<string, unknown>;
      expect(facts).toMatchObject({
        key: p.key,
        rank: t,
        weight_raw: 1 + (t % 5),
        stage: t % 3,
        method: 'hand',
        selection: 'sel',
        source: { file: p.file, member: p.member },
      });
      expect(facts.weight).toBeCloseTo(((1 + (t % 5)) * 68) / sumRaw, 12);
      expect(weightsTxt[t]).toBe(facts.weight);
      if (p.dataset === 'mini-000') expect(facts.metadata).toHaveProperty('cls');
    }
    expect(weightsTxt.reduce((a, b) => a + b, 0) / 68).toBeCloseTo(1, 12);
    // The source's own members travel too: a wds sample reads back with its cls and json fields.
    const wdsSample = samples.find((s) => picked[samples.indexOf(s)]!.dataset === 'mini-000')!;
    expect(wdsSample.metadata).toHaveProperty('cls');
    expect(wdsSample.metadata).toHaveProperty('label');

    // Fixed headers, flat names, nothing but shards, weights and provenance in out.
    for (const m of await tarMembers(path.join(out, 'selection-000000.tar'))) {
      expect(m.header).toMatchObject({ mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' });
      expect(m.header.name).toMatch(/^[A-Za-z0-9_%~-]+\.(jpg|png|webp|jpeg|txt|json|cls|curate\.json)$/);
    }
    expect(await listTree(out)).toEqual(report.files.map((f) => f.name).sort());
    const prov = JSON.parse(await readFile(path.join(out, 'provenance.json'), 'utf8')) as {
      selection: Record<string, unknown>;
      export: Record<string, unknown>;
    };
    expect(prov.selection).toMatchObject({ name: 'sel', method: 'hand', seed: 7, params: { note: 'test' } });
    expect(prov.selection.provenance).toMatchObject({ encoder: { name: 'test', fingerprint: 'x' } });
    expect(prov.export).toMatchObject({ format: 'webdataset', samples: 68, shardSize: 25, skipped: [] });
  });

  it('keys that are paths cannot escape out: names are one flat, reversible component', async () => {
    const base = await tempDir();
    const out = path.join(base, 'a', 'b', 'out');
    const report = await exportSelection(catalog, workspace, 'sel', { format: 'webdataset', out });
    expect(await listTree(base)).toEqual(report.files.map((f) => path.join('a', 'b', 'out', f.name)).sort());
    const names = (await tarMembers(path.join(out, 'selection-000000.tar'))).map((m) => m.header.name);
    // wds samples: their 4 source members (jpg, txt, cls, json) + curate.json; others: image, txt, curate.json.
    expect(names).toHaveLength(25 * 5 + (68 - 25) * 3);
    for (const n of names) {
      expect(n).not.toMatch(/[/\\\0]|\.\./);
      expect(path.isAbsolute(n)).toBe(false);
    }
    expect(names).toContain('%2E%2E%2F%2E%2E%2Fevil.jpg');
    expect(names).toContain('%2Fabs%2Fpath.txt');
    expect(names).toContain('a%00b.curate.json');
    expect(names).toContain('dot%2Eted.jpg');
    expect(names).toContain('%5F_hidden.curate.json'); // a `__` prefix would hide it from WebDataset readers
    expect(names).toContain('nu%6C.jpg');
    expect(exportName('x'.repeat(500))).toMatch(/^x{103}~[0-9a-f]{16}$/);
  });

  it('jsonl, csv and parquet manifests round-trip keys, weights, stages, captions and sources', async () => {
    const base = await tempDir();
    const read: Record<string, Array<Record<string, unknown>>> = {};
    for (const format of ['jsonl', 'csv', 'parquet'] as const) {
      const out = path.join(base, format);
      const report = await exportSelection(catalog, workspace, 'sel', { format, out });
      expect(report.files.map((f) => f.name)).toEqual([`manifest.${format}`, 'provenance.json']);
      expect(report.samples).toBe(68);
      const file = path.join(out, `manifest.${format}`);
      if (format === 'jsonl')
        read.jsonl = (await readFile(file, 'utf8'))
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      else if (format === 'csv')
        read.csv = parseCsv(await readFile(file), { columns: true, record_delimiter: '\r\n' }) as Array<
          Record<string, unknown>
        >;
      else read.parquet = await catalog.rows(`SELECT * FROM read_parquet('${file}')`);
    }
    const sumRaw = picked.reduce((a, _, t) => a + 1 + (t % 5), 0);
    for (const [format, rows] of Object.entries(read)) {
      expect(rows, format).toHaveLength(68);
      rows.forEach((r, t) => {
        const p = picked[t]!;
        expect(String(r.key)).toBe(p.key);
        expect(Number(r.rank)).toBe(t);
        expect(Number(r.weight_raw)).toBe(1 + (t % 5));
        expect(Number(r.weight)).toBeCloseTo(((1 + (t % 5)) * 68) / sumRaw, 12);
        expect(Number(r.stage)).toBe(t % 3);
        expect(r.caption).toBe(p.caption);
        expect(r.file).toBe(p.file);
        expect(r.member ?? '').toBe(p.member ?? '');
        // The image file whenever the image is a file of its own (folder datasets too).
        const imageFile = p.image_path ?? (p.dataset === 'folder' ? p.file : '');
        expect(r.image_path ?? '').toBe(imageFile);
        expect(r.name).toBe(exportName(p.key));
        // JSON text in every format.
        expect(r.metadata).toBeTypeOf('string');
        expect(JSON.parse(r.metadata as string)).toBeTypeOf('object');
      });
      expect(rows.find((r) => r.key === '../../evil')!.caption).toBe(EVIL_CAPTION);
    }
  });

  it('keys: keys.txt in pick order (a key with a line break stands in by its name), weights.txt', async () => {
    const out = path.join(await tempDir(), 'keys');
    const report = await exportSelection(catalog, workspace, 'sel', { format: 'keys', out });
    expect(report.files.map((f) => f.name)).toEqual(['keys.txt', 'weights.txt', 'provenance.json']);
    const keys = (await readFile(path.join(out, 'keys.txt'), 'utf8')).split('\n');
    expect(keys.pop()).toBe('');
    expect(keys).toEqual(picked.map((p) => (/[\n\0]/.test(p.key) ? exportName(p.key) : p.key)));
    const weights = (await readFile(path.join(out, 'weights.txt'), 'utf8')).trim().split('\n').map(Number);
    expect(weights).toHaveLength(68);
    const prov = JSON.parse(await readFile(path.join(out, 'provenance.json'), 'utf8')) as {
      export: { names: { renamedInKeysTxt: Array<{ key: string; name: string }> } };
    };
    expect(prov.export.names.renamedInKeysTxt.map((r) => r.key).sort()).toEqual(['a\0b', 'new\nline']);
  });

  it('re-export is byte-identical, in memory or spooled, fresh or overwriting', async () => {
    const base = await tempDir();
    for (const format of ['webdataset', 'parquet', 'csv'] as const) {
      const a = path.join(base, `${format}-a`);
      const b = path.join(base, `${format}-b`);
      const opts: Omit<ExportOptions, 'out'> = { format, shardSize: 30 };
      await exportSelection(catalog, workspace, 'sel', { ...opts, out: a });
      await exportSelection(catalog, workspace, 'sel', { ...opts, out: b, memoryBytes: 0 });
      const first = await filesOf(a);
      await exportSelection(catalog, workspace, 'sel', { ...opts, out: a, overwrite: true });
      for (const again of [await filesOf(b), await filesOf(a)]) {
        expect([...again.keys()]).toEqual([...first.keys()]);
        for (const [name, bytes] of first) {
          if (name === 'provenance.json') {
            const strip = (buf: Buffer) => {
              const p = JSON.parse(buf.toString()) as { export: Record<string, unknown> };
              delete p.export.exportedAt;
              delete p.export.seconds;
              return p;
            };
            expect(strip(again.get(name)!)).toEqual(strip(bytes));
          } else expect(again.get(name)!.equals(bytes), `${format} ${name}`).toBe(true);
        }
      }
    }
  });

  it('a non-empty out is refused; overwrite replaces the previous export and keeps other files', async () => {
    const out = path.join(await tempDir(), 'out');
    await mkdir(out);
    await writeFile(path.join(out, 'notes.md'), 'mine');
    await expect(exportSelection(catalog, workspace, 'sel', { format: 'keys', out })).rejects.toThrow(
      /is not empty.*notes\.md/,
    );
    expect(await readdir(out)).toEqual(['notes.md']);
    await exportSelection(catalog, workspace, 'sel', {
      format: 'webdataset',
      out,
      shardSize: 10,
      overwrite: true,
    });
    expect((await readdir(out)).filter((n) => n.endsWith('.tar'))).toHaveLength(7);
    await expect(exportSelection(catalog, workspace, 'sel', { format: 'webdataset', out })).rejects.toThrow(
      /not empty/,
    );
    const report = await exportSelection(catalog, workspace, 'sel', {
      format: 'webdataset',
      out,
      overwrite: true,
    });
    expect((await readdir(out)).sort()).toEqual(
      ['notes.md', 'provenance.json', 'selection-000000.tar', 'weights.txt'].sort(),
    );
    expect(report.files[0]).toMatchObject({ name: 'selection-000000.tar', samples: 68 });
    // A link planted under an export file's name is replaced, never written through.
    const outside = path.join(path.dirname(out), 'outside.txt');
    await writeFile(outside, 'untouched');
    await rm(path.join(out, 'weights.txt'));
    await symlink(outside, path.join(out, 'weights.txt'));
    await exportSelection(catalog, workspace, 'sel', { format: 'keys', out, overwrite: true });
    expect(await readFile(outside, 'utf8')).toBe('untouched');
    expect((await readFile(path.join(out, 'weights.txt'), 'utf8')).split('\n')).toHaveLength(69);
    expect((await readdir(out)).sort()).toEqual(['keys.txt', 'notes.md', 'provenance.json', 'weights.txt']);
  });

  it('copies the schedule and exports every key it names (γ = 0 beyond the picks); unweighted selections weigh 1', async () => {
    await pickSelection(
      catalog,
      workspace,
      'dyn',
      () => [0, 1, 2],
      {
        schedule: {
          unit: 'epoch',
          total: 2,
          rounds: [
            { start: 0, end: 0.5, indices: Int32Array.from([0, 1]) },
            { start: 0.5, end: 1, indices: Int32Array.from([2, 3]), weights: Float32Array.from([2, 1]) },
          ],
        },
      },
      false,
    );
    const out = path.join(await tempDir(), 'dyn');
    const report = await exportSelection(catalog, workspace, 'dyn', { format: 'jsonl', out });
    const stored = await loadSelection(workspace, 'dyn');
    expect(await readFile(path.join(out, 'schedule.jsonl'))).toEqual(
      await readFile(path.join(selectionDir(workspace, 'dyn'), stored.files.schedule!)),
    );
    expect(report.warnings).toEqual([]);
    expect(report.schedule).toMatchObject({
      rounds: 2,
      keys: 4,
      samples: 4,
      scheduleOnly: 1,
      keysOutsideExport: 0,
    });
    const rows = (await readFile(path.join(out, 'manifest.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { weight: number; weight_raw: number; stage: number | null });
    expect(rows.map((r) => [r.weight, r.weight_raw, r.stage])).toEqual([
      [1, 1, null],
      [1, 1, null],
      [1, 1, null],
      [0, 0, null],
    ]);
  });

  it('gzipped shards are read too; an aborted export leaves out empty (nothing half-written)', async () => {
    const ws = await tempDir();
    const cat = await Catalog.open(ws);
    try {
      await addDataset(cat, 'wds-gz/mini-000.tar.gz', { cwd: MINI });
      const picks = await pickSelection(cat, ws, 'gz', (all) => all.map((_, i) => 79 - 2 * i).slice(0, 40));
      const members = new Map<string, Buffer>();
      const extract = tar.extract();
      createReadStream(path.join(MINI, 'wds-gz/mini-000.tar.gz')).pipe(createGunzip()).pipe(extract);
      for await (const entry of extract) {
        const chunks: Buffer[] = [];
        for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
        members.set(entry.header.name, Buffer.concat(chunks));
      }
      const out = path.join(await tempDir(), 'gz');
      const report = await exportSelection(cat, ws, 'gz', { format: 'webdataset', out, shardSize: 16 });
      const samples = await readShards(out, report);
      expect(samples.map((s) => s.key)).toEqual(picks.map((p) => p.key));
      for (const [t, s] of samples.entries())
        expect((await s.image()).equals(members.get(picks[t]!.member!)!)).toBe(true);

      const aborted = path.join(await tempDir(), 'aborted');
      const controller = new AbortController();
      await expect(
        exportSelection(cat, ws, 'gz', {
          format: 'webdataset',
          out: aborted,
          shardSize: 16,
          signal: controller.signal,
          onProgress: (done, _total, phase) => {
            if (phase === 'write' && done === 20) controller.abort();
          },
        }),
      ).rejects.toThrow(/abort/i);
      expect(await readdir(aborted)).toEqual([]);
    } finally {
      cat.close();
    }
  });

  it('a source gone or changed since init: its samples are skipped and named, the others exported', async () => {
    const ws = await tempDir();
    const data = await tempDir();
    await cp(path.join(MINI, 'folder/airplane'), path.join(data, 'images/airplane'), { recursive: true });
    await copyFile(path.join(MINI, 'wds/mini-001.tar'), path.join(data, 'mini-001.tar'));
    const cat = await Catalog.open(ws);
    try {
      await addDataset(cat, 'images', { cwd: data });
      await addDataset(cat, 'mini-001.tar', { cwd: data });
      const picks = await pickSelection(cat, ws, 'sel', (all) =>
        all.map((_, i) => i).filter((i) => i % 4 === 0),
      );
      const gone = picks.find((p) => p.file.endsWith('.jpg'))!;
      await rm(gone.file);
      const shard = path.join(data, 'mini-001.tar');
      const inShard = picks.filter((p) => p.file === shard);
      expect(inShard.length).toBeGreaterThan(0);
      await appendFile(shard, Buffer.alloc(512));

      for (const format of ['webdataset', 'jsonl'] as const) {
        const out = path.join(await tempDir(), format);
        const report = await exportSelection(cat, ws, 'sel', { format, out });
        expect(report.skipped.map((s) => s.key).sort()).toEqual(
          [gone.key, ...inShard.map((p) => p.key)].sort(),
        );
        const goneReport = report.skipped.find((s) => s.key === gone.key)!;
        expect(goneReport.file).toBe(gone.file);
        expect(goneReport.reason).toContain(gone.file);
        expect(goneReport.reason).toContain(gone.key);
        expect(report.skipped.find((s) => s.key === inShard[0]!.key)!.reason).toMatch(/changed size/);
        const kept = picks.filter((p) => p !== gone && p.file !== shard).map((p) => p.key);
        expect(report.samples).toBe(kept.length);
        if (format === 'webdataset') {
          const samples = await readShards(out, report);
          expect(samples.map((s) => decodeURIComponent(s.key))).toEqual(kept);
          expect(await readdir(out)).not.toContain(expect.stringMatching(/^\.clipcurate/));
        } else {
          const lines = (await readFile(path.join(out, 'manifest.jsonl'), 'utf8')).trim().split('\n');
          expect(lines.map((l) => (JSON.parse(l) as { key: string }).key)).toEqual(kept);
        }
        const prov = JSON.parse(await readFile(path.join(out, 'provenance.json'), 'utf8')) as {
          export: { skipped: unknown[] };
        };
        expect(prov.export.skipped).toHaveLength(report.skipped.length);
      }
    } finally {
      cat.close();
    }
  });
});
