/**
 * reasons.jsonl beside a saved selection, and `diffSelections` / `curate diff` over two real selections
 * of the mini CIFAR workspace (embedded with the tiny CLIP): the difference equals a set computation of
 * their sample ids, ground truth comes from the dataset's metadata and is left out when it has none.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/curate/api.js';
import { diffSelections, type SelectionDiff } from '../../src/curate/diff.js';
import { selectSubset } from '../../src/curate/pipeline.js';
import {
  loadPoolIds,
  loadReasons,
  loadScores,
  loadSelection,
  REASONS_FILE,
  selectionDir,
} from '../../src/curate/selections.js';
import { SelectionInputError } from '../../src/select/contract.js';
import { MINI_COUNT, tempDir } from '../helpers.js';
import { captureCli } from '../support/cli.js';
import { embeddedMini } from '../support/miniWorkspace.js';

const cli = captureCli();
let workspace: string;

async function withCatalog<T>(work: (c: Catalog) => Promise<T>): Promise<T> {
  const catalog = await Catalog.open(workspace);
  try {
    return await work(catalog);
  } finally {
    catalog.close();
  }
}

beforeAll(async () => {
  ({ workspace } = await embeddedMini());
  await withCatalog(async (catalog) => {
    await selectSubset(catalog, workspace, { method: 'clip-score', budget: '25%', name: 'cs' });
    await selectSubset(catalog, workspace, {
      method: 'semdedup',
      budget: '25%',
      name: 'sd',
      params: { clusters: 4 },
    });
    await selectSubset(catalog, workspace, { method: 'random', budget: '25%', name: 'old' });
  });
  // A selection saved before reasons were recorded has no reasons.jsonl.
  await rm(path.join(selectionDir(workspace, 'old'), REASONS_FILE));
}, 120_000);

/** Metadata of every sample by id, as the catalog holds it. */
async function metadataById(): Promise<Map<number, Record<string, unknown>>> {
  const rows = await withCatalog((c) =>
    c.rows<{ id: bigint; metadata: string }>('SELECT id, metadata::VARCHAR AS metadata FROM samples'),
  );
  return new Map(rows.map((r) => [Number(r.id), JSON.parse(r.metadata) as Record<string, unknown>]));
}

