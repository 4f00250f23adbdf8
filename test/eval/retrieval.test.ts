import { describe, expect, it } from 'vitest';
import { gaussian, seededRandom } from '../../src/compute/random.js';
import { retrievalRecall, zeroShotTop1 } from '../../src/eval/retrieval.js';
import { bruteRecall, cosine } from './clipData.js';

function randomMatrix(n: number, d: number, seed: number): Float32Array {
  const normal = gaussian(seededRandom(seed));
  return Float32Array.from({ length: n * d }, normal);
}

describe('retrievalRecall', () => {
  it('equals a float64 brute force on random pairs', async () => {
    const n = 80;
    const d = 8;
    const image = randomMatrix(n, d, 1);
    const text = randomMatrix(n, d, 2);
    // Correlate captions with their images so recall is neither 0 nor 1.
    for (let i = 0; i < n * d; i++) text[i] = image[i]! + 1.2 * text[i]!;
    const ks = [1, 5, 10];
    const got = await retrievalRecall(image, text, n, d, ks);
    expect(got.i2t).toEqual(bruteRecall(image, text, n, d, ks));
    expect(got.t2i).toEqual(bruteRecall(text, image, n, d, ks));
    expect(got.i2t[1]).toBeGreaterThan(0);
    expect(got.i2t[1]).toBeLessThan(1);
  });

  it('matches the brute force when the similarity matrix is computed in several row tiles', async () => {
    // 4,500 rows: the kernel's tile (16 Mi elements / n) holds 3,728 query rows, so two tiles run.
    const n = 4500;
    const d = 6;
    const image = randomMatrix(n, d, 3);
    const noise = randomMatrix(n, d, 4);
    const text = image.map((v, i) => v + 0.3 * noise[i]!);
    const ks = [1, 10];
    const got = await retrievalRecall(image, text, n, d, ks);
    const want = bruteRecall(image, text, n, d, ks);
    // float32 MatMul vs float64 can flip a near-exact tie; allow at most 2 of 4,500 queries to differ.
    for (const k of ks) expect(Math.abs(got.i2t[k]! - want[k]!)).toBeLessThanOrEqual(2 / n);
    expect(got.i2t[1]).toBeGreaterThan(0.2);
    expect(got.i2t[1]).toBeLessThan(0.99);
  }, 30_000);

  it('gives the known answer on a hand-built case with ties (a tie with the match is not a miss)', async () => {
    // Images i0 = 3·(1,0) (not unit: cosine ignores length), i1 = (0,1), i2 = (1,0);
    // captions t0 = (1,0), t1 = (1,0), t2 = (0,1).
    const image = Float32Array.of(3, 0, 0, 1, 1, 0);
    const text = Float32Array.of(1, 0, 1, 0, 0, 1);
    const got = await retrievalRecall(image, text, 3, 2, [1, 2, 3]);
    // i2t: i0 ties t0 with t1 (0 higher: hit@1); i1: t2 beats t1 (1 higher); i2: t0, t1 beat t2 (2 higher).
    expect(got.i2t).toEqual({ 1: 1 / 3, 2: 2 / 3, 3: 1 });
    // t2i: t0 ties i0 with i2 (hit@1); t1: i0, i2 beat i1 (2 higher); t2: i1 beats i2 (1 higher).
    expect(got.t2i).toEqual({ 1: 1 / 3, 2: 2 / 3, 3: 1 });
  });

  it('rejects a zero row and a bad k, naming them', async () => {
    const image = Float32Array.of(1, 0, 0, 0);
    const text = Float32Array.of(1, 0, 0, 1);
    await expect(retrievalRecall(image, text, 2, 2)).rejects.toThrow(/image embeddings: row 1 has norm 0/);
    await expect(retrievalRecall(text, text, 2, 2, [0])).rejects.toThrow(/k must be a positive integer/);
  });
});

describe('zeroShotTop1', () => {
  it('equals a float64 arg-max-cosine implementation', async () => {
    const n = 200;
    const d = 8;
    const K = 6;
    const classes = randomMatrix(K, d, 5);
    const random = seededRandom(6);
    const labels = Int32Array.from({ length: n }, () => Math.floor(random() * K));
    const noise = randomMatrix(n, d, 7);
    const image = Float32Array.from({ length: n * d }, (_, i) => {
      const row = Math.floor(i / d);
      return classes[labels[row]! * d + (i % d)]! + 0.9 * noise[i]!;
    });
    let correct = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let k = 1; k < K; k++)
        if (cosine(image, i, classes, k, d) > cosine(image, i, classes, best, d)) best = k;
      if (best === labels[i]) correct++;
    }
    const got = await zeroShotTop1(image, n, d, classes, labels);
    expect(got).toBe(correct / n);
    expect(got).toBeGreaterThan(1 / K);
    expect(got).toBeLessThan(1);
  });

  it('rejects labels outside the classes', async () => {
    await expect(
      zeroShotTop1(Float32Array.of(1, 0), 1, 2, Float32Array.of(1, 0), Int32Array.of(1)),
    ).rejects.toThrow(/label 1 of image 0 is outside the 1 classes/);
  });
});
