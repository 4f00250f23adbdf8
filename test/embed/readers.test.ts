import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDataset } from '../../src/embed/readers/index.js';
import { expandSpec } from '../../src/embed/readers/files.js';
import { splitMemberName } from '../../src/embed/readers/webdataset.js';
import type { Sample } from '../../src/embed/readers/types.js';
import { baseKey, MINI, MINI_COUNT, readAll, tempDir } from '../helpers.js';

/** The independent truth: the image files and sidecars the fixture folder holds, read with plain fs. */
async function folderTruth(sample: Sample): Promise<{ bytes: Buffer; caption: string }> {
  const label = String(sample.metadata.label);
  const stem = path.join(MINI, 'folder', label, baseKey(sample.key));
  const bytes = await readFile(`${stem}.jpg`);
  const caption = await readFile(`${stem}.txt`, 'utf8').catch(async () => {
    return (JSON.parse(await readFile(`${stem}.json`, 'utf8')) as { caption: string }).caption;
  });
  return { bytes, caption: caption.trim() };
}

async function read(spec: string, options = {}) {
  const { reader } = await openDataset(spec, options, MINI);
  return { reader, ...(await readAll(reader)) };
}

describe('WebDataset reader', () => {
  it('reads a brace range of shards, grouping members by key, with bytes identical to the originals', async () => {
    const { reader, samples, issues } = await read('wds/mini-{000..002}.tar');
    expect(reader.format).toBe('webdataset');
    expect(issues).toEqual([]);
    expect(samples).toHaveLength(MINI_COUNT);
    expect(new Set(samples.map((s) => s.key)).size).toBe(MINI_COUNT);
    for (const sample of samples) {
      const truth = await folderTruth({ ...sample, metadata: sample.metadata });
      expect((await sample.image()).equals(truth.bytes)).toBe(true);
      expect(sample.caption).toBe(truth.caption);
      expect(sample.metadata.cls).toBe(sample.metadata.label_index);
      expect(sample.location.member).toBe(`${sample.key}.jpg`);
    }
    // Source order is kept: the manifest lists the same samples in the order they were packed.
    const manifest = (await readFile(path.join(MINI, 'manifest.csv'), 'utf8')).trim().split('\n').slice(1);
    expect(samples.map((s) => s.key)).toEqual(manifest.map((line) => line.split(',')[0]));
  });

  it('reads gzip shards like plain ones, and globs like brace ranges', async () => {
    const plain = await read('wds/mini-000.tar');
    const gz = await read('wds-gz/mini-*.tar.gz');
    expect(gz.samples.map((s) => s.key)).toEqual(plain.samples.map((s) => s.key));
    for (const [i, s] of gz.samples.entries()) {
      expect((await s.image()).equals(await plain.samples[i]!.image())).toBe(true);
    }
    const globbed = await read('wds/*.tar');
    expect(globbed.samples).toHaveLength(MINI_COUNT);
  });

  it('splits member names at the first dot of the last path component', () => {
    expect(splitMemberName('a/b.c/x.seg.png')).toEqual({ key: 'a/b.c/x', ext: 'seg.png' });
    expect(splitMemberName('000123.jpg')).toEqual({ key: '000123', ext: 'jpg' });
    expect(splitMemberName('noext')).toEqual({ key: 'noext', ext: '' });
  });
});

describe('image folder reader', () => {
  it('walks nested folders; captions from .txt or the json sidecar, which also gives metadata', async () => {
    const { reader, samples, issues } = await read('folder');
    expect(reader.format).toBe('folder');
    expect(issues).toEqual([]);
    expect(samples).toHaveLength(MINI_COUNT);
    const fromJson = samples.filter((s) => s.metadata.caption_kind !== undefined);
    expect(fromJson.length).toBe(MINI_COUNT / 5);
    for (const s of samples) {
      expect(s.key).toMatch(/^[a-z]+\/traind?\d{5,6}$/);
      expect(s.key.split('/')[0]).toBe(path.basename(path.dirname(s.location.file)));
    }
  });
});

