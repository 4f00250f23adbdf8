import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  chooseIndexKind,
  defaultShards,
  hnswlibBytes,
  MIN_SHARD_ROWS,
} from '../../src/curate/searchIndex.js';
import { WriteError } from '../../src/io/atomic.js';
import { HnswIndex } from '../../src/select/index/hnsw.js';
import { measureRecall } from '../../src/select/index/recall.js';
import {
  ShardedHnswBuilder,
  ShardedHnswIndex,
  shardFiles,
  shardRows,
} from '../../src/select/index/shardedHnsw.js';
import { rowsOf, type Matrix } from '../../src/select/kernels/similarity.js';
import { tempDir } from '../helpers.js';
import { bruteTopK, unitRows } from '../support/vectors.js';

/** Build over `m` fed in blocks of the given sizes, save as `file`. */
async function buildInBlocks(
  m: Matrix,
  shards: number,
  blockSizes: number[],
  file: string,
  onProgress?: (done: number, total: number) => void,
): Promise<ShardedHnswIndex> {
  const builder = new ShardedHnswBuilder(m.cols, m.rows, shards, { efSearch: 200 }, onProgress);
  try {
    let at = 0;
    for (const size of blockSizes) {
      await builder.add(rowsOf(m, at, at + size));
      at += size;
    }
    expect(at).toBe(m.rows);
    return await builder.save(file, 200);
  } finally {
    await builder.close();
  }
}

