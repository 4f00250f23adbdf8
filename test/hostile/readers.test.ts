/**
 * Hostile inputs for the readers (issue 22, cases 7, 9, 11 and the odd tar member names): special files
 * behind manifest rows and folder links, dangling links next to good datasets, repeated keys and unsafe
 * names inside tar shards. Everything is built here, in temporary folders, and read for real (readers,
 * DuckDB catalog, the CLI in-process).
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/curate/catalog.js';
import { MAX_IMAGE_BYTES, readRegularFile } from '../../src/embed/readers/files.js';
import { openDataset } from '../../src/embed/readers/index.js';
import { ImageLoadError, type SampleIssue } from '../../src/embed/readers/types.js';
import { MINI, readAll, tempDir } from '../helpers.js';
import { captureCli } from '../support/cli.js';

const { curate, stderr } = captureCli();

/** Two real CIFAR images of the fixture (they pass the catalog's image check). */
const IMAGE_A = path.join(MINI, 'folder/airplane/train000000.jpg');
const IMAGE_B = path.join(MINI, 'folder/cat/train000011.jpg');

async function packTar(
  file: string,
  members: Array<{ name: string; body?: Buffer | string; type?: tar.Header['type']; linkname?: string }>,
): Promise<void> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const m of members) {
    const body = m.body === undefined ? undefined : Buffer.from(m.body);
    const header: Partial<tar.Header> & { name: string } = {
      name: m.name,
      type: m.type ?? 'file',
      ...(m.linkname ? { linkname: m.linkname } : {}),
      ...(body ? { size: body.length } : {}),
      mtime: new Date(0),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) pack.entry(header, body, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  await writeFile(file, Buffer.concat(chunks));
}

async function catalogIssues(ws: string): Promise<SampleIssue[]> {
  const catalog = await Catalog.open(ws);
  try {
    return await catalog.rows<SampleIssue>(
      'SELECT kind, severity, file, key, "where", reason FROM issues ORDER BY file, key',
    );
  } finally {
    catalog.close();
  }
}

async function catalogSamples(
  ws: string,
): Promise<Array<{ key: string; caption: string; image_bytes: number }>> {
  const catalog = await Catalog.open(ws);
  try {
    return (
      await catalog.rows<{ key: string; caption: string; image_bytes: number }>(
        'SELECT key, caption, image_bytes FROM samples ORDER BY key',
      )
    ).map((r) => ({ ...r, image_bytes: Number(r.image_bytes) }));
  } finally {
    catalog.close();
  }
}

describe('special files are issues, never a hang or runaway memory (case 9)', () => {
  it('folder links and manifest rows pointing at /dev/zero, a FIFO, a folder or a huge file', async () => {
    const data = await tempDir();
    const imgs = path.join(data, 'imgs');
    await mkdir(imgs);
    await copyFile(IMAGE_A, path.join(imgs, 'good.jpg'));
    await writeFile(path.join(imgs, 'good.txt'), 'a good airplane');
    await symlink('/dev/zero', path.join(imgs, 'zero.jpg'));
    await writeFile(path.join(imgs, 'zero.txt'), 'endless zeros');
    execFileSync('mkfifo', [path.join(imgs, 'fifo.jpg')]);
    await writeFile(path.join(imgs, 'fifo.txt'), 'a pipe nobody writes to');
    await mkdir(path.join(data, 'somewhere'));
    await symlink(path.join(data, 'somewhere'), path.join(imgs, 'dir.jpg'));
    await writeFile(path.join(imgs, 'dir.txt'), 'a folder posing as an image');
    // A caption sidecar that is a FIFO must not block either.
    await copyFile(IMAGE_B, path.join(imgs, 'pipecap.jpg'));
    execFileSync('mkfifo', [path.join(imgs, 'pipecap.txt')]);
    // A sparse file past the per-file limit: refused from its size, never loaded.
    await writeFile(path.join(imgs, 'huge.jpg'), '');
    await truncate(path.join(imgs, 'huge.jpg'), MAX_IMAGE_BYTES + 1);
    await writeFile(path.join(imgs, 'huge.txt'), 'too big to load');

    const fifo2 = path.join(data, 'pipe.png');
    execFileSync('mkfifo', [fifo2]);
    await symlink('/dev/zero', path.join(data, 'zero-link.jpg'));
    await writeFile(
      path.join(data, 'manifest.csv'),
      [
        'key,image_path,caption',
        `m-good,${IMAGE_B},a good cat`,
        'm-zero,/dev/zero,the device itself',
        'm-zero-link,zero-link.jpg,a link to the device',
        'm-fifo,pipe.png,a fifo',
        'm-dir,somewhere,a folder',
      ].join('\n') + '\n',
    );

    const ws = await tempDir();
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const { code, out } = await curate('-w', ws, 'init', imgs, path.join(data, 'manifest.csv'));
    const seconds = (performance.now() - started) / 1000;
    expect(code, stderr()).toBe(0);
    expect(seconds).toBeLessThan(30);
    // /dev/zero used to grow the process by gigabytes.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(400 * 1024 * 1024);
    expect(out).toContain('2 samples in 2 dataset(s)');

    const samples = await catalogSamples(ws);
    expect(samples.map((s) => s.key)).toEqual(['good', 'm-good']);
    const byKey = new Map((await catalogIssues(ws)).map((i) => [i.key, i]));
    const expectIssue = (key: string, kind: string, reason: RegExp) => {
      const found = byKey.get(key);
      expect(found, `issue for ${key}`).toBeDefined();
      expect(found!.kind, `${key}: ${found!.reason}`).toBe(kind);
      expect(found!.reason).toMatch(reason);
    };
    expectIssue('zero', 'not-a-file', /zero\.jpg \(a link to \/dev\/zero\) is a character device/);
    expectIssue('fifo', 'not-a-file', /fifo\.jpg is a FIFO/);
    expectIssue('dir', 'not-a-file', /dir\.jpg .*is a folder/);
    expectIssue('pipecap', 'not-a-file', /pipecap\.txt is a FIFO/);
    expectIssue('huge', 'too-large', new RegExp(`${MAX_IMAGE_BYTES + 1} bytes, more than the`));
    expectIssue('m-zero', 'not-a-file', /\/dev\/zero is a character device/);
    expectIssue('m-zero-link', 'not-a-file', /a link to \/dev\/zero/);
    expectIssue('m-fifo', 'not-a-file', /pipe\.png is a FIFO/);
    expectIssue('m-dir', 'not-a-file', /somewhere is a folder/);
    // The table printed by init names the new kinds.
    expect(out).toMatch(/not-a-file\s+skipped\s+4/);
  }, 60_000);

  it('a shard or manifest that is itself a FIFO or a link to /dev/zero is an issue for that part', async () => {
    const data = await tempDir();
    await copyFile(path.join(MINI, 'wds/mini-000.tar'), path.join(data, 'a-000.tar'));
    execFileSync('mkfifo', [path.join(data, 'a-001.tar')]);
    await symlink('/dev/zero', path.join(data, 'a-002.tar'));
    const { samples, issues } = await readAll((await openDataset('a-{000..002}.tar', {}, data)).reader);
    expect(samples).toHaveLength(80);
    expect(issues.map((i) => [path.basename(i.file), i.kind])).toEqual([
      ['a-001.tar', 'not-a-file'],
      ['a-002.tar', 'not-a-file'],
    ]);
    execFileSync('mkfifo', [path.join(data, 'rows.jsonl')]);
    const manifest = await readAll((await openDataset('rows.jsonl', {}, data)).reader);
    expect(manifest.samples).toEqual([]);
    expect(manifest.issues).toMatchObject([{ kind: 'not-a-file', reason: /rows\.jsonl is a FIFO/ }]);
  }, 30_000);

  it('readRegularFile reads regular files within the limit only', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'x.bin');
    await writeFile(file, Buffer.alloc(100, 7));
    expect((await readRegularFile(file, 100)).equals(Buffer.alloc(100, 7))).toBe(true);
    await expect(readRegularFile(file, 99)).rejects.toMatchObject({ kind: 'too-large' });
    await expect(readRegularFile('/dev/zero', 1 << 20)).rejects.toBeInstanceOf(ImageLoadError);
    await expect(readRegularFile(path.join(dir, 'nope'), 1)).rejects.toMatchObject({ kind: 'missing-file' });
  });
});

