/**
 * Small WebP thumbnails of catalog samples for the panel's grid, cached in the catalog
 * (`thumbnails` table) so every image is decoded once. Reading a tar member means streaming its
 * archive, so a miss fills the thumbnails of its whole archive (up to `fillLimit` samples) in the same
 * pass: scrolling on through that shard is then served from the cache.
 */
import sharp from 'sharp';
import type { Catalog } from './catalog.js';
import { readSampleImages } from './export/images.js';

export const THUMBNAIL_SIZE = 96;

export interface Thumbnails {
  /** Catalog id → WebP bytes. */
  images: Map<number, Uint8Array>;
  /** Catalog id → why no thumbnail could be made (unreadable or undecodable image). */
  failed: Map<number, string>;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS thumbnails (
  id BIGINT PRIMARY KEY, size INTEGER NOT NULL, webp BLOB, error VARCHAR)`;

export async function thumbnailsFor(
  catalog: Catalog,
  ids: readonly number[],
  options: { fillLimit?: number; signal?: AbortSignal } = {},
): Promise<Thumbnails> {
  await catalog.connection.run(SCHEMA);
  const wanted = [...new Set(ids)];
  const result: Thumbnails = { images: new Map(), failed: new Map() };
  if (wanted.length === 0) return result;
  await readCached(catalog, wanted, result);
  const missing = wanted.filter((id) => !result.images.has(id) && !result.failed.has(id));
  if (missing.length === 0) return result;
  const fill = await archiveSiblings(catalog, missing, options.fillLimit ?? 2000);
  const { images, missing: unreadable } = await readSampleImages(catalog, fill, options.signal);
  const rows: Array<{ id: number; webp: Buffer | null; error: string | null }> = [];
  for (const [id, image] of images) {
    try {
      const webp = await sharp(image.bytes)
        .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'cover' })
        .webp({ quality: 70 })
        .toBuffer();
      rows.push({ id, webp, error: null });
    } catch (err) {
      rows.push({ id, webp: null, error: `cannot decode image: ${(err as Error).message}` });
    }
  }
  for (const m of unreadable) rows.push({ id: m.sampleId, webp: null, error: m.reason });
  await store(catalog, rows);
  for (const r of rows) {
    if (!wanted.includes(r.id)) continue;
    if (r.webp) result.images.set(r.id, r.webp);
    else result.failed.set(r.id, r.error ?? 'no image');
  }
  return result;
}

async function readCached(catalog: Catalog, ids: number[], into: Thumbnails): Promise<void> {
  const rows = await catalog.rows<{ id: bigint; webp: Uint8Array | null; error: string | null }>(
    `SELECT id, webp, error FROM thumbnails
     WHERE size = ${THUMBNAIL_SIZE} AND id IN (SELECT unnest(string_split($ids, ','))::BIGINT)`,
    { ids: ids.join(',') },
  );
  for (const r of rows) {
    if (r.webp) into.images.set(Number(r.id), blobBytes(r.webp));
    else into.failed.set(Number(r.id), r.error ?? 'no image');
  }
}

/** The missing ids plus, for tar members, the uncached samples of the same archives (up to `limit`). */
async function archiveSiblings(catalog: Catalog, missing: number[], limit: number): Promise<number[]> {
  const rows = await catalog.rows<{ id: bigint }>(
    `WITH wanted AS (SELECT unnest(string_split($ids, ','))::BIGINT AS id),
     archives AS (SELECT DISTINCT s.file FROM samples s JOIN wanted w ON w.id = s.id WHERE s.member IS NOT NULL)
     SELECT s.id FROM samples s JOIN archives a ON a.file = s.file
     WHERE s.member IS NOT NULL AND s.id NOT IN (SELECT id FROM thumbnails WHERE size = ${THUMBNAIL_SIZE})
     ORDER BY s.id LIMIT ${Math.max(0, Math.floor(limit))}`,
    { ids: missing.join(',') },
  );
  return [...new Set([...missing, ...rows.map((r) => Number(r.id))])];
}

async function store(
  catalog: Catalog,
  rows: Array<{ id: number; webp: Buffer | null; error: string | null }>,
): Promise<void> {
  const appender = await catalog.connection.createAppender('thumbnails');
  const seen = new Set<number>();
  const existing = new Set(
    (
      await catalog.rows<{ id: bigint }>(
        `SELECT id FROM thumbnails WHERE id IN (SELECT unnest(string_split($ids, ','))::BIGINT)`,
        { ids: rows.map((r) => r.id).join(',') },
      )
    ).map((r) => Number(r.id)),
  );
  for (const r of rows) {
    if (seen.has(r.id) || existing.has(r.id)) continue;
    seen.add(r.id);
    appender.appendBigInt(BigInt(r.id));
    appender.appendInteger(THUMBNAIL_SIZE);
    if (r.webp) appender.appendBlob(new Uint8Array(r.webp));
    else appender.appendNull();
    if (r.error !== null) appender.appendVarchar(r.error);
    else appender.appendNull();
    appender.endRow();
  }
  appender.closeSync();
}

function blobBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  const bytes = (value as { bytes?: Uint8Array }).bytes;
  if (bytes instanceof Uint8Array) return bytes;
  throw new Error('unexpected BLOB value from DuckDB');
}
