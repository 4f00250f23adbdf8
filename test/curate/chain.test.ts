/**
 * Filters chained before a selector, end to end on real files: a copy of the mini CIFAR folder dataset
 * with planted byte-identical copies under new keys and captions (like the held-out shards' duplicates),
 * read with `curate init` (which reports them), embedded with the tiny CLIP, de-duplicated with
 * exact-dedup, and a selector run `--from` the result.
 */
import { createHash } from 'node:crypto';
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/curate/catalog.js';
import { selectSubset } from '../../src/curate/pipeline.js';
import { loadPoolIds, loadSelection } from '../../src/curate/selections.js';
import { seededRandom } from '../../src/compute/random.js';
import { captureCli } from '../support/cli.js';
import { writeTinyClip } from '../support/tinyClip.js';
import { MINI, MINI_COUNT, tempDir } from '../helpers.js';

const { curate } = captureCli();

interface Planted {
  folder: string;
  /** Number of copies planted and of groups (original + its copies). */
  copies: number;
  groups: number;
}

/**
 * The mini folder dataset plus copies of some images: 10 originals, 6 copied once and 4 twice (in
 * another class folder, under a new name and caption, with `dup_of` naming the original).
 */
async function plantDuplicates(): Promise<Planted> {
  const folder = path.join(await tempDir({ forFile: true }), 'folder');
  await cp(path.join(MINI, 'folder'), folder, { recursive: true });
  const classes = (await readdir(folder)).sort();
  const rnd = seededRandom(5);
  let copies = 0;
  for (let g = 0; g < 10; g++) {
    const cls = classes[g]!;
    const original = (await readdir(path.join(folder, cls))).filter((f) => f.endsWith('.jpg')).sort()[g]!;
    for (let c = 0; c < (g < 6 ? 1 : 2); c++) {
      const target = classes[Math.floor(rnd() * classes.length)]!;
      const name = `zcopy-${g}-${c}`;
      await cp(path.join(folder, cls, original), path.join(folder, target, `${name}.jpg`));
      await writeFile(
        path.join(folder, target, `${name}.json`),
        JSON.stringify({ caption: `reposted picture number ${g}${c}`, dup_of: original.replace('.jpg', '') }),
      );
      copies++;
    }
  }
  return { folder, copies, groups: 10 };
}

/** Content hash of every catalogued sample, by sample id (read with SQL, not with the filter's code). */
async function hashesById(ws: string): Promise<Map<number, string>> {
  const catalog = await Catalog.open(ws, { readOnly: true });
  try {
    const rows = await catalog.rows<{ id: bigint; h: string }>('SELECT id, content_hash AS h FROM samples');
    return new Map(rows.map((r) => [Number(r.id), r.h]));
  } finally {
    catalog.close();
  }
}

