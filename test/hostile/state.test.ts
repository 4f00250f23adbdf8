/**
 * Workspace state under hostile conditions (issue 22, cases 1–4 and the full/read-only disk ones): a
 * damaged store.json or index names the file and the command that rebuilds it, `curate reset` recovers,
 * an undecodable image among the offline fit's pairs is left out and named, `embed --refit` on changed
 * data keeps the old fit byte for byte, a full disk names the file and leaves no temporary files, and
 * `status` works on a read-only workspace. Real files, real DuckDB, real tmpfs mounts (as root only).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  statfsSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/curate/catalog.js';
import { buildProgram } from '../../src/curate/cli/main.js';
import { registerResetCommand } from '../../src/curate/cli/resetCommand.js';
import { embedCatalog } from '../../src/curate/embed.js';
import { offlineEncoderDir, offlineEncoderFor } from '../../src/curate/offline.js';
import { resetWorkspace } from '../../src/curate/reset.js';
import type { SkippedFitImage } from '../../src/embed/encoders/offline/index.js';
import { EmbeddingStore, EncoderMismatchError, WorkspaceStateError } from '../../src/embed/store.js';
import { WriteError, writeFileAtomic } from '../../src/io/atomic.js';
import { HnswIndex, IndexFileError } from '../../src/select/index/hnsw.js';
import { UsearchIndex } from '../../src/select/index/usearch.js';
import { captureCli } from '../support/cli.js';
import { writeTinyClip } from '../support/tinyClip.js';
import { MINI, tempDir } from '../helpers.js';

const { curate, stderr } = captureCli();
const SPEC = path.join(MINI, 'wds', 'mini-{000..002}.tar');

/** `curate reset <what>` through the real command (registered here if main.ts does not yet). */
async function reset(ws: string, what: string): Promise<string> {
  let out = '';
  const program = buildProgram((s) => (out += s));
  if (!program.commands.some((c) => c.name() === 'reset')) registerResetCommand(program, (s) => (out += s));
  await program.parseAsync(['node', 'curate', '-w', ws, 'reset', what]);
  return out;
}

/** Every file below `dir` with its sha256, for byte-identical comparisons. */
function hashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[path.relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** Files below `dir` whose name ends in `.tmp` (or folders named like a staging copy). */
function temps(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) =>
        /\.tmp$|\.tmp-|\.staging-/.test(n),
      )
    : [];
}

/** The mini fixture catalogued and embedded with the tiny CLIP (fast), indexed; copied per test. */
let base: string;
let model: string;
beforeAll(async () => {
  const root = await tempDir({ forFile: true });
  model = await writeTinyClip(path.join(root, 'tiny-clip'));
  base = path.join(root, 'base');
  const init = await curate('-w', base, 'init', SPEC);
  expect(init.code).toBe(0);
  const embed = await curate('-w', base, 'embed', '--encoder', model);
  expect(embed.code, stderr()).toBe(0);
  expect((await curate('-w', base, 'index')).code).toBe(0);
}, 120_000);

async function copyOfBase(): Promise<string> {
  const ws = path.join(await tempDir(), 'ws');
  cpSync(base, ws, { recursive: true });
  return ws;
}

