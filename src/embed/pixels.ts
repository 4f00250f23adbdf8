import { imageSize } from 'image-size';
import sharp from 'sharp';
import { resizeBicubicPillow, resizeBicubicPillowToPlanes, type PixelBox } from './resample.js';

/**
 * The pixel work of CLIP preprocessing, on the calling thread: decode, shortest-edge resize, centre
 * crop, rescale and normalise into CHW floats. `preprocess.ts` runs it in worker threads
 * (`preprocessPool.ts`) and holds the configurations; the reference conventions are described there.
 */

/**
 * Where a centre crop starts when the excess (size − crop) is odd:
 * - `round-half-even`: torchvision's `CenterCrop`, used by OpenAI's `clip.py` and open_clip:
 *   int(round((size − crop) / 2)) with Python's banker's rounding;
 * - `floor`: Hugging Face's `CLIPImageProcessor.center_crop`: (size − crop) // 2.
 */
export type CropOffset = 'round-half-even' | 'floor';

export interface ImagePreprocessorConfig {
  shortestEdge: number;
  cropHeight: number;
  cropWidth: number;
  mean: [number, number, number];
  std: [number, number, number];
  rescale: number;
  doResize: boolean;
  doCenterCrop: boolean;
  doNormalize: boolean;
  cropOffset: CropOffset;
}

/**
 * Output size of the shortest-edge resize, as torchvision and transformers compute it: the short side
 * becomes `shortestEdge`, the long side int(shortestEdge · long / short) (truncated); an image whose
 * short side already has that length is left as it is.
 */
export function resizedSize(width: number, height: number, shortestEdge: number): [number, number] {
  if (Math.min(width, height) === shortestEdge) return [width, height];
  if (width <= height) return [shortestEdge, Math.floor((shortestEdge * height) / width)];
  return [Math.floor((shortestEdge * width) / height), shortestEdge];
}

/**
 * Decode and preprocess one image into a CHW float32 array of 3 × cropHeight × cropWidth.
 *
 * Enlargements (every CIFAR-sized or thumbnail image) and same-size images get Pillow's exact
 * arithmetic (`resample.ts`). Reductions go through libvips' antialiased cubic with shrink-on-load off:
 * it agrees with Pillow to within 0.17 grey levels on average on the reference fixtures (a JPEG's
 * DCT shrink-on-load would not: 0.63) and is several times faster than the exact JavaScript path on
 * large photos, which would otherwise bound the embed pipeline.
 */
export async function preprocessImageInThread(
  bytes: Buffer,
  config: ImagePreprocessorConfig,
): Promise<Float32Array> {
  const image = sharp(bytes, { failOn: 'error' }).rotate().toColourspace('srgb').removeAlpha();
  const shown = displayedSize(bytes);
  if (config.doResize && shown) {
    const [w, h] = resizedSize(shown.width, shown.height, config.shortestEdge);
    if (w < shown.width && h < shown.height) {
      const { data, info } = await image
        .resize(w, h, { kernel: 'cubic', fit: 'fill', fastShrinkOnLoad: false })
        .raw()
        .toBuffer({ resolveWithObject: true });
      return toChw(data, info.width, info.height, info.channels, config);
    }
  }
  const decoded = await image.raw().toBuffer({ resolveWithObject: true });
  let { width, height } = decoded.info;
  const channels = decoded.info.channels;
  let pixels: Uint8Array = decoded.data;
  if (config.doResize) {
    const [w, h] = resizedSize(width, height, config.shortestEdge);
    // Only the part the centre crop keeps is resized (the same pixels, fewer of them); an axis shorter
    // than the crop is kept whole, and toChw pads it.
    const box = config.doCenterCrop ? cropBox(w, h, config) : { left: 0, top: 0, width: w, height: h };
    // The usual case (an enlargement whose window is the whole crop) goes straight to CHW floats.
    if (channels === 3 && h !== height && box.width === config.cropWidth && box.height === config.cropHeight)
      return resizeBicubicPillowToPlanes(pixels, width, height, w, h, box, channelTables(config));
    pixels = resizeBicubicPillow(pixels, width, height, channels, w, h, box);
    [width, height] = [box.width, box.height];
  }
  return toChw(pixels, width, height, channels, config);
}

