import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addDataset, Catalog, embedCatalog } from '../../src/curate/api.js';
import { loadEmbeddings } from '../../src/curate/embeddings.js';
import { WorkspaceIndex } from '../../src/curate/searchIndex.js';
import { ClipOnnxEncoder } from '../../src/embed/encoders/clipOnnx.js';
import { readInt64Npy } from '../../src/embed/npy.js';
import { HnswIndex } from '../../src/select/index/hnsw.js';
import { topKInnerProduct } from '../../src/select/kernels/similarity.js';
import { MINI, MINI_COUNT, tempDir } from '../helpers.js';
import { writeTinyClip } from '../support/tinyClip.js';

describe('workspace embeddings and index', () => {
  it('loads embeddings in catalog order with labels, builds, saves, reloads and searches the index', async () => {
    const workspace = await tempDir();
    const model = await writeTinyClip(path.join(workspace, 'model'));
    const catalog = await Catalog.open(workspace);
    await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
    const encoder = await ClipOnnxEncoder.load(model);
    await embedCatalog(catalog, workspace, encoder);

    const e = await loadEmbeddings(catalog, workspace, { labelField: 'label_index' });
    expect(e.n).toBe(MINI_COUNT);
    expect(Array.from(e.ids)).toEqual([...e.ids].sort((a, b) => (a < b ? -1 : 1)));
    const [first] = await catalog.rows<{ label: number }>(
      `SELECT (metadata->>'label_index')::INTEGER AS label FROM samples ORDER BY id LIMIT 1`,
    );
    expect(e.labels![0]).toBe(first!.label);

    const built = await WorkspaceIndex.build(catalog, workspace, 'image', { embeddings: e, efSearch: 200 });
    // The build measures recall@10 against exact search on 200 sampled items.
    expect(built.recall).toMatchObject({ k: 10, queries: Math.min(200, MINI_COUNT), efSearch: 200 });
    expect(built.recall!.recall).toBeGreaterThanOrEqual(0.95);
    // A pool this small is one hnswlib shard: `image.hnsw`.
    expect(readdirSync(WorkspaceIndex.dir(workspace)).sort()).toEqual([
      'image.hnsw',
      'image.ids.npy',
      'image.json',
    ]);
    // The ids of the index keys, in key order, as an int64 .npy (catalog order here).
    const idsFile = path.join(WorkspaceIndex.dir(workspace), 'image.ids.npy');
    expect(Array.from(await readInt64Npy(idsFile))).toEqual(Array.from(e.ids));
    const index = await WorkspaceIndex.load(workspace, 'image');
    expect(index.index.kind).toBe('hnswlib');
    expect(index.describe()).toBe('hnswlib');
    expect(index.recall).toEqual(built.recall);
    // An item's nearest neighbour is itself.
    const hits = await index.nearest(catalog, e.image!.subarray(5 * e.dim, 6 * e.dim), 3);
    expect(hits[0]).toMatchObject({ id: e.ids[5] });
    expect(hits[0]!.similarity).toBeCloseTo(1, 4);

    // Free-text search agrees with an exact search over the same embeddings.
    const query = await encoder.embedTexts(['a small red truck']);
    const exact = await topKInnerProduct(
      { rows: 1, cols: e.dim, data: query },
      { rows: e.n, cols: e.dim, data: e.image! },
      10,
    );
    const found = await index.searchText(catalog, encoder, 'a small red truck', 10);
    const overlap = found.filter((h) => Array.from(exact.indices).some((i) => e.ids[i] === h.id)).length;
    expect(overlap).toBeGreaterThanOrEqual(9);
    expect(found[0]!.caption.length).toBeGreaterThan(0);

    // A sample's neighbours: itself left out, the rest as exact search ranks them.
    const self = await topKInnerProduct(
      { rows: 1, cols: e.dim, data: e.image!.slice(5 * e.dim, 6 * e.dim) },
      { rows: e.n, cols: e.dim, data: e.image! },
      4,
    );
    const neighbours = await index.neighboursOf(catalog, Number(e.ids[5]), 3);
    expect(neighbours.map((h) => h.id)).not.toContain(e.ids[5]);
    const exactIds = Array.from(self.indices, (i) => e.ids[i]).filter((id) => id !== e.ids[5]);
    expect(neighbours.filter((h) => exactIds.includes(h.id)).length).toBeGreaterThanOrEqual(2);

    // An index an older version wrote (hnswlib, `image.hnsw`, a meta without `kind`) still loads.
    const dir = WorkspaceIndex.dir(workspace);
    rmSync(path.join(dir, 'image.hnsw'));
    const legacy = HnswIndex.build({ rows: e.n, cols: e.dim, data: e.image! }, { efSearch: 200 });
    await legacy.save(path.join(dir, 'image.hnsw'));
    const meta = JSON.parse(readFileSync(path.join(dir, 'image.json'), 'utf8')) as Record<string, unknown>;
    const { kind: _kind, precision: _precision, recall: _recall, idsFile: _ids, ...older } = meta;
    older.bytes = statSync(path.join(dir, 'image.hnsw')).size;
    older.ids = Array.from(e.ids, String); // older versions listed the ids in the meta file
    writeFileSync(path.join(dir, 'image.json'), JSON.stringify(older));
    rmSync(idsFile);
    const old = await WorkspaceIndex.load(workspace, 'image');
    expect(old.index.kind).toBe('hnswlib');
    expect(old.recall).toBeUndefined();
    const oldHits = await old.nearest(catalog, e.image!.subarray(5 * e.dim, 6 * e.dim), 3);
    expect(oldHits[0]).toMatchObject({ id: e.ids[5] });
    // Rebuilding as usearch (asked for) replaces it and removes the stale file. Without an efSearch the
    // breadth doubles towards the target recall (unreachable here, so up to the cap) and is kept.
    const raised = await WorkspaceIndex.build(catalog, workspace, 'image', {
      embeddings: e,
      targetRecall: 1.01,
      kind: 'usearch',
    });
    expect(readdirSync(dir).sort()).toEqual(['image.ids.npy', 'image.json', 'image.usearch']);
    expect(raised.describe()).toBe('usearch, f16');
    expect(raised.recall!.efSearch).toBe(1024);
    expect(raised.index.efSearch).toBe(1024);
    expect((await WorkspaceIndex.load(workspace, 'image')).index.efSearch).toBe(1024);
    // Asking for float16 storage asks for usearch; hnswlib with it is refused, not silently float32.
    const f16 = await WorkspaceIndex.build(catalog, workspace, 'image', { embeddings: e, precision: 'f16' });
    expect(f16.describe()).toBe('usearch, f16');
    await expect(
      WorkspaceIndex.build(catalog, workspace, 'image', { embeddings: e, precision: 'f16', kind: 'hnswlib' }),
    ).rejects.toThrow(/hnswlib stores float32 vectors/);
    // The same for the sharded hnswlib index (its breadth is set in place, not by reloading).
    const raisedHnsw = await WorkspaceIndex.build(catalog, workspace, 'image', {
      embeddings: e,
      targetRecall: 1.01,
      shards: 2,
    });
    expect(readdirSync(dir).sort()).toEqual(['image.0.hnsw', 'image.1.hnsw', 'image.ids.npy', 'image.json']);
    expect(raisedHnsw.recall!.efSearch).toBe(1024);
    expect((await WorkspaceIndex.load(workspace, 'image')).index.efSearch).toBe(1024);
    await WorkspaceIndex.build(catalog, workspace, 'image', { embeddings: e, recallQueries: 0 });
    expect((await WorkspaceIndex.load(workspace, 'image')).recall).toBeUndefined();
    // A cut ids file is named as damaged.
    writeFileSync(idsFile, readFileSync(idsFile).subarray(0, 128 + 8 * 3));
    await expect(WorkspaceIndex.load(workspace, 'image')).rejects.toThrow(
      /image\.ids\.npy is damaged .*expected .* for \d+ int64.*run `curate index` to rebuild it/,
    );
    catalog.close();
  }, 180_000); // embeds the mini dataset and builds three indexes
});

