import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { runSelector } from '../../src/select/contract.js';
import { herding, herdRows } from '../../src/select/selectors/herding.js';

/** The plain herding loop as it was before the kernel form (two JavaScript passes over all items per pick). */
function herdReference(x: Float32Array, d: number, members: number[], budget: number): number[] {
  const m = members.length;
  const mean = new Float64Array(d);
  for (const i of members) for (let k = 0; k < d; k++) mean[k]! += x[i * d + k]! / m;
  const a = new Float64Array(m);
  const c = new Float64Array(m);
  const sq = new Float64Array(m);
  members.forEach((i, t) => {
    for (let k = 0; k < d; k++) {
      a[t]! += x[i * d + k]! * mean[k]!;
      sq[t]! += x[i * d + k]! ** 2;
    }
  });
  const taken = new Uint8Array(m);
  const picks: number[] = [];
  for (let step = 1; step <= Math.min(budget, m); step++) {
    let best = -1;
    let bestScore = -Infinity;
    for (let t = 0; t < m; t++) {
      if (taken[t]) continue;
      const score = 2 * (step * a[t]! - c[t]!) - sq[t]!;
      if (score > bestScore) [best, bestScore] = [t, score];
    }
    taken[best] = 1;
    const p = members[best]!;
    picks.push(p);
    members.forEach((i, t) => {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += x[i * d + k]! * x[p * d + k]!;
      c[t]! += dot;
    });
  }
  return picks;
}

/** Unit vectors around a few Gaussian centres (clustered like embeddings). */
function clustered(n: number, d: number, clusters: number, seed: number): Float32Array {
  const normal = gaussian(seededRandom(seed));
  const centres = Array.from({ length: clusters }, () => Float32Array.from({ length: d }, normal));
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = centres[Math.floor(seededRandom(seed * 7919 + i)() * clusters)]!;
    let s = 0;
    for (let k = 0; k < d; k++) s += (x[i * d + k] = c[k]! + 0.7 * normal()) ** 2;
    for (let k = 0; k < d; k++) x[i * d + k]! /= Math.sqrt(s);
  }
  return x;
}

const all = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('herding on the kernel (one MatMul + TopK per pick, float64 re-scoring)', () => {
  it('picks exactly what the plain loop picks on seeded inputs of several shapes and budgets', async () => {
    const cases = [
      { n: 200, d: 8, clusters: 3, budget: 200, seed: 1 }, // the whole pool: the order matters too
      { n: 1000, d: 16, clusters: 5, budget: 100, seed: 2 },
      { n: 3000, d: 64, clusters: 10, budget: 150, seed: 3 },
      { n: 5000, d: 32, clusters: 1, budget: 60, seed: 4 },
    ];
    for (const { n, d, clusters, budget, seed } of cases) {
      const x = clustered(n, d, clusters, seed);
      expect(await herdRows(x, d, budget)).toEqual(herdReference(x, d, all(n), budget));
    }
  });

  it('breaks exact ties as the plain loop does (lowest index), where float32 cannot separate candidates', async () => {
    // Every row three times: the candidates of each step tie exactly.
    const base = clustered(100, 12, 4, 5);
    const d = 12;
    const x = new Float32Array(300 * d);
    for (let copy = 0; copy < 3; copy++) x.set(base, copy * 100 * d);
    const ours = await herdRows(x, d, 120);
    expect(ours).toEqual(herdReference(x, d, all(300), 120));
    expect(new Set(ours).size).toBe(120);
  });

  it('the selector per class matches the plain loop class by class', async () => {
    const [n, d] = [900, 16];
    const image = clustered(n, d, 6, 6);
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % 3);
    const result = await runSelector(
      herding,
      { n, dim: d, image, labels },
      { count: 90 },
      { perClass: true, dims: 0 },
      { seed: 0 },
    );
    const picked = Array.from(result.indices);
    for (let c = 0; c < 3; c++) {
      const members = all(n).filter((i) => labels[i] === c);
      const mine = picked.filter((i) => labels[i] === c);
      expect(mine).toEqual(herdReference(image, d, members, mine.length));
    }
    expect(picked.length).toBe(90);
  });
});