describe('case 1: store.json', () => {
  it('holds only what identifies the encoder (name, fingerprint, dim, dtype), not its state', () => {
    const file = path.join(base, 'embeddings', 'store.json');
    expect(statSync(file).size).toBeLessThan(1024);
    const meta = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(meta).sort()).toEqual(['dtype', 'encoder']);
    expect(Object.keys(meta.encoder as object).sort()).toEqual(['dim', 'fingerprint', 'name']);
    expect(temps(path.join(base, 'embeddings'))).toEqual([]);
  });

  it('emptied: embed, index and select exit 2 naming the file and `curate reset embeddings`; reset + embed recover', async () => {
    const ws = await copyOfBase();
    const file = path.join(ws, 'embeddings', 'store.json');
    writeFileSync(file, '');
    for (const args of [
      ['embed', '--encoder', model],
      ['index'],
      ['select', '--method', 'random', '--budget', '10'],
    ]) {
      const r = await curate('-w', ws, ...args);
      expect(r.code, `${args[0]}: ${stderr()}`).toBe(2);
      expect(stderr()).toContain(file);
      expect(stderr()).toContain('curate reset embeddings');
      expect(stderr()).not.toMatch(/Unexpected end of JSON input|\n\s+at /);
    }
    const said = await reset(ws, 'embeddings');
    expect(said).toContain(path.join(ws, 'embeddings'));
    expect(existsSync(path.join(ws, 'embeddings'))).toBe(false);
    expect(existsSync(path.join(ws, 'index'))).toBe(false); // built from the embeddings: gone with them
    const catalog = await Catalog.open(ws);
    try {
      expect(await catalog.rows('SELECT * FROM embeddings')).toEqual([]);
      expect(await catalog.rows('SELECT * FROM embedding_shards')).toEqual([]);
    } finally {
      catalog.close();
    }
    expect((await curate('-w', ws, 'embed', '--encoder', model)).code, stderr()).toBe(0);
    expect(hashes(path.join(ws, 'embeddings'))).toEqual(hashes(path.join(base, 'embeddings')));
    expect((await curate('-w', ws, 'select', '--method', 'random', '--budget', '10')).code).toBe(0);
  });

  it('cut short or not JSON: the reader names the file', async () => {
    const ws = await copyOfBase();
    const dir = path.join(ws, 'embeddings');
    writeFileSync(path.join(dir, 'store.json'), '{"encoder": {"name": "x", "fing');
    const err = await EmbeddingStore.read(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkspaceStateError);
    expect((err as Error).message).toContain(path.join(dir, 'store.json'));
    expect((err as Error).message).toContain('curate reset embeddings');
  });

  it('a leftover staging selection folder from a killed run never blocks `select`', async () => {
    const ws = await copyOfBase();
    const sel = path.join(ws, 'selections');
    mkdirSync(path.join(sel, 'pick.tmp-12345'), { recursive: true });
    writeFileSync(path.join(sel, 'pick.tmp-12345', 'selection.json'), '{"half');
    const r = await curate('-w', ws, 'select', '--method', 'random', '--budget', '10', '--name', 'pick');
    expect(r.code, stderr()).toBe(0);
    expect(readdirSync(sel)).toEqual(['pick']);
    // Replacing it goes through the same staging: still one folder, no leftovers.
    expect(
      (await curate('-w', ws, 'select', '--method', 'random', '--budget', '12', '--name', 'pick')).code,
    ).toBe(0);
    expect(readdirSync(sel)).toEqual(['pick']);
    const stored = JSON.parse(readFileSync(path.join(sel, 'pick', 'selection.json'), 'utf8')) as {
      sampleIds: number[];
    };
    expect(stored.sampleIds).toHaveLength(12);
  });
});

/** A PNG whose IDAT data has flipped bytes: its header is fine, decoding fails on the CRC. */
async function badCrcPng(): Promise<Buffer> {
  const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  const idat = png.indexOf('IDAT');
  const bad = Buffer.from(png);
  for (let i = idat + 6; i < idat + 12; i++) bad[i]! ^= 0xff;
  return bad;
}

/** A folder dataset of `n` noise PNGs with captions, plus `bad.png` when asked. */
async function pngFolder(dir: string, n: number, seed: number, bad: boolean): Promise<void> {
  mkdirSync(dir, { recursive: true });
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 255;
  const words = ['red', 'green', 'blue', 'cat', 'dog', 'car', 'tree', 'sky', 'sea'];
  for (let i = 0; i < n; i++) {
    const pixels = Buffer.from(Array.from({ length: 32 * 32 * 3 }, () => Math.floor(random())));
    const png = await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toBuffer();
    writeFileSync(path.join(dir, `img${seed}-${i}.png`), png);
    writeFileSync(
      path.join(dir, `img${seed}-${i}.txt`),
      `a ${words[i % words.length]} and a ${words[(i * 7 + seed) % words.length]} photo`,
    );
  }
  if (bad) {
    writeFileSync(path.join(dir, 'bad.png'), await badCrcPng());
    writeFileSync(path.join(dir, 'bad.txt'), 'a broken picture');
  }
}

