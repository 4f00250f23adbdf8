/**
 * The CLI under bad arguments, missing prerequisites, hostile dataset text and Ctrl-C (issue 22: case 10
 * and the CLI items of "Smaller"). Every numeric option is refused with exit 2 and a message naming it;
 * index/select/search/compare before embed say what to run; unknown methods and label fields are named
 * before any work; dataset text reaches the terminal escaped; SIGINT ends a real child process with 130.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { addDataset, Catalog, WorkspaceIndex } from '../../src/curate/api.js';
import { printable } from '../../src/curate/cli/escape.js';
import { embedCatalog } from '../../src/curate/embed.js';
import { selectSubset } from '../../src/curate/pipeline.js';
import { ClipOnnxEncoder } from '../../src/embed/encoders/clipOnnx.js';
import { registry } from '../../src/select/registry.js';
import { MINI, tempDir } from '../helpers.js';
import { captureCli } from '../support/cli.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate, stderr } = captureCli();
const ROOT = path.resolve(import.meta.dirname, '../..');
const WDS = path.join(MINI, 'wds/mini-{000..002}.tar');

/** Terminal controls a hostile key or caption carries: clear screen, window title + BEL, C1 CSI, RTL override. */
const EVIL_KEY = 'evil\u001b[2J\u001b]0;pwned\u0007';
const EVIL_CAPTION = 'a cat\u001b[31m in red\u009b1m\u202eten';
const MISSING_KEY = 'gone\u001b[5m\nforged line';
/** Raw control characters (what must never be printed), except line feed and tab. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

let scratch: string;
/** Only `init` run: nothing embedded. */
let initOnly: string;
/** Mini CIFAR + a hostile manifest, embedded with the tiny CLIP and indexed, one saved selection. */
let embedded: string;
let model: string;