describe('filter → selector chain', () => {
  let planted: Planted;
  let ws: string;
  beforeAll(async () => {
    planted = await plantDuplicates();
    ws = await tempDir({ forFile: true });
  });

  it('init hashes every image and reports the byte-identical copies', async () => {
    const { code, out } = await curate('-w', ws, 'init', planted.folder);
    expect(code).toBe(0);
    expect(out).toContain(
      `${planted.copies} images are byte-identical copies of others (${planted.groups} groups)`,
    );
    // The stored hashes are the SHA-256 of the files.
    const hashes = await hashesById(ws);
    expect(hashes.size).toBe(MINI_COUNT + planted.copies);
    const copy = (await readdir(planted.folder, { recursive: true })).find((f) =>
      f.endsWith('zcopy-0-0.jpg'),
    )!;
    const bytes = await readFile(path.join(planted.folder, copy));
    expect([...hashes.values()]).toContain(createHash('sha256').update(bytes).digest('hex'));
    const distinct = new Set(hashes.values());
    expect(hashes.size - distinct.size).toBe(planted.copies);
  }, 120_000);

  it('exact-dedup keeps one per group; clip-score --from picks only within it (CLI)', async () => {
    const model = await writeTinyClip(path.join(ws, 'tiny'));
    expect((await curate('-w', ws, 'embed', '--encoder', model)).code).toBe(0);

    const dedup = await curate('-w', ws, 'select', '--method', 'exact-dedup', '--name', 'd');
    expect(dedup.code).toBe(0);
    expect(dedup.out).toContain(`d: exact-dedup kept ${MINI_COUNT} of ${MINI_COUNT + planted.copies}`);
    const d = await loadSelection(ws, 'd');
    const hashes = await hashesById(ws);
    const keptHashes = d.sampleIds.map((id) => hashes.get(id)!);
    expect(new Set(keptHashes).size).toBe(keptHashes.length); // no image twice
    expect(new Set(keptHashes)).toEqual(new Set(hashes.values())); // every image once
    // keep=first: the kept member of every group is its first in catalog (id) order.
    const firstOfGroup = new Map<string, number>();
    for (const [id, h] of [...hashes].sort((a, b) => a[0] - b[0]))
      if (!firstOfGroup.has(h)) firstOfGroup.set(h, id);
    expect(new Set(d.sampleIds)).toEqual(new Set(firstOfGroup.values()));

    const chained = await curate(
      '-w',
      ws,
      'select',
      '--method',
      'clip-score',
      '--from',
      'd',
      '--budget',
      '50%',
    );
    expect(chained.code).toBe(0);
    expect(chained.out).toContain(`clip-score-50pct: clip-score kept ${MINI_COUNT / 2} of ${MINI_COUNT}`);
    expect(chained.out).toContain(`from: the ${MINI_COUNT} picks of d (exact-dedup)`);
    const c = await loadSelection(ws, 'clip-score-50pct');
    const inD = new Set(d.sampleIds);
    expect(c.sampleIds.every((id) => inD.has(id))).toBe(true);
    const poolIds = await loadPoolIds(ws, c);
    expect(poolIds.length).toBe(MINI_COUNT);
    expect(new Set(poolIds)).toEqual(inD);
    expect(c.provenance.from).toEqual({
      selection: 'd',
      method: 'exact-dedup',
      pool: MINI_COUNT,
      missing: 0,
    });
  }, 240_000);

  it('chains two filters through the API and records the chain', async () => {
    const catalog = await Catalog.open(ws);
    try {
      const short = await selectSubset(catalog, ws, {
        method: 'caption-filter',
        params: { maxWords: 4 },
        from: 'd',
        name: 'd-short',
      });
      expect(short.budget.requested).toBe('100%');
      const captions = new Map(
        (await catalog.rows<{ id: bigint; caption: string }>('SELECT id, caption FROM samples')).map((r) => [
          Number(r.id),
          r.caption,
        ]),
      );
      const d = await loadSelection(ws, 'd');
      const expected = d.sampleIds.filter((id) => captions.get(id)!.trim().split(/\s+/).length <= 4);
      expect(new Set(short.sampleIds)).toEqual(new Set(expected));
      expect(expected.length).toBeGreaterThan(0);
      expect(expected.length).toBeLessThan(d.sampleIds.length);
      expect(short.provenance.from?.selection).toBe('d');
      // A budget below what a filter keeps is refused, naming the counts.
      await expect(
        selectSubset(catalog, ws, { method: 'caption-filter', params: { maxWords: 4 }, budget: '5' }),
      ).rejects.toThrow(/more than the budget of 5/);
      // A selector without a budget is refused, as is an unknown earlier selection.
      await expect(selectSubset(catalog, ws, { method: 'clip-score' })).rejects.toThrow(/needs a budget/);
      await expect(
        selectSubset(catalog, ws, { method: 'random', budget: '5', from: 'nope' }),
      ).rejects.toThrow(/no selection 'nope'/);
    } finally {
      catalog.close();
    }
  }, 120_000);

  it('the CLI refuses --from with an unknown selection (exit 2)', async () => {
    const r = await curate('-w', ws, 'select', '--method', 'random', '--budget', '5', '--from', 'missing');
    expect(r.code).toBe(2);
  });
});
