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

/** Horizontal pass over source rows [rowStart, rowStart + rows), output columns [colStart, colStart + cols). */
function horizontal(
  src: Uint8Array,
  width: number,
  channels: number,
  rowStart: number,
  rows: number,
  taps: Taps,
  colStart: number,
  cols: number,
): Uint8Array {
  // A clamped array stores what Pillow's clip8 gives: below 0 → 0, above 255 → 255. The sums fit in
  // 32 bits by construction of PRECISION_BITS (Pillow accumulates in an int), so `| 0` and `>>` are
  // exact and keep V8 on integer arithmetic.
  const out = new Uint8ClampedArray(cols * rows * channels);
  const { first, count, ksize, weights } = taps;
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + rowStart) * width * channels;
    let o = y * cols * channels;
    for (let x = colStart; x < colStart + cols; x++) {
      const kBase = x * ksize;
      const n = count[x]!;
      const p = rowIn + first[x]! * channels;
      if (channels === 3) {
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let k = 0, q = p; k < n; k++, q += 3) {
          const w = weights[kBase + k]!;
          s0 = (s0 + src[q]! * w) | 0;
          s1 = (s1 + src[q + 1]! * w) | 0;
          s2 = (s2 + src[q + 2]! * w) | 0;
        }
        out[o++] = s0 >> PRECISION_BITS;
        out[o++] = s1 >> PRECISION_BITS;
        out[o++] = s2 >> PRECISION_BITS;
        continue;
      }
      for (let c = 0; c < channels; c++) {
        let sum = HALF;
        for (let k = 0, q = p + c; k < n; k++, q += channels) sum = (sum + src[q]! * weights[kBase + k]!) | 0;
        out[o++] = sum >> PRECISION_BITS;
      }
    }
  }
  return new Uint8Array(out.buffer);
}

/** Vertical pass: output rows [rowFrom, rowFrom + rows) of `taps`, from `src` whose first row is source row `rowStart`. */
function vertical(
  src: Uint8Array,
  stride: number,
  rowStart: number,
  taps: Taps,
  rowFrom: number,
  rows: number,
): Uint8Array {
  const out = new Uint8ClampedArray(rows * stride);
  const { first, count, ksize, weights } = taps;
  const sums = new Int32Array(stride);
  for (let y = 0; y < rows; y++) {
    const kBase = (y + rowFrom) * ksize;
    const top = (first[y + rowFrom]! - rowStart) * stride;
    const n = count[y + rowFrom]!;
    const rowOut = y * stride;
    if (n === 4) {
      // Every row of an enlargement away from the edges: four taps, one pass over the row.
      const w0 = weights[kBase]!;
      const w1 = weights[kBase + 1]!;
      const w2 = weights[kBase + 2]!;
      const w3 = weights[kBase + 3]!;
      for (let i = 0, r = top; i < stride; i++, r++)
        out[rowOut + i] =
          ((HALF +
            src[r]! * w0 +
            src[r + stride]! * w1 +
            src[r + 2 * stride]! * w2 +
            src[r + 3 * stride]! * w3) |
            0) >>
          PRECISION_BITS;
      continue;
    }
    sums.fill(HALF);
    for (let k = 0; k < n; k++) {
      const wk = weights[kBase + k]!;
      const row = top + k * stride;
      for (let i = 0; i < stride; i++) sums[i] = (sums[i]! + src[row + i]! * wk) | 0;
    }
    for (let i = 0; i < stride; i++) out[rowOut + i] = sums[i]! >> PRECISION_BITS;
  }
  return new Uint8Array(out.buffer);
}

/** A window of the resized image: the only part computed (a centre crop, say). */
export interface PixelBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Resize interleaved 8-bit pixels (`channels` per pixel) to outWidth × outHeight exactly as Pillow's
 * `Image.resize((outWidth, outHeight), Image.BICUBIC)` does; with `box`, only that window of the
 * result (box.width × box.height pixels, the same values as cropping the whole result), which spares
 * the rows and columns a centre crop would throw away.
 */
export function resizeBicubicPillow(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  box: PixelBox = { left: 0, top: 0, width: outWidth, height: outHeight },
): Uint8Array {
  if (src.length !== width * height * channels)
    throw new Error(`resize: ${src.length} bytes is not ${width}×${height}×${channels}`);
  if (
    box.left < 0 ||
    box.top < 0 ||
    box.width < 1 ||
    box.height < 1 ||
    box.left + box.width > outWidth ||
    box.top + box.height > outHeight
  )
    throw new Error(`resize: window ${JSON.stringify(box)} is not inside ${outWidth}×${outHeight}`);
  const needHorizontal = outWidth !== width;
  const needVertical = outHeight !== height;
  const whole = box.width === outWidth && box.height === outHeight;
  if (!needHorizontal && !needVertical && whole) return src;
  const vTaps = needVertical ? computeTaps(height, outHeight) : undefined;
  // Source rows the vertical pass reads for the window's rows (Pillow's ybox), or the window's rows.
  const firstRow = vTaps ? vTaps.first[box.top]! : box.top;
  const endRow = vTaps
    ? vTaps.first[box.top + box.height - 1]! + vTaps.count[box.top + box.height - 1]!
    : box.top + box.height;
  const hTaps = needHorizontal ? computeTaps(width, outWidth) : identityTaps(width);
  const pixels = horizontal(src, width, channels, firstRow, endRow - firstRow, hTaps, box.left, box.width);
  if (!vTaps) return pixels;
  return vertical(pixels, box.width * channels, firstRow, vTaps, box.top, box.height);
}