describe('manifest readers', () => {
  const formats = [
    ['manifest.csv', 'csv'],
    ['manifest.tsv', 'tsv'],
    ['manifest.jsonl', 'jsonl'],
    ['paths.parquet', 'parquet'],
    ['img2dataset.parquet', 'parquet'],
  ] as const;

  it.each(formats)(
    '%s reads every sample with the same bytes and caption as the shards',
    async (file, format) => {
      const shards = await read('wds/mini-{000..002}.tar');
      const byKey = new Map(shards.samples.map((s) => [s.key, s]));
      const { reader, samples, issues } = await read(file);
      expect(reader.format).toBe(format);
      expect(issues).toEqual([]);
      expect(samples).toHaveLength(MINI_COUNT);
      for (const s of samples) {
        const twin = byKey.get(baseKey(s.key))!;
        expect(twin, s.key).toBeDefined();
        expect(s.caption).toBe(twin.caption);
        expect((await s.image()).equals(await twin.image())).toBe(true);
      }
    },
  );

  it('keeps the other columns as metadata (img2dataset: url, status, size)', async () => {
    const { samples } = await read('img2dataset.parquet');
    const first = samples[0]!;
    expect(first.key).toBe('train000000');
    expect(first.metadata).toMatchObject({ status: 'success', width: 32, height: 32 });
    expect(String(first.metadata.url)).toContain('train000000');
    expect(first.metadata.jpg).toBeUndefined();
    const csv = await read('manifest.csv');
    expect(csv.samples[0]!.metadata).toMatchObject({
      label: expect.any(String),
      caption_kind: expect.any(String),
    });
    expect(csv.samples[0]!.location.line).toBe(2);
  });

  it('takes configurable column names, and names the columns it has when it cannot find one', async () => {
    const dir = await tempDir();
    const image = path.join(MINI, 'folder/cat');
    const rows = ['file_name\talt_text\tid', `${image}/x.jpg\ta cat\tk1`];
    const file = path.join(dir, 'custom.tsv');
    await writeFile(file, rows.join('\n'));
    const without = await read(file);
    expect(without.samples).toEqual([]);
    expect(without.issues).toHaveLength(1);
    expect(without.issues[0]).toMatchObject({ kind: 'unreadable-part', file });
    expect(without.issues[0]!.reason).toContain('file_name, alt_text, id');

    const withColumns = await read(file, { columns: { image: 'file_name', caption: 'alt_text', key: 'id' } });
    expect(withColumns.issues).toEqual([]);
    expect(withColumns.samples.map((s) => [s.key, s.caption, s.location.imagePath])).toEqual([
      ['k1', 'a cat', `${image}/x.jpg`],
    ]);
  });

  it('turns URL-only rows into remote-image issues', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'urls.jsonl');
    const lines = [
      { url: 'https://example.invalid/a.jpg', caption: 'a' },
      { url: 'http://example.invalid/b.jpg', caption: 'b', key: 'bee' },
    ];
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join('\n'));
    const { samples, issues } = await read(file);
    expect(samples).toEqual([]);
    expect(issues.map((i) => [i.kind, i.key, i.where])).toEqual([
      ['remote-image', 'row00000000', 'line 1'],
      ['remote-image', 'bee', 'line 2'],
    ]);
    expect(issues[0]!.reason).toMatch(/^remote image: download it first: https:\/\/example.invalid\/a.jpg/);
  });
});

describe('dataset specs', () => {
  it('expands zero-padded brace ranges and reports the members that do not exist', async () => {
    const { paths, missing } = await expandSpec('wds/mini-{000..004}.tar', MINI);
    expect(paths.map((p) => path.basename(p))).toEqual(['mini-000.tar', 'mini-001.tar', 'mini-002.tar']);
    expect(missing.map((p) => path.basename(p))).toEqual(['mini-003.tar', 'mini-004.tar']);
  });

  it('refuses mixed formats, unknown extensions and specs that match nothing, with the reason', async () => {
    await expect(openDataset('manifest.{csv,jsonl}', {}, MINI)).rejects.toThrow(/several formats/);
    await expect(openDataset('nothing-*.tar', {}, MINI)).rejects.toThrow(/no files match/);
    const dir = await tempDir();
    await writeFile(path.join(dir, 'notes.docx'), 'x');
    await expect(openDataset('notes.docx', {}, dir)).rejects.toThrow(/unsupported file .*notes\.docx/);
  });
});
