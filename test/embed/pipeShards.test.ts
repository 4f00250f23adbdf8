/**
 * Remote shards as `pipe:COMMAND` (webdataset's form, pipe.ts): read with real `/bin/sh` commands (`cat`,
 * `head -c`, a failing command) and compared with the same shards read from disk; then the whole CLI way
 * (init → embed → export) on `pipe:cat` against local files, embeddings and exported shards byte for byte.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDataset } from '../../src/embed/readers/index.js';
import { WebDatasetReader } from '../../src/embed/readers/webdataset.js';
import { expandPipeSpec, pipeDatasetName, shardIsGzipped } from '../../src/embed/readers/pipe.js';
import { MINI, MINI_COUNT, readAll, tempDir } from '../helpers.js';
import { captureCli } from '../support/cli.js';
import { storeContents } from '../support/stores.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate, stderr } = captureCli();

/** Samples and issues of a dataset spec (a path relative to the fixtures, or a `pipe:` command). */
const readSpec = (spec: string) => openDataset(spec, {}, MINI).then((d) => readAll(d.reader));

async function sameSamples(a: Awaited<ReturnType<typeof readSpec>>, b: Awaited<ReturnType<typeof readSpec>>) {
  expect(b.samples.map((s) => [s.key, s.caption, s.metadata])).toEqual(
    a.samples.map((s) => [s.key, s.caption, s.metadata]),
  );
  for (const [i, s] of b.samples.entries())
    expect((await s.image()).equals(await a.samples[i]!.image())).toBe(true);
}

describe('pipe: shards', () => {
  it('expands brace ranges inside the command, one part per command, and names the dataset by its folder', async () => {
    const spec = `pipe:cat ${MINI}/wds/mini-{000..002}.tar`;
    expect(expandPipeSpec(spec)).toEqual(
      ['000', '001', '002'].map((i) => `pipe:cat ${MINI}/wds/mini-${i}.tar`),
    );
    expect(pipeDatasetName('pipe:aws s3 cp s3://laion/part-a/{0..9}.tar -')).toBe('part-a');
    expect(shardIsGzipped('pipe:aws s3 cp s3://b/000.tar.gz -')).toBe(true);
    expect(shardIsGzipped('pipe:aws s3 cp s3://b/000.tar -')).toBe(false);
    const opened = await openDataset(spec, {}, MINI);
    expect(opened.canonicalSpec).toBe(spec);
    expect(opened.suggestedName).toBe('wds');
    expect((await opened.reader.parts()).map((p) => p.path)).toEqual(expandPipeSpec(spec));
  });

  it('reads what the command writes exactly as the same shards on disk, gzip included', async () => {
    const disk = await readSpec('wds/mini-{000..002}.tar');
    const pipe = await readSpec(`pipe:cat ${MINI}/wds/mini-{000..002}.tar`);
    expect(pipe.issues).toEqual([]);
    expect(pipe.samples).toHaveLength(MINI_COUNT);
    await sameSamples(disk, pipe);
    expect(pipe.samples[0]!.location.file).toBe(`pipe:cat ${MINI}/wds/mini-000.tar`);
    await sameSamples(
      await readSpec('wds-gz/mini-000.tar.gz'),
      await readSpec(`pipe:cat ${MINI}/wds-gz/mini-000.tar.gz`),
    );
  });

  it('a failing command is an unreadable-part issue naming it, its status and its error output', async () => {
    const missing = `pipe:cat ${MINI}/wds/no-such-shard.tar`;
    const { samples, issues } = await readSpec(missing);
    expect(samples).toEqual([]);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ kind: 'unreadable-part', file: missing });
    expect(issues[0]!.reason).toMatch(/exit status 1: .*no-such-shard\.tar: No such file or directory/);
  });

  it('a command that dies part way keeps the samples before the cut and reports both the cut and the status', async () => {
    const shard = path.join(MINI, 'wds/mini-000.tar');
    const half = Math.floor((await stat(shard)).size / 2);
    const spec = `pipe:head -c ${half} ${shard}; exit 3`;
    const whole = await readSpec('wds/mini-000.tar');
    const { samples, issues } = await readSpec(spec);
    expect(samples.length).toBeGreaterThan(0);
    expect(samples.length).toBeLessThan(whole.samples.length);
    await sameSamples({ ...whole, samples: whole.samples.slice(0, samples.length) }, { samples, issues: [] });
    expect(issues.map((i) => i.kind)).toEqual(['truncated-archive', 'unreadable-part']);
    expect(issues[1]!.reason).toMatch(/exit status 3/);
  });
});

describe('pipe: shards through the CLI', () => {
  it('init, embed and export give the same embeddings and exported shards as the local files', async () => {
    const root = await tempDir();
    const model = await writeTinyClip(path.join(root, 'tiny-clip'));
    const run = async (name: string, spec: string) => {
      const ws = path.join(root, name);
      expect((await curate('-w', ws, 'init', spec)).code).toBe(0);
      expect((await curate('-w', ws, 'embed', '--encoder', model)).code).toBe(0);
      const select = await curate(
        '-w',
        ws,
        'select',
        '--method',
        'random',
        '--budget',
        '25%',
        '--name',
        'pick',
      );
      expect(select.code).toBe(0);
      const out = path.join(ws, 'export');
      const exportRun = await curate('-w', ws, 'export', '--selection', 'pick', '--out', out);
      expect(exportRun.code, exportRun.out + stderr()).toBe(0);
      // Embedding shards are named after the part and a hash of its path (which differs): compare contents.
      const vectors = await storeContents(ws);
      // Exported shards: the same samples, image and caption bytes (their provenance member names the source).
      const shards = (await readdir(out)).filter((f) => f.endsWith('.tar')).sort();
      const read = await readAll(new WebDatasetReader(shards.map((f) => path.join(out, f))));
      const exported = await Promise.all(
        read.samples.map(async (x) => [
          x.key,
          x.caption,
          createHash('sha256')
            .update(await x.image())
            .digest('hex'),
        ]),
      );
      const provenance = read.samples.map(
        (x) => x.members?.find((m) => m.name.endsWith('.curate.json'))?.bytes.toString('utf8') ?? '',
      );
      return { vectors, exported, provenance };
    };
    const disk = await run('disk', path.join(MINI, 'wds/mini-{000..002}.tar'));
    const pipe = await run('pipe', `pipe:cat ${MINI}/wds/mini-{000..002}.tar`);
    expect(Object.keys(pipe.vectors).length).toBeGreaterThanOrEqual(3);
    expect(pipe.vectors).toEqual(disk.vectors);
    expect(pipe.exported.length).toBeGreaterThan(0);
    expect(pipe.exported).toEqual(disk.exported);
    expect(pipe.provenance.join('\n')).toContain(`pipe:cat ${MINI}/wds/mini-000.tar`);
  });
});
