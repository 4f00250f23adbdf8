/**
 * Preprocessing in worker threads (src/embed/preprocessPool.ts) gives the bytes the calling thread
 * gives, fails as it does, and the table-driven normalisation (toChw) equals the per-pixel formula.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CLIP_PREPROCESSING,
  configurePreprocessPool,
  cropStart,
  preprocessImage,
  preprocessImageInThread,
  preprocessThreads,
  toChw,
  type ImagePreprocessorConfig,
} from '../../src/embed/preprocess.js';
import { channelTables } from '../../src/embed/pixels.js';
import { whileModelRuns } from '../../src/embed/preprocessPool.js';
import { resizeBicubicPillow, resizeBicubicPillowToPlanes } from '../../src/embed/resample.js';

const SOURCES = path.join(import.meta.dirname, '../fixtures/reference/pixels/sources');
const BROKEN = path.join(import.meta.dirname, '../fixtures/broken/folder');

const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

const CONFIGS: ImagePreprocessorConfig[] = [
  CLIP_PREPROCESSING,
  { ...CLIP_PREPROCESSING, cropOffset: 'floor', shortestEdge: 97, cropHeight: 64, cropWidth: 80 },
  { ...CLIP_PREPROCESSING, doNormalize: false, shortestEdge: 20, cropHeight: 40, cropWidth: 30 },
];

afterAll(() => configurePreprocessPool({}));

describe('preprocessing in worker threads', () => {
  it('gives byte-identical pixels to the calling thread, for every fixture and configuration', async () => {
    configurePreprocessPool({ threads: 2 });
    const files = (await readdir(SOURCES)).sort();
    expect(files.length).toBeGreaterThan(10);
    const images = await Promise.all(files.map((f) => readFile(path.join(SOURCES, f))));
    for (const config of CONFIGS) {
      // All at once, so both workers take jobs.
      const pooled = await Promise.all(images.map((b) => preprocessImage(b, config)));
      for (const [i, bytes] of images.entries()) {
        const here = await preprocessImageInThread(bytes, config);
        expect(bytesOf(pooled[i]!).equals(bytesOf(here)), `${files[i]} ${JSON.stringify(config)}`).toBe(true);
      }
    }
  });

  it('rejects an undecodable image with the calling thread’s message and keeps serving', async () => {
    configurePreprocessPool({ threads: 1 });
    const cut = await readFile(path.join(BROKEN, 'cut.jpg'));
    const here = await preprocessImageInThread(cut, CLIP_PREPROCESSING).then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(here).toBeTruthy();
    await expect(preprocessImage(cut, CLIP_PREPROCESSING)).rejects.toThrow(here!);
    await expect(preprocessImage(Buffer.from('not an image'), CLIP_PREPROCESSING)).rejects.toThrow();
    const good = await readFile(path.join(BROKEN, 'good.jpg'));
    expect((await preprocessImage(good, CLIP_PREPROCESSING)).length).toBe(3 * 224 * 224);
  });

  it('starts no image while a model runs under whileModelRuns, and finishes them once it returns', async () => {
    configurePreprocessPool({ threads: 1 });
    const good = await readFile(path.join(BROKEN, 'good.jpg'));
    await preprocessImage(good, CLIP_PREPROCESSING); // the worker is up
    let done = 0;
    const held = await whileModelRuns(async () => {
      const jobs = [0, 1, 2].map(() => preprocessImage(good, CLIP_PREPROCESSING).then(() => done++));
      // Far longer than three images take (a few ms each): none may finish while held.
      await new Promise((r) => setTimeout(r, 400));
      return { during: done, jobs };
    });
    expect(held.during).toBe(0);
    await Promise.all(held.jobs);
    expect(done).toBe(3);
  });

  it('takes a whole number of threads, 0 meaning the calling thread, and says what is wrong otherwise', async () => {
    expect(() => configurePreprocessPool({ threads: -1 })).toThrow(/preprocess threads.*got -1/);
    expect(() => configurePreprocessPool({ threads: 1.5 })).toThrow(/whole number/);
    configurePreprocessPool({ threads: 0 });
    expect(preprocessThreads()).toBe(0);
    const good = await readFile(path.join(BROKEN, 'good.jpg'));
    const here = await preprocessImageInThread(good, CLIP_PREPROCESSING);
    expect(bytesOf(await preprocessImage(good, CLIP_PREPROCESSING)).equals(bytesOf(here))).toBe(true);
    configurePreprocessPool({});
    expect(preprocessThreads()).toBeGreaterThanOrEqual(1);
  });
});

/** The normalisation as written per pixel, before toChw used lookup tables. */
function perPixel(rgb: Uint8Array, w: number, h: number, ch: number, config: ImagePreprocessorConfig) {
  const [outH, outW] = config.doCenterCrop ? [config.cropHeight, config.cropWidth] : [h, w];
  const top = config.doCenterCrop ? cropStart(h, outH, config.cropOffset) : 0;
  const left = config.doCenterCrop ? cropStart(w, outW, config.cropOffset) : 0;
  const out = new Float32Array(3 * outH * outW);
  for (let c = 0; c < 3; c++) {
    const scale = config.rescale / (config.doNormalize ? config.std[c]! : 1);
    const shift = config.doNormalize ? config.mean[c]! / config.std[c]! : 0;
    for (let y = 0; y < outH; y++)
      for (let x = 0; x < outW; x++) {
        const [sy, sx] = [y + top, x + left];
        const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        const v = inside ? rgb[(sy * w + sx) * ch + (ch < 3 ? 0 : c)]! : undefined;
        out[c * outH * outW + y * outW + x] = v === undefined ? -shift : v * scale - shift;
      }
  }
  return out;
}

