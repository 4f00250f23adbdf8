import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Device } from '../embed/backends/ort.js';
import { OfflineEncoder, type FitPair } from '../embed/encoders/offline/index.js';
import type { Catalog } from './catalog.js';
import { cataloguedSamples, listParts } from './parts.js';

/** Pairs used to fit the offline encoder: an even spread over the catalog, at most this many. */
export const OFFLINE_FIT_PAIRS = 20_000;

export function offlineEncoderDir(workspace: string): string {
  return path.join(workspace, 'encoders', 'offline');
}

/**
 * The offline encoder of this workspace: loaded when already fitted (so every run embeds with the same
 * state), otherwise fitted on an even sample of the catalogued pairs and saved.
 */
export async function offlineEncoderFor(
  catalog: Catalog,
  workspace: string,
  options: { device?: Device; refit?: boolean; maxPairs?: number; onStage?: (stage: string) => void } = {},
): Promise<OfflineEncoder> {
  const dir = offlineEncoderDir(workspace);
  if (!options.refit && existsSync(path.join(dir, 'meta.json')))
    return OfflineEncoder.load(dir, options.device);
  const fitOptions = options.onStage ? { onStage: options.onStage } : {};
  const encoder = await OfflineEncoder.fit(
    catalogPairs(catalog, options.maxPairs ?? OFFLINE_FIT_PAIRS),
    fitOptions,
    options.device,
  );
  await encoder.save(dir);
  return encoder;
}

/** An evenly spaced sample of catalogued (image bytes, caption) pairs, streamed part by part. */
async function* catalogPairs(catalog: Catalog, maxPairs: number): AsyncIterable<FitPair> {
  const [{ n } = { n: 0 }] = await catalog.rows<{ n: number }>('SELECT count(*)::INTEGER AS n FROM samples');
  const stride = Math.max(1, n / maxPairs);
  let next = 0;
  let index = 0;
  for (const part of await listParts(catalog)) {
    for await (const sample of cataloguedSamples(catalog, part)) {
      if (index++ < next) continue;
      next += stride;
      const bytes = await sample.image().catch(() => undefined); // a file gone since init: the embed step records it
      if (bytes) yield { bytes, caption: sample.caption };
    }
  }
}
