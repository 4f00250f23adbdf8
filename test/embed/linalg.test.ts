import { describe, expect, it } from 'vitest';
import { Matrix, EigenvalueDecomposition } from 'ml-matrix';
import { kmeans } from '../../src/compute/kmeans.js';
import {
  covariance,
  dense,
  inverse64,
  matmul,
  matmul64,
  symmetricEigen,
  tmatmul,
  type Dense,
} from '../../src/compute/linalg.js';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { fitAlignment } from '../../src/embed/encoders/offline/align.js';
import { fitVocabulary, hashedTerms, lsa, tfidf } from '../../src/embed/encoders/offline/text.js';
import { floatToHalf, halfToFloat, halvesToFloats, readNpy, writeNpy } from '../../src/embed/npy.js';
import { tempDir } from '../helpers.js';
import path from 'node:path';

const rand = (rows: number, cols: number, seed: number): Dense => {
  const normal = gaussian(seededRandom(seed));
  return dense(rows, cols, Float32Array.from({ length: rows * cols }, normal));
};

function naive(a: Dense, b: Dense): Float64Array {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let k = 0; k < a.cols; k++)
      for (let j = 0; j < b.cols; j++)
        out[i * b.cols + j]! += a.data[i * a.cols + k]! * b.data[k * b.cols + j]!;
  return out;
}

describe('kernels', () => {
  it('MatMul and transposed MatMul on onnxruntime agree with a plain loop', async () => {
    const a = rand(37, 19, 1);
    const b = rand(19, 23, 2);
    const c = await matmul(a, b);
    const ref = naive(a, b);
    c.data.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 4));
    const at = dense(19, 37);
    for (let r = 0; r < 37; r++) for (let k = 0; k < 19; k++) at.data[k * 37 + r] = a.data[r * 19 + k]!;
    const t = await tmatmul(at, b);
    t.data.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 4));
  });

  it('float64 MatMul and transposed MatMul keep float64 precision', async () => {
    // Entries 1 + tiny: float32 would round the tiny parts away.
    const a = Float64Array.from({ length: 37 * 19 }, (_, i) => 1 + 1e-9 * Math.sin(i));
    const b = Float64Array.from({ length: 19 * 23 }, (_, i) => 1 + 1e-9 * Math.cos(i));
    const c = await matmul64(a, [37, 19], b, 23);
    const at = new Float64Array(19 * 37);
    for (let r = 0; r < 37; r++) for (let k = 0; k < 19; k++) at[k * 37 + r] = a[r * 19 + k]!;
    const t = await matmul64(at, [19, 37], b, 23, true);
    for (let r = 0; r < 37; r++)
      for (let col = 0; col < 23; col++) {
        let ref = 0;
        for (let k = 0; k < 19; k++) ref += a[r * 19 + k]! * b[k * 23 + col]!;
        expect(Math.abs(c[r * 23 + col]! - ref)).toBeLessThan(1e-12);
        expect(Math.abs(t[r * 23 + col]! - ref)).toBeLessThan(1e-12);
      }
    await expect(matmul64(a, [37, 19], b, 22)).rejects.toThrow(/matmul64 shapes/);
  });

  it('the float64 inverse on the kernel gives A·A⁻¹ = I to float64 precision, for an ill-conditioned matrix too', async () => {
    const normal = gaussian(seededRandom(12));
    const n = 64;
    const x = Float64Array.from({ length: n * n }, normal);
    // A = XᵀX + δI with δ = 1e-6: condition number ~1e8, far beyond what float32 could invert.
    const a = await matmul64(x, [n, n], x, n, true);
    for (let i = 0; i < n; i++) a[i * n + i]! += 1e-6;
    const inverse = await inverse64(a, n);
    const product = await matmul64(a, [n, n], inverse, n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++)
        expect(Math.abs(product[i * n + j]! - (i === j ? 1 : 0))).toBeLessThan(1e-6);
  });

  it('symmetric eigendecomposition reconstructs the matrix, eigenvalues descending', async () => {
    const x = rand(200, 12, 3);
    const cov = await covariance(x);
    const { values, vectors } = symmetricEigen(cov);
    for (let i = 1; i < values.length; i++) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
    for (let r = 0; r < 12; r++)
      for (let c = 0; c < 12; c++) {
        let s = 0;
        for (let k = 0; k < 12; k++) s += vectors.data[r * 12 + k]! * values[k]! * vectors.data[c * 12 + k]!;
        expect(s).toBeCloseTo(cov.data[r * 12 + c]!, 4);
      }
  });

  it('k-means finds well-separated clusters, beats its own seeding, and is deterministic under a seed', async () => {
    const normal = gaussian(seededRandom(5));
    const centres = [
      [0, 0],
      [10, 0],
      [0, 10],
      [10, 10],
    ];
    const x = dense(400, 2);
    centres.forEach(([cx, cy], c) => {
      for (let i = 0; i < 100; i++) {
        x.data[(c * 100 + i) * 2] = cx! + normal() * 0.5;
        x.data[(c * 100 + i) * 2 + 1] = cy! + normal() * 0.5;
      }
    });
    const a = await kmeans(x, 4, { seed: 1 });
    const b = await kmeans(x, 4, { seed: 1 });
    expect(Array.from(a.assignment)).toEqual(Array.from(b.assignment));
    // Every true cluster maps to one found cluster.
    for (let c = 0; c < 4; c++) expect(new Set(a.assignment.subarray(c * 100, c * 100 + 100)).size).toBe(1);
    expect(a.inertia / 400).toBeLessThan(1); // ≈ 2 × 0.25 per point
    const none = await kmeans(x, 4, { seed: 1, iterations: 0 });
    expect(a.inertia).toBeLessThanOrEqual(none.inertia);
  });

  it('k-means fitted on a sample of the points still assigns every point to its nearest centroid', async () => {
    const normal = gaussian(seededRandom(6));
    const x = dense(4000, 3);
    for (let i = 0; i < 4000; i++)
      for (let j = 0; j < 3; j++) x.data[i * 3 + j] = (j === i % 3 ? 8 : 0) + normal() * 0.5;
    const sampled = await kmeans(x, 3, { seed: 2, pointsPerCentroid: 20 }); // 60 points
    // The three clusters (rows i ≡ 0, 1, 2 mod 3) are found from 60 of the 4,000 points…
    for (let c = 0; c < 3; c++) {
      const labels = new Set<number>();
      for (let i = c; i < 4000; i += 3) labels.add(sampled.assignment[i]!);
      expect(labels.size).toBe(1);
    }
    // …and every point, sampled or not, carries its nearest centroid's label.
    const nearest = (i: number) => {
      let best = -1;
      let bestDistance = Infinity;
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let j = 0; j < 3; j++) s += (x.data[i * 3 + j]! - sampled.centroids.data[c * 3 + j]!) ** 2;
        if (s < bestDistance) [best, bestDistance] = [c, s];
      }
      return best;
    };
    for (let i = 0; i < 4000; i += 7) expect(sampled.assignment[i]).toBe(nearest(i));
    const full = await kmeans(x, 3, { seed: 2 });
    expect(sampled.inertia).toBeLessThan(full.inertia * 1.1); // centroids from ~20 points each: ~5% above
  });
});

