/**
 * Regenerates the committed fixtures from ../shared/data/cifar10-captions (developer machines only):
 *   test/fixtures/cifar-mini/  240 real samples in every supported format
 *   test/fixtures/broken/      a corpus of broken inputs, with CASES.json naming the issue each must yield
 *   data/demo/                 the 2,000-sample bundle `curate demo` reads
 * Run: npm run fixtures
 */
import { createReadStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip, gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import sharp from 'sharp';
import tar from 'tar-stream';

const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED = path.resolve(ROOT, '../shared/data/cifar10-captions');
const MINI = path.join(ROOT, 'test/fixtures/cifar-mini');
const BROKEN = path.join(ROOT, 'test/fixtures/broken');
const DEMO = path.join(ROOT, 'data/demo');

interface SourceSample {
  key: string;
  jpg: Buffer;
  txt: string;
  cls: string;
  json: Record<string, unknown>;
}

async function readShard(file: string, limit: number): Promise<SourceSample[]> {
  const extract = tar.extract();
  createReadStream(file).pipe(createGunzip()).pipe(extract);
  const byKey = new Map<string, Partial<Record<string, Buffer>>>();
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    const name = entry.header.name;
    const dot = name.indexOf('.');
    const key = name.slice(0, dot);
    if (!byKey.has(key)) {
      if (byKey.size === limit) {
        extract.destroy();
        break;
      }
      byKey.set(key, {});
    }
    byKey.get(key)![name.slice(dot + 1)] = Buffer.concat(chunks);
  }
  return [...byKey].map(([key, m]) => ({
    key,
    jpg: m.jpg!,
    txt: m.txt!.toString('utf8'),
    cls: m.cls!.toString('utf8'),
    json: JSON.parse(m.json!.toString('utf8')) as Record<string, unknown>,
  }));
}

type Member = [name: string, body: Buffer | string];

async function packTar(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const [name, body] of members) pack.entry({ name, mtime: new Date(0), mode: 0o644 }, body);
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const wdsMembers = (s: SourceSample): Member[] => [
  [`${s.key}.jpg`, s.jpg],
  [`${s.key}.txt`, s.txt],
  [`${s.key}.cls`, s.cls],
  [`${s.key}.json`, JSON.stringify(s.json)],
];

async function writeParquet(file: string, columns: string, rows: unknown[][]): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run(`CREATE TABLE t (${columns})`);
  const appender = await c.createAppender('t');
  for (const row of rows) {
    for (const v of row) {
      if (v === null) appender.appendNull();
      else if (Buffer.isBuffer(v)) appender.appendBlob(v);
      else if (typeof v === 'number') appender.appendInteger(v);
      else appender.appendVarchar(String(v));
    }
    appender.endRow();
  }
  appender.closeSync();
  await c.run(`COPY t TO '${file}' (FORMAT parquet)`);
  c.closeSync();
  db.closeSync();
}

