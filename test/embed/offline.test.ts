import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DATASET } from '../../src/curate/api.js';
import { OfflineEncoder, type FitPair } from '../../src/embed/encoders/offline/index.js';
import { openDataset } from '../../src/embed/readers/index.js';
import { tempDir } from '../helpers.js';

interface Pair extends FitPair {
  label: number;
  kind: string;
}

/** Smaller than the defaults so the suite stays quick; same code path. */
const OPTIONS = { dictionary: 96, dim: 64, textDim: 128, whitenedDim: 128, patches: 60_000 };

let pairs: Pair[];
let encoder: OfflineEncoder;
let images: Float32Array;
let texts: Float32Array;

function cosine(a: Float32Array, i: number, b: Float32Array, j: number, d: number): number {
  let s = 0;
  for (let k = 0; k < d; k++) s += a[i * d + k]! * b[j * d + k]!;
  return s;
}

/** Probability that a random positive outscores a random negative. */
function auc(pos: number[], neg: number[]): number {
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (pos.length * neg.length);
}

beforeAll(async () => {
  const { reader } = await openDataset(DEMO_DATASET);
  pairs = [];
  for (const part of await reader.parts()) {
    for await (const item of reader.read(part)) {
      if (item.type !== 'sample') continue;
      const m = item.sample.metadata as { label_index: number; caption_kind: string };
      pairs.push({
        bytes: await item.sample.image(),
        caption: item.sample.caption,
        label: m.label_index,
        kind: m.caption_kind,
      });
    }
  }
  // Fit on the first 1,600; the last 400 are held out.
  encoder = await OfflineEncoder.fit(pairs.slice(0, 1600), OPTIONS);
  const d = encoder.dim;
  images = new Float32Array(pairs.length * d);
  texts = new Float32Array(pairs.length * d);
  for (let i = 0; i < pairs.length; i += 200) {
    const batch = pairs.slice(i, i + 200);
    images.set(
      await encoder.embedPrepared(await Promise.all(batch.map((p) => encoder.prepareImage(p.bytes)))),
      i * d,
    );
    texts.set(await encoder.embedTexts(batch.map((p) => p.caption)), i * d);
  }
}, 120_000);

describe('offline encoder (DNN-free baseline)', () => {
  it('is named as a baseline, not CLIP, and gives unit-norm vectors', () => {
    expect(encoder.name).toMatch(/DNN-free baseline, not CLIP/);
    expect(encoder.dim).toBe(64);
    for (const i of [0, 999, 1999]) {
      expect(Math.sqrt(cosine(images, i, images, i, 64))).toBeCloseTo(1, 5);
      expect(Math.sqrt(cosine(texts, i, texts, i, 64))).toBeCloseTo(1, 5);
    }
  });

  it('held-out image–caption cosine ranks clean captions above mismatched and generic ones', () => {
    const held = pairs.map((p, i) => ({ ...p, i })).slice(1600);
    const cos = (i: number) => cosine(images, i, texts, i, 64);
    const clean = held.filter((p) => p.kind === 'clean').map((p) => cos(p.i));
    const noisy = held.filter((p) => p.kind !== 'clean').map((p) => cos(p.i));
    expect(noisy.length).toBeGreaterThan(30);
    expect(auc(clean, noisy)).toBeGreaterThan(0.7);
  });

  it('held-out image embeddings carry the class: nearest class centroid beats chance by far', () => {
    const d = 64;
    const centroids = new Float64Array(10 * d);
    for (let i = 0; i < 1600; i++)
      for (let k = 0; k < d; k++) centroids[pairs[i]!.label * d + k]! += images[i * d + k]!;
    let correct = 0;
    for (let i = 1600; i < pairs.length; i++) {
      let best = -1;
      let bestScore = -Infinity;
      for (let c = 0; c < 10; c++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += images[i * d + k]! * centroids[c * d + k]!;
        if (s > bestScore) [best, bestScore] = [c, s];
      }
      if (best === pairs[i]!.label) correct += 1;
    }
    expect(correct / 400).toBeGreaterThan(0.3); // chance is 0.1
  });

  it('saves and loads to the same fingerprint and the same embeddings; batch equals one by one', async () => {
    const dir = path.join(await tempDir(), 'offline');
    await encoder.save(dir);
    const loaded = await OfflineEncoder.load(dir);
    expect(loaded.fingerprint).toBe(encoder.fingerprint);
    const sample = pairs.slice(0, 5);
    const prepared = await Promise.all(sample.map((p) => loaded.prepareImage(p.bytes)));
    const batch = await loaded.embedPrepared(prepared);
    for (let i = 0; i < 5; i++) {
      const single = await encoder.embedPrepared([prepared[i]!]);
      for (let k = 0; k < 64; k++) expect(batch[i * 64 + k]).toBeCloseTo(single[k]!, 5);
    }
    const t = await loaded.embedTexts(sample.map((p) => p.caption));
    for (let k = 0; k < 64; k++) expect(t[k]).toBeCloseTo(texts[k]!, 5);
  });

  it('is deterministic: the same data and seed give the same fingerprint; another seed does not', async () => {
    const small = pairs.slice(0, 400);
    const opts = { dictionary: 32, dim: 32, textDim: 64, whitenedDim: 64, patches: 10_000 };
    const a = await OfflineEncoder.fit(small, opts);
    const b = await OfflineEncoder.fit(small, opts);
    const c = await OfflineEncoder.fit(small, { ...opts, seed: 1 });
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(c.fingerprint).not.toBe(a.fingerprint);
  });
});
