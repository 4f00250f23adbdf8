/**
 * FAST's graph and spectral floors at their faster forms: the fuzzy kNN graph's pairs against a direct
 * definition, component links, the spectral embedding against a dense eigendecomposition, and FAST on
 * worker threads against FAST in process.
 */
import { describe, expect, it } from 'vitest';
import { dense, symmetricEigen } from '../../src/compute/linalg.js';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { runSelector } from '../../src/select/contract.js';
import { fuzzyKnnGraph, solveSigma, type SparseGraph } from '../../src/select/graph/fuzzyGraph.js';
import { orientPairs, spectralEmbedding } from '../../src/select/graph/spectral.js';
import { fast } from '../../src/select/selectors/fast.js';

function unitRows(n: number, d: number, seed: number, clusters = 4, spread = 0.6) {
  const normal = gaussian(seededRandom(seed));
  const centres = Array.from({ length: clusters }, () => Array.from({ length: d }, normal));
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = i % clusters;
    let s = 0;
    for (let q = 0; q < d; q++) s += (data[i * d + q] = centres[c]![q]! + spread * normal()) ** 2;
    for (let q = 0; q < d; q++) data[i * d + q]! /= Math.sqrt(s);
  }
  return { rows: n, cols: d, data };
}

function weightOf(g: SparseGraph, i: number, j: number): number | undefined {
  for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++) if (g.cols[e] === j) return g.weights[e];
  return undefined;
}

/** Components of a CSR graph (edges of positive weight). */
function componentCount(g: SparseGraph): number {
  const seen = new Uint8Array(g.n);
  let count = 0;
  for (let s = 0; s < g.n; s++) {
    if (seen[s]) continue;
    count++;
    const stack = [s];
    seen[s] = 1;
    while (stack.length) {
      const i = stack.pop()!;
      for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++)
        if (g.weights[e]! > 0 && !seen[g.cols[e]!]) {
          seen[g.cols[e]!] = 1;
          stack.push(g.cols[e]!);
        }
    }
  }
  return count;
}

describe('fuzzy kNN graph', () => {
  it('fuses each pair over scales with a ⊕ b = a + b − ab of both directions, symmetric, no duplicate pairs', async () => {
    const x = unitRows(120, 8, 1, 1, 1);
    const scales = [3, 6];
    const g = await fuzzyKnnGraph(x, scales);
    // Direct definition: exact neighbours by brute force, UMAP memberships per scale.
    const dot = (i: number, j: number) => {
      let s = 0;
      for (let q = 0; q < 8; q++) s += x.data[i * 8 + q]! * x.data[j * 8 + q]!;
      return s;
    };
    const order = Array.from({ length: 120 }, (_, i) =>
      Array.from({ length: 120 }, (_, j) => j)
        .filter((j) => j !== i)
        .sort((a, b) => dot(i, b) - dot(i, a) || a - b),
    );
    const membership = (k: number) => {
      const a = new Map<number, number>();
      for (let i = 0; i < 120; i++) {
        const dist = order[i]!.slice(0, k).map((j) => Math.max(0, 1 - Math.fround(dot(i, j))));
        const rho = dist.find((v) => v > 0) ?? 0;
        let [lo, hi, sigma] = [0, Infinity, 1];
        for (let step = 0; step < 64; step++) {
          const sum = dist.reduce((t, v) => t + Math.exp(-Math.max(0, v - rho) / sigma), 0);
          if (Math.abs(sum - Math.log2(k)) < 1e-6) break;
          if (sum > Math.log2(k)) [hi, sigma] = [sigma, (lo + sigma) / 2];
          else [lo, sigma] = [sigma, hi === Infinity ? sigma * 2 : (sigma + hi) / 2];
        }
        order[i]!.slice(0, k).forEach((j, r) =>
          a.set(i * 120 + j, Math.exp(-Math.max(0, dist[r]! - rho) / sigma)),
        );
      }
      return a;
    };
    const perScale = scales.map(membership);
    let pairs = 0;
    for (let i = 0; i < 120; i++)
      for (let j = i + 1; j < 120; j++) {
        let fused = 0;
        let present = false;
        for (const a of perScale) {
          const [u, v] = [a.get(i * 120 + j) ?? 0, a.get(j * 120 + i) ?? 0];
          present ||= a.has(i * 120 + j) || a.has(j * 120 + i);
          const s = u + v - u * v;
          fused = fused + s - fused * s;
        }
        const w = weightOf(g, i, j);
        if (!present) continue;
        pairs++;
        expect(w).toBeDefined();
        expect(Math.abs(w! - fused)).toBeLessThan(1e-5);
        expect(weightOf(g, j, i)).toBe(w);
      }
    // Every stored edge is one of those pairs (plus component links, none here: one cluster).
    expect(g.linksAdded).toBe(0);
    expect(g.cols.length).toBe(2 * pairs);
  });

  it('links separate clusters into one component, each through the closest pair across', async () => {
    // Four tight, far-apart clusters: k = 3 never reaches across, so the graph needs 3 links.
    const x = unitRows(80, 12, 2, 4, 0.05);
    const g = await fuzzyKnnGraph(x, [3]);
    expect(g.linksAdded).toBeGreaterThanOrEqual(3);
    expect(componentCount(g)).toBe(1);
    // A link joins two different clusters (i % 4 is the cluster) with the graph's smallest weight.
    let smallest = Infinity;
    for (const w of g.weights) if (w > 0) smallest = Math.min(smallest, w);
    let across = 0;
    for (let i = 0; i < 80; i++)
      for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++)
        if (g.cols[e]! % 4 !== i % 4) {
          across++;
          expect(g.weights[e]).toBe(smallest);
        }
    expect(across).toBe(2 * g.linksAdded);
  });
});

