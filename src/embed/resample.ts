/**
 * Bicubic resize with Pillow's conventions, so CLIP preprocessing gives the reference pixels.
 *
 * OpenAI's `clip.py`, open_clip and Hugging Face's `CLIPImageProcessor` all resize with Pillow
 * (`Image.resize(size, BICUBIC)`, no reducing gap). Pillow's resampler (libImaging/Resample.c) is a
 * separable convolution, horizontal pass first, with:
 *   - output pixel x sampled at source coordinate (x + 0.5)·scale, i.e. pixel centres line up;
 *   - the Keys cubic kernel with a = −0.5 and support 2, stretched by the scale when reducing
 *     (antialiasing), truncated at the image edges and renormalised (edges are not mirrored);
 *   - weights rounded to 22-bit fixed point, each pass rounded and clipped to 8 bits.
 * libvips (sharp) samples an enlargement at x·(1/scale) − 0.5 instead, which shifts every enlarged
 * image by half a source pixel; hence this module. It follows the same arithmetic so results are
 * identical to Pillow's for 8-bit images (held by test/embed/referencePixels.test.ts).
 */

/** Pillow's PRECISION_BITS for 8-bit images: 32 − 8 − 2. */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);
const SUPPORT = 2;

/** Keys cubic convolution kernel, a = −0.5 (Pillow's BICUBIC). */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** For each output index: the first source index, the tap count, and `ksize` fixed-point weights. */
interface Taps {
  first: Int32Array;
  count: Int32Array;
  ksize: number;
  weights: Int32Array;
}

function computeTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = SUPPORT * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    // Pillow rounds the window ends with (int)(v + 0.5), which truncates towards zero.
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    const n = hi - lo;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      w[k] = bicubic((k + lo - center + 0.5) / filterScale);
      sum += w[k]!;
    }
    for (let k = 0; k < n; k++) {
      const v = sum !== 0 ? w[k]! / sum : w[k]!;
      weights[o * ksize + k] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    first[o] = lo;
    count[o] = n;
  }
  return { first, count, ksize, weights };
}

function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Horizontal pass over source rows [rowStart, rowStart + rows): width → outWidth. */
function horizontal(
  src: Uint8Array,
  width: number,
  channels: number,
  rowStart: number,
  rows: number,
  outWidth: number,
  taps: Taps,
): Uint8Array {
  const out = new Uint8Array(outWidth * rows * channels);
  const { first, count, ksize, weights } = taps;
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + rowStart) * width * channels;
    const rowOut = y * outWidth * channels;
    for (let x = 0; x < outWidth; x++) {
      const kBase = x * ksize;
      const n = count[x]!;
      const p = rowIn + first[x]! * channels;
      for (let c = 0; c < channels; c++) {
        let sum = HALF;
        let q = p + c;
        for (let k = 0; k < n; k++, q += channels) sum += src[q]! * weights[kBase + k]!;
        out[rowOut + x * channels + c] = clip8(sum);
      }
    }
  }
  return out;
}

/** Vertical pass: height → outHeight (taps' first rows relative to `rowStart`). */
function vertical(
  src: Uint8Array,
  width: number,
  channels: number,
  rowStart: number,
  outHeight: number,
  taps: Taps,
): Uint8Array {
  const stride = width * channels;
  const out = new Uint8Array(outHeight * stride);
  const { first, count, ksize, weights } = taps;
  const sums = new Float64Array(stride);
  for (let y = 0; y < outHeight; y++) {
    const kBase = y * ksize;
    const top = (first[y]! - rowStart) * stride;
    const n = count[y]!;
    const rowOut = y * stride;
    if (n === 4) {
      // Every row of an enlargement away from the edges: four taps, one pass over the row. The sums
      // are integers well inside float64's exact range, so adding the taps in another order than
      // Pillow gives its exact results.
      const w0 = weights[kBase]!;
      const w1 = weights[kBase + 1]!;
      const w2 = weights[kBase + 2]!;
      const w3 = weights[kBase + 3]!;
      for (let i = 0, r = top; i < stride; i++, r++)
        out[rowOut + i] = clip8(
          HALF + src[r]! * w0 + src[r + stride]! * w1 + src[r + 2 * stride]! * w2 + src[r + 3 * stride]! * w3,
        );
      continue;
    }
    sums.fill(HALF);
    for (let k = 0; k < n; k++) {
      const wk = weights[kBase + k]!;
      const row = top + k * stride;
      for (let i = 0; i < stride; i++) sums[i]! += src[row + i]! * wk;
    }
    for (let i = 0; i < stride; i++) out[rowOut + i] = clip8(sums[i]!);
  }
  return out;
}

/**
 * Resize interleaved 8-bit pixels (`channels` per pixel) to outWidth × outHeight exactly as Pillow's
 * `Image.resize((outWidth, outHeight), Image.BICUBIC)` does.
 */
export function resizeBicubicPillow(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  if (src.length !== width * height * channels)
    throw new Error(`resize: ${src.length} bytes is not ${width}×${height}×${channels}`);
  const needHorizontal = outWidth !== width;
  const needVertical = outHeight !== height;
  if (!needHorizontal && !needVertical) return src;
  const vTaps = needVertical ? computeTaps(height, outHeight) : undefined;
  let pixels = src;
  let rowStart = 0;
  if (needHorizontal) {
    // Only the source rows the vertical pass reads (Pillow's ybox), all of them without one.
    const firstRow = vTaps ? vTaps.first[0]! : 0;
    const lastRow = vTaps ? vTaps.first[outHeight - 1]! + vTaps.count[outHeight - 1]! : height;
    pixels = horizontal(
      src,
      width,
      channels,
      firstRow,
      lastRow - firstRow,
      outWidth,
      computeTaps(width, outWidth),
    );
    rowStart = firstRow;
  }
  if (vTaps) pixels = vertical(pixels, outWidth, channels, rowStart, outHeight, vTaps);
  return pixels;
}
