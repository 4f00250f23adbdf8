/**
 * The evaluation API inside `compare`: proxy CLIP over seeds on a held-out split that no method saw,
 * zero-shot from class names, schedules trained as schedules, the shared table columns, and the report.
 */
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/curate/api.js';
import { columnsOf, formatCell, marksOf } from '../../src/curate/compareTable.js';
import { compareAtBudgets, compareMethods } from '../../src/curate/pipeline.js';
import { writeRunReport } from '../../src/curate/runReport.js';
import { formatComparison } from '../../src/curate/cli/selectCommands.js';
import {
  defaultEvaluators,
  evaluateSubset,
  parseEvaluators,
  planRows,
  type EvaluationSetup,
} from '../../src/eval/evaluate.js';
import { seededMetric, staticPlan, withinNoise } from '../../src/eval/types.js';
import { MINI_COUNT } from '../helpers.js';
import { classPrompts, clipPairs, clipWorld, shuffleCaptions } from './clipData.js';
import { embeddedMini } from '../support/miniWorkspace.js';

const FAST = { steps: 40, batch: 32 };

let workspace: string;
let model: string;
let catalog: Catalog;

beforeAll(async () => {
  ({ workspace, model } = await embeddedMini());
  catalog = await Catalog.open(workspace);
});

describe('evaluators: what the data allows, and what it cannot', () => {
  it('defaults to proxy CLIP, adds SSL with views and the probe with labels; a request the data cannot feed is an error', () => {
    expect(defaultEvaluators({ labels: false, views: false })).toEqual(['clip']);
    expect(defaultEvaluators({ labels: true, views: true })).toEqual(['clip', 'ssl', 'probe']);
    expect(parseEvaluators('clip, probe', { labels: true, views: false })).toEqual(['clip', 'probe']);
    expect(() => parseEvaluators('probe', { labels: false, views: false })).toThrow(/--label-field/);
    expect(() => parseEvaluators('ssl', { labels: true, views: false })).toThrow(/embed --views/);
    expect(() => parseEvaluators('clip,zeroshot', { labels: true, views: true })).toThrow(/'zeroshot'/);
  });

  it('noise: two metrics are within noise only when their means are closer than 2 standard errors', () => {
    const a = seededMetric([0.5, 0.52, 0.48]);
    expect(a.mean).toBeCloseTo(0.5, 12);
    expect(a.std).toBeCloseTo(0.02, 12);
    expect(withinNoise(a, seededMetric([0.51, 0.53, 0.49]))).toBe(true);
    expect(withinNoise(a, seededMetric([0.6, 0.62, 0.58]))).toBe(false);
    // One seed: no spread known, nothing is called noise.
    expect(withinNoise(seededMetric([0.5]), seededMetric([0.5]))).toBe(false);
  });
});

describe('evaluateSubset', () => {
  it('a subset of matched pairs beats one with half its captions shuffled, over seeds and with zero-shot', async () => {
    // Images and captions from the same latent classes through different maps (the towers must learn
    // the alignment); held-out pairs are clean.
    const world = clipWorld(32, 12, 10, 5);
    const train = clipPairs(world, 600, 1);
    const held = clipPairs(world, 300, 2);
    const noisy = shuffleCaptions(
      train,
      Array.from({ length: 300 }, (_, i) => i),
      3,
    );
    const setup = (pool: typeof train): EvaluationSetup => ({
      evaluators: ['clip'],
      seeds: 3,
      pool,
      heldOut: held,
      zeroShot: { prompts: classPrompts(world), heldOutLabels: held.labels },
      clip: { steps: 120, batch: 64, width: 16 },
    });
    // Same size, same compute: rows 0–299 of the noisy pool have shuffled captions; the clean subset
    // is rows 300–599 of the clean pool.
    const half = (from: number) => staticPlan(Array.from({ length: 300 }, (_, i) => from + i));
    const clean = await evaluateSubset(setup(train), half(300));
    const bad = await evaluateSubset(setup(noisy), half(0));
    expect(clean.proxyClip!.i2tR5.seeds).toHaveLength(3);
    expect(clean.proxyClip!.i2tR5.mean).toBeGreaterThan(bad.proxyClip!.i2tR5.mean + 0.1);
    expect(clean.proxyClip!.t2iR5.mean).toBeGreaterThan(bad.proxyClip!.t2iR5.mean + 0.1);
    expect(clean.proxyClip!.zeroShotTop1!.mean).toBeGreaterThan(bad.proxyClip!.zeroShotTop1!.mean);
    // Seeds differ (training seed and held-out resample), and the same setup repeats exactly.
    expect(new Set(clean.proxyClip!.i2tR5.seeds).size).toBeGreaterThan(1);
    expect((await evaluateSubset(setup(train), half(300))).proxyClip).toEqual(clean.proxyClip);
  });

  it('a schedule trains on every row any round names', () => {
    const plan = {
      warmup: Int32Array.from([9, 8]),
      rounds: [
        { start: 0.1, end: 0.5, indices: Int32Array.from([1, 2]) },
        { start: 0.5, end: 1, indices: Int32Array.from([2, 3]) },
      ],
    };
    expect(Array.from(planRows(plan))).toEqual([9, 8, 1, 2, 3]);
  });
});