describe('fuzzy kNN graph on two large clusters', () => {
  it('links components larger than the query sample through a pair nearly as close as the closest one', async () => {
    const n = 5000; // two clusters of 2,500: each is searched from 2,048 sampled points
    const x = unitRows(n, 12, 5, 2, 0.05);
    const g = await fuzzyKnnGraph(x, [3]);
    expect(componentCount(g)).toBe(1);
    expect(g.linksAdded).toBe(1);
    const cosine = (i: number, j: number) => {
      let s = 0;
      for (let q = 0; q < 12; q++) s += x.data[i * 12 + q]! * x.data[j * 12 + q]!;
      return s;
    };
    let closest = -Infinity;
    for (let i = 0; i < n; i += 2) for (let j = 1; j < n; j += 2) closest = Math.max(closest, cosine(i, j));
    const links: number[] = [];
    for (let i = 0; i < n; i++)
      for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++)
        if (g.cols[e]! % 2 !== i % 2) links.push(cosine(i, g.cols[e]!));
    expect(links).toHaveLength(2);
    expect(links[0]!).toBeGreaterThan(closest - 0.02);
  });
});

describe('spectral embedding (Chebyshev-filtered subspace iteration)', () => {
  it('finds the smallest non-trivial eigenvalues of L_sym that a dense eigendecomposition finds', async () => {
    const x = unitRows(200, 10, 3, 3, 0.8);
    const g = await fuzzyKnnGraph(x, [5, 15]);
    const dims = 6;
    const v = await spectralEmbedding(g, { dims, seed: 4 });
    // Dense M = D^{-1/2} B D^{-1/2}, eigenvalues of L_sym = 1 − eig(M).
    const m = dense(200, 200);
    for (let i = 0; i < 200; i++)
      for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++)
        m.data[i * 200 + g.cols[e]!] = g.weights[e]! / Math.sqrt(g.degree[i]! * g.degree[g.cols[e]!]!);
    const exact = symmetricEigen(m)
      .values.map((mu) => 1 - mu)
      .sort((a, b) => a - b);
    for (let k = 0; k < dims; k++) expect(Math.abs(v.eigenvalues[k]! - exact[k + 1]!)).toBeLessThan(1e-4);
    // Standardised columns.
    for (let c = 0; c < dims; c++) {
      let [mean, sq] = [0, 0];
      for (let i = 0; i < 200; i++) mean += v.data[i * dims + c]! / 200;
      for (let i = 0; i < 200; i++) sq += (v.data[i * dims + c]! - mean) ** 2 / 200;
      expect(Math.abs(mean)).toBeLessThan(1e-5);
      expect(Math.abs(sq - 1)).toBeLessThan(1e-4);
    }
    expect(v.rounds).toBeLessThanOrEqual(6);
  });

  it("stores every pair once, at one of its ends, with the operator's table about as wide as the mean row", async () => {
    // kNN graphs have hubs (items in many lists): the first-come orientation left rows ~1.5× the mean.
    const x = unitRows(3000, 24, 8, 5, 1.2);
    const g = await fuzzyKnnGraph(x, [5, 15, 30]);
    const { owner, count } = orientPairs(g);
    const held = new Int32Array(g.n);
    let pairs = 0;
    for (let i = 0; i < g.n; i++)
      for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++) {
        const j = g.cols[e]!;
        if (j <= i) expect(owner[e]).toBe(-1);
        else {
          expect([i, j]).toContain(owner[e]);
          held[owner[e]!]!++;
          pairs++;
        }
      }
    expect(Array.from(count)).toEqual(Array.from(held));
    expect(Math.max(...count)).toBeLessThanOrEqual(Math.ceil(pairs / g.n) + 2);
  });
});

