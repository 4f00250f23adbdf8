/**
 * Original image bytes of arbitrary catalog samples (report thumbnails, the extension's sample view),
 * read the way export reads them: each archive once, image files directly, sizes checked against the
 * catalog. Samples that cannot be read are reported, not thrown.
 */
import os from 'node:os';
import path from 'node:path';
import type { Catalog } from '../catalog.js';
import { exportName } from './names.js';
import { catalogRows, checkSources, sourceOf, type Pick } from './plan.js';
import { ByteStore, collectArchives, readImageFile } from './sources.js';
import type { SkippedSample } from './types.js';

export interface SampleImages {
  /** Catalog id → key, caption and original image bytes. */
  images: Map<number, { key: string; caption: string; bytes: Buffer }>;
  /** Samples whose bytes could not be read, with the file and reason. */
  missing: SkippedSample[];
}

export async function readSampleImages(
  catalog: Catalog,
  ids: ArrayLike<number>,
  signal?: AbortSignal,
): Promise<SampleImages> {
  const unique = [...new Set(Array.from(ids))];
  const rows = await catalogRows(catalog, unique);
  const missing: SkippedSample[] = [];
  const picks: Pick[] = [];
  unique.forEach((sampleId, rank) => {
    const row = rows.get(rank);
    if (!row) {
      missing.push({
        rank,
        key: String(sampleId),
        sampleId,
        reason: `sample ${sampleId} is not in the catalog`,
      });
      return;
    }
    picks.push({
      rank,
      sampleId,
      key: row.key,
      name: exportName(row.key),
      weightRaw: 1,
      weight: 1,
      stage: null,
      row,
      source: sourceOf(row),
    });
  });
  const readable = await checkSources(picks, missing, signal);
  // Everything stays in memory: callers ask for a handful of images, never a whole selection.
  const store = new ByteStore(path.join(os.tmpdir(), 'clipcurate-unused-spool'), Number.POSITIVE_INFINITY);
  const images: SampleImages['images'] = new Map();
  try {
    await collectArchives(readable, store, missing, signal ? { signal } : {});
    for (const p of readable) {
      if (p.source.kind === 'file') {
        try {
          images.set(p.sampleId, { key: p.key, caption: p.row.caption, bytes: await readImageFile(p) });
        } catch (err) {
          missing.push({
            rank: p.rank,
            key: p.key,
            sampleId: p.sampleId,
            file: p.source.file,
            reason: (err as Error).message,
          });
        }
        continue;
      }
      const bytes = await store.take(p.rank);
      if (bytes) images.set(p.sampleId, { key: p.key, caption: p.row.caption, bytes });
    }
  } finally {
    await store.close();
  }
  return { images, missing };
}
