import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { checkImage, sniffImageFormat } from '../../src/embed/imageCheck.js';
import { MINI } from '../helpers.js';

const jpeg = () => readFile(path.join(MINI, 'folder/frog/train000001.jpg'));
const pixels = () =>
  sharp({ create: { width: 40, height: 24, channels: 3, background: { r: 200, g: 30, b: 90 } } });

describe('checkImage', () => {
  it('accepts real JPEG, PNG, WebP and GIF bytes and reports their size', async () => {
    const encoded = {
      jpeg: await jpeg(),
      png: await pixels().png().toBuffer(),
      webp: await pixels().webp().toBuffer(),
      gif: await pixels().gif().toBuffer(),
    };
    for (const [format, bytes] of Object.entries(encoded)) {
      expect(sniffImageFormat(bytes)).toBe(format);
      const check = checkImage(bytes);
      expect(check, format).toMatchObject({ ok: true, info: { format, bytes: bytes.length } });
    }
    expect(checkImage(encoded.png)).toMatchObject({ info: { width: 40, height: 24 } });
  });

  it('reports the displayed size of an EXIF-rotated image', async () => {
    const rotated = await pixels().jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(checkImage(rotated)).toMatchObject({ ok: true, info: { width: 24, height: 40 } });
  });

  it('flags every truncation of a JPEG, PNG or WebP, wherever the cut falls', async () => {
    const images = [await jpeg(), await pixels().png().toBuffer(), await pixels().webp().toBuffer()];
    for (const bytes of images) {
      for (const fraction of [0.05, 0.2, 0.5, 0.8, 0.95]) {
        const cut = bytes.subarray(0, Math.floor(bytes.length * fraction));
        const check = checkImage(cut);
        expect(check.ok, `${sniffImageFormat(bytes)} cut at ${fraction}`).toBe(false);
        if (!check.ok) expect(['truncated-image', 'corrupt-image', 'not-an-image']).toContain(check.kind);
      }
      const lastByteMissing = checkImage(bytes.subarray(0, bytes.length - 2));
      expect(lastByteMissing).toMatchObject({ ok: false, kind: 'truncated-image' });
    }
  });

  it('accepts bytes after the JPEG end marker (camera trailers), and names empty and non-image input', async () => {
    const trailer = Buffer.concat([await jpeg(), Buffer.from('trailing maker-note data')]);
    expect(checkImage(trailer).ok).toBe(true);
    expect(checkImage(Buffer.alloc(0))).toMatchObject({ ok: false, kind: 'zero-byte-image' });
    expect(checkImage(Buffer.from('<html>404 not found</html>'))).toMatchObject({
      ok: false,
      kind: 'not-an-image',
      reason: expect.stringContaining('3c68746d6c3e'),
    });
  });
});