describe('FAST on worker threads', () => {
  it('picks exactly what it picks in process, and says how many threads ran', async () => {
    const d = 16;
    const x = unitRows(1200, d, 5, 6, 0.7);
    const run = (workers: number) =>
      runSelector(
        fast,
        { n: x.rows, dim: d, image: x.data },
        { fraction: 0.05 },
        { clusters: 3, iterations: 60, workers },
        { seed: 7 },
      );
    const inProcess = await run(1);
    const threaded = await run(2);
    expect(Array.from(threaded.indices)).toEqual(Array.from(inProcess.indices));
    expect(threaded.trace?.find((t) => t.stage === 'threads')?.message).toMatch(/^2 thread\(s\)/);
    expect(inProcess.trace?.find((t) => t.stage === 'threads')?.message).toMatch(/^1 thread\(s\)/);
  }, 300_000);
});

describe('the fuzzy graph bandwidth σ', () => {
  it('solves Σ exp(−max(0, d − ρ)/σ) = log2(k) as a long bisection does, for spread and tight neighbour lists', () => {
    const random = seededRandom(17);
    for (let trial = 0; trial < 300; trial++) {
      const k = [5, 15, 30][trial % 3]!;
      const scale = [1, 1e-2, 1e-4][(trial % 5) % 3]!; // tight lists need a small σ
      const dist = Float64Array.from({ length: k }, () => random() * scale).sort();
      if (trial % 7 === 0 && k > 5) dist.fill(dist[1]!, 0, 3); // ties at the start (3 terms of 1 < log2 k)
      const rho = dist.find((v) => v > 0) ?? 0;
      const target = Math.log2(k);
      const sumAt = (sigma: number) => dist.reduce((s, d) => s + Math.exp(-Math.max(0, d - rho) / sigma), 0);
      const sigma = solveSigma(dist, rho, target);
      expect(Math.abs(sumAt(sigma) - target)).toBeLessThan(1e-6);
      // Reference: 200 bisection steps on a bracket that holds the root.
      let [lo, hi] = [0, 1];
      while (sumAt(hi) < target) hi *= 2;
      for (let step = 0; step < 200; step++) {
        const mid = (lo + hi) / 2;
        if (sumAt(mid) > target) hi = mid;
        else lo = mid;
      }
      expect(Math.abs(sigma - lo) / lo).toBeLessThan(1e-4);
    }
  });
});
