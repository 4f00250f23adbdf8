import { readFile } from 'node:fs/promises';
import type { ImagePreprocessorConfig } from './pixels.js';
import { preprocessOffThread } from './preprocessPool.js';

/**
 * CLIP image preprocessing that reproduces the reference pipelines' pixels: decode (EXIF orientation
 * applied, sRGB, alpha dropped), resize so the shortest side equals `size.shortest_edge` with Pillow's
 * bicubic (torchvision and transformers both call Pillow; see `preprocessImageInThread`), centre crop,
 * rescale to [0, 1], normalise with the model's mean/std, CHW float32. The two reference conventions
 * differ only in the crop offset: see `CropOffset`. Deliberate differences from the references are
 * listed in docs/embedding.md. The pixel work itself is in `pixels.ts`; `preprocessImage` runs it in
 * worker threads so that it overlaps inference (see `preprocessPool.ts`).
 */

export {
  cropStart,
  preprocessImageInThread,
  resizedSize,
  toChw,
  type CropOffset,
  type ImagePreprocessorConfig,
} from './pixels.js';
export { configurePreprocessPool, preprocessThreads } from './preprocessPool.js';

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
 * Decode and preprocess one image into a CHW float32 array of 3 × cropHeight × cropWidth, in one of the
 * preprocessing worker threads: the same pixels as `preprocessImageInThread`, without taking the
 * calling thread (onnxruntime-node's `run` holds the main thread while the model runs, so work left
 * there could not overlap inference).
 */
export function preprocessImage(bytes: Buffer, config: ImagePreprocessorConfig): Promise<Float32Array> {
  return preprocessOffThread(bytes, config);
}