/** A quick fit (the defaults take ~40 s on two shared cores); the code paths are the same. */
const QUICK_FIT = { patches: 20_000, dictionary: 32 };

describe('cases 2 and 3: the offline fit', () => {
  let root: string;
  let ws: string;
  beforeAll(async () => {
    root = await tempDir({ forFile: true });
    await pngFolder(path.join(root, 'pngs'), 90, 1, true);
    await pngFolder(path.join(root, 'more'), 90, 2, false);
    ws = path.join(root, 'ws');
    expect((await curate('-w', ws, 'init', path.join(root, 'pngs'))).code).toBe(0);
  }, 60_000);

  it('a bad-CRC PNG among the fit pairs is left out and named; the fit and embed complete', async () => {
    const skipped: SkippedFitImage[] = [];
    const stages: string[] = [];
    const catalog = await Catalog.open(ws);
    try {
      const encoder = await offlineEncoderFor(catalog, ws, {
        fitOptions: QUICK_FIT,
        onSkip: (s) => skipped.push(s),
        onStage: (s) => stages.push(s),
      });
      expect(skipped).toHaveLength(1);
      expect(skipped[0]).toMatchObject({ key: 'bad', file: path.join(root, 'pngs', 'bad.png') });
      expect(skipped[0]!.reason).toMatch(/png|crc/i);
      expect(encoder.skipped).toEqual(skipped);
      const report = await embedCatalog(catalog, ws, encoder);
      await encoder.dispose();
      expect(report.samplesEmbedded).toBe(90);
      expect(report.undecodable).toBe(1);
    } finally {
      catalog.close();
    }
    expect(existsSync(path.join(offlineEncoderDir(ws), 'meta.json'))).toBe(true);
    expect(temps(path.join(ws, 'encoders'))).toEqual([]);
    const issues = await curate('-w', ws, 'issues', '--kind', 'undecodable-image');
    expect(issues.out).toContain('bad.png');
  }, 60_000);

  it('without onSkip, the skipped image is reported through onStage (the CLI prints it)', async () => {
    const other = path.join(root, 'ws-stage');
    expect((await curate('-w', other, 'init', path.join(root, 'pngs'))).code).toBe(0);
    const stages: string[] = [];
    const catalog = await Catalog.open(other);
    try {
      const encoder = await offlineEncoderFor(catalog, other, {
        fitOptions: QUICK_FIT,
        onStage: (s) => stages.push(s),
      });
      await encoder.dispose();
    } finally {
      catalog.close();
    }
    expect(stages.join('\n')).toMatch(/left out \S*bad\.png key=bad: cannot decode it/);
  }, 60_000);

  it('refit on changed data refuses before saving; the old fit stays byte-identical and usable', async () => {
    const fit = offlineEncoderDir(ws);
    const before = hashes(fit);
    expect((await curate('-w', ws, 'init', path.join(root, 'more'))).code).toBe(0);
    const catalog = await Catalog.open(ws);
    try {
      const err = await offlineEncoderFor(catalog, ws, { refit: true, fitOptions: QUICK_FIT }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EncoderMismatchError); // exit 2 in the CLI
      const message = (err as Error).message;
      expect(message).toContain('nothing was saved');
      expect(message).toContain(`the fit in ${fit} is unchanged`);
      expect(message).toContain('`curate reset embeddings`');
      expect(message).toContain('`curate embed --refit`');
      expect(message).not.toContain('--reset-embeddings');
      expect(hashes(fit)).toEqual(before);
      expect(temps(path.join(ws, 'encoders'))).toEqual([]);
      // Plain embed still works with the kept fit (and embeds the new dataset).
      const kept = await offlineEncoderFor(catalog, ws, { fitOptions: QUICK_FIT });
      expect((await embedCatalog(catalog, ws, kept)).samplesEmbedded).toBe(90);
      await kept.dispose();
      // The way out the message recommends works.
      await resetWorkspace(ws, 'embeddings', { catalog });
      const refit = await offlineEncoderFor(catalog, ws, { refit: true, fitOptions: QUICK_FIT });
      expect((await embedCatalog(catalog, ws, refit)).samplesEmbedded).toBe(180);
      await refit.dispose();
      expect(hashes(fit)).not.toEqual(before);
    } finally {
      catalog.close();
    }
  }, 90_000);

  it('a damaged fit names the file and `curate embed --refit`', async () => {
    const other = path.join(root, 'ws-stage');
    const file = path.join(offlineEncoderDir(other), 'centroids.npy');
    truncateSync(file, 200);
    const catalog = await Catalog.open(other);
    try {
      const err = await offlineEncoderFor(catalog, other).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkspaceStateError);
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toContain('curate embed --refit');
    } finally {
      catalog.close();
    }
  });
});

