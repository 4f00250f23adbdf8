import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { addDataset, Catalog } from '../../src/curate/api.js';
import { embedCatalog } from '../../src/curate/embed.js';
import { loadEmbeddings } from '../../src/curate/embeddings.js';
import { randomResizedCrop, simclrView } from '../../src/embed/augment.js';
import { seededRandom } from '../../src/compute/random.js';
import { AugmentedViewsEncoder, viewsVariant } from '../../src/embed/encoders/augmentedViews.js';
import { ClipOnnxEncoder } from '../../src/embed/encoders/clipOnnx.js';
import { MINI, tempDir } from '../helpers.js';
import { writeTinyClip } from '../support/tinyClip.js';

describe('SimCLR augmented views (for SAS)', () => {
  it('random resized crops stay inside the image, cover 8–100% of it, and are reproducible under a seed', () => {
    const random = seededRandom(3);
    for (let i = 0; i < 500; i++) {
      const c = randomResizedCrop(32, 48, random);
      expect(c.left).toBeGreaterThanOrEqual(0);
      expect(c.top).toBeGreaterThanOrEqual(0);
      expect(c.left + c.width).toBeLessThanOrEqual(32);
      expect(c.top + c.height).toBeLessThanOrEqual(48);
      expect((c.width * c.height) / (32 * 48)).toBeGreaterThan(0.05);
    }
    expect(randomResizedCrop(32, 48, seededRandom(1))).toEqual(randomResizedCrop(32, 48, seededRandom(1)));
  });

  it('a view is a decodable RGB image, the same for the same seed and different across draws', async () => {
    const bytes = await readFile(path.join(MINI, 'folder', (await firstJpg())!));
    const a = await simclrView(bytes, seededRandom(7));
    const b = await simclrView(bytes, seededRandom(7));
    expect(a.equals(b)).toBe(true);
    const random = seededRandom(8);
    const views = await Promise.all([0, 1, 2].map(() => simclrView(bytes, random)));
    expect(new Set(views.map((v) => v.toString('base64'))).size).toBe(3);
    const meta = await sharp(views[0]).metadata();
    expect(meta.channels).toBe(3);
  });

  it('the embed step stores mean-view embeddings as a resumable variant that loadEmbeddings attaches', async () => {
    const workspace = await tempDir();
    const catalog = await Catalog.open(workspace);
    await addDataset(catalog, 'wds/mini-000.tar', { cwd: MINI });
    const model = await writeTinyClip(path.join(await tempDir(), 'tiny'));
    const encoder = await ClipOnnxEncoder.load(model);
    await embedCatalog(catalog, workspace, encoder);
    const options = { views: 3, seed: 0 };
    const views = new AugmentedViewsEncoder(encoder, options);
    const first = await embedCatalog(catalog, workspace, views, { variant: viewsVariant(options) });
    expect(first.partsEmbedded).toBe(1);
    const again = await embedCatalog(catalog, workspace, views, { variant: viewsVariant(options) });
    expect(again.partsEmbedded).toBe(0);

    const e = await loadEmbeddings(catalog, workspace, { views: viewsVariant(options) });
    expect(e.imageViews!.length).toBe(e.n * e.dim);
    let closer = 0;
    for (let i = 0; i < e.n; i++) {
      const v = e.imageViews!.subarray(i * e.dim, (i + 1) * e.dim);
      const norm = Math.hypot(...v);
      // The mean of unit vectors that differ has norm < 1 (and is not the plain embedding).
      expect(norm).toBeLessThan(1 - 1e-4);
      expect(norm).toBeGreaterThan(0.2);
      const cos = v.reduce((s, x, q) => s + x * e.image![i * e.dim + q]!, 0) / norm;
      if (cos > 0.5) closer++;
    }
    // Views of an image resemble it more than chance.
    expect(closer).toBeGreaterThan(e.n * 0.8);
    // The main embeddings are untouched by the variant.
    const plain = await loadEmbeddings(catalog, workspace);
    expect(plain.image).toEqual(e.image);
    // One tar shard → one source shard id; payload bytes = image bytes + caption bytes (nessa.md N1).
    expect(new Set(plain.shards)).toEqual(new Set([0]));
    const stored = await catalog.rows<{ bytes: number }>(
      'SELECT image_bytes + octet_length(encode(caption)) AS bytes FROM samples ORDER BY id',
    );
    expect(Array.from(plain.payloadBytes!)).toEqual(stored.map((r) => Number(r.bytes)));
    expect(plain.payloadBytes!.every((b) => b > 100)).toBe(true);
    await expect(
      loadEmbeddings(catalog, workspace, { views: viewsVariant({ views: 5, seed: 1 }) }),
    ).rejects.toThrow(/curate embed --views/);
    await encoder.dispose();
  });
});

async function firstJpg(): Promise<string | undefined> {
  const { readdir } = await import('node:fs/promises');
  const walk = async (dir: string, prefix = ''): Promise<string | undefined> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isFile() && e.name.endsWith('.jpg')) return prefix + e.name;
      if (e.isDirectory()) {
        const found = await walk(path.join(dir, e.name), `${prefix}${e.name}/`);
        if (found) return found;
      }
    }
    return undefined;
  };
  return walk(path.join(MINI, 'folder'));
}