describe('which library indexes a pool', () => {
  it('hnswlib while its float32 index takes at most half the memory, else usearch, saying why', () => {
    // ~2.2 kB an item at d = 512, M = 16: 1M items ≈ 2.2 GB, 10M ≈ 22 GB.
    expect(hnswlibBytes(1_000_000, 512)).toBe(1_000_000 * (2048 + 128 + 12));
    expect(chooseIndexKind(1_000_000, 512, 16, 24e9)).toEqual({ kind: 'hnswlib' });
    const big = chooseIndexKind(10_000_000, 512, 16, 24e9);
    expect(big.kind).toBe('usearch');
    expect(big.why).toMatch(/10000000 items would need 21\.9 GB, more than half of this machine's 24\.0 GB/);
    expect(chooseIndexKind(10_000_000, 512, 16, 64e9)).toEqual({ kind: 'hnswlib' });
  });

  it('one shard per core with at least MIN_SHARD_ROWS items each', () => {
    expect(defaultShards(10)).toBe(1);
    expect(defaultShards(MIN_SHARD_ROWS * 2 - 1)).toBe(1);
    expect(defaultShards(MIN_SHARD_ROWS * 2)).toBe(Math.min(2, availableParallelism()));
    expect(defaultShards(1e9)).toBe(availableParallelism());
  });
});

describe('sharded hnswlib index', () => {
  it('names its shard files and splits items by their number modulo the shard count', () => {
    expect(shardFiles('/w/image.hnsw', 1)).toEqual(['/w/image.hnsw']);
    expect(shardFiles('/w/image.hnsw', 3)).toEqual(['/w/image.0.hnsw', '/w/image.1.hnsw', '/w/image.2.hnsw']);
    expect([0, 1, 2].map((s) => shardRows(10, 3, s))).toEqual([4, 3, 3]);
    expect([0, 1, 2, 3].map((s) => shardRows(2, 4, s))).toEqual([1, 1, 0, 0]);
  });

  it('built on worker threads from uneven blocks: each item finds itself first, recall@10 as exact search', async () => {
    const m = unitRows(3000, 24, 3);
    const dir = await tempDir();
    const file = path.join(dir, 'image.hnsw');
    const seen: number[] = [];
    const index = await buildInBlocks(m, 3, [700, 1, 1299, 1000], file, (done) => seen.push(done));
    expect(index.shards).toBe(3);
    expect(index.size).toBe(3000);
    expect(readdirSync(dir).sort()).toEqual(['image.0.hnsw', 'image.1.hnsw', 'image.2.hnsw']);
    // Progress counts items of all shards and ends at the total.
    expect(seen.at(-1)).toBe(3000);
    expect(seen.every((d, i) => i === 0 || d >= seen[i - 1]!)).toBe(true);
    // An item's nearest neighbour is itself: the shard → item numbering is right for every shard.
    for (const i of [0, 1, 2, 3, 1500, 2998, 2999]) {
      const [best] = index.query(m.data.subarray(i * 24, (i + 1) * 24), 1);
      expect(best).toMatchObject({ index: i });
      expect(best!.similarity).toBeCloseTo(1, 5);
    }
    // The merged answer is the exact top 10 for nearly every query (three graphs searched at ef 200).
    const report = await measureRecall(index, m, { k: 10, queries: 100, seed: 1 });
    expect(report.recall).toBeGreaterThanOrEqual(0.99);
    expect(report.efSearch).toBe(200);
    const q = 77;
    expect(
      index
        .query(m.data.subarray(q * 24, (q + 1) * 24), 11)
        .slice(1)
        .map((h) => h.index)
        .sort(),
    ).toEqual(bruteTopK(m, q, 10).sort());
    // Batched queries and the kNN graph give what single queries give.
    const batch = index.queryBatch(rowsOf(m, 10, 13), 5);
    for (let r = 0; r < 3; r++)
      expect(Array.from(batch.indices.subarray(r * 5, r * 5 + 5))).toEqual(
        index.query(m.data.subarray((10 + r) * 24, (11 + r) * 24), 5).map((h) => h.index),
      );
    const graph = index.knnGraph(rowsOf(m, 0, 3000), 4);
    expect(Array.from(graph.neighbors.subarray(q * 4, q * 4 + 4))).not.toContain(q);

    // Reloaded at another breadth: the same items and answers.
    const loaded = await ShardedHnswIndex.load(shardFiles(file, 3), 24, 200);
    expect(loaded.size).toBe(3000);
    expect(loaded.queryBatch(rowsOf(m, 10, 13), 5)).toEqual(batch);
    loaded.setEfSearch(50);
    expect(loaded.efSearch).toBe(50);
  });

  it('is byte-reproducible whatever the blocks, and one shard is the in-process hnswlib build', async () => {
    const m = unitRows(1200, 16, 8);
    const dir = await tempDir();
    await buildInBlocks(m, 2, [1200], path.join(dir, 'a.hnsw'));
    await buildInBlocks(m, 2, [5, 600, 595], path.join(dir, 'b.hnsw'));
    for (const s of [0, 1]) {
      const a = readFileSync(path.join(dir, `a.${s}.hnsw`));
      expect(a.equals(readFileSync(path.join(dir, `b.${s}.hnsw`)))).toBe(true);
    }
    // Shard 1 of 2 holds the odd items, in order: hnswlib over exactly those rows in this thread.
    const odd: Matrix = { rows: 600, cols: 16, data: new Float32Array(600 * 16) };
    for (let j = 0; j < 600; j++) odd.data.set(m.data.subarray((2 * j + 1) * 16, (2 * j + 2) * 16), j * 16);
    await HnswIndex.build(odd, { efSearch: 200 }).save(path.join(dir, 'odd.hnsw'));
    expect(readFileSync(path.join(dir, 'a.1.hnsw')).equals(readFileSync(path.join(dir, 'odd.hnsw')))).toBe(
      true,
    );
    // One shard: the single file, byte for byte hnswlib's one-thread build of all rows.
    await buildInBlocks(m, 1, [400, 800], path.join(dir, 'one.hnsw'));
    await HnswIndex.build(m, { efSearch: 200 }).save(path.join(dir, 'inproc.hnsw'));
    expect(readFileSync(path.join(dir, 'one.hnsw')).equals(readFileSync(path.join(dir, 'inproc.hnsw')))).toBe(
      true,
    );
  });

  it('a shard that cannot be written is a WriteError naming its file; the workers stop', async () => {
    const m = unitRows(300, 8, 2);
    const file = path.join(await tempDir(), 'missing-folder', 'image.hnsw');
    const err = await buildInBlocks(m, 2, [300], file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect((err as Error).message).toMatch(/^cannot write \S*missing-folder\/image\.[01]\.hnsw: /);
    expect((err as Error).message.match(/cannot write/g)).toHaveLength(1);
    // More rows than the builder was sized for is refused before anything is sent.
    const builder = new ShardedHnswBuilder(8, 10, 2);
    try {
      await expect(builder.add(rowsOf(m, 0, 11))).rejects.toThrow(/more rows than the 10/);
    } finally {
      await builder.close();
    }
  });
});