/** The centre crop's window inside a width × height image, clamped to the image. */
function cropBox(width: number, height: number, config: ImagePreprocessorConfig): PixelBox {
  const left = Math.max(0, cropStart(width, config.cropWidth, config.cropOffset));
  const top = Math.max(0, cropStart(height, config.cropHeight, config.cropOffset));
  return { left, top, width: Math.min(width, config.cropWidth), height: Math.min(height, config.cropHeight) };
}

/** Width and height as displayed (EXIF orientation applied), from the header alone. */
function displayedSize(bytes: Buffer): { width: number; height: number } | undefined {
  try {
    const s = imageSize(bytes);
    if (!s.width || !s.height) return undefined;
    return (s.orientation ?? 1) >= 5
      ? { width: s.height, height: s.width }
      : { width: s.width, height: s.height };
  } catch {
    return undefined;
  }
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Top-left corner of a `crop`-long centre crop of a `size`-long side (negative: the image is smaller
 * and is padded, torchvision putting the odd pixel of padding after it, transformers before).
 */
export function cropStart(size: number, crop: number, convention: CropOffset): number {
  if (size < crop)
    return convention === 'floor' ? -Math.ceil((crop - size) / 2) : -Math.floor((crop - size) / 2);
  return convention === 'floor' ? Math.floor((size - crop) / 2) : roundHalfEven((size - crop) / 2);
}

/** Centre crop (offsets by `config.cropOffset`), rescale and normalise interleaved RGB bytes into CHW floats. */
export function toChw(
  rgb: Uint8Array,
  width: number,
  height: number,
  channels: number,
  config: ImagePreprocessorConfig,
): Float32Array {
  const [outH, outW] = config.doCenterCrop ? [config.cropHeight, config.cropWidth] : [height, width];
  const top = config.doCenterCrop ? cropStart(height, outH, config.cropOffset) : 0;
  const left = config.doCenterCrop ? cropStart(width, outW, config.cropOffset) : 0;
  const plane = outH * outW;
  const tables = channelTables(config);
  const out = new Float32Array(3 * plane);
  // The part of the crop inside the image; crops larger than the image pad with zeros (before
  // normalisation), as transformers' center_crop does.
  const y0 = Math.max(0, -top);
  const y1 = Math.min(outH, height - top);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(outW, width - left);
  if (y0 > 0 || x0 > 0 || y1 < outH || x1 < outW)
    for (let c = 0; c < 3; c++)
      out.fill(config.doNormalize ? -config.mean[c]! / config.std[c]! : -0, c * plane, (c + 1) * plane);
  for (let c = 0; c < 3; c++) {
    // A grey image (one channel) feeds the same byte to all three planes.
    const offset = channels < 3 ? 0 : c;
    const planeOut = out.subarray(c * plane, (c + 1) * plane);
    for (let y = y0; y < y1; y++)
      mapRow(
        rgb,
        ((y + top) * width + x0 + left) * channels + offset,
        channels,
        tables[c]!,
        planeOut,
        y * outW + x0,
        x1 - x0,
      );
  }
  return out;
}

const tablesOf = new Map<string, [Float32Array, Float32Array, Float32Array]>();

/**
 * Each channel's 256 possible values after rescaling and normalisation, computed as the per-pixel
 * formula v · scale − shift would (a float32 table holds exactly what storing that double in the
 * output does). Kept per normalisation (not per configuration object: every job a worker receives
 * carries its own copy of the configuration), so callers may cache by the tables' identity.
 */
export function channelTables(config: ImagePreprocessorConfig): [Float32Array, Float32Array, Float32Array] {
  const key = JSON.stringify([config.rescale, config.doNormalize, config.mean, config.std]);
  let tables = tablesOf.get(key);
  if (!tables) {
    const table = (c: number) => {
      const scale = config.rescale / (config.doNormalize ? config.std[c]! : 1);
      const shift = config.doNormalize ? config.mean[c]! / config.std[c]! : 0;
      return Float32Array.from({ length: 256 }, (_, v) => v * scale - shift);
    };
    tables = [table(0), table(1), table(2)];
    tablesOf.set(key, tables);
  }
  return tables;
}

/** planeOut[o + j] = table[rgb[i + j · step]] for j < count: one channel of one row through its table. */
function mapRow(
  rgb: Uint8Array,
  i: number,
  step: number,
  table: Float32Array,
  planeOut: Float32Array,
  o: number,
  count: number,
): void {
  for (const end = o + count; o < end; o++, i += step) planeOut[o] = table[rgb[i]!]!;
}