describe('case 4: the kNN index (hnswlib, and usearch when asked for)', () => {
  it('HnswIndex.load and UsearchIndex.load name a file cut inside its graph', async () => {
    const dir = await tempDir();
    const dim = (JSON.parse(readFileSync(path.join(base, 'index', 'image.json'), 'utf8')) as { dim: number })
      .dim;
    const file = path.join(dir, 'copy.hnsw');
    cpSync(path.join(base, 'index', 'image.hnsw'), file);
    truncateSync(file, statSync(file).size - 3);
    const err = await HnswIndex.load(file, dim).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IndexFileError);
    expect((err as Error).message).toContain(file);
    const ws = await copyOfBase();
    expect((await curate('-w', ws, 'index', '--kind', 'usearch')).code, stderr()).toBe(0);
    const usearchFile = path.join(dir, 'copy.usearch');
    cpSync(path.join(ws, 'index', 'image.usearch'), usearchFile);
    truncateSync(usearchFile, statSync(usearchFile).size - 3);
    const usearchErr = await UsearchIndex.load(usearchFile, dim).catch((e: unknown) => e);
    expect(usearchErr).toBeInstanceOf(IndexFileError);
    expect((usearchErr as Error).message).toContain(usearchFile);
  });

  it('is written under a temporary name and renamed (nothing left beside it)', () => {
    expect(readdirSync(path.join(base, 'index')).sort()).toEqual([
      'image.hnsw',
      'image.ids.npy',
      'image.json',
    ]);
  });

  it('cut short: search names the file and `curate index`; `curate index` rebuilds it', async () => {
    const ws = await copyOfBase();
    const file = path.join(ws, 'index', 'image.hnsw');
    const bytes = readFileSync(file);
    const before = await curate('-w', base, 'search', 'a photo of a cat', '-k', '3', '--encoder', model);
    expect(before.code, stderr()).toBe(0);
    truncateSync(file, Math.floor(statSync(file).size / 2));
    const r = await curate('-w', ws, 'search', 'a photo of a cat', '--encoder', model);
    expect(r.code, stderr()).toBe(2);
    expect(stderr()).toContain(file);
    expect(stderr()).toContain('curate index');
    expect((await curate('-w', ws, 'index')).code).toBe(0);
    // The rebuild is the index that was damaged, byte for byte, and answers as it did.
    expect(readFileSync(file).equals(bytes)).toBe(true);
    const again = await curate('-w', ws, 'search', 'a photo of a cat', '-k', '3', '--encoder', model);
    expect(again.code, stderr()).toBe(0);
    expect(again.out).toBe(before.out);
  });

  it('a few bytes short (inside the graph) is caught too', async () => {
    const ws = await copyOfBase();
    const file = path.join(ws, 'index', 'image.hnsw');
    truncateSync(file, statSync(file).size - 3);
    expect((await curate('-w', ws, 'search', 'a cat', '--encoder', model)).code).toBe(2);
    expect(stderr()).toContain(file);
  });
});

