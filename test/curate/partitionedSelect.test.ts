/**
 * `curate select … --partitions N` and `--partition I/N`: task processes compute their partitions of
 * one workspace at the same time (real child processes, catalog read-only), the finishing run merges
 * what they wrote, and the result equals the in-process partitioned run. Adding a shard recomputes only
 * the partition that holds it.
 */
import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { Catalog, loadSelection, partitionsDir, selectSubset } from '../../src/curate/api.js';
import { MINI, tempDir } from '../helpers.js';
import { captureCli, spawnCli } from '../support/cli.js';
import { readSchedule } from '../../src/curate/schedule.js';
import { readInt64Npy, readNpy } from '../../src/embed/npy.js';
import { writeTinyClip } from '../support/tinyClip.js';

const { curate, stderr } = captureCli();

const SELECT = ['select', '--method', 'facility-location', '--budget', '10%', '--seed', '3'];

/**
 * A new shard: mini-000's samples under new keys, each image mirrored (so new content, same captions),
 * or with `copy` the same image bytes (byte-identical copies).
 */
async function mirroredShard(file: string, copy = false): Promise<void> {
  const extract = tar.extract();
  const pack = tar.pack();
  const done = (async () => {
    const chunks: Buffer[] = [];
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
    await writeFile(file, Buffer.concat(chunks));
  })();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const name = `${copy ? 'copy' : 'mirror'}${header.name}`;
      const bytes =
        name.endsWith('.jpg') && !copy
          ? sharp(body).flop().jpeg({ quality: 95 }).toBuffer()
          : Promise.resolve(body);
      void bytes.then((b) => pack.entry({ name, size: b.length }, b, () => next()));
    });
  });
  extract.on('finish', () => pack.finalize());
  extract.end(await readFile(path.join(MINI, 'wds', 'mini-000.tar')));
  await done;
}

function printedTrace(out: string, stage: string): string {
  return out.split('\n').find((l) => l.trimStart().startsWith(`${stage}:`)) ?? '';
}

