/**
 * Exports a training job can use without the catalog (issue 21): WebDataset shards keep every member of
 * a source sample byte for byte, manifests locate tar members by offset, and the manifest formats agree
 * on column types (weight a float even when every weight is 1, metadata JSON text everywhere).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { addDataset, Catalog } from '../../src/curate/api.js';
import { exportSelection, MANIFEST_COLUMNS } from '../../src/curate/export/index.js';
import { exportName } from '../../src/curate/export/names.js';
import { indexTar } from '../../src/curate/export/tarIndex.js';
import { saveSelection } from '../../src/curate/selections.js';
import { MINI, tempDir } from '../helpers.js';

interface Row {
  id: bigint;
  key: string;
  file: string;
  member: string | null;
  dataset: string;
}

/** Every member of a tar (plain or gzip), in order, read with tar-stream: the reference bytes. */
async function tarEntries(file: string): Promise<Array<{ name: string; bytes: Buffer }>> {
  const extract = tar.extract();
  const source = createReadStream(file);
  (file.endsWith('.gz') ? source.pipe(createGunzip()) : source).pipe(extract);
  const out: Array<{ name: string; bytes: Buffer }> = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
    if (entry.header.type === 'file') out.push({ name: entry.header.name, bytes: Buffer.concat(chunks) });
  }
  return out;
}

/** Samples as webdataset's `group_by_keys` forms them (`base_plus_ext`): key → extension → bytes. */
async function wdsSamples(file: string): Promise<Map<string, Map<string, Buffer>>> {
  const samples = new Map<string, Map<string, Buffer>>();
  for (const { name, bytes } of await tarEntries(file)) {
    const m = /^((?:.*\/|)[^.]+)[.]([^/]*)$/.exec(name);
    if (!m) continue;
    const members = samples.get(m[1]!) ?? new Map<string, Buffer>();
    members.set(m[2]!, bytes);
    samples.set(m[1]!, members);
  }
  return samples;
}

/** `to_tuple(*exts)` of one sample: the members in that order, or an error naming the missing one. */
function toTuple(sample: Map<string, Buffer>, ...exts: string[]): Buffer[] {
  return exts.map((ext) => {
    const bytes = sample.get(ext);
    if (!bytes) throw new Error(`sample has no ${ext} (has ${[...sample.keys()].join(', ')})`);
    return bytes;
  });
}

