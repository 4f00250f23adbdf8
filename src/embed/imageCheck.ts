import { imageSize } from 'image-size';
import type { IssueKind } from './readers/types.js';

export interface ImageInfo {
  format: string;
  width: number;
  height: number;
  bytes: number;
}

export type ImageCheck = { ok: true; info: ImageInfo } | { ok: false; kind: IssueKind; reason: string };

type Sniffed = 'jpeg' | 'png' | 'webp' | 'gif' | 'bmp' | 'tiff' | 'avif' | 'heif';

function startsWith(bytes: Buffer, prefix: readonly number[], at = 0): boolean {
  return prefix.every((b, i) => bytes[at + i] === b);
}

/** Identify the container by its magic bytes; `undefined` means "not an image". */
export function sniffImageFormat(bytes: Buffer): Sniffed | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (bytes.toString('latin1', 0, 4) === 'GIF8') return 'gif';
  if (bytes.toString('latin1', 0, 2) === 'BM') return 'bmp';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a]))
    return 'tiff';
  if (bytes.toString('latin1', 4, 8) === 'ftyp') {
    const brand = bytes.toString('latin1', 8, 12);
    return brand.startsWith('avi') ? 'avif' : 'heif';
  }
  return undefined;
}

const JPEG_EOI = Buffer.from([0xff, 0xd9]);
const JPEG_SOS = Buffer.from([0xff, 0xda]);

/**
 * Cheap end-of-stream check, so a read of millions of images needs no full decode. Returns a reason when
 * the container is cut short. JPEG: an end-of-image marker must follow the last start-of-scan (entropy
 * data byte-stuffs 0xFF, so 0xFFD9 there is always a marker; an EXIF thumbnail's EOI comes before the main
 * scan and so does not count). PNG: the IEND chunk is whole. WebP: the RIFF size fits the bytes.
 */
function truncation(format: Sniffed, bytes: Buffer): string | undefined {
  switch (format) {
    case 'jpeg': {
      const sos = bytes.lastIndexOf(JPEG_SOS);
      if (sos < 0) return 'JPEG has no image data (no start-of-scan marker)';
      return bytes.lastIndexOf(JPEG_EOI) > sos ? undefined : 'JPEG ends before its end-of-image marker';
    }
    case 'png': {
      // IEND is the chunk type; its 4-byte CRC must follow.
      const iend = bytes.lastIndexOf('IEND', undefined, 'latin1');
      return iend > 8 && iend + 8 <= bytes.length ? undefined : 'PNG ends before its IEND chunk';
    }
    case 'webp': {
      const declared = bytes.readUInt32LE(4) + 8;
      return declared <= bytes.length ? undefined : `WebP declares ${declared} bytes but has ${bytes.length}`;
    }
    case 'gif':
      return bytes[bytes.length - 1] === 0x3b ? undefined : 'GIF has no trailer byte';
    default:
      return undefined;
  }
}

/**
 * Validate image bytes without decoding pixels: magic bytes, end markers, then the header (image-size
 * parses it in microseconds; sharp would cost ~100 µs per image, the whole budget of a fast read).
 * Pixel-level damage shows up when the embedding step decodes the image, and is recorded there.
 */
export function checkImage(bytes: Buffer): ImageCheck {
  if (bytes.length === 0)
    return { ok: false, kind: 'zero-byte-image', reason: 'image file is empty (0 bytes)' };
  const format = sniffImageFormat(bytes);
  if (!format) {
    const head = bytes.subarray(0, 8).toString('hex');
    return { ok: false, kind: 'not-an-image', reason: `unrecognised image signature 0x${head}` };
  }
  const cut = truncation(format, bytes);
  if (cut) return { ok: false, kind: 'truncated-image', reason: `${cut} (${bytes.length} bytes)` };
  try {
    const size = imageSize(bytes);
    if (!size.width || !size.height)
      return { ok: false, kind: 'corrupt-image', reason: `${format} header has no size` };
    // EXIF orientations 5-8 rotate by 90 degrees: report the size a viewer (and the encoder) sees.
    const turned = (size.orientation ?? 1) >= 5;
    const [width, height] = turned ? [size.height, size.width] : [size.width, size.height];
    return {
      ok: true,
      info: {
        format: size.type === 'jpg' ? 'jpeg' : (size.type ?? format),
        width,
        height,
        bytes: bytes.length,
      },
    };
  } catch (err) {
    return {
      ok: false,
      kind: 'corrupt-image',
      reason: `cannot parse ${format} header: ${(err as Error).message}`,
    };
  }
}
