/**
 * Single-layer unsupervised image features after Coates, Lee & Ng, "An Analysis of Single-Layer Networks
 * in Unsupervised Feature Learning" (AISTATS 2011): 6×6 patches of a 32×32 image, each brightness/contrast
 * normalised and ZCA-whitened, encoded against a k-means dictionary with the "triangle" activation
 * f_k(x) = max(0, μ(z) − z_k), z_k = ‖x − c_k‖, then average-pooled over the four quadrants.
 * The whole feature map runs as one ONNX graph (convolutions and 1×1 products on onnxruntime).
 */
import sharp from 'sharp';
import { GraphBuilder } from '../../../compute/onnxGraph.js';
import { dense, transpose, type Dense } from '../../../compute/linalg.js';

export const IMAGE_SIDE = 32;
export const PATCH = 6;
export const CHANNELS = 3;
export const PATCH_DIM = CHANNELS * PATCH * PATCH; // 108
export const POSITIONS = IMAGE_SIDE - PATCH + 1; // 27: stride-1 patches
/** Brightness/contrast normalisation constant for [0, 255] pixels (the paper's 10). */
export const CONTRAST_EPS = 10;

/** Decode, apply EXIF orientation, centre-crop to a square and resize to 32×32: CHW floats in [0, 255]. */
export async function decodeSmall(bytes: Buffer): Promise<Float32Array> {
  const { data } = await sharp(bytes, { failOn: 'error' })
    .rotate()
    .toColourspace('srgb')
    .removeAlpha()
    .resize(IMAGE_SIDE, IMAGE_SIDE, { fit: 'cover', kernel: 'cubic' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const out = new Float32Array(CHANNELS * IMAGE_SIDE * IMAGE_SIDE);
  const plane = IMAGE_SIDE * IMAGE_SIDE;
  for (let i = 0; i < plane; i++)
    for (let c = 0; c < CHANNELS; c++) out[c * plane + i] = data[i * CHANNELS + c]!;
  return out;
}

/**
 * Random patches for fitting, each normalised for brightness and contrast: (p − mean(p)) / sqrt(var(p) + 10).
 * The patch vector is ordered (channel, dy, dx), the layout of the convolution that extracts them.
 */
export function samplePatches(images: Float32Array[], perImage: number, random: () => number): Dense {
  const out = dense(images.length * perImage, PATCH_DIM);
  const plane = IMAGE_SIDE * IMAGE_SIDE;
  let row = 0;
  for (const image of images) {
    for (let p = 0; p < perImage; p++, row++) {
      const y = Math.floor(random() * POSITIONS);
      const x = Math.floor(random() * POSITIONS);
      const v = out.data.subarray(row * PATCH_DIM, (row + 1) * PATCH_DIM);
      let i = 0;
      for (let c = 0; c < CHANNELS; c++) {
        for (let dy = 0; dy < PATCH; dy++) {
          for (let dx = 0; dx < PATCH; dx++) v[i++] = image[c * plane + (y + dy) * IMAGE_SIDE + (x + dx)]!;
        }
      }
      normalisePatch(v);
    }
  }
  return out;
}

export function normalisePatch(v: Float32Array): void {
  let mean = 0;
  for (const x of v) mean += x;
  mean /= v.length;
  let variance = 0;
  for (const x of v) variance += (x - mean) ** 2;
  // The graph's ReduceMean computes the population variance; match it.
  const scale = 1 / Math.sqrt(variance / v.length + CONTRAST_EPS);
  for (let i = 0; i < v.length; i++) v[i] = (v[i]! - mean) * scale;
}

export interface ImageFeatureParams {
  /** ZCA: z = (p − mean) · W, as W (108×108) and bias b = −mean · W (108). */
  zcaW: Dense;
  zcaB: Float32Array<ArrayBuffer>;
  /** k-means dictionary in whitened space, K × 108. */
  centroids: Dense;
}

/** Feature length: K centroids × 4 quadrants. */
export const featureLength = (k: number) => 4 * k;

/**
 * The feature graph: pixels [B,3,32,32] → features [B, 4K]; with `projection` (4K × D, bias D) it also
 * maps them to the shared space: [B, D]. Comments name the step of Coates et al. each node implements.
 */
export function featureGraph(
  params: ImageFeatureParams,
  projection?: { w: Dense; b: Float32Array<ArrayBuffer> },
): Uint8Array {
  const g = new GraphBuilder('offline_image_features');
  const k = params.centroids.rows;
  const x = g.input('pixels', 'float32', ['batch', CHANNELS, IMAGE_SIDE, IMAGE_SIDE]);

  // Dense patch extraction (stride 1): a convolution with one-hot kernels, output channel = (c, dy, dx).
  const eye = new Float32Array(PATCH_DIM * PATCH_DIM);
  for (let o = 0; o < PATCH_DIM; o++) eye[o * PATCH_DIM + o] = 1;
  const patches = g.op('Conv', [x, g.constant(eye, [PATCH_DIM, CHANNELS, PATCH, PATCH])]);

  // Per-patch brightness and contrast normalisation: (p − μ_p) / sqrt(σ²_p + 10).
  const mean = g.op('ReduceMean', [patches], { axes: [1], keepdims: 1 });
  const centred = g.op('Sub', [patches, mean]);
  const variance = g.op('ReduceMean', [g.op('Mul', [centred, centred])], { axes: [1], keepdims: 1 });
  const eps = g.constant(Float32Array.of(CONTRAST_EPS), [1]);
  const normalised = g.op('Div', [centred, g.op('Sqrt', [g.op('Add', [variance, eps])])]);

  // ZCA whitening as a 1×1 convolution: weight[o, i] = W[i, o].
  const zcaT = transpose(params.zcaW).data;
  const white = g.op('Conv', [
    normalised,
    g.constant(zcaT, [PATCH_DIM, PATCH_DIM, 1, 1]),
    g.constant(params.zcaB, [PATCH_DIM]),
  ]);

  // Distances to the dictionary: z_k = sqrt(‖x‖² − 2 x·c_k + ‖c_k‖²).
  const dots = g.op('Conv', [white, g.constant(params.centroids.data, [k, PATCH_DIM, 1, 1])]);
  const xx = g.op('ReduceSum', [g.op('Mul', [white, white]), g.ints([1])], { keepdims: 1 });
  const cc = new Float32Array(k);
  for (let c = 0; c < k; c++)
    for (let j = 0; j < PATCH_DIM; j++) cc[c]! += params.centroids.data[c * PATCH_DIM + j]! ** 2;
  const two = g.constant(Float32Array.of(2), [1]);
  const squared = g.op('Add', [g.op('Sub', [xx, g.op('Mul', [dots, two])]), g.constant(cc, [1, k, 1, 1])]);
  const dist = g.op('Sqrt', [g.op('Relu', [squared])]);

  // Triangle activation: f_k = max(0, mean_k(z) − z_k).
  const meanDist = g.op('ReduceMean', [dist], { axes: [1], keepdims: 1 });
  const active = g.op('Relu', [g.op('Sub', [meanDist, dist])]);

  // Quadrant pooling over the 27×27 map (windows of 14 with stride 13 cover it in 2×2).
  const pooled = g.op('AveragePool', [active], { kernel_shape: [14, 14], strides: [13, 13] });
  const features = g.op('Flatten', [pooled], { axis: 1 }, projection ? undefined : 'features');
  if (!projection) {
    g.output('features', 'float32', ['batch', featureLength(k)]);
    return g.toBytes();
  }
  const projected = g.op('MatMul', [
    features,
    g.constant(projection.w.data, [projection.w.rows, projection.w.cols]),
  ]);
  g.op('Add', [projected, g.constant(projection.b, [projection.w.cols])], {}, 'embeds');
  g.output('embeds', 'float32', ['batch', projection.w.cols]);
  return g.toBytes();
}
