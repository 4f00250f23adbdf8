/**
 * Multi-scale fuzzy kNN graph (FAST, fast.md §3.1, UMAP's fuzzy simplicial set): per scale k, ρ_i = the
 * first positive neighbour distance, σ_i solves Σ_j exp(−max(0, d_ij − ρ_i)/σ_i) = log2(k) (64-step
 * bisection), a_{i→j} = exp(−max(0, d_ij − ρ_i)/σ_i); symmetrised and fused across scales with the
 * probabilistic t-conorm a ⊕ b = a + b − ab. Disconnected components are linked to their nearest other
 * component with the smallest positive weight of the graph ([R], the "∪ MST" step's purpose).
 * Distances are cosine distances 1 − ⟨x_i, x_j⟩ from the exact top-k kernel.
 */
import { topKInnerProduct, type Matrix } from '../kernels/similarity.js';

/** Symmetric sparse graph in CSR form. */
export interface SparseGraph {
  n: number;
  rowStart: Int32Array;
  cols: Int32Array;
  weights: Float64Array;
  /** Weighted degree of every node. */
  degree: Float64Array;
  /** Component links that were added to connect the graph. */
  linksAdded: number;
}

export async function fuzzyKnnGraph(
  x: Matrix,
  scales: readonly number[],
  signal?: AbortSignal,
): Promise<SparseGraph> {
  const n = x.rows;
  const kMax = Math.min(n - 1, Math.max(...scales));
  if (kMax < 1) return toCsr(n, new Map(), 0);
  const knn = await topKInnerProduct(x, x, kMax, { excludeSelf: true, ...(signal ? { signal } : {}) });
  const fused = new Map<number, number>();
  for (const scale of scales) {
    const k = Math.min(scale, kMax);
    const directed = new Map<number, number>();
    const dist = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < k; j++) dist[j] = Math.max(0, 1 - knn.values[i * kMax + j]!);
      const rho = dist.find((v) => v > 0) ?? 0;
      const sigma = solveSigma(dist, rho, Math.log2(k));
      for (let j = 0; j < k; j++) {
        const nb = knn.indices[i * kMax + j]!;
        if (nb < 0) continue;
        directed.set(i * n + nb, Math.exp(-Math.max(0, dist[j]! - rho) / sigma));
      }
    }
    // A_k = A + Aᵀ − A∘Aᵀ, stored once per unordered pair (key = min·n + max).
    const symmetric = new Map<number, number>();
    for (const [key, a] of directed) {
      const [i, j] = [Math.floor(key / n), key % n];
      const pair = Math.min(i, j) * n + Math.max(i, j);
      if (symmetric.has(pair)) continue;
      const b = directed.get(j * n + i) ?? 0;
      symmetric.set(pair, a + b - a * b);
    }
    for (const [pair, w] of symmetric) {
      const prior = fused.get(pair) ?? 0;
      fused.set(pair, prior + w - prior * w);
    }
  }
  const linksAdded = await connectComponents(x, fused);
  return toCsr(n, fused, linksAdded);

  async function connectComponents(points: Matrix, edges: Map<number, number>): Promise<number> {
    let added = 0;
    let minWeight = Infinity;
    for (const w of edges.values()) if (w > 0 && w < minWeight) minWeight = w;
    if (!Number.isFinite(minWeight)) minWeight = 1e-3;
    for (;;) {
      const parent = Int32Array.from({ length: n }, (_, i) => i);
      const find = (i: number): number => {
        while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
        return i;
      };
      for (const [pair, w] of edges) if (w > 0) parent[find(Math.floor(pair / n))] = find(pair % n);
      const groups = new Map<number, number[]>();
      for (let i = 0; i < n; i++) {
        const r = find(i);
        const g = groups.get(r) ?? [];
        g.push(i);
        groups.set(r, g);
      }
      if (groups.size <= 1) return added;
      // Link every component but the largest to its closest point outside it.
      const components = [...groups.values()].sort((a, b) => b.length - a.length).slice(1);
      for (const members of components) {
        const inside = new Set(members);
        const k = Math.min(n, members.length + 1);
        const q: Matrix = {
          rows: members.length,
          cols: points.cols,
          data: new Float32Array(members.length * points.cols),
        };
        members.forEach((m, r) =>
          q.data.set(points.data.subarray(m * points.cols, (m + 1) * points.cols), r * points.cols),
        );
        const near = await topKInnerProduct(q, points, k);
        let best: [number, number, number] | undefined;
        for (let r = 0; r < members.length; r++)
          for (let j = 0; j < k; j++) {
            const o = near.indices[r * k + j]!;
            if (o < 0 || inside.has(o)) continue;
            if (!best || near.values[r * k + j]! > best[2]) best = [members[r]!, o, near.values[r * k + j]!];
            break;
          }
        if (!best) continue;
        const pair = Math.min(best[0], best[1]) * n + Math.max(best[0], best[1]);
        if (!edges.has(pair)) {
          edges.set(pair, minWeight);
          added++;
        }
      }
    }
  }
}

/** σ with Σ_j exp(−max(0, d_j − ρ)/σ) = target, by bisection (UMAP's smooth_knn_dist, 64 steps). */
function solveSigma(dist: Float64Array, rho: number, target: number): number {
  let lo = 0;
  let hi = Infinity;
  let sigma = 1;
  for (let step = 0; step < 64; step++) {
    let sum = 0;
    for (const d of dist) sum += Math.exp(-Math.max(0, d - rho) / sigma);
    if (Math.abs(sum - target) < 1e-6) break;
    if (sum > target) {
      hi = sigma;
      sigma = (lo + hi) / 2;
    } else {
      lo = sigma;
      sigma = hi === Infinity ? sigma * 2 : (lo + hi) / 2;
    }
  }
  return Math.max(sigma, 1e-12);
}

function toCsr(n: number, pairs: Map<number, number>, linksAdded: number): SparseGraph {
  const count = new Int32Array(n + 1);
  for (const pair of pairs.keys()) {
    count[Math.floor(pair / n) + 1]!++;
    count[(pair % n) + 1]!++;
  }
  for (let i = 0; i < n; i++) count[i + 1]! += count[i]!;
  const cols = new Int32Array(count[n]!);
  const weights = new Float64Array(count[n]!);
  const fill = count.slice(0, n);
  const degree = new Float64Array(n);
  for (const [pair, w] of pairs) {
    const [i, j] = [Math.floor(pair / n), pair % n];
    cols[fill[i]!] = j;
    weights[fill[i]!++] = w;
    cols[fill[j]!] = i;
    weights[fill[j]!++] = w;
    degree[i]! += w;
    degree[j]! += w;
  }
  return { n, rowStart: count, cols, weights, degree, linksAdded };
}
