import {
  readerForPart,
  type DatasetFormat,
  type ReaderOptions,
  type Sample,
} from '../embed/readers/index.js';
import type { Catalog } from './catalog.js';

/** A catalogued part with what is needed to stream it again. */
export interface PartRow {
  dataset_id: number;
  path: string;
  samples: number;
  format: DatasetFormat;
  options: string;
}

export type CataloguedSample = Sample & { id: bigint };

export function listParts(catalog: Catalog): Promise<PartRow[]> {
  return catalog.rows<PartRow>(
    `SELECT p.dataset_id, p.path, p.samples, d.format, d.options::VARCHAR AS options
     FROM parts p JOIN datasets d ON d.id = p.dataset_id ORDER BY p.dataset_id, p.path`,
  );
}

/**
 * Stream a part again, yielding only the samples the catalog kept (read-time rejects and later
 * duplicates are skipped), with their catalog id and caption. Stages after `init` read bytes this way:
 * sequentially through the same readers, never by random access into archives.
 */
export async function* cataloguedSamples(
  catalog: Catalog,
  part: PartRow,
  signal?: AbortSignal,
): AsyncIterable<CataloguedSample> {
  const rows = await catalog.rows<{ id: bigint; source_key: string; caption: string }>(
    'SELECT id, source_key, caption FROM samples WHERE dataset_id = $d AND part = $p ORDER BY id',
    { d: part.dataset_id, p: part.path },
  );
  const wanted = new Map(rows.map((s) => [s.source_key, s]));
  const reader = readerForPart(part.format, part.path, JSON.parse(part.options) as ReaderOptions);
  for await (const item of reader.read({ path: part.path, size: 0, mtimeMs: 0 }, signal ? { signal } : {})) {
    if (item.type !== 'sample') continue;
    const entry = wanted.get(item.sample.key);
    if (!entry) continue;
    wanted.delete(item.sample.key);
    yield { ...item.sample, id: entry.id, caption: entry.caption };
  }
}
