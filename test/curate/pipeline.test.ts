import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/curate/api.js';
import { compareMethods, selectSubset, splitHeldOut } from '../../src/curate/pipeline.js';
import {
  listSelectionInfo,
  listSelections,
  loadPoolIds,
  loadSelection,
  selectionDir,
} from '../../src/curate/selections.js';
import { readSchedule } from '../../src/curate/schedule.js';
import { MINI_COUNT } from '../helpers.js';
import { embeddedMini } from '../support/miniWorkspace.js';

let workspace: string;
let catalog: Catalog;

beforeAll(async () => {
  ({ workspace } = await embeddedMini());
  catalog = await Catalog.open(workspace);
});

describe('pipeline: select and compare on a workspace', () => {
  it('selectSubset saves picks by catalog id and key, every parameter after defaults, provenance and the schedule', async () => {
    const stored = await selectSubset(catalog, workspace, {
      method: 'craig',
      budget: '10%',
      labelField: 'label_index',
      params: { mode: 'gradients', epochs: 2 },
      seed: 3,
    });
    expect(stored.name).toBe('craig-10pct');
    expect(stored.sampleIds.length).toBe(Math.round(0.1 * MINI_COUNT));
    expect(stored.params).toMatchObject({ mode: 'gradients', epochs: 2, lag: 1, warmEpochs: 2 });
    expect(stored.provenance.tool.name).toBe('clipcurate');
    expect(stored.provenance.dataset.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(stored.provenance.encoder.fingerprint).toBeTruthy();
    const keys = await catalog.rows<{ id: bigint; key: string }>('SELECT id, key FROM samples');
    const keyOf = new Map(keys.map((r) => [Number(r.id), r.key]));
    expect(stored.keys).toEqual(stored.sampleIds.map((id) => keyOf.get(id)));
    expect(stored.weights!.reduce((a, b) => a + b, 0)).toBe(MINI_COUNT);
    const again = await loadSelection(workspace, 'craig-10pct');
    expect(again.sampleIds).toEqual(stored.sampleIds);
    const schedule = await readSchedule(
      path.join(selectionDir(workspace, 'craig-10pct'), stored.files.schedule!),
    );
    expect(schedule.rounds.length).toBe(2);
    expect(schedule.rounds[0]!.keys).toEqual(stored.keys);
    // The pool's ids are in pool.npy (int64, pool order), not in selection.json.
    const json = JSON.parse(
      await readFile(path.join(selectionDir(workspace, 'craig-10pct'), 'selection.json'), 'utf8'),
    ) as Record<string, unknown>;
    expect(json.poolIds).toBeUndefined();
    expect(stored.files.pool).toBe('pool.npy');
    const poolIds = await loadPoolIds(workspace, again);
    expect(poolIds.length).toBe(MINI_COUNT);
    expect(new Set(poolIds)).toEqual(new Set(keys.map((r) => Number(r.id))));
    await expect(loadSelection(workspace, 'nope')).rejects.toThrow(/no selection 'nope'.*craig-10pct/);
    await expect(
      selectSubset(catalog, workspace, { method: 'craig', budget: '10%', name: '../x' }),
    ).rejects.toThrow(/selection name/);
  });

  it("reads a selection saved with its pool's ids inline (before pool.npy); a cut pool.npy is an error naming it", async () => {
    const saved = await selectSubset(catalog, workspace, {
      method: 'random',
      budget: '10%',
      seed: 5,
      name: 'legacy',
    });
    const dir = selectionDir(workspace, 'legacy');
    const ids = await loadPoolIds(workspace, saved);
    // The form selection.json had before: no files.pool, the ids as a JSON array.
    const { pool: _pool, ...files } = saved.files;
    await writeFile(
      path.join(dir, 'selection.json'),
      JSON.stringify({ ...saved, files, poolIds: Array.from(ids).reverse() }),
    );
    await rm(path.join(dir, 'pool.npy'));
    const legacy = await loadSelection(workspace, 'legacy');
    expect(Array.from(await loadPoolIds(workspace, legacy))).toEqual(Array.from(ids).reverse());
    expect((await listSelectionInfo(workspace)).find((s) => s.name === 'legacy')!.pool).toBe(MINI_COUNT);

    const cut = await selectSubset(catalog, workspace, {
      method: 'random',
      budget: '10%',
      seed: 5,
      name: 'cut',
    });
    const file = path.join(selectionDir(workspace, 'cut'), 'pool.npy');
    await writeFile(file, (await readFile(file)).subarray(0, 200));
    await expect(loadPoolIds(workspace, cut)).rejects.toThrow(
      new RegExp(
        `${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+ data bytes, expected ${MINI_COUNT * 8}`,
      ),
    );
  });

  it('compareMethods scores every method on one held-out split; a failing method is reported, the rest go on', async () => {
    const c = await compareMethods(catalog, workspace, {
      methods: ['random', 'clip-score', 'craig', 'no-such-method'],
      budget: '25%',
      labelField: 'label_index',
    });
    expect(c.heldOut + c.pool).toBe(MINI_COUNT);
    expect(c.heldOut).toBeGreaterThan(30);
    const row = (m: string) => c.rows.find((r) => r.method === m)!;
    expect(row('no-such-method').error).toMatch(/unknown method/);
    for (const m of ['random', 'clip-score', 'craig']) {
      expect(row(m).kept).toBe(Math.round(0.25 * c.pool));
      expect(row(m).probeAccuracy).toBeGreaterThanOrEqual(0);
      expect(row(m).badCaptions).toBeGreaterThanOrEqual(0);
    }
    // clip-score keeps the pairs whose image and caption agree most: its mean cosine beats random's and the pool's.
    expect(row('clip-score').meanClipScore).toBeGreaterThan(row('random').meanClipScore);
    expect(row('clip-score').meanClipScore).toBeGreaterThan(c.reference.meanClipScore);
    expect(c.reference.badCaptions).toBeGreaterThan(0);
    expect(await listSelections(workspace)).toEqual(
      expect.arrayContaining(['compare-25pct/random-25pct', 'compare-25pct/craig-25pct']),
    );
  });

  it('compare on a pool sample: the seeded sample is the pool, every selection comes from it, and it says so', async () => {
    const run = (seed: number, name: string) =>
      compareMethods(catalog, workspace, {
        methods: ['random', 'clip-score'],
        budget: '20%',
        labelField: 'label_index',
        evaluators: [],
        poolSample: 60,
        seed,
        run: name,
      });
    const c = await run(1, 'sampled-a');
    expect(c.heldOut + c.pool).toBe(60);
    expect(c.poolInfo!.description).toMatch(
      new RegExp(`^a seeded sample of 60 of the ${MINI_COUNT} embedded samples`),
    );
    const stored = await loadSelection(workspace, 'sampled-a/random-20pct');
    const poolIds = Array.from(await loadPoolIds(workspace, stored));
    expect(poolIds.length).toBe(c.pool);
    expect(new Set(poolIds).size).toBe(c.pool);
    expect(stored.sampleIds.every((id) => poolIds.includes(id))).toBe(true);
    // The same seed draws the same pool; another seed, another.
    expect((await run(1, 'sampled-b')).poolInfo!.fingerprint).toBe(c.poolInfo!.fingerprint);
    expect((await run(2, 'sampled-c')).poolInfo!.fingerprint).not.toBe(c.poolInfo!.fingerprint);
    // A sample as large as the pool is the pool.
    const whole = await compareMethods(catalog, workspace, {
      methods: ['random'],
      budget: '20%',
      evaluators: [],
      poolSample: MINI_COUNT + 5,
      run: 'sampled-whole',
    });
    expect(whole.pool + whole.heldOut).toBe(MINI_COUNT);
    expect(whole.poolInfo!.description).toBe(`all ${MINI_COUNT} embedded samples`);
    await expect(
      compareMethods(catalog, workspace, { methods: ['random'], budget: '20%', poolSample: 1.5 }),
    ).rejects.toThrow(/pool sample must be a whole number/);
  });

  it('the held-out split is stratified, disjoint, seeded and keeps every class in the pool', () => {
    const labels = Int32Array.from({ length: 103 }, (_, i) => (i < 3 ? 9 : i % 4));
    const a = splitHeldOut(labels, 0.2, 1);
    expect(a).toEqual(splitHeldOut(labels, 0.2, 1));
    expect(new Set([...a.train, ...a.test]).size).toBe(103);
    for (const c of [0, 1, 2, 3, 9]) expect(a.train.some((i) => labels[i] === c)).toBe(true);
    expect(a.test.length).toBe(21); // round(0.2·n_c) per class: 4 classes of 25 → 5 each, class 9 (3 items) → 1
  });
});