describe('index built block by block', () => {
  it('reads the pool a few parts at a time and gives the index, ids and recall of the in-memory build', async () => {
    const workspace = await tempDir();
    const model = await writeTinyClip(path.join(workspace, 'model'));
    const catalog = await Catalog.open(workspace);
    await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
    await embedCatalog(catalog, workspace, await ClipOnnxEncoder.load(model));
    const e = await loadEmbeddings(catalog, workspace);
    const parts = await catalog.rows<{ part: string; n: bigint }>(
      'SELECT part, count(*) AS n FROM samples GROUP BY part ORDER BY part',
    );
    expect(parts.length).toBe(3);

    const file = path.join(WorkspaceIndex.dir(workspace), 'image.hnsw');
    const options = { efSearch: 50, recallQueries: 40 };
    const whole = await WorkspaceIndex.build(catalog, workspace, 'image', { ...options, embeddings: e });
    const wholeBytes = readFileSync(file);
    const seen: number[] = [];
    // One part per block: three blocks, each added as it is read.
    const blocks = await WorkspaceIndex.build(catalog, workspace, 'image', {
      ...options,
      blockRows: 1,
      onProgress: (done) => seen.push(done),
    });
    expect(Array.from(blocks.ids)).toEqual(Array.from(e.ids));
    // Progress reaches every block's end (the shard reports as it goes, so possibly more often).
    const ends = parts.map((_, i) => parts.slice(0, i + 1).reduce((n, p) => n + Number(p.n), 0));
    for (const end of ends) expect(seen).toContain(end);
    expect(blocks.recall).toEqual(whole.recall);
    // The blocks give the one-block build's index, byte for byte (each shard adds its items in order).
    expect(readFileSync(file).equals(wholeBytes)).toBe(true);
    // So do three shards, whichever blocks feed them.
    await WorkspaceIndex.build(catalog, workspace, 'image', { ...options, shards: 3, embeddings: e });
    const shardFile = (s: number) => path.join(WorkspaceIndex.dir(workspace), `image.${s}.hnsw`);
    const shardBytes = [0, 1, 2].map((s) => readFileSync(shardFile(s)));
    const three = await WorkspaceIndex.build(catalog, workspace, 'image', {
      ...options,
      shards: 3,
      blockRows: 1,
    });
    expect(three.describe()).toBe('hnswlib, 3 shards');
    for (const s of [0, 1, 2]) expect(readFileSync(shardFile(s)).equals(shardBytes[s]!)).toBe(true);
    const item = e.image!.subarray(100 * e.dim, 101 * e.dim);
    expect((await three.nearest(catalog, item, 1))[0]!.id).toBe(e.ids[100]);
    // A damaged shard is named, with the command that rebuilds it.
    writeFileSync(shardFile(1), shardBytes[1]!.subarray(0, 1000));
    await expect(WorkspaceIndex.load(workspace, 'image')).rejects.toThrow(
      /image\.1\.hnsw is damaged .*run `curate index` to rebuild it/,
    );
    await WorkspaceIndex.build(catalog, workspace, 'image', { ...options, blockRows: 1 });
    expect(existsSync(shardFile(1))).toBe(false);
    const query = e.image!.subarray(7 * e.dim, 8 * e.dim);
    expect((await blocks.nearest(catalog, query, 5)).map((h) => h.id)).toEqual(
      (await whole.nearest(catalog, query, 5)).map((h) => h.id),
    );
  });
});