describe('resize window', () => {
  it('gives exactly the window of the whole resize: enlargements, reductions, mixed, grey', () => {
    let seed = 3;
    const next = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (const [w, h, ch, ow, oh] of [
      [32, 32, 3, 224, 224],
      [96, 64, 3, 336, 224],
      [17, 301, 3, 224, 3966],
      [300, 200, 1, 120, 80],
      [50, 40, 3, 50, 61],
    ] as const) {
      const src = Uint8Array.from({ length: w * h * ch }, () => Math.floor(next() * 256));
      const whole = resizeBicubicPillow(src, w, h, ch, ow, oh);
      for (let trial = 0; trial < 4; trial++) {
        const width = 1 + Math.floor(next() * ow);
        const height = 1 + Math.floor(next() * oh);
        const box = {
          left: Math.floor(next() * (ow - width + 1)),
          top: Math.floor(next() * (oh - height + 1)),
          width,
          height,
        };
        const expected = new Uint8Array(width * height * ch);
        for (let y = 0; y < height; y++)
          expected.set(
            whole.subarray(
              ((y + box.top) * ow + box.left) * ch,
              ((y + box.top) * ow + box.left + width) * ch,
            ),
            y * width * ch,
          );
        const got = resizeBicubicPillow(src, w, h, ch, ow, oh, box);
        expect(
          Buffer.from(got).equals(Buffer.from(expected)),
          `${w}×${h} → ${ow}×${oh} ${JSON.stringify(box)}`,
        ).toBe(true);
      }
    }
    expect(() =>
      resizeBicubicPillow(new Uint8Array(12), 2, 2, 3, 4, 4, { left: 2, top: 0, width: 3, height: 1 }),
    ).toThrow(/window .* is not inside 4×4/);
  });
});

describe('resize straight into CHW planes', () => {
  it('equals the resized window through toChw bit for bit: edges, odd windows, mixed scales', () => {
    let seed = 11;
    const next = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (const [w, h, ow, oh, box] of [
      [32, 32, 224, 224, { left: 0, top: 0, width: 224, height: 224 }],
      [17, 301, 224, 3966, { left: 0, top: 1871, width: 224, height: 224 }],
      [96, 64, 336, 224, { left: 56, top: 0, width: 224, height: 224 }],
      [300, 20, 240, 61, { left: 7, top: 3, width: 31, height: 50 }],
      [40, 30, 40, 97, { left: 1, top: 0, width: 38, height: 97 }],
    ] as const) {
      const src = Uint8Array.from({ length: w * h * 3 }, () => Math.floor(next() * 256));
      for (const config of CONFIGS) {
        const window = resizeBicubicPillow(src, w, h, 3, ow, oh, box);
        const viaBytes = toChw(window, box.width, box.height, 3, { ...config, doCenterCrop: false });
        const direct = resizeBicubicPillowToPlanes(src, w, h, ow, oh, box, channelTables(config));
        expect(
          bytesOf(direct).equals(bytesOf(viaBytes)),
          `${w}×${h} → ${ow}×${oh} ${JSON.stringify(box)}`,
        ).toBe(true);
      }
    }
  });
});

describe('toChw', () => {
  it('equals the per-pixel formula bit for bit: crops inside and larger than the image, grey, no normalisation', () => {
    let seed = 1;
    const next = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (const [w, h, ch] of [
      [224, 300, 3],
      [31, 17, 3],
      [40, 33, 1],
      [250, 224, 3],
    ] as const) {
      const rgb = Uint8Array.from({ length: w * h * ch }, () => Math.floor(next() * 256));
      for (const config of [...CONFIGS, { ...CLIP_PREPROCESSING, doCenterCrop: false }]) {
        const expected = perPixel(rgb, w, h, ch, config);
        expect(bytesOf(toChw(rgb, w, h, ch, config)).equals(bytesOf(expected)), `${w}×${h}×${ch}`).toBe(true);
      }
    }
  });
});