async function makeMini(samples: SourceSample[]): Promise<void> {
  await rm(MINI, { recursive: true, force: true });
  await mkdir(path.join(MINI, 'wds'), { recursive: true });
  await mkdir(path.join(MINI, 'wds-gz'), { recursive: true });
  for (let shard = 0; shard < 3; shard++) {
    const chunk = samples.slice(shard * 80, shard * 80 + 80);
    const bytes = await packTar(chunk.flatMap(wdsMembers));
    const name = `mini-${String(shard).padStart(3, '0')}.tar`;
    await writeFile(path.join(MINI, 'wds', name), bytes);
    if (shard === 0) await writeFile(path.join(MINI, 'wds-gz', `${name}.gz`), gzipSync(bytes, { level: 9 }));
  }

  // Folder: <label>/<key>.jpg with a .txt sidecar, every fifth sample with a .json sidecar instead.
  const rel = (s: SourceSample) => `folder/${String(s.json.label)}/${s.key}.jpg`;
  for (const [i, s] of samples.entries()) {
    const dir = path.join(MINI, 'folder', String(s.json.label));
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `${s.key}.jpg`), s.jpg);
    if (i % 5 === 0)
      await writeFile(path.join(dir, `${s.key}.json`), JSON.stringify({ caption: s.txt, ...s.json }));
    else await writeFile(path.join(dir, `${s.key}.txt`), s.txt);
  }

  const csvCell = (v: string) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  const header = ['key', 'image_path', 'caption', 'label', 'caption_kind'];
  const rows = samples.map((s) => [s.key, rel(s), s.txt, String(s.json.label), String(s.json.caption_kind)]);
  await writeFile(
    path.join(MINI, 'manifest.csv'),
    [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n',
  );
  await writeFile(
    path.join(MINI, 'manifest.tsv'),
    [header, ...rows].map((r) => r.join('\t')).join('\n') + '\n',
  );
  await writeFile(
    path.join(MINI, 'manifest.jsonl'),
    rows.map((r) => JSON.stringify(Object.fromEntries(header.map((h, i) => [h, r[i]])))).join('\n') + '\n',
  );
  // img2dataset's parquet output layout, bytes inline.
  await writeParquet(
    path.join(MINI, 'img2dataset.parquet'),
    'key VARCHAR, jpg BLOB, txt VARCHAR, url VARCHAR, status VARCHAR, error_message VARCHAR, width INTEGER, height INTEGER, original_width INTEGER, original_height INTEGER',
    samples.map((s) => [
      s.key,
      s.jpg,
      s.txt,
      `https://example.invalid/cifar/${s.key}.jpg`,
      'success',
      null,
      32,
      32,
      32,
      32,
    ]),
  );
  await writeParquet(
    path.join(MINI, 'paths.parquet'),
    'image_path VARCHAR, caption VARCHAR',
    samples.map((s) => [rel(s), s.txt]),
  );
}

interface BrokenCase {
  /** Path relative to test/fixtures/broken of the file the issue must name. */
  file: string;
  key?: string;
  kind: string;
  what: string;
}

