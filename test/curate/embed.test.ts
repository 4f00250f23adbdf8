import { readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { addDataset, Catalog } from '../../src/curate/api.js';
import { embedCatalog, embeddingsDir, shardName } from '../../src/curate/embed.js';
import { ClipOnnxEncoder } from '../../src/embed/encoders/clipOnnx.js';
import { readNpy } from '../../src/embed/npy.js';
import { EmbeddingStore } from '../../src/embed/store.js';
import { MINI, MINI_COUNT, tempDir } from '../helpers.js';
import { writeTinyClip } from '../support/tinyClip.js';

let model: string;
let otherModel: string;
beforeAll(async () => {
  const dir = await tempDir({ forFile: true });
  model = await writeTinyClip(path.join(dir, 'tiny'));
  otherModel = await writeTinyClip(path.join(dir, 'other'), { seed: 99 });
});

async function workspaceWithShards(): Promise<{ workspace: string; catalog: Catalog }> {
  const workspace = await tempDir();
  const catalog = await Catalog.open(workspace);
  await addDataset(catalog, 'wds/mini-{000..002}.tar', { cwd: MINI });
  return { workspace, catalog };
}

async function storeBytes(workspace: string): Promise<Map<string, Buffer>> {
  const store = await EmbeddingStore.read(embeddingsDir(workspace));
  const out = new Map<string, Buffer>();
  const { readdir } = await import('node:fs/promises');
  for (const f of (await readdir(store.dir)).filter((f) => f.endsWith('.npy')).sort()) {
    out.set(f, await readFile(path.join(store.dir, f)));
  }
  return out;
}

describe('embed step', () => {
  it('writes one image and one text .npy per part; each row is the encoder applied to that sample', async () => {
    const { workspace, catalog } = await workspaceWithShards();
    const encoder = await ClipOnnxEncoder.load(model);
    const report = await embedCatalog(catalog, workspace, encoder, { batchSize: 16 });
    expect(report).toMatchObject({ partsEmbedded: 3, samplesEmbedded: MINI_COUNT, undecodable: 0 });

    const rows = await catalog.rows<{
      key: string;
      caption: string;
      file: string;
      shard: string;
      row: number;
    }>(
      `SELECT s.key, s.caption, s.file, e.shard, e."row" FROM embeddings e JOIN samples s ON s.id = e.sample_id
       ORDER BY s.id`,
    );
    expect(rows).toHaveLength(MINI_COUNT);
    const store = await EmbeddingStore.read(embeddingsDir(workspace));
    const image = await store.readShard(rows[100]!.shard, 'image');
    const text = await store.readShard(rows[100]!.shard, 'text');
    expect([image.rows, image.cols, text.rows]).toEqual([80, 64, 80]);

    // Check a few rows against the encoder run directly on the sample's own bytes and caption.
    for (const r of [rows[0]!, rows[100]!, rows[239]!]) {
      const label = JSON.parse(
        await readFile(path.join(MINI, 'manifest.jsonl'), 'utf8').then((t) =>
          t.split('\n').find((l) => l.includes(`"${r.key}"`))!,
        ),
      ) as { image_path: string };
      const bytes = await readFile(path.join(MINI, label.image_path));
      const direct = await encoder.embedPrepared([await encoder.prepareImage(bytes)]);
      const stored = (await store.readShard(r.shard, 'image')).data.subarray(r.row * 64, r.row * 64 + 64);
      for (let i = 0; i < 64; i++) expect(stored[i]).toBeCloseTo(direct[i]!, 5);
      const directText = await encoder.embedTexts([r.caption]);
      const storedText = (await store.readShard(r.shard, 'text')).data.subarray(r.row * 64, r.row * 64 + 64);
      for (let i = 0; i < 64; i++) expect(storedText[i]).toBeCloseTo(directText[i]!, 5);
    }
    catalog.close();
  });

  it('resumes after an interruption: finished shards are not recomputed, and the result is byte-identical', async () => {
    const encoder = await ClipOnnxEncoder.load(model);
    const whole = await workspaceWithShards();
    await embedCatalog(whole.catalog, whole.workspace, encoder);
    const reference = await storeBytes(whole.workspace);

    const { workspace, catalog } = await workspaceWithShards();
    const abort = new AbortController();
    await expect(
      embedCatalog(catalog, workspace, encoder, {
        signal: abort.signal,
        onProgress: (p) => p.partsDone === 1 && p.samplesDone > 90 && abort.abort(new Error('killed')),
      }),
    ).rejects.toThrow('killed');
    const resumed = await embedCatalog(catalog, workspace, encoder);
    expect(resumed).toMatchObject({ partsEmbedded: 2, partsUnchanged: 1 });
    expect(await storeBytes(workspace)).toEqual(reference);

    // A shard file cut short (a crash mid-write on a filesystem without atomic rename) is detected and redone.
    const [firstPart] = await catalog.rows<{ dataset_id: number; path: string }>(
      'SELECT dataset_id, path FROM parts ORDER BY path',
    );
    const file = path.join(
      embeddingsDir(workspace),
      `${shardName(firstPart!.dataset_id, firstPart!.path)}.image.npy`,
    );
    await truncate(file, 1000);
    const repaired = await embedCatalog(catalog, workspace, encoder);
    expect(repaired).toMatchObject({ partsEmbedded: 1, partsUnchanged: 2 });
    expect(await storeBytes(workspace)).toEqual(reference);
    catalog.close();
    whole.catalog.close();
  });

  it('refuses to mix two encoders in one workspace, naming both', async () => {
    const { workspace, catalog } = await workspaceWithShards();
    await embedCatalog(catalog, workspace, await ClipOnnxEncoder.load(model));
    const other = await ClipOnnxEncoder.load(otherModel);
    await expect(embedCatalog(catalog, workspace, other)).rejects.toThrow(
      /holds embeddings from clip-onnx:tiny .* refusing to mix in clip-onnx:other/,
    );
    catalog.close();
  });

  it('an image that passes the header check but cannot be decoded becomes an issue, not a crash', async () => {
    const dir = await tempDir();
    const good = await readFile(path.join(MINI, 'folder/frog/train000001.jpg'));
    // A valid JPEG header and end marker around garbage scan data.
    const sos = good.indexOf(Buffer.from([0xff, 0xda]));
    const broken = Buffer.concat([
      good.subarray(0, sos),
      Buffer.from([0xff, 0xda, 0x00, 0x02]),
      Buffer.alloc(200, 0xff),
      Buffer.from([0xff, 0xd9]),
    ]);
    await writeFile(path.join(dir, 'good.jpg'), good);
    await writeFile(path.join(dir, 'good.txt'), 'a frog');
    await writeFile(path.join(dir, 'bad.jpg'), broken);
    await writeFile(path.join(dir, 'bad.txt'), 'garbage inside');
    const workspace = await tempDir();
    const catalog = await Catalog.open(workspace);
    await addDataset(catalog, dir);
    const report = await embedCatalog(catalog, workspace, await ClipOnnxEncoder.load(model));
    expect(report).toMatchObject({ samplesEmbedded: 1, undecodable: 1 });
    const [issue] = await catalog.rows<{ key: string; kind: string }>(
      `SELECT key, kind FROM issues WHERE kind = 'undecodable-image'`,
    );
    expect(issue).toEqual({ key: 'bad', kind: 'undecodable-image' });
    const npy = await readNpy(path.join(embeddingsDir(workspace), `${shardName(1, dir)}.image.npy`));
    expect(npy.rows).toBe(1);
    catalog.close();
  });
});