/**
 * The same resize as `resizeBicubicPillow(src, …, box)` for 3-channel pixels, written straight into
 * three planes of floats: byte v of channel c becomes `tables[c][v]` at `planes[c · box.width ·
 * box.height + y · box.width + x]`. It spares the 8-bit copy of the window and the pass that turns it
 * into CHW floats (together a third of the pixel work of a CIFAR image enlarged to 224 × 224). Only
 * for enlargements of both axes, the case `resizeBicubicPillow` would run a vertical pass for.
 */
export function resizeBicubicPillowToPlanes(
  src: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  box: PixelBox,
  tables: readonly [Float32Array, Float32Array, Float32Array],
): Float32Array {
  if (outHeight === height) throw new Error('resizeBicubicPillowToPlanes: the height does not change');
  const vTaps = computeTaps(height, outHeight);
  const firstRow = vTaps.first[box.top]!;
  const endRow = vTaps.first[box.top + box.height - 1]! + vTaps.count[box.top + box.height - 1]!;
  const hTaps = outWidth !== width ? computeTaps(width, outWidth) : identityTaps(width);
  const rows = horizontal(src, width, 3, firstRow, endRow - firstRow, hTaps, box.left, box.width);
  return verticalToPlanes(rows, box.width, firstRow, vTaps, box.top, box.height, tables);
}

/** `vertical` for 3 channels, each clipped byte looked up in its channel's table and stored in its plane. */
function verticalToPlanes(
  src: Uint8Array,
  cols: number,
  rowStart: number,
  taps: Taps,
  rowFrom: number,
  rows: number,
  tables: readonly [Float32Array, Float32Array, Float32Array],
): Float32Array {
  const stride = cols * 3;
  const plane = cols * rows;
  const out = new Float32Array(3 * plane);
  const { first, count, ksize, weights } = taps;
  const w = new Int32Array(ksize);
  const clipped = clippedTables(tables);
  for (let y = 0; y < rows; y++) {
    const kBase = (y + rowFrom) * ksize;
    const top = (first[y + rowFrom]! - rowStart) * stride;
    const n = count[y + rowFrom]!;
    if (n === 4) {
      // The usual enlargement: four taps, one channel at a time so each plane is written in order.
      // Math.imul keeps the products in int32 (|255 · w| < 2³⁰, and the sum fits as in Pillow).
      const w0 = weights[kBase]!;
      const w1 = weights[kBase + 1]!;
      const w2 = weights[kBase + 2]!;
      const w3 = weights[kBase + 3]!;
      for (let c = 0; c < 3; c++) {
        const table = clipped[c]!;
        let o = c * plane + y * cols;
        for (let r = top + c, end = top + stride; r < end; r += 3, o++) {
          const sum =
            (HALF +
              Math.imul(src[r]!, w0) +
              Math.imul(src[r + stride]!, w1) +
              Math.imul(src[r + 2 * stride]!, w2) +
              Math.imul(src[r + 3 * stride]!, w3)) |
            0;
          out[o] = table[(sum >> PRECISION_BITS) + CLIPPED_OFFSET]!;
        }
      }
      continue;
    }
    for (let k = 0; k < n; k++) w[k] = weights[kBase + k]!;
    for (let r = top, end = top + stride, o = y * cols; r < end; r += 3, o++) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let k = 0, q = r; k < n; k++, q += stride) {
        s0 = (s0 + src[q]! * w[k]!) | 0;
        s1 = (s1 + src[q + 1]! * w[k]!) | 0;
        s2 = (s2 + src[q + 2]! * w[k]!) | 0;
      }
      out[o] = clipped[0]![(s0 >> PRECISION_BITS) + CLIPPED_OFFSET]!;
      out[o + plane] = clipped[1]![(s1 >> PRECISION_BITS) + CLIPPED_OFFSET]!;
      out[o + 2 * plane] = clipped[2]![(s2 >> PRECISION_BITS) + CLIPPED_OFFSET]!;
    }
  }
  return out;
}

/**
 * A 32-bit fixed-point sum shifted right by PRECISION_BITS lies in [−512, 512): index CLIPPED_OFFSET +
 * that value of a clipped table holds the channel's float for Pillow's clip8 of it, so the hot loop
 * needs no comparisons.
 */
const CLIPPED_OFFSET = 512;
const clippedOf = new WeakMap<object, Float32Array[]>();

function clippedTables(tables: readonly [Float32Array, Float32Array, Float32Array]): Float32Array[] {
  let clipped = clippedOf.get(tables);
  if (!clipped) {
    clipped = tables.map((table) =>
      Float32Array.from(
        { length: 2 * CLIPPED_OFFSET },
        (_, i) => table[Math.min(255, Math.max(0, i - CLIPPED_OFFSET))]!,
      ),
    );
    clippedOf.set(tables, clipped);
  }
  return clipped;
}

/** One tap of weight 1 per column: the horizontal pass then only copies the window's columns. */
function identityTaps(size: number): Taps {
  return {
    first: Int32Array.from({ length: size }, (_, i) => i),
    count: new Int32Array(size).fill(1),
    ksize: 1,
    weights: new Int32Array(size).fill(ONE),
  };
}