/** Mount points made by this file, unmounted in afterAll. */
const mounts: string[] = [];
const isRoot = process.getuid?.() === 0;
function mountTmpfs(dir: string, size: string): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch {
    return false;
  }
  mounts.push(dir);
  return true;
}
/** Unmount before helpers.ts removes the temporary folders (after-hooks run last-registered first). */
afterEach(unmountAll);
afterAll(unmountAll);
function unmountAll(): void {
  for (const dir of mounts.splice(0).reverse()) {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } catch {
      /* already gone */
    }
  }
}

/** Fill a mounted tmpfs so that only about `leave` bytes stay free. */
function fill(dir: string, leave: number): void {
  const fs = statfsSync(dir);
  writeFileSync(path.join(dir, 'filler'), Buffer.alloc(Math.max(0, fs.bavail * fs.bsize - leave)));
}

let canMount = isRoot;
beforeAll(async () => {
  if (!canMount) return;
  const probe = path.join(await tempDir({ forFile: true }), 'probe');
  canMount = mountTmpfs(probe, '64k');
});

describe('a full disk (tmpfs, as root)', () => {
  it('writeFileAtomic names the file and leaves no .tmp', async (ctx) => {
    if (!canMount) ctx.skip(); // needs root and a mountable tmpfs
    const dir = path.join(await tempDir(), 'full');
    expect(mountTmpfs(dir, '2m')).toBe(true);
    const file = path.join(dir, 'state.json');
    const err = await writeFileAtomic(file, Buffer.alloc(3 << 20)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect((err as WriteError).code).toBe('ENOSPC');
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain('no space left');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('embed on a full embeddings folder fails naming the shard file and leaves no .tmp', async (ctx) => {
    if (!canMount) ctx.skip();
    const ws = await copyOfBase();
    await reset(ws, 'embeddings');
    const dir = path.join(ws, 'embeddings');
    expect(mountTmpfs(dir, '2m')).toBe(true);
    fill(dir, 24 << 10); // store.json fits, the first shard does not
    const r = await curate('-w', ws, 'embed', '--encoder', model);
    expect(r.code).not.toBe(0);
    expect(stderr()).toMatch(
      new RegExp(`cannot write ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\S+\\.npy: no space left`),
    );
    expect(stderr()).not.toMatch(/\n\s+at /);
    expect(temps(dir)).toEqual([]);
  });

  it('index on a full index folder fails naming image.hnsw and leaves no .tmp', async (ctx) => {
    if (!canMount) ctx.skip();
    const ws = await copyOfBase();
    const dir = path.join(ws, 'index');
    await reset(ws, 'index');
    expect(mountTmpfs(dir, '1m')).toBe(true);
    fill(dir, 16 << 10);
    const r = await curate('-w', ws, 'index');
    expect(r.code).not.toBe(0);
    expect(stderr()).toContain(`cannot write ${path.join(dir, 'image.hnsw')}: no space left`);
    expect(temps(dir)).toEqual([]);
  });

  it('status works on a read-only workspace (opening the catalog read-only writes nothing)', async (ctx) => {
    if (!canMount) ctx.skip();
    const ws = path.join(await tempDir(), 'ro');
    expect(mountTmpfs(ws, '32m')).toBe(true);
    cpSync(path.join(base, 'catalog.duckdb'), path.join(ws, 'catalog.duckdb'));
    execFileSync('mount', ['-o', 'remount,ro', ws], { stdio: 'pipe' });
    const catalog = await Catalog.open(ws, { readOnly: true });
    try {
      expect((await catalog.summary()).samples).toBe(240);
    } finally {
      catalog.close();
    }
    const r = await curate('-w', ws, 'status');
    expect(r.code, stderr()).toBe(0);
    expect(r.out).toContain('240');
  });
});
