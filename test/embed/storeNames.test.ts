/**
 * Embedding shards readable without DuckDB (issue 21): `.npy` names say which source part they hold,
 * and `<shard>.keys.csv` / `.keys.parquet` beside them map every row to its sample. Workspaces embedded
 * under the old opaque names still load and resume.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdir, readFile, rename, rm, truncate } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { addDataset, Catalog } from '../../src/curate/api.js';
import { embedCatalog, embeddingsDir, legacyShardName, shardName } from '../../src/curate/embed.js';
import { loadEmbeddings } from '../../src/curate/embeddings.js';
import { ROW_MAP_COLUMNS } from '../../src/curate/rowMap.js';
import { ClipOnnxEncoder } from '../../src/embed/encoders/clipOnnx.js';
import { readNpy } from '../../src/embed/npy.js';
import { MINI, MINI_COUNT, tempDir } from '../helpers.js';
import { writeTinyClip } from '../support/tinyClip.js';

let model: string;
beforeAll(async () => {
  model = await writeTinyClip(path.join(await tempDir({ forFile: true }), 'tiny'));
});

async function embeddedWorkspace(): Promise<{ workspace: string; catalog: Catalog; dir: string }> {
  const workspace = await tempDir();
  const catalog = await Catalog.open(workspace);
  await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
  await embedCatalog(catalog, workspace, await ClipOnnxEncoder.load(model), { batchSize: 32 });
  return { workspace, catalog, dir: embeddingsDir(workspace) };
}

/** The catalog's row → key mapping of every shard, the reference the row maps must match. */
async function catalogMap(catalog: Catalog): Promise<Map<string, string[]>> {
  const rows = await catalog.rows<{ shard: string; row: number; key: string }>(
    `SELECT e.shard, e."row", s.key FROM embeddings e JOIN samples s ON s.id = e.sample_id ORDER BY e.shard, e."row"`,
  );
  const out = new Map<string, string[]>();
  for (const r of rows) {
    const keys = out.get(r.shard) ?? [];
    keys[r.row] = r.key;
    out.set(r.shard, keys);
  }
  return out;
}

type RowMapRow = Record<(typeof ROW_MAP_COLUMNS)[number], string>;

async function csvMap(file: string): Promise<RowMapRow[]> {
  return parseCsv(await readFile(file), { columns: true, record_delimiter: '\r\n' }) as RowMapRow[];
}

describe('shard names', () => {
  it('say which part they hold, are safe file names, and differ for parts with the same file name', () => {
    expect(shardName(1, '/data/shards/mini-000.tar')).toMatch(/^mini-000\.d1-[0-9a-f]{12}$/);
    expect(shardName(2, '/data/laion/part 7 (copy).parquet')).toMatch(/^part_7_copy_\.d2-[0-9a-f]{12}$/);
    expect(shardName(1, '/a/x.tar.gz')).toMatch(/^x\.d1-/);
    expect(shardName(1, '/')).toMatch(/^part\.d1-/);
    expect(shardName(3, `/d/${'é'.repeat(200)}.tar`)).toMatch(/^_\.d3-/);
    expect(shardName(1, '/a/mini-000.tar')).not.toBe(shardName(1, '/b/mini-000.tar'));
    expect(shardName(1, '/a/mini-000.tar')).not.toBe(shardName(2, '/a/mini-000.tar'));
    // The old name is the tail of the new one: d<dataset>-<hash of the path>.
    expect(shardName(4, '/a/mini-000.tar').endsWith(`.${legacyShardName(4, '/a/mini-000.tar')}`)).toBe(true);
  });
});

