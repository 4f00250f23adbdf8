import { readFile } from 'node:fs/promises';
import { imageSize } from 'image-size';
import sharp from 'sharp';

/**
 * CLIP image preprocessing driven by a Hugging Face `preprocessor_config.json`: EXIF orientation, RGB,
 * resize so the shortest side equals `size.shortest_edge` (bicubic, antialiased like PIL's), centre
 * crop, rescale to [0, 1], normalise with the model's mean/std, CHW float32.
 */
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
}

/** OpenAI CLIP's values, for raw ONNX exports that ship no preprocessor config. */
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
  };
}

/** Output size of the shortest-edge resize, as transformers computes it (long side truncated). */
export function resizedSize(width: number, height: number, shortestEdge: number): [number, number] {
  if (width <= height) return [shortestEdge, Math.floor((shortestEdge * height) / width)];
  return [Math.floor((shortestEdge * width) / height), shortestEdge];
}

/** Decode and preprocess one image into a CHW float32 array of 3 × cropHeight × cropWidth. */
export async function preprocessImage(bytes: Buffer, config: ImagePreprocessorConfig): Promise<Float32Array> {
  const image = sharp(bytes, { failOn: 'error' }).rotate().toColourspace('srgb').removeAlpha();
  const { cropHeight, cropWidth, shortestEdge } = config;
  if (config.doResize && config.doCenterCrop && cropHeight === shortestEdge && cropWidth === shortestEdge) {
    // CLIP's case in one libvips pass: shortest side to the crop size, then the centre crop ("cover").
    const { data, info } = await image
      .resize(cropWidth, cropHeight, { fit: 'cover', position: 'centre', kernel: 'cubic' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return toChw(data, info.width, info.height, info.channels, config);
  }
  let { width, height } = displayedSize(bytes) ?? { width: 0, height: 0 };
  let resized = image;
  if (config.doResize) {
    const [w, h] = resizedSize(width, height, shortestEdge);
    if (w !== width || h !== height) resized = image.resize(w, h, { kernel: 'cubic', fit: 'fill' });
    [width, height] = [w, h];
  }
  const { data, info } = await resized.raw().toBuffer({ resolveWithObject: true });
  return toChw(data, info.width, info.height, info.channels, config);
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

/** Centre crop (transformers' offsets), rescale and normalise interleaved RGB bytes into CHW floats. */
export function toChw(
  rgb: Uint8Array,
  width: number,
  height: number,
  channels: number,
  config: ImagePreprocessorConfig,
): Float32Array {
  const [outH, outW] = config.doCenterCrop ? [config.cropHeight, config.cropWidth] : [height, width];
  const top = Math.floor((height - outH) / 2);
  const left = Math.floor((width - outW) / 2);
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
