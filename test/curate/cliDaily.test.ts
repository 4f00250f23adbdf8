/**
 * Daily use of the real `curate` CLI (issue 21): progress in logs, --version, status of every artefact,
 * selections list/rm, clear messages for steps run out of order, named compare runs that never overwrite
 * or mix pools, and SemDeDup saying when its budget removes non-duplicates.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { progressLine } from '../../src/curate/cli/progress.js';
import { seededRandom } from '../../src/compute/random.js';
import { parseBudget, runSelector, type SelectInput } from '../../src/select/contract.js';
import { getSelector } from '../../src/select/registry.js';
import { MINI, tempDir } from '../helpers.js';
import { captureCli, ROOT, spawnCli } from '../support/cli.js';
import { embeddedMini } from '../support/miniWorkspace.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate, stderr } = captureCli();

describe('progress off a terminal', () => {
  it('init and embed print plain progress lines (start, end, done/total, rate) when stderr is a pipe', async () => {
    const ws = await tempDir();
    const model = await writeTinyClip(path.join(ws, 'tiny'));
    const env = { CURATE_PROGRESS_SECONDS: '0' };
    const init = await spawnCli(['-w', ws, 'init', path.join(MINI, 'wds/mini-{000..002}.tar')], env);
    expect(init.code).toBe(0);
    const reads = init.err.split('\n').filter((l) => l.startsWith('read wds: '));
    // A start line, updates, and a final line per dataset with the total of bytes read.
    expect(reads.length).toBeGreaterThanOrEqual(3);
    expect(reads[0]).toMatch(/^read wds: 0\.0 MiB\/\d+\.\d MiB \(0%\) \| part 1\/3/);
    expect(reads.at(-1)).toMatch(
      /^read wds: (\d+\.\d) MiB\/\1 MiB \(100%\), done in \d+s \| part 3\/3, 240 samples, 0 issues$/,
    );
    expect(init.err).not.toMatch(/\{\w+\}/); // no raw template field
    expect(init.err).not.toContain('\x1b['); // no cursor control in a log

    const embed = await spawnCli(['-w', ws, 'embed', '--encoder', model, '--batch-size', '16'], env);
    expect(embed.code).toBe(0);
    const lines = embed.err.split('\n').filter((l) => l.startsWith('embed: '));
    expect(lines[0]).toMatch(/^embed: \d+\/240 samples \(\d+%\) \| part 1\/3$/);
    expect(
      lines.some((l) => /^embed: \d+\/240 samples \(\d+%\), [\d,]+ samples\/s, ETA \d+[smh]/.test(l)),
    ).toBe(true);
    expect(lines.at(-1)).toMatch(/^embed: 240\/240 samples \(100%\), done in \d+s/);
    // The summary shows the encoder's load time apart from the embedding time, and their total.
    expect(embed.out).toMatch(
      /embedded 240 samples with .* in \d+\.\d s, [\d,]+ samples\/s, after \d+\.\d s loading the encoder \(total \d+s\)/,
    );
  }, 120_000);

  it('the lines are spaced by CURATE_PROGRESS_SECONDS: a long interval leaves only the start and end lines', async () => {
    const ws = await tempDir();
    const init = await spawnCli(['-w', ws, 'init', path.join(MINI, 'wds/mini-{000..002}.tar')], {
      CURATE_PROGRESS_SECONDS: '3600',
    });
    expect(init.code).toBe(0);
    expect(init.err.split('\n').filter((l) => l.startsWith('read wds: '))).toHaveLength(2);
  }, 60_000);

  it('on a terminal the first frame of a bar already has its fields filled in', () => {
    let drawn = '';
    const tty = Object.assign(
      new Writable({
        write(chunk: Buffer, _enc, done) {
          drawn += chunk.toString('utf8');
          done();
        },
      }),
      {
        isTTY: true,
        columns: 200,
        cursorTo: (_x: number, _y?: unknown, cb?: () => void) => (cb?.(), true),
        moveCursor: (_x: number, _y: number, cb?: () => void) => (cb?.(), true),
        clearLine: (_d: number, cb?: () => void) => (cb?.(), true),
        clearScreenDown: (cb?: () => void) => (cb?.(), true),
      },
    ) as unknown as NodeJS.WriteStream;
    const bar = progressLine({
      label: 'read',
      unit: 'bytes',
      format: ' {dataset} [{bar}] {percentage}% | part {part}/{parts}',
      stream: tty,
    });
    bar.start(100, 0, { dataset: 'wds', part: 1, parts: 3 });
    bar.stop();
    expect(drawn).toContain(' wds [');
    expect(drawn).toContain('part 1/3');
    expect(drawn).not.toContain('{dataset}');
  });

  it('a plain line with an unknown total (a pipe: shard) shows what was read and the rate, no "/0.0 MiB" or ETA', async () => {
    const written: string[] = [];
    const stream = {
      isTTY: false,
      write: (t: string) => (written.push(t), true),
    } as unknown as NodeJS.WriteStream;
    const previous = process.env.CURATE_PROGRESS_SECONDS;
    process.env.CURATE_PROGRESS_SECONDS = '0';
    try {
      const line = progressLine({ label: 'read pipe', unit: 'bytes', format: '', stream });
      line.start(0, 0);
      await new Promise((r) => setTimeout(r, 20));
      line.update(3 * 2 ** 20);
      line.stop();
    } finally {
      if (previous === undefined) delete process.env.CURATE_PROGRESS_SECONDS;
      else process.env.CURATE_PROGRESS_SECONDS = previous;
    }
    expect(written[1]).toMatch(/^read pipe: 3\.0 MiB, [\d.]+ MiB\/s\n$/);
    expect(written.at(-1)).toMatch(/^read pipe: 3\.0 MiB, done in \d+s\n$/);
    expect(written.join('')).not.toMatch(/\/0\.0 MiB|ETA/);
  });
});

describe('curate --version, and messages instead of raw errors', () => {
  it('--version prints the package name and version', async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
    };
    const run = await curate('--version');
    expect(run.code).toBe(0);
    expect(run.out.trim()).toBe(`${pkg.name} ${pkg.version}`);
  });

  it('status, selections and select on a folder that does not exist: exit 2 naming it, nothing created', async () => {
    const missing = path.join(await tempDir(), 'nonexistent');
    for (const args of [
      ['status'],
      ['selections', 'list'],
      ['selections', 'rm', 'x'],
      ['select', '--method', 'random', '--budget', '5'],
    ]) {
      const run = await curate('-w', missing, ...args);
      expect(run.code).toBe(2);
      expect(stderr()).toContain(`no catalog in ${missing}: run \`curate init\` first`);
      expect(existsSync(missing)).toBe(false);
    }
  });

  it('select before embed: exit 2, "no embeddings … run `curate embed` first", no stack or ENOENT', async () => {
    const ws = await tempDir();
    expect((await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-{000..002}.tar'))).code).toBe(0);
    const run = await curate('-w', ws, 'select', '--method', 'random', '--budget', '5');
    expect(run.code).toBe(2);
    expect(stderr()).toContain(`curate: no embeddings in ${ws}: run \`curate embed\` first`);
    const report = await curate('-w', ws, 'report', '--compare', 'nope');
    expect(report.code).toBe(2);
    expect(stderr()).toContain("no compare run 'nope'");
    const exported = await curate('-w', ws, 'export', '--selection', 'nope', '--out', path.join(ws, 'out'));
    expect(exported.code).toBe(2);
    expect(stderr()).toContain("no selection 'nope'");
    expect(stderr()).not.toMatch(/ENOENT|\n\s+at /);
  });
});

describe('status, selections, named compare runs and pools (embedded mini workspace)', () => {
  let ws: string;
  beforeAll(async () => {
    ({ workspace: ws } = await embeddedMini());
  }, 120_000);

  it('status names the embeddings and says what is not built yet', async () => {
    const run = await curate('-w', ws, 'status');
    expect(run.code).toBe(0);
    expect(run.out).toContain(`workspace ${ws}`);
    expect(run.out).toContain('240 samples in 1 dataset(s)');
    const store = JSON.parse(await readFile(path.join(ws, 'embeddings/store.json'), 'utf8'));
    expect(run.out).toContain(
      `embeddings: ${store.encoder.name} (${store.encoder.fingerprint}), 240 rows × ${store.encoder.dim} dims (float32) in 3 shards; none non-finite`,
    );
    expect(run.out).toContain('index: not built (run `curate index`)');
    expect(run.out).toContain('selections: none');
    expect(run.out).toContain('comparisons: none');
  });

  it('compare runs are named, never overwrite, keep their selections apart, and report refuses mixed pools', async () => {
    expect((await curate('-w', ws, 'index')).code).toBe(0);
    expect(
      (await curate('-w', ws, 'select', '--method', 'random', '--budget', '10', '--name', 'pick')).code,
    ).toBe(0);
    const compare = [
      'compare',
      '--methods',
      'random,clip-score',
      '--budget',
      '20%',
      '--label-field',
      'label_index',
    ];
    const first = await curate('-w', ws, ...compare);
    expect(first.code).toBe(0);
    expect(first.out).toContain(
      "compare run 'compare-20pct': every method picked from the training split: 192 of 240 samples (48 held out for evaluation)",
    );
    const saved = JSON.parse(await readFile(path.join(ws, 'compare/compare-20pct/20pct.json'), 'utf8'));
    expect(saved.poolInfo).toMatchObject({ samples: 192, heldOut: 48, labelField: 'label_index' });
    const picked = JSON.parse(
      await readFile(path.join(ws, 'selections/compare-20pct/random-20pct/selection.json'), 'utf8'),
    );
    expect(picked.origin).toEqual({ compareRun: 'compare-20pct', pool: saved.poolInfo.description });
    expect(picked.pool).toBe(192);

    // The same run again: refused, nothing changed; --overwrite replaces it.
    const again = await curate('-w', ws, ...compare, '--methods', 'random');
    expect(again.code).toBe(2);
    expect(stderr()).toMatch(/compare run 'compare-20pct' exists .*--name <other>.*--overwrite/);
    expect(existsSync(path.join(ws, 'selections/compare-20pct/clip-score-20pct/selection.json'))).toBe(true);
    expect((await curate('-w', ws, ...compare, '--methods', 'random', '--overwrite')).code).toBe(0);
    // The earlier run's other selections went with it: nothing of two runs is mixed.
    expect(existsSync(path.join(ws, 'selections/compare-20pct/clip-score-20pct'))).toBe(false);
    expect(existsSync(path.join(ws, 'selections/pick/selection.json'))).toBe(true);

    // A run may not take a select result's name, and select may not take a run's namespace.
    expect((await curate('-w', ws, ...compare, '--name', 'pick')).code).toBe(2);
    expect(stderr()).toContain("compare run name 'pick' is taken by a selection saved with curate select");
    expect(
      (await curate('-w', ws, 'select', '--method', 'random', '--budget', '5', '--name', 'compare-20pct'))
        .code,
    ).toBe(2);
    expect(stderr()).toContain("'compare-20pct' is the name of a compare run");
    expect(
      (await curate('-w', ws, 'select', '--method', 'random', '--budget', '5', '--name', 'a/b')).code,
    ).toBe(2);

    // Another held-out share is another pool: one report of both runs is refused, naming both files.
    const other = await curate('-w', ws, ...compare, '--name', 'half', '--held-out', '0.5', '--no-report');
    expect(other.code).toBe(0);
    const half = JSON.parse(await readFile(path.join(ws, 'compare/half/20pct.json'), 'utf8'));
    expect(half.poolInfo.samples + half.poolInfo.heldOut).toBe(240);
    expect(half.poolInfo.fingerprint).not.toBe(saved.poolInfo.fingerprint);
    const mixed = await curate('-w', ws, 'report', '--compare', 'compare-20pct,half', '--name', 'mixed');
    expect(mixed.code).toBe(2);
    expect(stderr()).toMatch(
      /different pools .*compare-20pct\/20pct\.json: pool [0-9a-f]{16} .*half\/20pct\.json: pool [0-9a-f]{16}/,
    );
    expect(existsSync(path.join(ws, 'reports/mixed'))).toBe(false);
    // By budget alone, two runs are ambiguous; by run, the report is written.
    expect((await curate('-w', ws, 'report', '--budget', '20%')).code).toBe(2);
    expect(stderr()).toContain(
      'compare runs compare-20pct, half all have budget 20%: pick one with --compare <run>',
    );
    const one = await curate('-w', ws, 'report', '--compare', 'half', '--name', 'half-report');
    expect(one.code).toBe(0);
    expect(one.out).toContain(`report: ${path.join(ws, 'reports/half-report/index.html')}`);
    const page = await readFile(path.join(ws, 'reports/half-report/index.html'), 'utf8');
    expect(page).toContain(`Every method picked from ${half.poolInfo.description}`);

    const kept = Math.round(0.2 * half.poolInfo.samples);
    const status = await curate('-w', ws, 'status');
    expect(status.out).toMatch(/index \(.*\):\n {2}image: 240 vectors × \d+ dims/);
    expect(status.out).toMatch(/selections: 4\n/);
    expect(status.out).toMatch(/ {2}pick +random +10 +10 of 240/);
    expect(status.out).toMatch(
      new RegExp(
        ` {2}half/clip-score-20pct +clip-score +20% +${kept} of ${half.poolInfo.samples} .*` +
          `compare run half: the training split: ${half.poolInfo.samples} of 240 samples \\(${half.poolInfo.heldOut} held out`,
      ),
    );
    expect(status.out).toMatch(
      /compare-20pct\/20pct\.json: 1 methods at 20%, pool 192 \(48 held out\), pool [0-9a-f]{16}/,
    );
    expect(status.out).toContain('reports: compare-20pct, half-report');

    // selections list / rm: an unknown name removes nothing; a run name removes its selections.
    const listed = await curate('-w', ws, 'selections', 'list');
    expect(listed.out).toMatch(/^selections: 4$/m);
    expect((await curate('-w', ws, 'selections', 'rm', 'pick', 'nope')).code).toBe(2);
    expect(stderr()).toMatch(
      /no selection 'nope' in .* \(saved: compare-20pct\/random-20pct, half\/clip-score-20pct/,
    );
    expect(existsSync(path.join(ws, 'selections/pick'))).toBe(true);
    const rm = await curate('-w', ws, 'selections', 'rm', 'pick', 'half');
    expect(rm.code).toBe(0);
    expect(rm.out).toContain(`removed ${path.join(ws, 'selections/pick')}`);
    expect(existsSync(path.join(ws, 'selections/half'))).toBe(false);
    expect(rm.out).toContain(`removed ${path.join(ws, 'compare/half')}`);
    expect(existsSync(path.join(ws, 'compare/half'))).toBe(false);
    expect((await curate('-w', ws, 'selections', 'list')).out).toMatch(
      /^selections: 1\n.*\n {2}compare-20pct\/random-20pct /m,
    );
  }, 120_000);
});

describe('semdedup and its budget', () => {
  /** 100 spread-out unit vectors (no near-duplicates) plus 5 exact copies of the first five. */
  function pool(): SelectInput {
    const dim = 32;
    const random = seededRandom(7);
    const n = 105;
    const image = new Float32Array(n * dim);
    for (let i = 0; i < 100; i++) {
      let norm = 0;
      for (let k = 0; k < dim; k++) norm += (image[i * dim + k] = random() - 0.5) ** 2;
      for (let k = 0; k < dim; k++) image[i * dim + k]! /= Math.sqrt(norm);
    }
    for (let c = 0; c < 5; c++) image.copyWithin((100 + c) * dim, c * dim, (c + 1) * dim);
    return { n, dim, image };
  }

  it('a budget far below the pool says how many non-duplicates it removes beyond those found', async () => {
    const run = await runSelector(getSelector('semdedup'), pool(), parseBudget('10'), {}, { seed: 0 });
    expect(run.indices).toHaveLength(10);
    const warning = run.trace.find((t) => t.stage === 'warning');
    expect(warning?.message).toMatch(
      /^the budget forces removing 90 non-duplicates beyond the 5 found at cosine > 0\.95 \(ε = 0\.05\); pass -p epsilon=0\.05 and a budget of 100%/,
    );
    // The threshold-only mode the message points to removes the five copies and nothing else, without a warning.
    const only = await runSelector(
      getSelector('semdedup'),
      pool(),
      parseBudget('100%'),
      { epsilon: 0.05 },
      { seed: 0 },
    );
    expect(only.indices).toHaveLength(100);
    expect(only.trace.some((t) => t.stage === 'warning')).toBe(false);
  });
});

describe('npm', () => {
  it('npx curate --help prints no npm warning (no unknown keys in .npmrc)', async () => {
    const child = spawn('npx', ['--no-install', 'curate', '--help'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    let out = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(out).toContain('Usage: curate');
    expect(err).not.toMatch(/npm warn/i);
  }, 60_000);
});
