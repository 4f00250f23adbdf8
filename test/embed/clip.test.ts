import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AutoProcessor, env, RawImage } from '@huggingface/transformers';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { cudaInstalled } from '../../src/compute/ort.js';
import { ClipHfEncoder } from '../../src/embed/encoders/clipHf.js';
import { ClipOnnxEncoder } from '../../src/embed/encoders/clipOnnx.js';
import { CLIP_PREPROCESSING, preprocessImage } from '../../src/embed/preprocess.js';
import { BUNDLED_CLIP_TOKENIZER, ClipTokenizer } from '../../src/embed/tokenizer.js';
import { MINI, tempDir } from '../helpers.js';
import { writeTinyClip } from '../support/tinyClip.js';

const BOS = 49406n;
const EOS = 49407n;

function rowNorms(data: Float32Array, dim: number): number[] {
  const norms: number[] = [];
  for (let r = 0; r < data.length; r += dim) norms.push(Math.hypot(...data.subarray(r, r + dim)));
  return norms;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

const images = async () =>
  Promise.all(
    ['frog/train000001.jpg', 'automobile/train000002.jpg', 'airplane/train000000.jpg'].map((f) =>
      readFile(path.join(MINI, 'folder', f)),
    ),
  );

describe('CLIP tokenizer', () => {
  it('gives the known CLIP ids, pads with EOS to 77 and truncates keeping EOS last', async () => {
    const tokenizer = await ClipTokenizer.load();
    const { inputIds, attentionMask, length } = tokenizer.encode(['a photo of a cat', 'word '.repeat(200)]);
    expect(length).toBe(77);
    expect([...inputIds.slice(0, 8)]).toEqual([BOS, 320n, 1125n, 539n, 320n, 2368n, EOS, EOS]);
    expect([...attentionMask.slice(0, 8)]).toEqual([1n, 1n, 1n, 1n, 1n, 1n, 1n, 0n]);
    const long = inputIds.slice(77, 154);
    expect(long[0]).toBe(BOS);
    expect(long[76]).toBe(EOS);
    expect(attentionMask.slice(77, 154).every((m) => m === 1n)).toBe(true);
  });
});

describe('image preprocessing', () => {
  it('matches transformers.js CLIPImageProcessor to 1e-5 where no resampling is involved (crop, RGB, rescale, normalise)', async () => {
    const noise = Uint8Array.from({ length: 224 * 300 * 3 }, (_, i) => (i * 7919) % 251);
    const png = await sharp(noise, { raw: { width: 224, height: 300, channels: 3 } })
      .png()
      .toBuffer();
    const ours = await preprocessImage(png, CLIP_PREPROCESSING);

    env.allowRemoteModels = false;
    env.localModelPath = path.dirname(BUNDLED_CLIP_TOKENIZER) + path.sep;
    const processor = await AutoProcessor.from_pretrained(path.basename(BUNDLED_CLIP_TOKENIZER));
    const reference = await processor(await RawImage.fromBlob(new Blob([png])));
    expect(reference.pixel_values.dims).toEqual([1, 3, 224, 224]);
    expect(maxAbsDiff(ours, reference.pixel_values.data as Float32Array)).toBeLessThan(1e-5);
  });

  it('resizes the shortest side to 224 and keeps a flat colour flat; applies EXIF orientation', async () => {
    const flat = await sharp({
      create: { width: 600, height: 400, channels: 3, background: { r: 255, g: 0, b: 128 } },
    })
      .jpeg({ quality: 100 })
      .toBuffer();
    const out = await preprocessImage(flat, CLIP_PREPROCESSING);
    expect(out.length).toBe(3 * 224 * 224);
    const red = (255 / 255 - CLIP_PREPROCESSING.mean[0]) / CLIP_PREPROCESSING.std[0];
    expect(Math.abs(out[0]! - red)).toBeLessThan(0.02);
    expect(Math.abs(out[224 * 224 - 1]! - red)).toBeLessThan(0.02);

    // A 20×10 image, left half black, right half white, stored with "rotate 90° CW" in EXIF.
    const halves = Uint8Array.from({ length: 20 * 10 * 3 }, (_, i) =>
      Math.floor(i / 3) % 20 < 10 ? 0 : 255,
    );
    const tagged = await sharp(halves, { raw: { width: 20, height: 10, channels: 3 } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const upright = await preprocessImage(tagged, { ...CLIP_PREPROCESSING, doNormalize: false });
    // Displayed upright it is 10 wide and 20 tall: black on top, white at the bottom.
    expect(upright[0]!).toBeLessThan(0.1);
    expect(upright[224 * 224 - 1]!).toBeGreaterThan(0.9);
  });
});

describe('CLIP encoders on a generated tiny model', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await writeTinyClip(path.join(await tempDir({ forFile: true }), 'tiny-clip'));
  });

  it('raw ONNX: unit-norm outputs; a batch equals items one by one', async () => {
    const encoder = await ClipOnnxEncoder.load(folder);
    expect(encoder.dim).toBe(64);
    const prepared = await Promise.all((await images()).map((b) => encoder.prepareImage(b)));
    const batch = await encoder.embedPrepared(prepared);
    for (const n of rowNorms(batch, encoder.dim)) expect(n).toBeCloseTo(1, 5);
    for (const [i, p] of prepared.entries()) {
      const single = await encoder.embedPrepared([p]);
      expect(maxAbsDiff(single, batch.subarray(i * 64, (i + 1) * 64))).toBeLessThan(1e-5);
    }
    const captions = ['a photo of a frog', 'a red sports car', 'an airplane in the sky'];
    const texts = await encoder.embedTexts(captions);
    for (const n of rowNorms(texts, 64)) expect(n).toBeCloseTo(1, 5);
    const one = await encoder.embedTexts([captions[1]!]);
    expect(maxAbsDiff(one, texts.subarray(64, 128))).toBeLessThan(1e-5);
    // Different inputs give different vectors (the towers are not constant).
    expect(maxAbsDiff(batch.subarray(0, 64), batch.subarray(64, 128))).toBeGreaterThan(1e-3);
    // Calls that overlap (the batch buffer is reused between calls) each embed their own images.
    const [first, second] = await Promise.all([
      encoder.embedPrepared(prepared.slice(0, 2)),
      encoder.embedPrepared([prepared[2]!, prepared[0]!]),
    ]);
    expect(maxAbsDiff(first!, batch.subarray(0, 128))).toBeLessThan(1e-5);
    expect(maxAbsDiff(second!.subarray(0, 64), batch.subarray(128, 192))).toBeLessThan(1e-5);
    expect(maxAbsDiff(second!.subarray(64, 128), batch.subarray(0, 64))).toBeLessThan(1e-5);
    await encoder.dispose();
  });

  it('a CLIP-shaped text transformer that takes any length runs captions at their own: the 77-token embeddings bit for bit, whatever the batch', async () => {
    const dir = await tempDir({ forFile: true });
    const shape = { text: 'transformer', textLayers: 2, width: 32 } as const;
    const any = await ClipOnnxEncoder.load(await writeTinyClip(path.join(dir, 'any'), shape));
    // The same weights in an export that takes exactly 77 tokens: runs them all, as before.
    const fixed = await ClipOnnxEncoder.load(
      await writeTinyClip(path.join(dir, 'fixed'), { ...shape, textFixedLength: true }),
    );
    expect([any.textAtCaptionLength, fixed.textAtCaptionLength]).toEqual([true, false]);
    const captions = [
      'a photo of a frog',
      '',
      'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen',
      'a long caption about a red car parked by a river '.repeat(3), // ~36 tokens
      'word '.repeat(200), // cut to 77 tokens
      'a dog',
    ];
    const own = await any.embedTexts(captions);
    const all77 = await fixed.embedTexts(captions);
    expect(maxAbsDiff(own, all77)).toBeLessThan(1e-6);
    // The tower is not constant: different captions give different vectors.
    expect(maxAbsDiff(own.subarray(0, 64), own.subarray(64, 128))).toBeGreaterThan(1e-3);
    // A caption's embedding depends on its own length only, not on the batch it came in.
    for (const [i, caption] of captions.entries())
      expect(await any.embedTexts([caption])).toEqual(own.subarray(i * 64, (i + 1) * 64));
    // The transformers.js path (Hugging Face layout) does the same with the same weights.
    const hf = await ClipHfEncoder.load(path.join(dir, 'any'));
    expect(hf.textAtCaptionLength).toBe(true);
    expect(maxAbsDiff(await hf.embedTexts(captions), all77)).toBeLessThan(1e-6);
    await Promise.all([any.dispose(), fixed.dispose(), hf.dispose()]);
  });

  it('the transformers.js path gives the same embeddings and fingerprint as the raw ONNX path', async () => {
    const raw = await ClipOnnxEncoder.load(folder);
    const hf = await ClipHfEncoder.load(folder);
    expect(hf.fingerprint).toBe(raw.fingerprint);
    expect(hf.dim).toBe(raw.dim);
    const bytes = await images();
    const a = await raw.embedPrepared(await Promise.all(bytes.map((b) => raw.prepareImage(b))));
    const b = await hf.embedPrepared(await Promise.all(bytes.map((x) => hf.prepareImage(x))));
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
    const captions = ['a frog', 'a truck parked outside'];
    expect(maxAbsDiff(await raw.embedTexts(captions), await hf.embedTexts(captions))).toBeLessThan(1e-5);
    await Promise.all([raw.dispose(), hf.dispose()]);
  });

  it('both layouts clean captions as CLIP does: mojibake, entities and curly quotes embed like the fixed text', async () => {
    const raw = await ClipOnnxEncoder.load(folder);
    const hf = await ClipHfEncoder.load(folder);
    for (const encoder of [raw, hf]) {
      const out = await encoder.embedTexts(['cafÃ© &amp;amp; â€œbarâ€\u009d', 'café & "bar"']);
      expect(maxAbsDiff(out.subarray(0, 64), out.subarray(64, 128))).toBe(0);
    }
    await Promise.all([raw.dispose(), hf.dispose()]);
  });

  it.skipIf(cudaInstalled())('device auto without CUDA libraries runs on CPU and says why', async () => {
    const encoder = await ClipOnnxEncoder.load(folder, { device: 'auto' });
    expect(encoder.provider).toBe('cpu');
    expect(encoder.providerNote).toMatch(/CUDA is not available .*; using CPU/);
    await encoder.dispose();
  });

  it.skipIf(cudaInstalled())(
    'an explicit --device cuda without CUDA libraries is an error, not CPU',
    async () => {
      await expect(ClipOnnxEncoder.load(folder, { device: 'cuda' })).rejects.toThrow(
        /--device cuda: CUDA is not available .*onnxruntime-node\/script\/install\.js/,
      );
    },
  );

  it('a folder without model files fails with a message naming what it looked for', async () => {
    const empty = await tempDir();
    await expect(ClipOnnxEncoder.load(empty)).rejects.toThrow(
      /no image model in .* \(looked for onnx\/vision_model\.onnx/,
    );
  });
});
