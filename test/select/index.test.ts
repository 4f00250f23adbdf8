import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { HnswIndex } from '../../src/select/index/hnsw.js';
import { topKInnerProduct } from '../../src/select/kernels/similarity.js';
import { tempDir } from '../helpers.js';
import { bruteTopK, unitRows } from '../support/vectors.js';

describe('blocked top-k kernel', () => {
  it('matches brute force, across several tiles, excluding each item itself', async () => {
    const m = unitRows(5000, 8, 1); // 5000 queries → base split into two tiles
    const top = await topKInnerProduct(m, m, 5, { excludeSelf: true });
    for (const i of [0, 1234, 4095, 4096, 4999]) {
      expect(Array.from(top.indices.subarray(i * 5, i * 5 + 5))).toEqual(bruteTopK(m, i, 5));
      for (let j = 1; j < 5; j++)
        expect(top.values[i * 5 + j]!).toBeLessThanOrEqual(top.values[i * 5 + j - 1]!);
    }
  });
});

describe('self kNN from the triangle of tiles', () => {
  it('returns, for every row, what the rectangular search over the whole square returns', async () => {
    const m = unitRows(4500, 16, 3); // three tiles of the symmetric search: diagonal and off-diagonal ones
    const copy = { ...m }; // another object: the rectangular path
    const triangle = await topKInnerProduct(m, m, 7, { excludeSelf: true });
    const square = await topKInnerProduct(m, copy, 7, { excludeSelf: true });
    expect(Array.from(triangle.indices)).toEqual(Array.from(square.indices));
    expect(Array.from(triangle.values)).toEqual(Array.from(square.values));
    for (let i = 0; i < m.rows; i++) expect(triangle.indices.subarray(i * 7, i * 7 + 7)).not.toContain(i);
  });

  it('breaks ties as the rectangular search does when rows repeat across tiles (lower index first)', async () => {
    const m = unitRows(4500, 16, 5);
    // Rows 0–299 appear again at 2100… and 4200…: equal values in different tiles, more ties than k.
    for (let i = 0; i < 300; i++)
      for (const at of [2100 + i, 4200 + i]) if (at < m.rows) m.data.copyWithin(at * 16, i * 16, i * 16 + 16);
    const triangle = await topKInnerProduct(m, m, 3, { excludeSelf: true });
    const square = await topKInnerProduct(m, { ...m }, 3, { excludeSelf: true });
    expect(Array.from(triangle.indices)).toEqual(Array.from(square.indices));
    expect(Array.from(triangle.values)).toEqual(Array.from(square.values));
    // Row 2100 (a copy of row 0) has rows 0 and 4200 at cosine 1, the lower index first.
    expect(Array.from(triangle.indices.subarray(2100 * 3, 2100 * 3 + 2))).toEqual([0, 4200]);
  });
});

describe('HNSW index', () => {
  it('finds the exact neighbours for nearly all items (recall@10 ≥ 0.95), persists and reloads', async () => {
    const m = unitRows(3000, 16, 2);
    const index = HnswIndex.build(m, { efSearch: 100 });
    const exact = await topKInnerProduct(m, m, 10, { excludeSelf: true });
    const graph = index.knnGraph(m, 10);
    let hits = 0;
    for (let i = 0; i < m.rows; i++) {
      const truth = new Set(exact.indices.subarray(i * 10, i * 10 + 10));
      for (const j of graph.neighbors.subarray(i * 10, i * 10 + 10)) if (truth.has(j)) hits += 1;
      expect(graph.neighbors.subarray(i * 10, i * 10 + 10)).not.toContain(i);
    }
    expect(hits / (m.rows * 10)).toBeGreaterThan(0.95);

    const file = path.join(await tempDir(), 'image.hnsw');
    await index.save(file);
    const loaded = await HnswIndex.load(file, 16, 100);
    const q = m.data.subarray(7 * 16, 8 * 16);
    expect(loaded.query(q, 5)).toEqual(index.query(q, 5));
    expect(loaded.query(q, 1)[0]).toMatchObject({ index: 7 });
    expect(loaded.query(q, 1)[0]!.similarity).toBeCloseTo(1, 5);
  });
});

describe('cell kNN (large-N graph)', () => {
  it('finds nearly all exact neighbours on clustered data (recall@10 ≥ 0.9)', async () => {
    const { cellKnn } = await import('../../src/select/kernels/cellKnn.js');
    const normal = gaussian(seededRandom(3));
    const d = 24;
    const centres = Array.from({ length: 30 }, () => Float32Array.from({ length: d }, normal));
    const n = 6000;
    const data = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += (data[i * d + k] = centres[i % 30]![k]! + 0.6 * normal()) ** 2;
      for (let k = 0; k < d; k++) data[i * d + k]! /= Math.sqrt(s);
    }
    const m = { rows: n, cols: d, data };
    const approx = await cellKnn(m, 10, { cells: 40, probe: 4 });
    const exact = await topKInnerProduct(m, m, 10, { excludeSelf: true });
    let hits = 0;
    for (let i = 0; i < n; i++) {
      const truth = new Set(exact.indices.subarray(i * 10, i * 10 + 10));
      for (const j of approx.indices.subarray(i * 10, i * 10 + 10)) if (truth.has(j)) hits += 1;
      expect(approx.indices.subarray(i * 10, i * 10 + 10)).not.toContain(i);
    }
    expect(hits / (n * 10)).toBeGreaterThan(0.9);
  });
});
