import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { registry, selectionMethods } from '../../src/select/registry.js';
import {
  DEMO_METHOD_PARAMS,
  DEMO_OFFLINE_FIT_NOTE,
  describeDemoSettings,
} from '../../src/curate/cli/demo.js';
import { cudaInstalled } from '../../src/compute/ort.js';
import { BUNDLED_CLIP_TOKENIZER } from '../../src/embed/tokenizer.js';
import { BROKEN, MINI, tempDir } from '../helpers.js';
import { captureCli } from '../support/cli.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate, stderr } = captureCli();

describe('curate CLI', () => {
  it('init reads datasets into the workspace and prints counts and the issue table', async () => {
    const ws = await tempDir();
    const { code, out } = await curate(
      '-w',
      ws,
      'init',
      path.join(MINI, 'wds/mini-{000..002}.tar'),
      path.join(BROKEN, 'manifest.csv'),
    );
    expect(code).toBe(0);
    expect(out).toContain("dataset 'wds' (webdataset): 240 samples; parts: 3 read, 0 unchanged");
    expect(out).toMatch(/remote-image\s+skipped\s+1/);
    expect(out).toContain('243 samples in 2 dataset(s)');
    const status = await curate('-w', ws, 'status');
    expect(status.out).toContain('243 samples in 2 dataset(s)');
    const issues = await curate('-w', ws, 'issues', '--kind', 'missing-file');
    expect(issues.out).toContain('does-not-exist.jpg key=m-missing (line 3): image file not found');
  });

  it('an empty dataset exits 2 with one clear message, and the other datasets are still read', async () => {
    const ws = await tempDir();
    const empty = path.join(await tempDir(), 'empty');
    await mkdir(empty);
    const { code, out } = await curate('-w', ws, 'init', empty, path.join(MINI, 'manifest.jsonl'));
    expect(code).toBe(2);
    expect(stderr()).toContain(`no usable samples in '${empty}' (no image-caption pairs found)`);
    expect(out).toContain('240 samples in 2 dataset(s)');
  });

  it('a path that does not exist exits 2 naming it', async () => {
    const missing = path.join(await tempDir(), 'nope', 'train-{000..002}.tar');
    const { code } = await curate('-w', await tempDir(), 'init', missing);
    expect(code).toBe(2);
    expect(stderr()).toContain('no files match');
    expect(stderr()).toContain('train-000.tar');
  });

  it('usage errors exit 2; --help exits 0', async () => {
    expect((await curate('init')).code).toBe(2);
    expect((await curate('frobnicate')).code).toBe(2);
    expect((await curate('issues', '--kind', 'no-such-kind')).code).toBe(2);
    const help = await curate('--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('demo');
  });

  it('embed with a named CLIP model that cannot be loaded exits 2 naming it and what is missing; nothing is embedded', async () => {
    const ws = await tempDir();
    await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-{000..002}.tar'));
    // A model folder with its configs and tokenizer but no weights.
    const model = path.join(ws, 'clip-no-weights');
    await cp(BUNDLED_CLIP_TOKENIZER, model, { recursive: true });
    const noWeights = await curate('-w', ws, 'embed', '--encoder', model);
    expect(noWeights.code).toBe(2);
    expect(stderr()).toMatch(
      /--encoder .*clip-no-weights: no image model in .*clip-no-weights .*looked for onnx\/vision_model\.onnx/,
    );
    expect(stderr()).not.toContain('offline');
    const missing = await curate('-w', ws, 'embed', '--encoder', path.join(ws, 'no-such-model'));
    expect(missing.code).toBe(2);
    expect(stderr()).toMatch(/--encoder .*no-such-model: no such folder/);
    expect(existsSync(path.join(ws, 'embeddings', 'store.json'))).toBe(false);
    expect(existsSync(path.join(ws, 'encoders', 'offline'))).toBe(false);
  });

  it.skipIf(cudaInstalled())('embed --device cuda without CUDA exits 2 before any work', async () => {
    const ws = await tempDir();
    await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-{000..002}.tar'));
    const { code } = await curate('-w', ws, 'embed', '--device', 'cuda');
    expect(code).toBe(2);
    expect(stderr()).toMatch(/--device cuda: CUDA is not available .*onnxruntime-node\/script\/install\.js/);
    expect(existsSync(path.join(ws, 'encoders', 'offline'))).toBe(false);
  });

  it('demo reads the bundled sample without network or ../shared', async () => {
    const ws = await tempDir();
    // Two budgets instead of the default three keep the test shorter; the curves still have two points.
    const { code, out } = await curate('demo', '-w', ws, '--budgets', '5%,10%');
    expect(code).toBe(0);
    expect(out).toContain("dataset 'demo' (webdataset): 2,000 samples");
    expect(existsSync(path.join(ws, 'catalog.duckdb'))).toBe(true);
    expect(out).toMatch(/embedded 2,000 samples with offline-kmeans-lsa-cca \(DNN-free baseline, not CLIP\)/);
    expect(stderr()).toContain('warning: using offline-kmeans-lsa-cca');
    expect(existsSync(path.join(ws, 'encoders/offline/meta.json'))).toBe(true);
    // The demo's lighter settings are stated, each with the (larger) default it replaces.
    expect(out).toContain(DEMO_OFFLINE_FIT_NOTE);
    const settings = out.split('\n').find((l) => l.startsWith('demo settings, lighter than the defaults'));
    for (const [method, params] of Object.entries(DEMO_METHOD_PARAMS)) {
      for (const [name, value] of Object.entries(params)) {
        const stated = new RegExp(
          `${method} [^;]*\\b${name}=${JSON.stringify(value)} \\(default (\\d+)\\)`,
        ).exec(settings ?? '');
        expect(Number(stated?.[1])).toBeGreaterThan(value as number);
      }
    }
    expect(() => describeDemoSettings({ fast: { noSuchOption: 1 } })).toThrow(/demo settings of fast/);
    expect(out).toMatch(
      /demo took \d+\.\d s \(read [\d.]+, embed [\d.]+, index [\d.]+, compare [\d.]+, export [\d.]+, report [\d.]+\)/,
    );
    // Every method ran at 10% of the 1,600-sample pool (400 held out) and was saved as a selection.
    // Rows are read from the 10% table only (the 5% table is printed first).
    const table10 = out.slice(
      out.indexOf('Budget 10%'),
      out.indexOf('comparison saved', out.indexOf('Budget 10%')),
    );
    // Columns found by header (compareTable.ts decides which exist).
    const lines = table10.split('\n');
    const header = lines
      .find((l) => l.startsWith('| method |'))!
      .split('|')
      .map((c) => c.trim());
    const column = (name: string) => header.indexOf(name);
    expect(column('proxy CLIP zero-shot')).toBeGreaterThan(0);
    expect(column('label probe accuracy')).toBeGreaterThan(0);
    const row = (method: string) => {
      const cells = lines
        .find((l) => l.startsWith(`| ${method} |`) || l.startsWith(`| ${method} (schedule) |`))
        ?.split('|')
        .map((c) =>
          c
            .trim()
            .replace(/^\*\*|\*\*$/g, '')
            .replace(/^≈/, ''),
        );
      return {
        kept: Number(cells?.[column('kept')]),
        bad: Number.parseFloat(cells?.[column('ground truth bad captions')] ?? 'NaN'),
        zeroShot: cells?.[column('proxy CLIP zero-shot')] ?? '',
      };
    };
    expect(out).toMatch(/Evaluation: proxy CLIP linear towers, 50 steps × 128; linear probe; 2 seeds/);
    for (const method of selectionMethods()) expect(row(method).zeroShot).toMatch(/^\d+\.\d ± \d+\.\d%$/);
    for (const method of selectionMethods()) expect(row(method).kept).toBe(160);
    // ClipCov removes mismatched and generic captions; random keeps about the pool's share (18%).
    expect(row('clipcov').bad).toBeLessThan(5);
    expect(row('random').bad).toBeGreaterThan(10);
    expect(existsSync(path.join(ws, 'selections/demo/clipcov-10pct/selection.json'))).toBe(true);
    expect(existsSync(path.join(ws, 'compare/demo/5pct.json'))).toBe(true);
    expect(stderr()).toContain('no CLIP model in the local cache');

    // The best selection at 10% is exported as WebDataset shards, and the report is written.
    const best = /best at 10% by proxy CLIP zero-shot \(\d+\.\d%\): (\S+)/.exec(out)?.[1];
    expect(registry.has(best!)).toBe(true);
    // A dynamic method's export also holds the keys its schedule names (exportCommands.ts).
    expect(out).toMatch(
      new RegExp(
        `exported (160 of 160 picks of|\\d+ samples of dynamic selection) 'demo/${best}-10pct'.* as webdataset`,
      ),
    );
    expect(existsSync(path.join(ws, `exports/demo/${best}-10pct/selection-000000.tar`))).toBe(true);
    const html = path.join(ws, 'reports/demo/index.html');
    expect(out).toContain(`report: ${html}`);
    const page = await readFile(html, 'utf8');
    for (const method of selectionMethods()) expect(page).toContain(`demo/${method}-5pct`);
    expect(page).toContain('Offline fallback encoder');
    expect(existsSync(path.join(ws, 'reports/demo/plots/curve-probeaccuracy.png'))).toBe(true);
    expect(existsSync(path.join(ws, 'reports/demo/plots/curve-clip-zeroshottop1.png'))).toBe(true);
  }, 420_000);
});

describe('curate CLI: index, select, compare, search, methods, config', () => {
  it('runs the pipeline steps on a fixture workspace with flags and a config file', async () => {
    const ws = await tempDir();
    const model = await writeTinyClip(path.join(ws, 'tiny'));
    expect((await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-{000..002}.tar'))).code).toBe(0);
    expect((await curate('-w', ws, 'embed', '--encoder', model)).code).toBe(0);
    const index = await curate('-w', ws, 'index');
    expect(index.code).toBe(0);
    expect(index.out).toMatch(/image index of 240 samples in [\d.]+ s \(build [\d.]+ s, hnswlib\)/);
    expect(index.out).toMatch(/recall@10 1\.00 on 200 sampled queries \(efSearch 64, against exact search\)/);
    const sharded = await curate('-w', ws, 'index', '--shards', '2');
    expect(sharded.out, stderr()).toMatch(/image index of 240 samples .*hnswlib, 2 shards\)/);
    const wrong = await curate('-w', ws, 'index', '--shards', '2', '--kind', 'usearch');
    expect(wrong.code).toBe(2);
    expect(stderr()).toContain('--shards applies to --kind hnswlib');

    const select = await curate(
      '-w',
      ws,
      'select',
      '--method',
      'craig',
      '--budget',
      '10%',
      '--label-field',
      'label_index',
      '-p',
      'mode=gradients',
      '-p',
      'epochs=2',
    );
    expect(select.code).toBe(0);
    expect(select.out).toMatch(/craig-10pct: craig kept 24 of 240/);
    const stored = JSON.parse(await readFile(path.join(ws, 'selections/craig-10pct/selection.json'), 'utf8'));
    expect(stored.params).toMatchObject({ mode: 'gradients', epochs: 2 });
    expect(existsSync(path.join(ws, 'selections/craig-10pct/schedule.jsonl'))).toBe(true);

    // The config supplies what the flags leave out; flags win.
    await writeFile(
      path.join(ws, 'curate.config.json'),
      JSON.stringify({
        labelField: 'label_index',
        select: { method: 'k-center', budget: '12', name: 'from-config' },
      }),
    );
    const fromConfig = await curate('-w', ws, 'select');
    expect(fromConfig.out).toMatch(/from-config: k-center kept 12 of 240/);
    expect((await curate('-w', ws, 'select', '--budget', '5')).out).toMatch(
      /from-config: k-center kept 5 of 240/,
    );

    const compare = await curate('-w', ws, 'compare', '--methods', 'random,clip-score', '--budget', '20%');
    expect(compare.code).toBe(0);
    expect(compare.out).toMatch(/\| random \| 38 \|/);
    expect(compare.out).toMatch(/\| clip-score \| 38 \|/);
    expect(existsSync(path.join(ws, 'compare/compare-20pct/20pct.json'))).toBe(true);
    expect(compare.out).toContain(`report: ${path.join(ws, 'reports/compare-20pct/index.html')}`);

    const search = await curate('-w', ws, 'search', 'a photo of a cat', '-k', '5', '--encoder', model);
    expect(search.code).toBe(0);
    expect(search.out.trim().split('\n')).toHaveLength(5);

    const methods = await curate('methods');
    expect(methods.out).toMatch(/^crest — /m);
    expect(methods.out).toMatch(/^ {4}preconditioner = "none"/m);
  });

  it('bad input exits 2 with a message naming it: unknown method, bad budget, bad config field', async () => {
    const ws = await tempDir();
    expect((await curate('-w', ws, 'select', '--method', 'nope', '--budget', '5')).code).toBe(2);
    expect(stderr()).toMatch(/unknown method 'nope'; available: random/);
    await writeFile(path.join(ws, 'bad.json'), JSON.stringify({ select: { methd: 'x' } }));
    expect((await curate('-w', ws, 'select', '--config', path.join(ws, 'bad.json'))).code).toBe(2);
    expect(stderr()).toMatch(/config .*bad\.json: select: Unrecognized key: "methd"/);
    expect((await curate('-w', ws, 'select', '--method', 'random', '--budget', '5', '-p', 'oops')).code).toBe(
      2,
    );
    expect(stderr()).toMatch(/method option 'oops' must look like name=value/);
  });
});
