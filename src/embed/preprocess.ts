import { readFile } from 'node:fs/promises';
import { imageSize } from 'image-size';
import sharp from 'sharp';
import { resizeBicubicPillow } from './resample.js';

/**
 * CLIP image preprocessing that reproduces the reference pipelines' pixels: decode (EXIF orientation
 * applied, sRGB, alpha dropped), resize so the shortest side equals `size.shortest_edge` with Pillow's
 * bicubic (torchvision and transformers both call Pillow; see `preprocessImage`), centre crop, rescale to
 * [0, 1], normalise with the model's mean/std, CHW float32. The two reference conventions differ only
 * in the crop offset: see `CropOffset`. Deliberate differences from the references are listed in
 * docs/embedding.md.
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

/** OpenAI CLIP's values and torchvision's crop, for raw ONNX exports that ship no preprocessor config. */
export const CLIP_PREPROCESSING: ImagePreprocessorConfig = {
  shortestEdge: 224,
  cropHeight: 224,
  cropWidth: 224,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
  rescale: 1 / 255,
  doResize: true,
  doCenterCrop: true,
  doNormalize: true,
  cropOffset: 'round-half-even',
};

interface HfPreprocessorJson {
  size?: number | { shortest_edge?: number; height?: number; width?: number };
  crop_size?: number | { height: number; width: number };
  image_mean?: number[];
  image_std?: number[];
  rescale_factor?: number;
  do_resize?: boolean;
  do_center_crop?: boolean;
  do_normalize?: boolean;
}

export async function loadPreprocessorConfig(file: string): Promise<ImagePreprocessorConfig> {
  const json = JSON.parse(await readFile(file, 'utf8')) as HfPreprocessorJson;
  const size = typeof json.size === 'number' ? json.size : (json.size?.shortest_edge ?? json.size?.height);
  const crop =
    typeof json.crop_size === 'number' ? { height: json.crop_size, width: json.crop_size } : json.crop_size;
  const triple = (v: number[] | undefined, fallback: [number, number, number]): [number, number, number] =>
    v && v.length === 3 ? [v[0]!, v[1]!, v[2]!] : fallback;
  return {
    shortestEdge: size ?? CLIP_PREPROCESSING.shortestEdge,
    cropHeight: crop?.height ?? size ?? CLIP_PREPROCESSING.cropHeight,
    cropWidth: crop?.width ?? size ?? CLIP_PREPROCESSING.cropWidth,
    mean: triple(json.image_mean, CLIP_PREPROCESSING.mean),
    std: triple(json.image_std, CLIP_PREPROCESSING.std),
    rescale: json.rescale_factor ?? CLIP_PREPROCESSING.rescale,
    doResize: json.do_resize ?? true,
    doCenterCrop: json.do_center_crop ?? true,
    doNormalize: json.do_normalize ?? true,
    // A preprocessor_config.json is read by Hugging Face's image processor, which floors the offset.
    cropOffset: 'floor',
  };
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
export async function preprocessImage(bytes: Buffer, config: ImagePreprocessorConfig): Promise<Float32Array> {
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
    pixels = resizeBicubicPillow(pixels, width, height, channels, w, h);
    [width, height] = [w, h];
  }
  return toChw(pixels, width, height, channels, config);
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
  const out = new Float32Array(3 * outH * outW);
  const plane = outH * outW;
  const scale = [0, 1, 2].map((c) => config.rescale / (config.doNormalize ? config.std[c]! : 1));
  const shift = [0, 1, 2].map((c) => (config.doNormalize ? config.mean[c]! / config.std[c]! : 0));
  const [s0, s1, s2] = scale as [number, number, number];
  const [h0, h1, h2] = shift as [number, number, number];
  const gray = channels < 3;
  for (let y = 0; y < outH; y++) {
    const sy = y + top;
    for (let x = 0; x < outW; x++) {
      const sx = x + left;
      const o = y * outW + x;
      // Crops larger than the image pad with zeros, as transformers' center_crop does.
      if (sy < 0 || sy >= height || sx < 0 || sx >= width) {
        out[o] = -h0;
        out[plane + o] = -h1;
        out[2 * plane + o] = -h2;
        continue;
      }
      const i = (sy * width + sx) * channels;
      out[o] = rgb[i]! * s0 - h0;
      out[plane + o] = rgb[gray ? i : i + 1]! * s1 - h1;
      out[2 * plane + o] = rgb[gray ? i : i + 2]! * s2 - h2;
    }
  }
  return out;
}