async function makeBroken(samples: SourceSample[]): Promise<void> {
  await rm(BROKEN, { recursive: true, force: true });
  await mkdir(path.join(BROKEN, 'tar'), { recursive: true });
  const [a, b, c, d, e] = samples as [SourceSample, SourceSample, SourceSample, SourceSample, SourceSample];
  const half = (buf: Buffer) => buf.subarray(0, Math.floor(buf.length / 2));
  // Cut inside the entropy-coded scan, after the headers: only the missing end marker tells.
  const mostly = (buf: Buffer) => buf.subarray(0, buf.length - 40);
  const invalidUtf8 = Buffer.concat([
    Buffer.from('a photo of a '),
    Buffer.from([0xff, 0xfe, 0xc3]),
    Buffer.from(' cat'),
  ]);
  const png = await sharp(b.jpg).png().toBuffer();
  const cases: BrokenCase[] = [];
  const expect = (file: string, kind: string, what: string, key?: string) =>
    cases.push({ file, kind, what, ...(key ? { key } : {}) });

  // One WebDataset shard holding one broken sample of each kind between good ones.
  await writeFile(
    path.join(BROKEN, 'tar/broken-000.tar'),
    await packTar([
      ['good1.jpg', a.jpg],
      ['good1.txt', a.txt],
      ['zero.jpg', Buffer.alloc(0)],
      ['zero.txt', 'an empty file'],
      ['notimage.jpg', 'this is not a jpeg'],
      ['notimage.txt', 'a text file named .jpg'],
      ['cut.jpg', half(c.jpg)],
      ['cut.txt', 'a truncated jpeg'],
      ['captiononly.txt', 'a caption without its image'],
      ['imageonly.jpg', d.jpg],
      ['emptycaption.jpg', d.jpg],
      ['emptycaption.txt', '   '],
      ['badutf8.jpg', e.jpg],
      ['badutf8.txt', invalidUtf8],
      ['badjson.jpg', e.jpg],
      ['badjson.txt', 'json member is broken'],
      ['badjson.json', '{"label": "cat",'],
      ['good2.png', png],
      ['good2.txt', b.txt],
      ['good1.jpg', a.jpg],
      ['good1.txt', 'the same key again, later in the shard'],
    ]),
  );
  const shard = 'tar/broken-000.tar';
  expect(shard, 'zero-byte-image', 'tar member of 0 bytes', 'zero');
  expect(shard, 'not-an-image', 'text bytes named .jpg', 'notimage');
  expect(shard, 'truncated-image', 'first half of a JPEG', 'cut');
  expect(shard, 'missing-image', 'txt member without image', 'captiononly');
  expect(shard, 'missing-caption', 'jpg member without txt', 'imageonly');
  expect(shard, 'missing-caption', 'whitespace-only caption', 'emptycaption');
  expect(shard, 'invalid-utf8', 'caption bytes not UTF-8 (sample kept)', 'badutf8');
  expect(shard, 'malformed-json', 'json member cut short (sample kept)', 'badjson');
  expect(shard, 'duplicate-key', 'key good1 appears twice', 'good1');

  // A shard cut in the middle of a member, and a gzip shard cut in half.
  const whole = await packTar([a, b, c, d].flatMap(wdsMembers));
  const cutAt = whole.indexOf(Buffer.from(`${d.key}.jpg`)) + 512 + 100;
  await writeFile(path.join(BROKEN, 'tar/truncated.tar'), whole.subarray(0, cutAt));
  expect('tar/truncated.tar', 'truncated-archive', 'tar cut inside the 4th sample (3 samples kept)');
  const gz = gzipSync(whole);
  await writeFile(path.join(BROKEN, 'tar/truncated.tar.gz'), gz.subarray(0, Math.floor(gz.length * 0.6)));
  expect('tar/truncated.tar.gz', 'truncated-archive', 'gzip stream cut at 60%');
  await writeFile(
    path.join(BROKEN, 'tar/not-a-tar.tar'),
    'hello, I am a text file with a .tar name\n'.repeat(40),
  );
  expect('tar/not-a-tar.tar', 'truncated-archive', 'not a tar at all: no samples, one named issue');

  // An image folder with the same kinds of damage, one level of nesting.
  const folder = path.join(BROKEN, 'folder');
  await mkdir(path.join(folder, 'nested'), { recursive: true });
  const files: Array<[string, Buffer | string]> = [
    ['good.jpg', a.jpg],
    ['good.txt', a.txt],
    ['nested/deep.png', png],
    ['nested/deep.txt', b.txt],
    ['zero.jpg', Buffer.alloc(0)],
    ['zero.txt', 'empty image'],
    ['notimage.jpg', 'plain text'],
    ['notimage.txt', 'text named jpg'],
    ['cut.jpg', mostly(c.jpg)],
    ['cut.txt', 'truncated jpeg'],
    ['orphan.txt', 'caption whose image was deleted'],
    ['nocaption.jpg', d.jpg],
    ['badjson.jpg', e.jpg],
    ['badjson.json', '{"caption": "unterminated'],
    ['badutf8.jpg', e.jpg],
    ['badutf8.txt', invalidUtf8],
  ];
  for (const [name, body] of files) await writeFile(path.join(folder, name), body);
  expect('folder/zero.jpg', 'zero-byte-image', 'empty image file', 'zero');
  expect('folder/notimage.jpg', 'not-an-image', 'text file named .jpg', 'notimage');
  expect('folder/cut.jpg', 'truncated-image', 'JPEG cut inside its scan data', 'cut');
  expect('folder/orphan.txt', 'missing-image', 'sidecar without image', 'orphan');
  expect('folder/nocaption.jpg', 'missing-caption', 'image without sidecar', 'nocaption');
  expect('folder/badjson.json', 'malformed-json', 'json sidecar cut short', 'badjson');
  expect('folder/badjson.jpg', 'missing-caption', 'its only caption source is the broken json', 'badjson');
  expect('folder/badutf8.txt', 'invalid-utf8', 'caption bytes not UTF-8 (sample kept)', 'badutf8');

  // Manifests pointing into the folder.
  await writeFile(
    path.join(BROKEN, 'manifest.csv'),
    [
      'key,image_path,caption',
      `m-good,folder/good.jpg,${a.txt}`,
      'm-missing,folder/does-not-exist.jpg,a file that is not there',
      'm-remote,https://example.invalid/cat.jpg,only a URL',
      'm-extra,folder/good.jpg,too,many,columns',
      'm-nocap,folder/good.jpg,',
      'm-zero,folder/zero.jpg,points at an empty file',
      'm-good,folder/nested/deep.png,duplicate key',
      `m-good2,folder/nested/deep.png,${b.txt}`,
      `m-badutf8,folder/good.jpg,${invalidUtf8.toString('latin1')}`,
      'm-unclosed,folder/good.jpg,"a quote that never closes',
      'm-lost,folder/good.jpg,swallowed by the open quote',
    ].join('\n') + '\n',
    // latin1 writes each char as one byte: the invalid UTF-8 sequence reaches the file as is.
    'latin1',
  );
  expect('folder/does-not-exist.jpg', 'missing-file', 'csv row naming a missing file', 'm-missing');
  expect('manifest.csv', 'remote-image', 'csv row with only a URL', 'm-remote');
  expect('manifest.csv', 'malformed-row', 'csv row with too many columns');
  expect('manifest.csv', 'missing-caption', 'csv row with an empty caption', 'm-nocap');
  expect('folder/zero.jpg', 'zero-byte-image', 'csv row pointing at an empty image', 'm-zero');
  expect('manifest.csv', 'duplicate-key', 'csv key used twice', 'm-good');
  expect('manifest.csv', 'invalid-utf8', 'csv caption bytes not UTF-8 (sample kept)', 'm-badutf8');
  await writeFile(
    path.join(BROKEN, 'manifest.jsonl'),
    [
      JSON.stringify({ key: 'j-good', image_path: 'folder/good.jpg', caption: a.txt }),
      '{"key": "j-broken", "image_path": "folder/good.jpg", "caption": "cut',
      '[1, 2, 3]',
      JSON.stringify({ key: 'j-nocap', image_path: 'folder/good.jpg' }),
      JSON.stringify({ key: 'j-good2', image_path: 'folder/nested/deep.png', caption: b.txt }),
    ].join('\n') + '\n',
  );
  expect('manifest.jsonl', 'malformed-json', 'line cut short');
  expect('manifest.jsonl', 'malformed-json', 'line that is an array, not an object');
  expect('manifest.jsonl', 'missing-caption', 'object without a caption', 'j-nocap');
  // img2dataset output with failed downloads (no bytes) and a damaged image.
  await writeParquet(
    path.join(BROKEN, 'img2dataset.parquet'),
    'key VARCHAR, jpg BLOB, txt VARCHAR, url VARCHAR, status VARCHAR, error_message VARCHAR, width INTEGER, height INTEGER',
    [
      ['p-good', a.jpg, a.txt, 'https://example.invalid/a.jpg', 'success', null, 32, 32],
      [
        'p-failed',
        null,
        'a picture that did not download',
        'https://example.invalid/b.jpg',
        'failed_to_download',
        'HTTP Error 404',
        null,
        null,
      ],
      ['p-cut', half(c.jpg), c.txt, 'https://example.invalid/c.jpg', 'success', null, 32, 32],
    ],
  );
  expect('img2dataset.parquet', 'remote-image', 'img2dataset row that failed to download', 'p-failed');
  expect('img2dataset.parquet', 'truncated-image', 'damaged bytes in the jpg column', 'p-cut');

  await writeFile(path.join(BROKEN, 'CASES.json'), JSON.stringify(cases, null, 2) + '\n');
}

async function makeDemo(): Promise<void> {
  await rm(DEMO, { recursive: true, force: true });
  await mkdir(DEMO, { recursive: true });
  for (const shard of [0, 1]) {
    const source = await readShard(path.join(SHARED, `train-0000${shard}.tar.gz`), 1000);
    const bytes = await packTar(source.flatMap(wdsMembers));
    await writeFile(path.join(DEMO, `cifar10-captions-000${shard}.tar.gz`), gzipSync(bytes, { level: 9 }));
  }
}

const samples = await readShard(path.join(SHARED, 'train-00000.tar.gz'), 240);
await makeMini(samples);
await makeBroken(samples);
await makeDemo();
console.log(`fixtures written: ${MINI}, ${BROKEN}, ${DEMO}`);
