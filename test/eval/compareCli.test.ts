/**
 * `curate compare --eval …` and `curate embed --views N` through the real CLI on an embedded workspace:
 * the evaluators the data allows, errors for the ones it does not, the proxy columns in the table and
 * the JSON fields a script reads.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Comparison } from '../../src/curate/pipeline.js';
import { tempDir } from '../helpers.js';
import { captureCli } from '../support/cli.js';
import { embeddedMini } from '../support/miniWorkspace.js';

const { curate, stderr } = captureCli();
let ws: string;
let model: string;

beforeAll(async () => {
  ({ workspace: ws, model } = await embeddedMini());
});

describe('curate compare --eval', () => {
  it('refuses evaluators the data cannot feed, before any work', async () => {
    const probe = await curate(
      '-w',
      ws,
      'compare',
      '--methods',
      'random',
      '--budget',
      '10%',
      '--eval',
      'probe',
    );
    expect(probe.code).toBe(2);
    expect(stderr()).toContain('--eval probe needs labels');
    const ssl = await curate('-w', ws, 'compare', '--methods', 'random', '--budget', '10%', '--eval', 'ssl');
    expect(ssl.code).toBe(2);
    expect(stderr()).toContain('curate embed --views');
    const seeds = await curate(
      '-w',
      ws,
      'compare',
      '--methods',
      'random',
      '--budget',
      '10%',
      '--eval-seeds',
      '0',
    );
    expect(seeds.code).toBe(2);
  });

  it('writes proxy CLIP over seeds (with zero-shot from class names) to the table and the JSON', async () => {
    const json = path.join(await tempDir(), 'c.json');
    const run = await curate(
      '-w', ws, 'compare', '--methods', 'random,clip-score', '--budget', '30%',
      '--class-names', 'field:label', '--encoder', model,
      '--eval', 'clip', '--eval-seeds', '3', '--proxy-steps', '30', '--proxy-batch', '32',
      '--name', 'cli-eval', '--json', json, '--no-report',
    ); // prettier-ignore
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/Evaluation: proxy CLIP linear towers, 30 steps × 32; 3 seeds/);
    expect(run.out).toMatch(/proxy CLIP zero-shot \| proxy CLIP i2t R@1/);
    expect(run.out).toMatch(/\d+\.\d ± \d+\.\d%/);
    const c = JSON.parse(await readFile(json, 'utf8')) as Comparison;
    for (const r of c.rows) {
      for (const key of ['zeroShotTop1', 'i2tR1', 'i2tR5', 't2iR1', 't2iR5'] as const) {
        const m = r.proxyClip![key]!;
        expect(m.seeds).toHaveLength(3);
        expect(m.mean).toBeCloseTo(m.seeds.reduce((a, b) => a + b, 0) / 3, 12);
      }
      expect(r.proxySsl).toBeNull();
    }
  });

  it('embed --views stores augmented-view means that compare --eval ssl trains proxy SSL on', async () => {
    const views = await curate('-w', ws, 'embed', '--encoder', model, '--views', '2');
    expect(views.code).toBe(0);
    expect(stderr()).toContain("variant 'views-a2-s0'");
    const json = path.join(await tempDir(), 's.json');
    const run = await curate(
      '-w', ws, 'compare', '--methods', 'random,sas', '--budget', '30%', '--views', 'views-a2-s0',
      '--label-field', 'label_index', '--eval', 'ssl', '--eval-seeds', '2', '--proxy-steps', '30',
      '--proxy-batch', '32', '--name', 'cli-ssl', '--json', json, '--no-report',
    ); // prettier-ignore
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/proxy SSL kNN top-1/);
    const c = JSON.parse(await readFile(json, 'utf8')) as Comparison;
    for (const r of c.rows) {
      expect(r.error).toBeUndefined();
      expect(r.proxySsl!.knnTop1!.seeds).toHaveLength(2);
      expect(r.proxySsl!.probeTop1!.seeds).toHaveLength(2);
      expect(r.proxyClip).toBeNull();
    }
  });
});