async function bytesAt(file: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

describe('exports usable without the catalog', () => {
  let workspace: string;
  let catalog: Catalog;
  let picked: Row[];
  const TAR = path.join(MINI, 'wds/mini-000.tar');
  const GZ = path.join(MINI, 'wds-gz/mini-000.tar.gz');

  beforeAll(async () => {
    workspace = await tempDir({ forFile: true });
    catalog = await Catalog.open(workspace);
    await addDataset(catalog, 'wds/mini-000.tar', { cwd: MINI });
    await addDataset(catalog, 'wds-gz/mini-000.tar.gz', { cwd: MINI });
    await addDataset(catalog, 'folder', { cwd: MINI });
    await addDataset(catalog, 'img2dataset.parquet', { cwd: MINI });
    const rows = await catalog.rows<Row>(
      `SELECT s.id, s.key, s.file, s.member, d.name AS dataset
       FROM samples s JOIN datasets d ON d.id = s.dataset_id ORDER BY s.id`,
    );
    // Every 7th sample of each source, so each format of source is in the selection several times.
    const indices = Int32Array.from(rows.flatMap((_, i) => (i % 7 === 3 ? [i] : [])));
    picked = Array.from(indices, (i) => rows[i]!);
    // No weights: every weight is 1, the case where an inferred weight column became an integer.
    await saveSelection(catalog, workspace, {
      name: 'plain',
      method: 'hand',
      params: {},
      seed: 1,
      budget: { requested: String(indices.length), count: indices.length },
      selection: { indices, stages: Int32Array.from(indices, (_, t) => t % 2), trace: [] },
      poolIds: BigInt64Array.from(rows, (r) => r.id),
      encoder: { name: 'test', fingerprint: 'x' },
      seconds: 0,
    });
    return () => catalog.close();
  });

  it('the selection has tar, gzip tar, folder and parquet-row picks', () => {
    const files = new Set(picked.map((p) => (p.member ? path.basename(p.file) : p.dataset)));
    expect(files).toEqual(new Set(['mini-000.tar', 'mini-000.tar.gz', 'folder', 'img2dataset']));
  });

  it('webdataset shards keep every source member byte for byte (.cls, .json, .txt), plus curate.json', async () => {
    const out = path.join(await tempDir(), 'wds');
    const report = await exportSelection(catalog, workspace, 'plain', {
      format: 'webdataset',
      out,
      memoryBytes: 0,
    });
    expect(report.skipped).toEqual([]);
    const exported = new Map<string, Map<string, Buffer>>();
    for (const f of report.files.filter((f) => f.name.endsWith('.tar')))
      for (const [k, v] of await wdsSamples(path.join(out, f.name))) exported.set(k, v);
    const sources = new Map([
      [TAR, await wdsSamples(TAR)],
      [GZ, await wdsSamples(GZ)],
    ]);
    let fromTars = 0;
    for (const p of picked) {
      const sample = exported.get(exportName(p.key))!;
      expect(sample, p.key).toBeDefined();
      expect(JSON.parse(sample.get('curate.json')!.toString('utf8'))).toMatchObject({
        key: p.key,
        weight: 1,
      });
      if (!p.member) {
        expect([...sample.keys()].sort(), p.key).toEqual(['curate.json', 'jpg', 'txt']);
        continue;
      }
      fromTars++;
      const source = sources.get(p.file)!.get(p.member.replace(/\.[^/]*$/, ''))!;
      // The member set is the source's, plus clipcurate's facts: to_tuple works as on the source.
      expect([...sample.keys()].sort(), p.key).toEqual([...source.keys(), 'curate.json'].sort());
      for (const [ext, bytes] of source) expect(sample.get(ext)!.equals(bytes), `${p.key}.${ext}`).toBe(true);
      const [image, cls] = toTuple(sample, 'jpg', 'cls');
      expect(image!.equals(source.get('jpg')!)).toBe(true);
      expect(cls!.toString('utf8')).toMatch(/^\d+$/);
      expect(cls!.equals(source.get('cls')!)).toBe(true);
    }
    expect(fromTars).toBeGreaterThan(10);
  });

  it('manifests locate each tar member by offset: the bytes read there are the source member', async () => {
    const out = path.join(await tempDir(), 'jsonl');
    const report = await exportSelection(catalog, workspace, 'plain', { format: 'jsonl', out });
    expect(report.skipped).toEqual([]);
    const rows = (await readFile(path.join(out, 'manifest.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).toHaveLength(picked.length);
    const reference = new Map((await tarEntries(TAR)).map((e) => [e.name, e.bytes]));
    const seen = new Set<string>();
    for (const r of rows) {
      const source = r.image_source as string;
      seen.add(source);
      // image_path is null only where image_source says the bytes are inside `file`.
      if (source === 'file') {
        expect(typeof r.image_path).toBe('string');
        expect((await readFile(r.image_path as string)).length).toBe(r.image_bytes);
      } else expect(r.image_path, String(r.key)).toBeNull();
      if (source === 'tar') {
        const image = await bytesAt(r.file as string, r.image_offset as number, r.image_bytes as number);
        expect(image.equals(reference.get(r.member as string)!), String(r.key)).toBe(true);
        const members = JSON.parse(r.members as string) as Array<{
          name: string;
          offset: number;
          size: number;
        }>;
        const stem = (r.member as string).replace(/\.[^/]*$/, '');
        expect(members.map((m) => m.name).sort()).toEqual(
          [...reference.keys()].filter((n) => n.startsWith(`${stem}.`)).sort(),
        );
        for (const m of members)
          expect((await bytesAt(r.file as string, m.offset, m.size)).equals(reference.get(m.name)!)).toBe(
            true,
          );
      } else {
        // A gzip shard cannot be seeked; folder images and parquet rows are not tar members.
        expect(r.image_offset).toBeNull();
        expect(r.members).toBeNull();
      }
      if (source === 'row') expect(typeof r.row).toBe('number');
    }
    expect(seen).toEqual(new Set(['tar', 'tar.gz', 'file', 'row']));
  });

  it('parquet, JSONL and CSV have the same column types; weight is DOUBLE when every weight is 1', async () => {
    const base = await tempDir();
    const files: Record<string, string> = {};
    for (const format of ['parquet', 'jsonl', 'csv'] as const) {
      const out = path.join(base, format);
      await exportSelection(catalog, workspace, 'plain', { format, out });
      files[format] = path.join(out, `manifest.${format}`);
    }
    const sources = {
      parquet: `read_parquet('${files.parquet}')`,
      jsonl: `read_json_auto('${files.jsonl}')`,
      csv: `read_csv_auto('${files.csv}')`,
    };
    const types: Record<string, Record<string, string>> = {};
    for (const [format, from] of Object.entries(sources)) {
      const described = await catalog.rows<{ column_name: string; column_type: string }>(
        `DESCRIBE SELECT * FROM ${from}`,
      );
      types[format] = Object.fromEntries(described.map((d) => [d.column_name, d.column_type]));
    }
    // Parquet has exactly the documented types; readers that infer types find the same ones.
    expect(types.parquet).toEqual(MANIFEST_COLUMNS);
    expect(types.jsonl).toEqual(MANIFEST_COLUMNS);
    expect(types.csv).toEqual(MANIFEST_COLUMNS);
    expect(types.csv!.weight).toBe('DOUBLE');

    // And the same values, row for row (metadata the same JSON text in all three).
    const read = async (from: string) =>
      (await catalog.rows<Record<string, unknown>>(`SELECT * FROM ${from} ORDER BY rank`)).map((r) =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])),
      );
    const parquet = await read(sources.parquet);
    expect(parquet).toHaveLength(picked.length);
    expect(parquet.every((r) => r.weight === 1 && r.weight_raw === 1)).toBe(true);
    expect(await read(sources.jsonl)).toEqual(parquet);
    expect(await read(sources.csv)).toEqual(parquet);
    for (const r of parquet) expect(JSON.parse(r.metadata as string)).toBeTypeOf('object');
  });

  it.skipIf(spawnSync('/usr/bin/python3', ['-c', '1']).status !== 0)(
    "Python's json and csv see float weights and metadata text",
    async () => {
      const base = await tempDir();
      for (const format of ['jsonl', 'csv'] as const)
        await exportSelection(catalog, workspace, 'plain', { format, out: path.join(base, format) });
      const script = [
        'import csv, json, sys',
        'rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]',
        'assert rows and all(type(r["weight"]) is float and type(r["weight_raw"]) is float for r in rows)',
        'assert all(isinstance(r["metadata"], str) for r in rows)',
        'with open(sys.argv[2], encoding="utf-8", newline="") as f: table = list(csv.DictReader(f))',
        'assert all(r["weight"] == "1.0" for r in table), table[0]["weight"]',
        'assert [json.loads(r["metadata"]) for r in table] == [json.loads(r["metadata"]) for r in rows]',
        'print(len(rows))',
      ].join('\n');
      const printed = execFileSync('/usr/bin/python3', [
        '-c',
        script,
        path.join(base, 'jsonl/manifest.jsonl'),
        path.join(base, 'csv/manifest.csv'),
      ]);
      expect(Number(printed.toString().trim())).toBe(picked.length);
    },
  );
});

describe('indexTar', () => {
  it('finds the data offset of every member as tar-stream reads it: ustar, pax and GNU long names', async () => {
    const dir = await tempDir();
    const long = `${'d'.repeat(120)}/${'n'.repeat(130)}`;
    const names = ['a/000001.jpg', 'a/000001.cls', `${long}.txt`, 'b/empty.json'];
    for (const [i, n] of names.entries()) {
      await mkdir(path.join(dir, 'src', path.dirname(n)), { recursive: true });
      await writeFile(path.join(dir, 'src', n), i === 3 ? '' : Buffer.alloc(700 * i + 3, i + 1));
    }
    const tars: string[] = [];
    for (const format of ['gnu', 'pax', 'ustar']) {
      const file = path.join(dir, `${format}.tar`);
      const members = format === 'ustar' ? names.filter((n) => n !== `${long}.txt`) : names;
      const made = spawnSync('tar', [
        `--format=${format}`,
        '-cf',
        file,
        '-C',
        path.join(dir, 'src'),
        ...members,
      ]);
      if (made.status === 0) tars.push(file);
    }
    // tar-stream's own writer (pax headers for the long name).
    const pack = tar.pack();
    for (const [i, n] of names.entries()) pack.entry({ name: n }, Buffer.alloc(300 * i, 65 + i));
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
    await writeFile(path.join(dir, 'stream.tar'), Buffer.concat(chunks));
    tars.push(path.join(dir, 'stream.tar'));
    expect(tars.length).toBeGreaterThanOrEqual(2);

    for (const file of tars) {
      const entries = await indexTar(file);
      const reference = await tarEntries(file);
      expect(
        entries.map((e) => e.name),
        file,
      ).toEqual(reference.map((r) => r.name));
      for (const [i, e] of entries.entries()) {
        expect(e.size).toBe(reference[i]!.bytes.length);
        expect((await bytesAt(file, e.offset, e.size)).equals(reference[i]!.bytes), `${file} ${e.name}`).toBe(
          true,
        );
      }
    }
  });

  it('refuses a file that is not a tar, naming it', async () => {
    const file = path.join(await tempDir(), 'not.tar');
    await writeFile(file, Buffer.alloc(2048, 7));
    await expect(indexTar(file)).rejects.toThrow(/not\.tar: invalid tar header at byte 0/);
  });
});