async function hostileManifest(dir: string): Promise<string> {
  const file = path.join(dir, 'hostile.jsonl');
  const rows = [
    {
      key: EVIL_KEY,
      image_path: path.join(MINI, 'folder/airplane/train000000.jpg'),
      caption: EVIL_CAPTION,
    },
    { key: MISSING_KEY, image_path: path.join(dir, 'no\u001b[1m-such.jpg'), caption: 'missing' },
  ];
  await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

beforeAll(async () => {
  scratch = await tempDir({ forFile: true });
  model = await writeTinyClip(path.join(scratch, 'tiny'));
  initOnly = path.join(scratch, 'init-only');
  embedded = path.join(scratch, 'embedded');
  const manifest = await hostileManifest(scratch);
  for (const ws of [initOnly, embedded]) {
    const catalog = await Catalog.open(ws);
    try {
      await addDataset(catalog, WDS);
      if (ws === embedded) {
        await addDataset(catalog, manifest);
        const encoder = await ClipOnnxEncoder.load(model);
        await embedCatalog(catalog, ws, encoder);
        await encoder.dispose();
        await WorkspaceIndex.build(catalog, ws, 'image');
        await selectSubset(catalog, ws, { method: 'random', budget: '50', name: 'picked' });
      }
    } finally {
      catalog.close();
    }
  }
}, 120_000);

describe('numeric options: exit 2 naming the option and the value, before any work', () => {
  const cases: Array<[string[], string]> = [
    [['embed', '--batch-size', '0'], '--batch-size must be an integer from 1 to 65536 (got "0")'],
    [['embed', '--batch-size', '-4'], '--batch-size must be an integer from 1 to 65536 (got "-4")'],
    [['embed', '--batch-size', 'abc'], '--batch-size must be an integer from 1 to 65536 (got "abc")'],
    [['embed', '--batch-size', '1.5'], '--batch-size must be an integer from 1 to 65536 (got "1.5")'],
    [['embed', '--threads', '0'], '--threads must be an integer from 1 to 1024 (got "0")'],
    [['index', '--m', '0'], '--m must be an integer from 2 to 512 (got "0")'],
    [['index', '--m', '1'], '--m must be an integer from 2 to 512 (got "1")'],
    [
      ['index', '--ef-construction', '-1'],
      '--ef-construction must be an integer from 1 to 100000 (got "-1")',
    ],
    [['select', '--seed', 'abc'], '--seed must be an integer from 0 to 4294967295 (got "abc")'],
    [['compare', '--seed', '-1'], '--seed must be an integer from 0 to 4294967295 (got "-1")'],
    [['compare', '--held-out', '1.5'], '--held-out must be a number between 0 and 1, exclusive (got "1.5")'],
    [['search', 'cat', '-k', '0'], '-k must be an integer from 1 to 10000 (got "0")'],
    [['search', 'cat', '-k', 'abc'], '-k must be an integer from 1 to 10000 (got "abc")'],
    [['issues', '--limit', 'abc'], '--limit must be an integer ≥ 1 (got "abc")'],
    [['issues', '--limit', '0'], '--limit must be an integer ≥ 1 (got "0")'],
    [
      ['export', '--selection', 's', '--out', 'o', '--shard-size', '0'],
      '--shard-size must be an integer ≥ 1 (got "0")',
    ],
  ];
  it.each(cases)('%j', async (args, message) => {
    const ws = path.join(scratch, 'never-created');
    const run = await curate('-w', ws, ...args);
    expect(run.code).toBe(2);
    expect(stderr()).toBe(`curate: ${message}\n`);
    expect(run.out).toBe('');
    // Refused while parsing: the workspace was not even opened.
    expect(existsSync(ws)).toBe(false);
  });

  it('commander usage errors share the curate: prefix and exit 2', async () => {
    expect((await curate('issues', '--nope')).code).toBe(2);
    expect(stderr()).toBe("curate: unknown option '--nope'\n");
  });

  it('--seed is stored as the number given, and as 0 when not given (never null)', async () => {
    const given = await curate(
      '-w',
      embedded,
      'select',
      '--method',
      'random',
      '--budget',
      '5',
      '--seed',
      '7',
    );
    expect(given.code).toBe(0);
    const saved = JSON.parse(
      await readFile(path.join(embedded, 'selections/random-5/selection.json'), 'utf8'),
    );
    expect(saved.seed).toBe(7);
    expect((await curate('-w', embedded, 'select', '--method', 'random', '--budget', '6')).code).toBe(0);
    const plain = JSON.parse(
      await readFile(path.join(embedded, 'selections/random-6/selection.json'), 'utf8'),
    );
    expect(plain.seed).toBe(0);
  });

  it('a --seed in the config is checked by the same rule', async () => {
    const config = path.join(scratch, 'bad-seed.json');
    await writeFile(config, JSON.stringify({ seed: -3 }));
    const run = await curate(
      '-w',
      embedded,
      'select',
      '--config',
      config,
      '--method',
      'random',
      '--budget',
      '5',
    );
    expect(run.code).toBe(2);
    expect(stderr()).toMatch(/config .*bad-seed\.json: seed: /);
  });
});

describe('steps run out of order: exit 2 saying what to run first', () => {
  const noEmbeddings = () => `curate: no embeddings in ${initOnly}: run \`curate embed\` first\n`;
  it.each([
    [['index']],
    [['select', '--method', 'random', '--budget', '5']],
    [['compare', '--methods', 'random', '--budget', '5']],
    [['search', 'a cat']],
  ])('%j before embed', async (args) => {
    const run = await curate('-w', initOnly, ...args);
    expect(run.code).toBe(2);
    expect(stderr()).toBe(noEmbeddings());
    expect(existsSync(path.join(initOnly, 'embeddings'))).toBe(false);
  });

  it('select names a bad method before saying that nothing is embedded', async () => {
    expect((await curate('-w', initOnly, 'select', '--method', 'nope', '--budget', '5')).code).toBe(2);
    expect(stderr()).toMatch(/^curate: unknown method 'nope'; available: random/);
  });

  it('search before index', async () => {
    const ws = path.join(scratch, 'no-index');
    const catalog = await Catalog.open(ws);
    try {
      await addDataset(catalog, path.join(MINI, 'wds/mini-000.tar'));
      const encoder = await ClipOnnxEncoder.load(model);
      await embedCatalog(catalog, ws, encoder);
      await encoder.dispose();
    } finally {
      catalog.close();
    }
    const run = await curate('-w', ws, 'search', 'a cat', '--encoder', model);
    expect(run.code).toBe(2);
    expect(stderr()).toBe(`curate: no image index in ${ws}: run \`curate index\` first\n`);
  });

  it('--views without those embeddings', async () => {
    const run = await curate('-w', embedded, 'select', '--method', 'sas', '--budget', '5', '--views', 'aug');
    expect(run.code).toBe(2);
    expect(stderr()).toContain(
      `no augmented-view embeddings 'aug' in ${embedded}: run \`curate embed --views aug\``,
    );
  });
});

describe('methods and label fields are checked before any work', () => {
  it('compare --methods random,nope exits 2 naming nope and listing the valid methods', async () => {
    const run = await curate('-w', embedded, 'compare', '--methods', 'random,nope', '--budget', '10');
    expect(run.code).toBe(2);
    expect(stderr()).toBe(
      `curate: --methods: unknown method 'nope'; available: ${[...registry.keys()].join(', ')}\n`,
    );
    expect(run.out).toBe('');
    expect(existsSync(path.join(embedded, 'compare'))).toBe(false);
    expect(existsSync(path.join(embedded, 'selections/compare-10'))).toBe(false);
  });

  it('several unknown methods are all named; an empty list is refused', async () => {
    expect(
      (await curate('-w', embedded, 'compare', '--methods', 'nope, bogus,random', '--budget', '10')).code,
    ).toBe(2);
    expect(stderr()).toMatch(/^curate: --methods: unknown methods 'nope', 'bogus'; available: /);
    expect((await curate('-w', embedded, 'compare', '--methods', ',', '--budget', '10')).code).toBe(2);
    expect(stderr()).toContain('curate: --methods: no methods given');
  });

  it('unknown methods in the config are named with the config file', async () => {
    const config = path.join(scratch, 'compare-config.json');
    await writeFile(config, JSON.stringify({ compare: { methods: ['random', 'typo'] } }));
    const run = await curate('-w', embedded, 'compare', '--config', config, '--budget', '10');
    expect(run.code).toBe(2);
    expect(stderr()).toContain(`compare.methods (${config}): unknown method 'typo'`);
  });

  it.each([
    ['select', '--method', 'random', '--budget', '5'],
    ['compare', '--methods', 'random', '--budget', '5'],
  ])('%s --label-field nope exits 2 naming the field and the fields there are', async (...args) => {
    const run = await curate('-w', embedded, ...args, '--label-field', 'nope');
    expect(run.code).toBe(2);
    expect(stderr()).toMatch(
      /^curate: --label-field 'nope' is not a non-negative integer in the metadata of 241 of 241 embedded samples \(e\.g\. key '[^']+'\); metadata fields: .*label_index/,
    );
  });

  it('a label field some samples lack names how many and one of them, escaped', async () => {
    const run = await curate(
      '-w',
      embedded,
      'select',
      '--method',
      'random',
      '--budget',
      '5',
      '--label-field',
      'label_index',
    );
    expect(run.code).toBe(2);
    // The one hostile manifest row has no label_index; its key is printed with its controls escaped.
    expect(stderr()).toContain(
      `--label-field 'label_index' is not a non-negative integer in the metadata of 1 of 241 embedded samples (e.g. key '${printable(EVIL_KEY)}')`,
    );
    expect(stderr()).not.toMatch(RAW_CONTROL);
  });

  it('a label field that holds text (not integers) is refused the same way', async () => {
    // The mini CIFAR metadata has `label` as a class name ("airplane"), and the field comes from a config.
    const config = path.join(scratch, 'label-config.json');
    await writeFile(config, JSON.stringify({ labelField: 'label' }));
    const select = await curate(
      '-w',
      embedded,
      'select',
      '--config',
      config,
      '--method',
      'random',
      '--budget',
      '5',
    );
    expect(select.code).toBe(2);
    expect(stderr()).toMatch(
      new RegExp(
        `labelField \\(${config.replaceAll('.', '\\.')}\\) 'label' is not a non-negative integer in the metadata of 241 of 241 `,
      ),
    );
  });
});

describe('dataset text reaches the terminal escaped', () => {
  it('printable escapes C0, ESC, C1, DEL and bidi controls, and keeps plain text', () => {
    expect(printable('plain text, ünïcode ✓')).toBe('plain text, ünïcode ✓');
    expect(printable(EVIL_KEY)).toBe('evil\\x1b[2J\\x1b]0;pwned\\x07');
    expect(printable('a\u009b1m\u007f\u202eb\r')).toBe('a\\x9b1m\\x7f\\u202eb\\r');
    expect(printable('two\nlines\tand tab')).toBe('two\\nlines\\tand tab');
    expect(printable('two\nlines\tand tab\u001b', { multiline: true })).toBe('two\nlines\tand tab\\x1b');
  });

  it('issues, status, search and review list print keys, files and captions escaped', async () => {
    const issues = await curate('-w', embedded, 'issues', '--limit', '100');
    expect(issues.code).toBe(0);
    expect(issues.out).toContain(`key=${printable(MISSING_KEY)}`);
    expect(issues.out).toContain('no\\x1b[1m-such.jpg');
    const search = await curate('-w', embedded, 'search', 'a cat', '-k', '241', '--encoder', model);
    expect(search.code).toBe(0);
    expect(search.out).toContain(`${printable(EVIL_KEY)}  ${printable(EVIL_CAPTION)}\n`);
    await curate('-w', embedded, 'review', 'reject', EVIL_KEY);
    const reviews = await curate('-w', embedded, 'review', 'list');
    expect(reviews.out).toContain(`reject\t${printable(EVIL_KEY)}\t`);
    await curate('-w', embedded, 'review', 'clear', EVIL_KEY);
    const status = await curate('-w', embedded, 'status');
    for (const run of [issues, search, reviews, status]) expect(run.out).not.toMatch(RAW_CONTROL);
    expect(stderr()).not.toMatch(RAW_CONTROL);
    // One issue row per line: a line feed in a key cannot forge a second row.
    expect(issues.out.split('\n').filter((l) => l.startsWith('forged line'))).toEqual([]);
  });
});

/** Run the CLI in a child process; SIGINT as soon as `main` has started (it traps signals synchronously). */
async function interruptChild(
  args: string[],
  delayMs = 0,
  signal: NodeJS.Signals = 'SIGINT',
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const entry = path.join(scratch, 'curate-entry.mts');
  if (!existsSync(entry))
    await writeFile(
      entry,
      `import { main } from ${JSON.stringify(path.join(ROOT, 'src/curate/cli/main.ts'))};\n` +
        // Printed after main() was called: its signal trap is installed by then.
        "const run = main(process.argv);\nprocess.stderr.write('main started\\n');\nprocess.exitCode = await run;\n",
    );
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  let sent = false;
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
    if (!sent && err.includes('main started\n')) {
      sent = true;
      setTimeout(() => child.kill(signal), delayMs);
    }
  });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr: err })));
}