describe('one bad path does not abort the other datasets (case 11)', () => {
  it('a dangling link in an image folder is an issue for its sample; the next dataset is read', async () => {
    const data = await tempDir();
    const imgs = path.join(data, 'imgs');
    await mkdir(imgs);
    await copyFile(IMAGE_A, path.join(imgs, 'good.jpg'));
    await writeFile(path.join(imgs, 'good.txt'), 'a good airplane');
    await symlink(path.join(data, 'gone.jpg'), path.join(imgs, 'dangling.jpg'));
    await writeFile(path.join(imgs, 'dangling.txt'), 'its image is gone');
    await copyFile(IMAGE_B, path.join(imgs, 'nocap.jpg'));
    await symlink(path.join(data, 'gone.txt'), path.join(imgs, 'nocap.txt'));
    // A range of shards that also names a dangling link.
    const shards = path.join(data, 'shards');
    await mkdir(shards);
    await copyFile(path.join(MINI, 'wds/mini-001.tar'), path.join(shards, 's-000.tar'));
    await symlink(path.join(data, 'gone.tar'), path.join(shards, 's-001.tar'));

    const ws = await tempDir();
    const { code, out } = await curate(
      '-w',
      ws,
      'init',
      imgs,
      path.join(shards, 's-{000..001}.tar'),
      path.join(MINI, 'manifest.jsonl'),
    );
    expect(code, stderr()).toBe(0);
    expect(out).toContain('321 samples in 3 dataset(s)');
    expect(stderr()).not.toMatch(/ENOENT|\n\s+at /);
    const issues = await catalogIssues(ws);
    expect(issues.find((i) => i.key === 'dangling')).toMatchObject({
      kind: 'missing-file',
      reason: expect.stringMatching(/dangling\.jpg \(a link to .*gone\.jpg\) is a dangling link/) as string,
    });
    expect(issues.find((i) => i.key === 'nocap')).toMatchObject({
      kind: 'missing-file',
      reason: expect.stringMatching(/nocap\.txt .* is a dangling link/) as string,
    });
    expect(issues.find((i) => i.file.endsWith('s-001.tar'))).toMatchObject({
      kind: 'missing-file',
      reason: expect.stringMatching(/s-001\.tar, which does not exist/) as string,
    });

    // Running init again reads nothing new and keeps the issues.
    const again = await curate('-w', ws, 'init', imgs, path.join(shards, 's-{000..001}.tar'));
    expect(again.code, stderr()).toBe(0);
    expect(await catalogIssues(ws)).toEqual(issues);
  }, 60_000);
});