/** A workspace of the three mini shards, embedded with the tiny encoder (written under `root`). */
async function embeddedMini(): Promise<{ root: string; model: string; ws: string }> {
  const root = await tempDir();
  const model = await writeTinyClip(path.join(root, 'tiny-clip'));
  const ws = path.join(root, 'ws');
  expect((await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-{000..002}.tar'))).code).toBe(0);
  expect((await curate('-w', ws, 'embed', '--encoder', model)).code, stderr()).toBe(0);
  return { root, model, ws };
}

describe('curate select --partitions N (partition → local → merge over a workspace)', () => {
  it('tasks at once, a missing task done by the merge, a re-run task reused: the in-process result', async () => {
    const root = await tempDir();
    const model = await writeTinyClip(path.join(root, 'tiny-clip'));
    const inProcess = path.join(root, 'in-process');
    expect((await curate('-w', inProcess, 'init', path.join(MINI, 'wds/mini-{000..002}.tar'))).code).toBe(0);
    expect((await curate('-w', inProcess, 'embed', '--encoder', model)).code, stderr()).toBe(0);
    const tasks = path.join(root, 'tasks');
    await cp(inProcess, tasks, { recursive: true });

    const whole = await curate('-w', inProcess, ...SELECT, '--partitions', '3', '--name', 'fl');
    expect(whole.code, stderr()).toBe(0);
    expect(whole.out).toContain('fl: facility-location kept 24 of 240');
    expect(printedTrace(whole.out, 'partitions')).toContain('3 partitions of 240 items');
    expect(printedTrace(whole.out, 'partitions')).toContain('3 computed in this run (0, 1, 2), 0 reused');

    // Tasks 0 and 1 at once on the copy; task 2 never ran (killed before writing, say).
    const runs = await Promise.all(
      [0, 1].map((i) => spawnCli(['-w', tasks, ...SELECT, '--partition', `${i}/3`, '--name', 'fl'])),
    );
    for (const r of runs) expect(r.code, r.err).toBe(0);
    expect(runs[0]!.out).toMatch(/task 0\/3: 32 candidates from 80 items in 1 parts → /);
    const dir = (await readdir(partitionsDir(tasks)))[0]!;
    const files = path.join(partitionsDir(tasks), dir);
    expect((await readdir(files)).sort()).toEqual(['partition-0-of-3.json', 'partition-1-of-3.json']);
    const written = (await stat(path.join(files, 'partition-0-of-3.json'))).mtimeMs;
    const again = await spawnCli(['-w', tasks, ...SELECT, '--partition', '0/3', '--name', 'fl']);
    expect(again.out).toContain('(already done by an earlier run of this task)');
    expect((await stat(path.join(files, 'partition-0-of-3.json'))).mtimeMs).toBe(written);

    const merged = await curate('-w', tasks, ...SELECT, '--partitions', '3', '--name', 'fl');
    expect(merged.code, stderr()).toBe(0);
    expect(printedTrace(merged.out, 'partitions')).toContain('1 computed in this run (2), 2 reused');
    const [a, b] = await Promise.all([loadSelection(inProcess, 'fl'), loadSelection(tasks, 'fl')]);
    expect(b.keys).toEqual(a.keys);
    expect(b.weights).toEqual(a.weights);
    expect(a.pool).toBe(240);
    expect(a.weights!.reduce((s, w) => s + w, 0)).toBe(240);

    // clip-score's exact form: partitioned picks are the single run's, in order.
    const plain = ['select', '--method', 'clip-score', '--budget', '10%'];
    expect((await curate('-w', tasks, ...plain, '--name', 'cs')).code, stderr()).toBe(0);
    expect((await curate('-w', tasks, ...plain, '--partitions', '3', '--name', 'cs-3')).code, stderr()).toBe(
      0,
    );
    const [cs, cs3] = await Promise.all([loadSelection(tasks, 'cs'), loadSelection(tasks, 'cs-3')]);
    expect(cs3.keys).toEqual(cs.keys);
    expect(cs3.keys).toHaveLength(24);

    // random's draw (bottom-k of hashed sample ids) does not depend on the partitioning.
    const draw = ['select', '--method', 'random', '--budget', '10%', '--seed', '5'];
    expect((await curate('-w', tasks, ...draw, '--partitions', '1', '--name', 'r-1')).code, stderr()).toBe(0);
    expect((await curate('-w', tasks, ...draw, '--partitions', '3', '--name', 'r-3')).code, stderr()).toBe(0);
    const [r1, r3] = await Promise.all([loadSelection(tasks, 'r-1'), loadSelection(tasks, 'r-3')]);
    expect(r3.keys).toEqual(r1.keys);
    expect(r3.keys).toHaveLength(24);

    // A filter (no budget): every partition keeps what passes, the merge all of it, in catalog order.
    const filter = ['select', '--method', 'caption-filter', '-p', 'minWords=6'];
    expect((await curate('-w', tasks, ...filter, '--name', 'cf')).code, stderr()).toBe(0);
    expect((await curate('-w', tasks, ...filter, '--partitions', '3', '--name', 'cf-3')).code, stderr()).toBe(
      0,
    );
    const [cf, cf3] = await Promise.all([loadSelection(tasks, 'cf'), loadSelection(tasks, 'cf-3')]);
    expect(cf3.keys).toEqual(cf.keys);
    expect(cf.keys.length).toBeGreaterThan(0);
    expect(cf.keys.length).toBeLessThan(240);
    const capped = await curate('-w', tasks, ...filter, '--budget', '5', '--partitions', '3');
    expect(capped.code).toBe(2);
    expect(stderr()).toContain(`the filter keeps ${cf.keys.length} of 240 items, more than the budget of 5`);

    // EL2N's proxies are trained once on a seeded pool sample (a file the tasks share): any N, same picks.
    const hard = ['select', '--method', 'el2n', '--budget', '10%'];
    expect((await curate('-w', tasks, ...hard, '--partitions', '1', '--name', 'e-1')).code, stderr()).toBe(0);
    const task = await spawnCli(['-w', tasks, ...hard, '--partition', '1/3', '--name', 'e-3']);
    expect(task.code, task.err).toBe(0);
    expect((await curate('-w', tasks, ...hard, '--partitions', '3', '--name', 'e-3')).code, stderr()).toBe(0);
    const [e1, e3] = await Promise.all([loadSelection(tasks, 'e-1'), loadSelection(tasks, 'e-3')]);
    expect(e3.keys).toEqual(e1.keys);
    expect(e3.keys).toHaveLength(24);
    const runDirs = await readdir(partitionsDir(tasks));
    const shared = (
      await Promise.all(runDirs.map(async (d) => readdir(path.join(partitionsDir(tasks), d))))
    ).flat();
    expect(shared.filter((f) => /^shared-[0-9a-f]{16}\.json$/.test(f))).toHaveLength(2); // N = 1 and N = 3

    // A task of another N, or an I out of range, is refused before any work.
    const wrong = await curate('-w', tasks, ...SELECT, '--partition', '3/3');
    expect(wrong.code).toBe(2);
    expect(stderr()).toContain('--partition 3/3: expected I/N with 0 ≤ I < N');
  });

  it('a dynamic method (SeTa): one partition is the one-process schedule; N partitions join their schedules, a task’s partition reused', async () => {
    const { ws } = await embeddedMini();
    const seta = ['select', '--method', 'seta', '--budget', '10%', '-p', 'epochs=3', '--seed', '2'];
    const schedule = (name: string) => readSchedule(path.join(ws, 'selections', name, 'schedule.jsonl'));

    expect((await curate('-w', ws, ...seta, '--name', 'one')).code, stderr()).toBe(0);
    expect((await curate('-w', ws, ...seta, '--partitions', '1', '--name', 'p1')).code, stderr()).toBe(0);
    const [one, p1] = await Promise.all([schedule('one'), schedule('p1')]);
    expect(p1.rounds.map((r) => r.keys)).toEqual(one.rounds.map((r) => r.keys));
    expect(p1.rounds).toHaveLength(3);
    expect((await loadSelection(ws, 'p1')).keys).toEqual((await loadSelection(ws, 'one')).keys);

    const task = await spawnCli(['-w', ws, ...seta, '--partition', '1/3', '--name', 'p3']);
    expect(task.code, task.err).toBe(0);
    const joined = await curate('-w', ws, ...seta, '--partitions', '3', '--name', 'p3');
    expect(joined.code, stderr()).toBe(0);
    expect(printedTrace(joined.out, 'partitions')).toContain(
      'each runs seta at its quota of B = 24 (largest remainder over the sizes: 8, 8, 8)',
    );
    expect(printedTrace(joined.out, 'partitions')).toContain('2 computed in this run (0, 2), 1 reused');
    expect(printedTrace(joined.out, 'partition 2: settings')).toContain('κ =');
    expect(printedTrace(joined.out, 'merge')).toContain('3 schedule rounds from 9 partition rounds');
    const p3 = await schedule('p3');
    expect(p3.rounds).toHaveLength(3);
    // Keys train000000–077 are part 0, 078–156 part 1, the rest part 2 (one part per partition here).
    const partOf = (key: string) => (key < 'train000078' ? 0 : key < 'train000157' ? 1 : 2);
    for (const round of p3.rounds) {
      expect(round.info?.partitions).toBe(3);
      // Each partition contributes one contiguous run of its own keys, in partition order.
      const order = round.keys.map(partOf);
      expect(order).toEqual([...order].sort((a, b) => a - b));
      expect(new Set(order)).toEqual(new Set([0, 1, 2]));
    }
    expect((await loadSelection(ws, 'p3')).keys.length).toBeLessThanOrEqual(24);
  });

  it('pdd-synth saves its learned vectors: one partition gives the one-process files byte for byte, N partitions join them by stage', async () => {
    const { ws } = await embeddedMini();
    const pdd = [
      ...[
        'select',
        '--method',
        'pdd-synth',
        '--budget',
        '10%',
        '--seed',
        '4',
        '--label-field',
        'label_index',
      ],
      ...[
        '-p',
        'stages=2',
        '-p',
        'experts=1',
        '-p',
        'iterations=5',
        '-p',
        'syntheticSteps=3',
        '-p',
        'maxStart=2',
      ],
    ];
    const files = ['synthetic.npy', 'synthetic_labels.npy', 'synthetic_stages.npy'];
    const bytes = (name: string) =>
      Promise.all(files.map((f) => readFile(path.join(ws, 'selections', name, f))));
    const one = await curate('-w', ws, ...pdd, '--name', 'one');
    expect(one.code, stderr()).toBe(0);
    expect(one.out).toMatch(
      /synthetic: \d+ learned vectors \(d = 64; labels: label field values\) → synthetic\.npy, synthetic_labels\.npy, synthetic_stages\.npy/,
    );
    expect((await curate('-w', ws, ...pdd, '--partitions', '1', '--name', 'p1')).code, stderr()).toBe(0);
    expect(await bytes('p1')).toEqual(await bytes('one'));
    // An export carries them, described in its provenance.
    const out = path.join(ws, 'exported');
    expect(
      (await curate('-w', ws, 'export', '--selection', 'one', '--format', 'keys', '--out', out)).code,
      stderr(),
    ).toBe(0);
    expect(await Promise.all(files.map((f) => readFile(path.join(out, f))))).toEqual(await bytes('one'));
    const provenance = JSON.parse(await readFile(path.join(out, 'provenance.json'), 'utf8'));
    expect(provenance.selection.synthetic).toEqual((await loadSelection(ws, 'one')).synthetic);

    expect((await curate('-w', ws, ...pdd, '--partitions', '3', '--name', 'p3')).code, stderr()).toBe(0);
    const stored = await loadSelection(ws, 'p3');
    const vectors = await readNpy(path.join(ws, 'selections', 'p3', 'synthetic.npy'));
    const labels = await readInt64Npy(path.join(ws, 'selections', 'p3', 'synthetic_labels.npy'));
    const stages = Array.from(
      await readInt64Npy(path.join(ws, 'selections', 'p3', 'synthetic_stages.npy')),
      Number,
    );
    expect(stored.synthetic).toMatchObject({ rows: vectors.rows, dim: 64, classes: 'labels' });
    expect([labels.length, stages.length, vectors.cols]).toEqual([vectors.rows, vectors.rows, 64]);
    // Label field values (CIFAR classes 0–9) are the same classes in every partition: kept as they are.
    expect(Array.from(labels, Number).every((l) => l >= 0 && l <= 9)).toBe(true);
    expect(stages).toEqual([...stages].sort((a, b) => a - b));
    expect(new Set(stages)).toEqual(new Set([0, 1]));
  });

  it('a new shard recomputes only the partition that holds it', async () => {
    const { root, model, ws } = await embeddedMini();
    const first = await curate('-w', ws, ...SELECT, '--partitions', '3', '--name', 'fl');
    expect(printedTrace(first.out, 'partitions')).toContain('3 computed in this run (0, 1, 2), 0 reused');

    const extra = path.join(root, 'mirror-000.tar');
    await mirroredShard(extra);
    expect((await curate('-w', ws, 'init', extra)).code, stderr()).toBe(0);
    expect((await curate('-w', ws, 'embed', '--encoder', model)).code, stderr()).toBe(0);
    const second = await curate('-w', ws, ...SELECT, '--partitions', '3', '--name', 'fl');
    expect(second.code, stderr()).toBe(0);
    // The fourth part goes to partition 3 mod 3 = 0; partitions 1 and 2 are untouched.
    expect(printedTrace(second.out, 'partitions')).toContain('3 partitions of 320 items');
    expect(printedTrace(second.out, 'partitions')).toContain('1 computed in this run (0), 2 reused');
    expect(second.out).toContain('fl: facility-location kept 32 of 320');
    const picks = await loadSelection(ws, 'fl');
    expect(picks.keys.some((k) => k.startsWith('mirror'))).toBe(true);

    // Four partitions of a quota form: the terminal shows three partitions' own lines and folds the rest.
    const seta = await curate('-w', ws, 'select', '--method', 'seta', '--budget', '10%', '--partitions', '4');
    expect(seta.code, stderr()).toBe(0);
    const own = (await loadSelection(ws, 'seta-10pct')).trace.filter((t) =>
      t.stage.startsWith('partition 3: '),
    );
    expect(own.length).toBeGreaterThan(0);
    expect(seta.out).toContain('partition 2: settings');
    expect(seta.out).not.toContain('partition 3: ');
    expect(seta.out).toContain(
      `… ${own.length} more lines of 1 more partition, in the trace of ${path.join('selections', 'seta-10pct', 'selection.json')}`,
    );
    expect(seta.out.indexOf('  … ')).toBeLessThan(seta.out.indexOf('  merge: '));
  });

  it('a pool above the large-pool threshold runs partitioned by itself and says why; --one-process keeps one process; a pool too large for one is refused', async () => {
    const { ws } = await embeddedMini();
    expect(
      (await curate('-w', ws, ...SELECT, '--partitions', '3', '--name', 'explicit')).code,
      stderr(),
    ).toBe(0);
    // Thresholds lowered so the 240-pair pool counts as large: 240 > 100, partitions of 80 → N = 3.
    const largePool = { partitionAbove: 100, partitionItems: 80 };
    const request = { method: 'facility-location', budget: '10%', seed: 3, largePool };
    const catalog = await Catalog.open(ws);
    try {
      const auto = await selectSubset(catalog, ws, { ...request, name: 'auto' });
      expect(auto.trace.map((t) => t.stage).slice(0, 2)).toEqual(['scale', 'partitions']);
      expect(auto.trace[0]!.message).toContain(
        "the pool's 240 pairs are more than 100: 3 partitions of about 80",
      );
      expect(auto.sampleIds).toEqual((await loadSelection(ws, 'explicit')).sampleIds);

      const one = await selectSubset(catalog, ws, { ...request, name: 'one', oneProcess: true });
      expect(one.trace.some((t) => t.stage === 'partitions' || t.stage === 'scale')).toBe(false);
      expect(one.sampleIds).toHaveLength(24);

      // A dynamic method runs partitioned by itself too: one schedule per partition, joined.
      const crest = await selectSubset(catalog, ws, {
        method: 'crest',
        budget: '10%',
        params: { epochs: 2, batchSize: 16 },
        largePool,
        name: 'crest-auto',
      });
      expect(crest.trace.map((t) => t.stage).slice(0, 2)).toEqual(['scale', 'partitions']);
      expect(crest.trace[1]!.message).toContain('each runs crest at its quota of B = 24');
      // An explicit --one-process request whose matrix does not fit one buffer is refused.
      const tooSmall = { ...largePool, matrixBytes: 240 * 64 * 4 }; // the tiny encoder's d = 64
      await expect(
        selectSubset(catalog, ws, { ...request, oneProcess: true, largePool: tooSmall }),
      ).rejects.toThrow(
        /facility-location in one process needs the pool's 240 × 64 matrix in one buffer, more than .* GiB \(240 rows at d = 64\); leave out --one-process to run it partitioned/,
      );
    } finally {
      catalog.close();
    }
  });

  it('exact-dedup across partitions: copies in another partition than their original are removed, as in one process', async () => {
    const root = await tempDir();
    const model = await writeTinyClip(path.join(root, 'tiny-clip'));
    const ws = path.join(root, 'ws');
    const copies = path.join(root, 'copy-000.tar');
    await mirroredShard(copies, true);
    expect((await curate('-w', ws, 'init', path.join(MINI, 'wds/mini-{000..002}.tar'))).code).toBe(0);
    expect((await curate('-w', ws, 'init', copies)).code, stderr()).toBe(0);
    expect((await curate('-w', ws, 'embed', '--encoder', model)).code, stderr()).toBe(0);
    // Parts 0..3 → partitions 0, 1, 0, 1: mini-000 in partition 0, its copies in partition 1.
    const dedup = ['select', '--method', 'exact-dedup'];
    expect((await curate('-w', ws, ...dedup, '--name', 'one')).code, stderr()).toBe(0);
    const split = await curate('-w', ws, ...dedup, '--partitions', '2', '--name', 'two');
    expect(split.code, stderr()).toBe(0);
    const [one, two] = await Promise.all([loadSelection(ws, 'one'), loadSelection(ws, 'two')]);
    expect(two.keys).toEqual(one.keys);
    expect(one.keys).toHaveLength(240);
    expect(one.keys.some((k) => k.startsWith('copy'))).toBe(false);
    const best = await curate('-w', ws, ...dedup, '-p', 'keep="clip-score"', '--partitions', '2');
    expect(best.code).toBe(2);
    expect(stderr()).toContain(
      'exact-dedup keep=clip-score compares copies that can sit in different partitions',
    );
  });
});