describe('compare with the evaluators', () => {
  it('every row carries proxy CLIP over seeds on a held-out split without labels; schedules are trained as schedules', async () => {
    const c = await compareMethods(catalog, workspace, {
      methods: ['random', 'clip-score', 'crest'],
      budget: '30%',
      run: 'eval-clip',
      evaluators: ['clip'],
      evalSeeds: 2,
      proxy: { clip: FAST },
      params: { crest: { epochs: 2 } },
    });
    // No labels: a uniform 20% is held out all the same, and no method saw it.
    expect(c.heldOut).toBe(Math.round(0.2 * MINI_COUNT));
    expect(c.pool + c.heldOut).toBe(MINI_COUNT);
    expect(c.evaluation).toMatchObject({ evaluators: ['clip'], seeds: 2 });
    expect(c.evaluation!.description).toMatch(/proxy CLIP linear towers, 40 steps × 32; 2 seeds/);
    for (const r of c.rows) {
      expect(r.error).toBeUndefined();
      const m = r.proxyClip!;
      for (const metric of [m.i2tR1, m.i2tR5, m.i2tR10, m.t2iR1, m.t2iR5, m.t2iR10]) {
        expect(metric.seeds).toHaveLength(2);
        for (const v of metric.seeds) {
          expect(v).toBeGreaterThanOrEqual(0);
          expect(v).toBeLessThanOrEqual(1);
        }
      }
      expect(m.i2tR5.mean).toBeGreaterThanOrEqual(m.i2tR1.mean);
      expect(m.zeroShotTop1).toBeNull(); // no class names given
      expect(r.probe).toBeNull();
    }
    const crest = c.rows.find((r) => r.method === 'crest')!;
    expect(crest.scheduled).toBe(true);
    expect(crest.staticAnalogue!.proxyClip!.i2tR5.seeds).toHaveLength(2);
    expect(c.rows.find((r) => r.method === 'random')!.scheduled).toBeUndefined();
    expect(c.reference.proxyClip!.i2tR5.seeds).toHaveLength(2);
  });

  it('class names from a metadata field give zero-shot accuracy; the table, marks and report show the spread', async () => {
    const [c] = await compareAtBudgets(catalog, workspace, {
      methods: ['random', 'clip-score'],
      budgets: ['40%'],
      run: 'eval-zeroshot',
      evaluators: ['clip', 'probe'],
      labelField: 'label_index',
      classNames: { kind: 'field', field: 'label' },
      encoder: model,
      evalSeeds: 3,
      proxy: { clip: FAST },
    });
    expect(c!.classNames).toHaveLength(10);
    for (const r of c!.rows) {
      expect(r.proxyClip!.zeroShotTop1!.seeds).toHaveLength(3);
      expect(r.probe!.seeds).toHaveLength(3);
      expect(r.probeAccuracy).toBeCloseTo(r.probe!.mean, 12);
    }
    const columns = columnsOf(c!);
    const keys = columns.map((col) => col.key);
    expect(keys).toEqual(
      expect.arrayContaining(['clip.zeroShotTop1', 'clip.i2tR5', 'probeAccuracy', 'badCaptions']),
    );
    const marks = marksOf(c!, columns);
    const zs = columns.find((col) => col.key === 'clip.zeroShotTop1')!;
    const best = c!.rows.reduce((a, b) =>
      b.proxyClip!.zeroShotTop1!.mean > a.proxyClip!.zeroShotTop1!.mean ? b : a,
    );
    expect(marks.get(best)!.get(zs.key)).toBe('best');
    const cell = formatCell(zs, best.proxyClip!.zeroShotTop1);
    expect(cell).toMatch(/^\d+\.\d ± \d+\.\d%$/);
    const table = formatComparison(c!);
    expect(table).toContain(`**${cell}**`);
    expect(table).toMatch(/proxy CLIP zero-shot/);
    expect(table).toMatch(/ground-truth columns come from the dataset/);
    const report = await writeRunReport(catalog, workspace, { name: 'eval-zeroshot', comparisons: [c!] });
    const html = await readFile(report.html, 'utf8');
    expect(html).toContain('proxy CLIP: zero-shot');
    expect(html).toMatch(/ ± /);
    expect(html).toContain('standard deviation over seeds');
  });

  it('evaluateAt runs the evaluators at the named budgets only, on one pool for every budget', async () => {
    const comparisons = await compareAtBudgets(catalog, workspace, {
      methods: ['random', 'clip-score'],
      budgets: ['20%', '40%'],
      run: 'eval-at',
      evaluators: ['clip'],
      evaluateAt: ['40%'],
      encoder: model,
      evalSeeds: 2,
      proxy: { clip: FAST },
    });
    const [low, high] = comparisons;
    for (const r of high!.rows) expect(r.proxyClip!.i2tR5.seeds).toHaveLength(2);
    for (const r of low!.rows) expect(r.proxyClip ?? null).toBeNull();
    // The budget without evaluators still picks from the training split, so one report holds both.
    expect(low!.poolInfo!.fingerprint).toBe(high!.poolInfo!.fingerprint);
    expect(low!.poolInfo!.heldOut).toBeGreaterThan(0);
    const report = await writeRunReport(catalog, workspace, { name: 'eval-at', comparisons });
    expect(await readFile(report.html, 'utf8')).toContain('proxy CLIP');
  });
});