describe('tar shards: repeated keys and odd member names (case 7, "Smaller")', () => {
  it('two samples with the same key next to each other: the first wins, the second is a duplicate-key issue', async () => {
    const data = await tempDir();
    const first = await readFile(IMAGE_A);
    const second = await readFile(IMAGE_B);
    await packTar(path.join(data, 'dup.tar'), [
      { name: 'a.jpg', body: first },
      { name: 'a.txt', body: 'the first a' },
      { name: 'a.jpg', body: second },
      { name: 'a.txt', body: 'the second a' },
      { name: 'a.json', body: '{"x":1}' },
      { name: 'b.jpg', body: second },
      { name: 'b.txt', body: 'b' },
      { name: 'b.jpg', body: first },
    ]);
    const { samples, issues } = await readAll((await openDataset('dup.tar', {}, data)).reader);
    expect(samples.map((s) => [s.key, s.caption])).toEqual([
      ['a', 'the first a'],
      ['b', 'b'],
    ]);
    expect((await samples[0]!.image()).equals(first)).toBe(true);
    expect((await samples[1]!.image()).equals(second)).toBe(true);
    expect(samples[0]!.metadata).toEqual({}); // a.json came after the repeat: it belongs to the second a
    expect(issues.map((i) => [i.kind, i.key, i.where])).toEqual([
      ['duplicate-key', 'a', 'a.jpg'],
      ['duplicate-key', 'b', 'b.jpg'],
    ]);
    expect(issues[0]!.reason).toMatch(/a\.jpg, a\.txt, a\.json.*the first sample wins/);

    // Through init and the catalog: the first a is catalogued, the second recorded.
    const ws = await tempDir();
    expect((await curate('-w', ws, 'init', path.join(data, 'dup.tar'))).code, stderr()).toBe(0);
    const kept = await catalogSamples(ws);
    expect(kept).toEqual([
      { key: 'a', caption: 'the first a', image_bytes: first.length },
      { key: 'b', caption: 'b', image_bytes: second.length },
    ]);
    expect((await catalogIssues(ws)).map((i) => [i.kind, i.key])).toEqual([
      ['duplicate-key', 'a'],
      ['duplicate-key', 'b'],
    ]);
  }, 30_000);

  it('hidden, __-prefixed, backslash-traversal, absolute and link members are named issues', async () => {
    const data = await tempDir();
    const image = await readFile(IMAGE_A);
    const odd = [
      '.x.jpg',
      '__x.jpg',
      '..\\..\\x.jpg',
      '../y.jpg',
      'd/../../z.jpg',
      '/abs/w.jpg',
      'dir/.hidden.txt',
    ];
    await packTar(path.join(data, 'odd.tar'), [
      { name: 'dir', type: 'directory' },
      ...odd.map((name) => ({ name, body: image })),
      { name: 'link.jpg', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'ok.jpg', body: image },
      { name: 'ok.txt', body: 'a fine sample' },
    ]);
    const { samples, issues } = await readAll((await openDataset('odd.tar', {}, data)).reader);
    expect(samples.map((s) => s.key)).toEqual(['ok']);
    expect(issues.map((i) => [i.kind, i.where])).toEqual([
      ...odd.map((name) => ['skipped-member', name]),
      ['skipped-member', 'link.jpg'],
    ]);
    const reason = (name: string) => issues.find((i) => i.where === name)!.reason;
    expect(reason('.x.jpg')).toMatch(/hidden/);
    expect(reason('__x.jpg')).toMatch(/__/);
    expect(reason('..\\..\\x.jpg')).toMatch(/"\.\." component/);
    expect(reason('/abs/w.jpg')).toMatch(/absolute/);
    expect(reason('link.jpg')).toMatch(/symlink, not a file/);

    const ws = await tempDir();
    const { code, out } = await curate('-w', ws, 'init', path.join(data, 'odd.tar'));
    expect(code, stderr()).toBe(0);
    expect(out).toMatch(/skipped-member\s+skipped\s+8/);
  }, 30_000);
});