describe('offline encoder building blocks', () => {
  it('randomized LSA finds the same top singular values as an exact decomposition', async () => {
    const words = ['cat', 'dog', 'car', 'truck', 'ship', 'plane', 'bird', 'frog', 'deer', 'horse'];
    const random = seededRandom(9);
    const captions = Array.from({ length: 300 }, () =>
      Array.from({ length: 4 }, () => words[Math.floor(random() * words.length)]).join(' '),
    );
    const docs = captions.map(hashedTerms);
    const x = tfidf(docs, fitVocabulary(docs));
    const { singular } = await lsa(x, 5, 0, 10, 3);
    const rows: number[][] = Array.from({ length: x.rows }, () => new Array<number>(x.cols).fill(0));
    for (let r = 0; r < x.rows; r++)
      for (let p = x.indptr[r]!; p < x.indptr[r + 1]!; p++) rows[r]![x.indices[p]!] = x.values[p]!;
    const m = new Matrix(rows);
    const exact = new EigenvalueDecomposition(m.transpose().mmul(m), {
      assumeSymmetric: true,
    }).realEigenvalues
      .map((v) => Math.sqrt(Math.max(v, 0)))
      .sort((p, q) => q - p);
    for (let i = 0; i < 5; i++) expect(singular[i]!).toBeCloseTo(exact[i]!, 2);
  });

  it('CCA recovers a planted correlation and ignores independent noise', async () => {
    const normal = gaussian(seededRandom(11));
    const n = 4000;
    const a = dense(n, 6);
    const b = dense(n, 5);
    for (let i = 0; i < n; i++) {
      const shared = normal();
      for (let j = 0; j < 6; j++) a.data[i * 6 + j] = normal();
      for (let j = 0; j < 5; j++) b.data[i * 5 + j] = normal();
      a.data[i * 6 + 2] = shared + 0.5 * normal(); // corr(shared+0.5e, shared+0.5e') = 1 / 1.25 = 0.8
      b.data[i * 5 + 4] = shared + 0.5 * normal();
    }
    const align = await fitAlignment(a, b, { whitenedDim: 6, dim: 2, ridge: 0, power: 1 });
    expect(align.correlations[0]!).toBeCloseTo(0.8, 1);
    expect(align.correlations[1]!).toBeLessThan(0.1);
  });

  it('float16 → float32 through the table equals the formula for all 65,536 halves (±0, subnormals, ∞, NaN)', () => {
    const floats = halvesToFloats(Uint16Array.from({ length: 65536 }, (_, h) => h));
    const differing = Array.from({ length: 65536 }, (_, h) => h).filter((h) => {
      const f = halfToFloat(h);
      return Number.isNaN(f) ? !Number.isNaN(floats[h]!) : !Object.is(floats[h], Math.fround(f));
    });
    expect(differing).toEqual([]);
    expect(Object.is(floats[0x8000], -0)).toBe(true);
    expect(floats[0x0001]).toBe(2 ** -24);
  });

  it('.npy files round-trip (float32 exactly, float16 to half precision)', async () => {
    const dir = await tempDir();
    const data = Float32Array.from([0, 1, -2.5, 65504, 1e-7, 3.14159, -0.1, 42]);
    await writeNpy(path.join(dir, 'a.npy'), 'float32', data, 4);
    const a = await readNpy(path.join(dir, 'a.npy'));
    expect([a.rows, a.cols, Array.from(a.data)]).toEqual([2, 4, Array.from(data)]);
    await writeNpy(path.join(dir, 'h.npy'), 'float16', data, 2);
    const h = await readNpy(path.join(dir, 'h.npy'));
    expect([h.rows, h.cols, h.dtype]).toEqual([4, 2, 'float16']);
    h.data.forEach((v, i) =>
      expect(Math.abs(v - data[i]!)).toBeLessThanOrEqual(Math.abs(data[i]!) * 1e-3 + 1e-7),
    );
    expect(halfToFloat(floatToHalf(1))).toBe(1);
    expect(floatToHalf(65520)).toBe(0x7c00); // rounds to +Infinity, as IEEE does
  });
});