describe('reasons.jsonl', () => {
  it('holds one reason per pool item for clip-score, kept flags and scores matching the selection', async () => {
    const stored = await loadSelection(workspace, 'cs');
    expect(stored.files.reasons).toBe(REASONS_FILE);
    const reasons = await loadReasons(workspace, 'cs');
    const poolIds = await loadPoolIds(workspace, stored);
    expect(reasons.size).toBe(poolIds.length);
    const kept = new Set(stored.sampleIds);
    const scores = (await loadScores(workspace, stored))!;
    poolIds.forEach((id, row) => {
      const r = reasons.get(id)!;
      expect(r.kept).toBe(kept.has(id));
      expect(Number(/score (-?[0-9.]+)/.exec(r.reason)![1])).toBeCloseTo(scores[row]!, 4);
    });
    stored.keys.forEach((key, t) => expect(reasons.get(stored.sampleIds[t]!)!.key).toBe(key));
  });

  it.skipIf(spawnSync('/usr/bin/python3', ['-c', 'import numpy']).status !== 0)(
    'numpy alone pairs pool.npy with scores.npy: every sample id with its score',
    async () => {
      const stored = await loadSelection(workspace, 'cs');
      const dir = selectionDir(workspace, 'cs');
      const script = [
        'import json, os, sys',
        'import numpy as np',
        'ids = np.load(os.path.join(sys.argv[1], "pool.npy"))',
        'scores = np.load(os.path.join(sys.argv[1], "scores.npy"))[:, 0]',
        'assert ids.dtype == np.int64 and ids.shape == scores.shape, (ids.dtype, ids.shape, scores.shape)',
        'print(json.dumps({str(int(i)): float(s) for i, s in zip(ids, scores)}))',
      ].join('\n');
      const fromPython = JSON.parse(
        execFileSync('/usr/bin/python3', ['-c', script, dir]).toString(),
      ) as Record<string, number>;
      const reasons = await loadReasons(workspace, 'cs');
      expect(Object.keys(fromPython)).toHaveLength(stored.pool);
      // The score each reason states (the method's own words) is the score numpy pairs with its id.
      for (const [id, r] of reasons)
        expect(fromPython[String(id)], r.key).toBeCloseTo(Number(/score (-?[0-9.]+)/.exec(r.reason)![1]), 4);
    },
  );

  it('names items by key: a semdedup duplicate names a sample of the catalog, never a pool position', async () => {
    const reasons = await loadReasons(workspace, 'sd');
    const keys = new Set(
      (await withCatalog((c) => c.rows<{ key: string }>('SELECT key FROM samples'))).map((r) => r.key),
    );
    const dropped = [...reasons.values()].filter((r) => !r.kept);
    expect(dropped.length).toBe(MINI_COUNT - 60);
    for (const r of dropped) {
      expect(r.reason).not.toContain('{#');
      const named = /^(?:duplicate of|too close to) (\S+) \(cos/.exec(r.reason);
      expect(named, r.reason).not.toBeNull();
      expect(keys.has(named![1]!)).toBe(true);
    }
    const text = await readFile(path.join(selectionDir(workspace, 'sd'), REASONS_FILE), 'utf8');
    const first = JSON.parse(text.split('\n')[0]!) as object;
    expect(Object.keys(first)).toEqual(['key', 'sample_id', 'kept', 'reason']);
  });

  it('is absent for a selection saved without reasons: an empty map, not an error', async () => {
    expect(existsSync(path.join(selectionDir(workspace, 'old'), 'selection.json'))).toBe(true);
    expect((await loadReasons(workspace, 'old')).size).toBe(0);
  });
});

describe('diffSelections', () => {
  let diff: SelectionDiff;
  beforeAll(async () => {
    diff = await withCatalog((c) => diffSelections(c, workspace, 'cs', 'sd'));
  });

  it('equals the set computation of the two selections’ sample ids', async () => {
    const a = await loadSelection(workspace, 'cs');
    const b = await loadSelection(workspace, 'sd');
    const inA = new Set(a.sampleIds);
    const inB = new Set(b.sampleIds);
    expect(diff.a).toEqual({ name: 'cs', method: 'clip-score', kept: a.sampleIds.length });
    expect(diff.b).toEqual({ name: 'sd', method: 'semdedup', kept: b.sampleIds.length });
    expect(diff.both).toBe(a.sampleIds.filter((id) => inB.has(id)).length);
    expect(diff.onlyA.map((x) => x.id)).toEqual(a.sampleIds.filter((id) => !inB.has(id)));
    expect(diff.onlyB.map((x) => x.id)).toEqual(b.sampleIds.filter((id) => !inA.has(id)));
    expect(diff.onlyA.length).toBeGreaterThan(0);
  });

  it("gives each side's reason: A's for keeping, B's for dropping", async () => {
    const [ra, rb] = [await loadReasons(workspace, 'cs'), await loadReasons(workspace, 'sd')];
    for (const item of diff.onlyA) {
      expect(item.reasonA).toBe(ra.get(item.id)!.reason);
      expect(item.reasonB).toBe(rb.get(item.id)!.reason);
      expect(rb.get(item.id)!.kept).toBe(false);
    }
  });

  it('reads ground truth from the dataset metadata and counts it per side', async () => {
    const meta = await metadataById();
    for (const item of [...diff.onlyA, ...diff.onlyB]) {
      const m = meta.get(item.id)!;
      expect(item.groundTruth).toEqual({
        caption_kind: m.caption_kind ?? null,
        dup_of: m.dup_of ?? null,
        label: m.label ?? null,
      });
    }
    const byField = new Map(diff.truth.map((t) => [t.field, t]));
    expect([...byField.keys()]).toEqual(['caption_kind', 'dup_of', 'label']);
    const kinds: Record<string, number> = {};
    for (const item of diff.onlyA) {
      const k = String(meta.get(item.id)!.caption_kind);
      kinds[k] = (kinds[k] ?? 0) + 1;
    }
    expect(byField.get('caption_kind')!.onlyA).toEqual(kinds);
    const dups = diff.onlyB.filter((x) => meta.get(x.id)!.dup_of != null).length;
    expect(byField.get('dup_of')!.onlyB['duplicate'] ?? 0).toBe(dups);
    expect(byField.get('dup_of')!.onlyB['not a duplicate'] ?? 0).toBe(diff.onlyB.length - dups);
  });

  it('gives null reasons for a selection without reasons.jsonl', async () => {
    const d = await withCatalog((c) => diffSelections(c, workspace, 'old', 'cs'));
    expect(d.onlyA.every((x) => x.reasonA === null && typeof x.reasonB === 'string')).toBe(true);
  });

  it('names a selection that does not exist', async () => {
    const attempt = withCatalog((c) => diffSelections(c, workspace, 'cs', 'nope'));
    await expect(attempt).rejects.toThrow(SelectionInputError);
    await expect(withCatalog((c) => diffSelections(c, workspace, 'cs', 'nope'))).rejects.toThrow(/'nope'/);
  });
});

describe('curate diff', () => {
  it('prints the counts, the metadata breakdown and rows with both reasons; --json writes it all', async () => {
    const out = path.join(await tempDir(), 'diff.json');
    const run = await cli.curate('-w', workspace, 'diff', 'cs', 'sd', '--limit', '2', '--json', out);
    expect(run.code).toBe(0);
    const d = JSON.parse(await readFile(out, 'utf8')) as SelectionDiff;
    expect(run.out).toContain(`kept by both: ${d.both}`);
    expect(run.out).toContain(`only by A (cs): ${d.onlyA.length}`);
    expect(run.out).toContain('ground truth from dataset metadata:');
    expect(run.out).toContain(`only in A (cs): first 2 of ${d.onlyA.length}`);
    expect(run.out).toContain(`      A: ${d.onlyA[0]!.reasonA}`);
    expect(run.out).toContain(`      B: ${d.onlyA[1]!.reasonB}`);
    expect(run.out).not.toContain(d.onlyA[2]!.key);
  });

  it('exits 2 naming an unknown selection', async () => {
    const run = await cli.curate('-w', workspace, 'diff', 'cs', 'nope');
    expect(run.code).toBe(2);
    expect(cli.stderr()).toMatch(/no selection 'nope'/);
  });

  // Last: it rewrites the catalog's captions and metadata.
  it('escapes captions and leaves ground truth out when the metadata has none', async () => {
    const d = await withCatalog((c) => diffSelections(c, workspace, 'cs', 'sd'));
    const target = d.onlyA[0]!;
    await withCatalog(async (c) => {
      await c.rows(`UPDATE samples SET metadata = '{"source": "web"}'`);
      await c.rows(`UPDATE samples SET caption = $caption WHERE id = $id`, {
        caption: 'red \u001b[31mtext\u202e',
        id: target.id,
      });
    });
    const bare = await withCatalog((c) => diffSelections(c, workspace, 'cs', 'sd'));
    expect(bare.truth).toEqual([]);
    for (const item of [...bare.onlyA, ...bare.onlyB]) expect(item.groundTruth).toEqual({});
    const run = await cli.curate('-w', workspace, 'diff', 'cs', 'sd', '--limit', '1');
    expect(run.code).toBe(0);
    expect(run.out).not.toContain('ground truth');
    expect(run.out).toContain('"red \\x1b[31mtext\\u202e"');
    expect(run.out).not.toContain('\u001b');
  });
});
