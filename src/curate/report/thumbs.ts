/** Sample thumbnails for the report: small JPEGs embedded as data URIs. */
import sharp from 'sharp';

export const THUMB_SIZE = 96;

export interface Thumbnail {
  /** `data:image/jpeg;base64,…`, or undefined when the bytes are not an image sharp can read. */
  dataUri?: string;
  width: number;
  height: number;
  /** Why there is no thumbnail. */
  error?: string;
}

/**
 * Fit the image inside `size` × `size` (aspect kept, EXIF orientation applied, transparency on white).
 * Small images (CIFAR's 32 px) are enlarged with nearest-neighbour so their pixels stay visible.
 */
export async function thumbnail(image: Buffer | Uint8Array, size = THUMB_SIZE): Promise<Thumbnail> {
  try {
    const input = sharp(image, { failOn: 'error' }).rotate();
    const meta = await input.metadata();
    const enlarge = Math.max(meta.width ?? 0, meta.height ?? 0) < size;
    const { data, info } = await input
      .resize(size, size, { fit: 'inside', kernel: enlarge ? 'nearest' : 'lanczos3' })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 82 })
      .toBuffer({ resolveWithObject: true });
    return {
      dataUri: `data:image/jpeg;base64,${data.toString('base64')}`,
      width: info.width,
      height: info.height,
    };
  } catch (e) {
    return { width: size, height: size, error: e instanceof Error ? e.message : String(e) };
  }
}
