import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Device } from '../compute/ort.js';
import {
  OfflineEncoder,
  recoverFit,
  type FitPair,
  type OfflineFitOptions,
  type SkippedFitImage,
} from '../embed/encoders/offline/index.js';
import { EncoderMismatchError, readStoreMeta } from '../embed/store.js';
import type { Catalog } from './catalog.js';
import { embeddingsDir } from './embed.js';
import { cataloguedSamples, listParts } from './parts.js';

/** Pairs used to fit the offline encoder: an even spread over the catalog, at most this many. */
export const OFFLINE_FIT_PAIRS = 20_000;

export function offlineEncoderDir(workspace: string): string {
  return path.join(workspace, 'encoders', 'offline');
}

export interface OfflineEncoderOptions {
  device?: Device;
  refit?: boolean;
  maxPairs?: number;
  onStage?: (stage: string) => void;
  /** Each fit pair left out because its image cannot be decoded (default: reported through onStage). */
  onSkip?: (skipped: SkippedFitImage) => void;
  /** Fit sizes (dictionary, patches, …) other than the defaults, e.g. a quick fit in tests. */
  fitOptions?: Omit<OfflineFitOptions, 'onStage' | 'onSkip'>;
}

/**
 * A new fit that does not give the fingerprint of the embeddings already in the workspace: nothing was
 * saved, the fit on disk (which matches them) is kept.
 */
export class RefitMismatchError extends EncoderMismatchError {
  constructor(store: string, had: { name: string; fingerprint: string }, fitted: string, kept: string) {
    super(store, { ...had, dim: 0 }, { name: 'the new fit', fingerprint: fitted, dim: 0 });
    this.message =
      `the new fit of the offline encoder (${fitted}) does not match the embeddings in ${store} ` +
      `(${had.fingerprint}); nothing was saved` +
      (existsSync(path.join(kept, 'meta.json')) ? ` and the fit in ${kept} is unchanged` : '') +
      '. Run `curate embed` to keep using the embeddings, or `curate reset embeddings` and then ' +
      '`curate embed --refit` to start over with a new fit.';
  }
}

/**
 * The offline encoder of this workspace: loaded when already fitted (so every run embeds with the same
 * state), otherwise fitted on an even sample of the catalogued pairs and saved. A fit (first or
 * `refit`) is saved only when it matches the embeddings the workspace already holds, so the fit those
 * embeddings were made with is never replaced by one they contradict.
 */
export async function offlineEncoderFor(
  catalog: Catalog,
  workspace: string,
  options: OfflineEncoderOptions = {},
): Promise<OfflineEncoder> {
  const dir = offlineEncoderDir(workspace);
  await recoverFit(dir);
  if (!options.refit && existsSync(path.join(dir, 'meta.json')))
    return OfflineEncoder.load(dir, options.device);
  const stage = options.onStage;
  const onSkip =
    options.onSkip ??
    (stage
      ? (s: SkippedFitImage) =>
          stage(
            `left out ${s.file ?? 'an image'}${s.key !== undefined ? ` key=${s.key}` : ''}: cannot decode it (${s.reason})`,
          )
      : undefined);
  const encoder = await OfflineEncoder.fit(
    catalogPairs(catalog, options.maxPairs ?? OFFLINE_FIT_PAIRS),
    { ...options.fitOptions, ...(stage ? { onStage: stage } : {}), ...(onSkip ? { onSkip } : {}) },
    options.device,
  );
  try {
    await assertMatchesEmbeddings(workspace, encoder.fingerprint, dir);
  } catch (err) {
    await encoder.dispose();
    throw err;
  }
  await encoder.save(dir);
  return encoder;
}

/** Refuse a fit whose fingerprint differs from that of any embedding store of the workspace. */
async function assertMatchesEmbeddings(workspace: string, fingerprint: string, kept: string): Promise<void> {
  const main = embeddingsDir(workspace);
  const variants = (await readdir(main, { withFileTypes: true }).catch(() => []))
    .filter((e) => e.isDirectory())
    .map((e) => path.join(main, e.name));
  for (const store of [main, ...variants]) {
    const meta = await readStoreMeta(store);
    // A `--views` variant store's fingerprint is `<base fingerprint>+<variant>`.
    if (meta && meta.encoder.fingerprint.split('+')[0] !== fingerprint)
      throw new RefitMismatchError(store, meta.encoder, fingerprint, kept);
  }
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
      if (bytes)
        yield {
          bytes,
          caption: sample.caption,
          key: sample.key,
          file: sample.location.imagePath ?? sample.location.file,
        };
    }
  }
}
