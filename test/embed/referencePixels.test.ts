/**
 * Our CLIP preprocessing against the reference pipelines' pixels (test/fixtures/reference/pixels,
 * made by scripts/reference/make_pixel_fixtures.py with Pillow and torchvision): OpenAI's clip.py
 * `_transform` (torchvision crop, round half to even) for raw ONNX exports, and Hugging Face's
 * CLIPImageProcessor (crop offset floored) for models with a preprocessor_config.json.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  CLIP_PREPROCESSING,
  cropStart,
  preprocessImage,
  resizedSize,
  type CropOffset,
  type ImagePreprocessorConfig,
} from '../../src/embed/preprocess.js';
import { resizeBicubicPillow } from '../../src/embed/resample.js';
import { FIXTURES } from '../helpers.js';

const DIR = path.join(FIXTURES, 'reference', 'pixels');

interface Case {
  name: string;
  source: string;
  size: [number, number];
  mode: string;
  resized: [number, number];
  lossless: boolean;
}
const index = JSON.parse(readFileSync(path.join(DIR, 'index.json'), 'utf8')) as { cases: Case[] };

/** Our pipeline up to the crop, as 0..255 values in CHW order. */
async function ours(bytes: Buffer, cropOffset: CropOffset): Promise<Float32Array> {
  const config: ImagePreprocessorConfig = {
    ...CLIP_PREPROCESSING,
    rescale: 1,
    doNormalize: false,
    cropOffset,
  };
  return preprocessImage(bytes, config);
}

/** A reference PNG (224 × 224 RGB) in CHW order. */
async function reference(file: string): Promise<Float32Array> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([224, 224, 3]);
  const plane = 224 * 224;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) out[c * plane + i] = data[i * 3 + c]!;
  return out;
}

function agreement(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

describe.each([
  ['openai', 'round-half-even'],
  ['hf', 'floor'],
] as const)('preprocessing matches the %s reference', (set, cropOffset) => {
  it.each(index.cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const bytes = readFileSync(path.join(DIR, c.source));
    const got = agreement(
      await ours(bytes, cropOffset),
      await reference(path.join(DIR, set, `${c.name}.png`)),
    );
    const reduced = c.resized[0] < c.size[0];
    if (c.lossless && !reduced) {
      // Enlarged or same size, same decoded pixels on both sides: exactly Pillow's resize and the crop.
      expect(got.max).toBe(0);
    } else {
      // Reductions run on libvips (see preprocessImage), JPEGs may decode a little differently;
      // the crop geometry is still held: a one-pixel shift costs several levels on these images.
      expect(got.mean).toBeLessThanOrEqual(0.25);
    }
  });
});

describe('resize geometry', () => {
  it('the fixtures tell the conventions apart where the crop excess is odd (227×224, 500×374)', async () => {
    for (const name of ['gen-227x224', 'gen-500x374']) {
      const c = index.cases.find((x) => x.name === name)!;
      const bytes = readFileSync(path.join(DIR, c.source));
      const openai = await reference(path.join(DIR, 'openai', `${name}.png`));
      expect(agreement(await ours(bytes, 'floor'), openai).max, name).toBeGreaterThan(0);
    }
  });

  it('gives the reference resized size for every fixture (long side truncated, no-op at 224)', () => {
    for (const c of index.cases) expect(resizedSize(c.size[0], c.size[1], 224), c.name).toEqual(c.resized);
  });

  it('centre-crop offsets follow torchvision (round half to even) and transformers (floor)', () => {
    // (size − crop) / 2 = 37.5 → 38 (even) for torchvision, 37 for transformers; 0.5 → 0 and 0.
    expect(cropStart(299, 224, 'round-half-even')).toBe(38);
    expect(cropStart(299, 224, 'floor')).toBe(37);
    expect(cropStart(225, 224, 'round-half-even')).toBe(0);
    expect(cropStart(227, 224, 'round-half-even')).toBe(2);
    expect(cropStart(227, 224, 'floor')).toBe(1);
    expect(cropStart(298, 224, 'round-half-even')).toBe(37);
  });

  it('keeps a flat image flat and is the identity at the same size', () => {
    const flat = new Uint8Array(7 * 5 * 3).fill(200);
    expect([...new Set(resizeBicubicPillow(flat, 7, 5, 3, 31, 19))]).toEqual([200]);
    expect([...new Set(resizeBicubicPillow(flat, 7, 5, 3, 3, 2))]).toEqual([200]);
    const noise = Uint8Array.from({ length: 6 * 4 }, (_, i) => (i * 37) % 256);
    expect(resizeBicubicPillow(noise, 6, 4, 1, 6, 4)).toEqual(noise);
  });
});
