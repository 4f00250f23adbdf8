/**
 * Approximate kNN graph for large N, IVF-style: k-means cells (fitted on a sample, every point assigned
 * on the MatMul kernel), then the exact blocked top-k kernel between each cell's members and the members
 * of its `probe` nearest cells. Work ≈ N · probe · (N / cells) · d instead of N² · d.
 */
import { kmeans } from '../../compute/kmeans.js';
import { dense } from '../../compute/linalg.js';
import { groupByLabel } from '../stratify.js';
import { gather, topKInnerProduct, type Matrix, type TopK } from './similarity.js';

export interface CellKnnOptions {
  /** Number of cells (default ≈ √N). */
  cells?: number;
  /** Cells searched per cell, itself included. */
  probe?: number;
  /** Points the cell centroids are fitted on. */
  fitSample?: number;
  seed?: number;
  signal?: AbortSignal;
}

export async function cellKnn(x: Matrix, k: number, o: CellKnnOptions = {}): Promise<TopK> {
  const n = x.rows;
  const cells = Math.max(1, Math.min(n, o.cells ?? Math.round(Math.sqrt(n))));
  const probe = Math.min(cells, o.probe ?? 3);
  const seed = o.seed ?? 0;
  // Fit the cells on an evenly spaced sample, then assign every point to its nearest centroid.
  const sampleSize = Math.min(n, Math.max(o.fitSample ?? 50_000, cells * 20));
  const stride = n / sampleSize;
  const sample = gather(
    x,
    Int32Array.from({ length: sampleSize }, (_, i) => Math.floor(i * stride)),
  );
  const fit = dense(sample.rows, sample.cols, sample.data as Float32Array<ArrayBuffer>);
  const { centroids } = await kmeans(fit, cells, { seed, iterations: 8 });
  const centres: Matrix = { rows: cells, cols: x.cols, data: centroids.data };
  const nearestCell = await topKInnerProduct(x, centres, 1, o.signal ? { signal: o.signal } : {});
  const members = groupByLabel(Int32Array.from(nearestCell.indices));
  const cellNeighbours = await topKInnerProduct(centres, centres, probe);

  const indices = new Int32Array(n * k).fill(-1);
  const values = new Float32Array(n * k).fill(-Infinity);
  for (let c = 0; c < cells; c++) {
    o.signal?.throwIfAborted();
    const queries = members[c] ?? [];
    if (queries.length === 0) continue;
    const candidateIds: number[] = [];
    for (let p = 0; p < probe; p++) {
      const cell = cellNeighbours.indices[c * probe + p]!;
      if (cell >= 0) candidateIds.push(...(members[cell] ?? []));
    }
    const q = gather(x, queries);
    const base = gather(x, candidateIds);
    const kk = Math.min(k + 1, base.rows);
    const top = await topKInnerProduct(q, base, kk);
    queries.forEach((i, t) => {
      let slot = 0;
      for (let j = 0; j < kk && slot < k; j++) {
        const local = top.indices[t * kk + j]!;
        if (local < 0) break;
        const global = candidateIds[local]!;
        if (global === i) continue;
        indices[i * k + slot] = global;
        values[i * k + slot] = top.values[t * kk + j]!;
        slot += 1;
      }
    });
  }
  return { k, indices, values };
}