describe('row maps beside the embedding shards', () => {
  it('every .npy has a keys.csv and keys.parquet whose rows match the npy rows and the catalog', async () => {
    const { catalog, dir } = await embeddedWorkspace();
    const parts = await catalog.rows<{ dataset_id: number; path: string }>(
      'SELECT dataset_id, path FROM parts',
    );
    const expected = parts.map((p) => shardName(p.dataset_id, p.path)).sort();
    expect(expected.map((s) => s.split('.')[0])).toEqual(['mini-000', 'mini-001', 'mini-002']);
    const files = (await readdir(dir)).filter((f) => f !== 'store.json').sort();
    expect(files).toEqual(
      expected.flatMap((s) => [`${s}.image.npy`, `${s}.keys.csv`, `${s}.keys.parquet`, `${s}.text.npy`]),
    );

    const reference = await catalogMap(catalog);
    expect([...reference.keys()].sort()).toEqual(expected);
    let total = 0;
    for (const shard of expected) {
      const npy = await readNpy(path.join(dir, `${shard}.image.npy`));
      const csv = await csvMap(path.join(dir, `${shard}.keys.csv`));
      expect(Object.keys(csv[0]!)).toEqual([...ROW_MAP_COLUMNS]);
      expect(csv).toHaveLength(npy.rows);
      expect(csv.map((r) => Number(r.row))).toEqual([...Array(npy.rows).keys()]);
      expect(csv.map((r) => r.key)).toEqual(reference.get(shard));
      expect(new Set(csv.map((r) => path.basename(r.part)))).toEqual(new Set([`${shard.split('.')[0]}.tar`]));
      expect(csv.every((r) => r.member.startsWith(`${r.key}.`))).toBe(true);
      const parquet = await catalog.rows<{ row: number; key: string; caption: string }>(
        `SELECT "row", key, caption FROM read_parquet('${path.join(dir, `${shard}.keys.parquet`)}') ORDER BY "row"`,
      );
      expect(parquet.map((r) => [r.row, r.key, r.caption])).toEqual(
        csv.map((r) => [Number(r.row), r.key, r.caption]),
      );
      total += npy.rows;
    }
    expect(total).toBe(MINI_COUNT);
    catalog.close();
  });

  it.skipIf(spawnSync('/usr/bin/python3', ['-c', 'import numpy']).status !== 0)(
    'numpy and the csv module alone pair every npy row with its key',
    async () => {
      const { workspace, catalog, dir } = await embeddedWorkspace();
      const script = [
        'import csv, glob, json, os, sys',
        'import numpy as np',
        'out = {}',
        'for npy in sorted(glob.glob(os.path.join(sys.argv[1], "*.image.npy"))):',
        '    shard = os.path.basename(npy)[: -len(".image.npy")]',
        '    m = np.load(npy)',
        '    with open(os.path.join(sys.argv[1], shard + ".keys.csv"), encoding="utf-8", newline="") as f:',
        '        rows = list(csv.DictReader(f))',
        '    assert len(rows) == m.shape[0], (shard, len(rows), m.shape)',
        '    for r in rows:',
        '        out[r["key"]] = [float(x) for x in m[int(r["row"])][:4]]',
        'print(json.dumps(out))',
      ].join('\n');
      const fromPython = JSON.parse(
        execFileSync('/usr/bin/python3', ['-c', script, dir]).toString(),
      ) as Record<string, number[]>;
      // The same vectors the project's own loader gives each key through the catalog.
      const loaded = await loadEmbeddings(catalog, workspace);
      const keys = await catalog.rows<{ id: bigint; key: string }>('SELECT id, key FROM samples');
      const keyOf = new Map(keys.map((k) => [k.id, k.key]));
      expect(Object.keys(fromPython)).toHaveLength(loaded.n);
      for (let i = 0; i < loaded.n; i++) {
        const key = keyOf.get(loaded.ids[i]!)!;
        const row = Array.from(loaded.image!.subarray(i * loaded.dim, i * loaded.dim + 4));
        fromPython[key]!.forEach((v, j) => expect(v, key).toBeCloseTo(row[j]!, 6));
      }
      catalog.close();
    },
  );

  it('a workspace embedded under the old names still loads, resumes, and gets its row maps', async () => {
    const { workspace, catalog, dir } = await embeddedWorkspace();
    const before = await loadEmbeddings(catalog, workspace);
    // Make it an old workspace: files and catalog rows under d<id>-<hash>, no row maps.
    const parts = await catalog.rows<{ dataset_id: number; path: string }>(
      'SELECT dataset_id, path FROM parts ORDER BY path',
    );
    for (const p of parts) {
      const [now, old] = [shardName(p.dataset_id, p.path), legacyShardName(p.dataset_id, p.path)];
      for (const t of ['image', 'text'])
        await rename(path.join(dir, `${now}.${t}.npy`), path.join(dir, `${old}.${t}.npy`));
      for (const k of ['csv', 'parquet']) await rm(path.join(dir, `${now}.keys.${k}`));
      for (const table of ['embeddings', 'embedding_shards'])
        await catalog.connection.run(`UPDATE ${table} SET shard = $old WHERE shard = $now`, { old, now });
    }
    const loaded = await loadEmbeddings(catalog, workspace);
    expect(Array.from(loaded.ids)).toEqual(Array.from(before.ids));
    expect(loaded.image).toEqual(before.image);

    // Resuming recomputes nothing and writes the missing row maps under the old names.
    const encoder = await ClipOnnxEncoder.load(model);
    expect(await embedCatalog(catalog, workspace, encoder)).toMatchObject({
      partsEmbedded: 0,
      partsUnchanged: 3,
    });
    const legacy = parts.map((p) => legacyShardName(p.dataset_id, p.path));
    for (const old of legacy) {
      const csv = await csvMap(path.join(dir, `${old}.keys.csv`));
      expect(csv.map((r) => r.key)).toEqual((await catalogMap(catalog)).get(old));
    }

    // A damaged old-named shard is embedded again under the new name; the old one is forgotten.
    await truncate(path.join(dir, `${legacy[0]}.image.npy`), 100);
    expect(await embedCatalog(catalog, workspace, encoder)).toMatchObject({
      partsEmbedded: 1,
      partsUnchanged: 2,
    });
    const shards = await catalogMap(catalog);
    expect([...shards.keys()].sort()).toEqual(
      [shardName(parts[0]!.dataset_id, parts[0]!.path), legacy[1]!, legacy[2]!].sort(),
    );
    const [{ n }] = (await catalog.rows<{ n: number }>('SELECT count(*)::INTEGER AS n FROM embeddings')) as [
      { n: number },
    ];
    expect(n).toBe(MINI_COUNT);
    expect((await readdir(dir)).filter((f) => f.startsWith(`${legacy[0]}.`))).toEqual([]);
    const after = await loadEmbeddings(catalog, workspace);
    expect(Array.from(after.ids)).toEqual(Array.from(before.ids));
    expect(after.image).toEqual(before.image);
    catalog.close();
  });
});