/**
 * A selection that is still working when the signal comes: a random pick of 20 finishes within ~150 ms
 * on an idle machine, and a signal that arrives while Node is already shutting down takes the default
 * action (death by the signal), which is not what these tests are about.
 */
const LONG_SELECT = ['--method', 'fast', '--budget', '20', '-p', 'iterations=100000', '-p', 'levelOff=0'];

describe('Ctrl-C: a real child process exits 130 with one line, no stack', () => {
  // Before: select and export ended with "curate: interrupted", exit 1 (the abort reason was a plain Error),
  // or died of the signal itself when it came outside the one step that listened.
  it.each([
    ['select', ['select', ...LONG_SELECT, '--name', 'interrupted']],
    ['export', ['export', '--selection', 'picked', '--format', 'webdataset', '--out', 'OUT']],
  ])(
    '%s',
    async (_name, args) => {
      const out = path.join(scratch, `export-${Math.random().toString(36).slice(2)}`);
      const run = await interruptChild(['-w', embedded, ...args.map((a) => (a === 'OUT' ? out : a))], 100);
      expect(run.signal).toBeNull();
      expect(run.code, run.stderr).toBe(130);
      expect(run.stderr).toContain('curate: SIGINT: stopping (press Ctrl-C again to quit at once)\n');
      expect(run.stderr).toContain(
        'curate: interrupted; finished parts are kept, run the same command again to resume\n',
      );
      expect(run.stderr).not.toMatch(/^\s+at /m);
    },
    30_000,
  );

  it('SIGTERM stops the same way, with 143', async () => {
    const run = await interruptChild(
      ['-w', embedded, 'select', ...LONG_SELECT, '--name', 'terminated'],
      100,
      'SIGTERM',
    );
    expect(run.signal).toBeNull();
    expect(run.code, run.stderr).toBe(143);
    expect(run.stderr).toContain('curate: SIGTERM: stopping');
    expect(run.stderr).toContain('curate: interrupted; finished parts are kept');
  }, 30_000);

  it('embed, then the same command again finishes the job', async () => {
    const ws = path.join(scratch, 'embed-sigint');
    const catalog = await Catalog.open(ws);
    try {
      await addDataset(catalog, WDS);
    } finally {
      catalog.close();
    }
    const run = await interruptChild(['-w', ws, 'embed', '--encoder', model, '--batch-size', '8'], 300);
    expect(run.code, run.stderr).toBe(130);
    expect(run.stderr).toContain('curate: interrupted;');
    const again = await curate('-w', ws, 'embed', '--encoder', model);
    expect(again.code).toBe(0);
    expect(readdirSync(path.join(ws, 'embeddings')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 60_000);
});
