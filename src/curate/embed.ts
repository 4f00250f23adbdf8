import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Encoder } from '../embed/encoders/types.js';
import type { NpyDtype } from '../embed/npy.js';
import type { SampleIssue } from '../embed/readers/index.js';
import { EmbeddingStore } from '../embed/store.js';
import { nonFiniteReason } from '../select/contract.js';
import type { Catalog } from './catalog.js';
import { cataloguedSamples, listParts, type PartRow } from './parts.js';
import { writeRowMaps } from './rowMap.js';
import { readTaskRecords, registerTaskRecords, writeTaskRecord } from './taskRecords.js';

export interface EmbedProgress {
  part: string;
  partsDone: number;
  parts: number;
  samplesDone: number;
  samplesTotal: number;
}

export interface EmbedOptions {
  /** Images per inference batch (default 32). */
  batchSize?: number;
  dtype?: NpyDtype;
  /**
   * A second store beside the main one (e.g. `views-a4-s0` for augmented-view means): its own folder
   * under embeddings/ and shard-name prefix, resumed independently.
   */
  variant?: string;
  signal?: AbortSignal;
  onProgress?: (p: EmbedProgress) => void;
  /**
   * One task of an array job (`curate embed --shard I/N`): embed only the parts at positions
   * index, index + count, … of the catalog's part list. The catalog is only read (open it read-only:
   * the other tasks read it too); each finished shard leaves a task record (taskRecords.ts) that the
   * next embed without a slice registers.
   */
  slice?: EmbedSlice;
}

/** Task `index` of `count` (0 ≤ index < count). */
export interface EmbedSlice {
  index: number;
  count: number;
}

/** "I/N" → the slice, or an error saying what is wrong with it. */
export function parseEmbedSlice(text: string): EmbedSlice {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const [index, count] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(count >= 1 && index >= 0 && index < count))
    throw new Error(`--shard ${text}: expected I/N with 0 ≤ I < N (task I of N, counted from 0)`);
  return { index, count };
}

export interface EmbedReport {
  encoder: string;
  fingerprint: string;
  partsEmbedded: number;
  partsUnchanged: number;
  samplesEmbedded: number;
  undecodable: number;
  /** Samples the encoder gave a NaN or infinite embedding: recorded as `non-finite-embedding` issues, not stored. */
  nonFinite: number;
  seconds: number;
  samplesPerSecond: number;
  /** Shards that array-job tasks had written and this run registered in the catalog. */
  shardsRegistered: number;
  /** The slice this run embedded, for a task of an array job. */
  slice?: EmbedSlice;
}

export function embeddingsDir(workspace: string): string {
  return path.join(workspace, 'embeddings');
}

/** The main store, or a variant's folder inside it. */
export function storeDir(workspace: string, variant?: string): string {
  return variant ? path.join(embeddingsDir(workspace), variant) : embeddingsDir(workspace);
}

/**
 * Stable shard name for a catalog part, saying which part it holds: the part's file name without its
 * archive/manifest extension, made safe (letters, digits, `_`, `-`; anything else `_`; at most 64
 * characters), then `.d<dataset id>-<12 hex digits of the part path's SHA-1>` so two parts never share
 * a name: `mini-000.tar` of dataset 1 → `mini-000.d1-3f2a9c1b0e4d` (`mini-000.d1-3f2a9c1b0e4d.image.npy`).
 */
export function shardName(datasetId: number, part: string): string {
  const base = path
    .basename(part)
    .replace(/\.(tar\.gz|tgz|tar|jsonl|csv|tsv|parquet)$/i, '')
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .slice(0, 64);
  return `${base || 'part'}.${legacyShardName(datasetId, part)}`;
}

/**
 * The name shards had before names said which part they hold (`d<dataset id>-<hash>`). Workspaces
 * embedded then keep their files under it: the catalog records each shard's name, readers use that.
 */
export function legacyShardName(datasetId: number, part: string): string {
  return `d${datasetId}-${createHash('sha1').update(part).digest('hex').slice(0, 12)}`;
}

/**
 * The embed step: every catalogued part becomes one embedding shard (image and text `.npy`). Parts
 * already embedded with this encoder are skipped, so a killed run resumes where it stopped; a shard
 * whose files are missing or cut short is done again.
 */
export async function embedCatalog(
  catalog: Catalog,
  workspace: string,
  encoder: Encoder,
  options: EmbedOptions = {},
): Promise<EmbedReport> {
  const started = performance.now();
  const slice = options.slice;
  const store = await EmbeddingStore.open(storeDir(workspace, options.variant), encoder, options.dtype, {
    shared: slice !== undefined,
  });
  // The finishing run of an array job (or any run after one) first takes in what the tasks wrote.
  const shardsRegistered = slice ? 0 : await registerTaskRecords(catalog, store, encoder.fingerprint);
  const allParts = await listParts(catalog);
  const parts = slice ? allParts.filter((_, i) => i % slice.count === slice.index) : allParts;
  const done = new Map(
    (
      await catalog.rows<{ shard: string; rows: number }>(
        'SELECT shard, rows FROM embedding_shards WHERE fingerprint = $fp',
        { fp: encoder.fingerprint },
      )
    ).map((r) => [r.shard, r.rows]),
  );
  // A task's own finished shards, from an earlier run of the same task (killed and re-submitted).
  const taskDone = slice ? await readTaskRecords(store, encoder.fingerprint) : new Map();
  const samplesTotal = parts.reduce((n, p) => n + p.samples, 0);
  let samplesDone = 0;
  let samplesEmbedded = 0;
  let partsEmbedded = 0;
  let undecodable = 0;
  let nonFinite = 0;
  for (const [index, part] of parts.entries()) {
    options.signal?.throwIfAborted();
    const prefix = options.variant ? `${options.variant}-` : '';
    const shard = prefix + shardName(part.dataset_id, part.path);
    const legacy = prefix + legacyShardName(part.dataset_id, part.path);
    const recorded = done.has(shard) ? shard : done.has(legacy) ? legacy : undefined;
    if (recorded !== undefined && (await store.hasShard(recorded, done.get(recorded)!))) {
      // Maps are missing after a kill between recording and writing them, or in an older workspace.
      if (!slice && !(await store.hasRowMaps(recorded))) await writeRowMaps(catalog, store, recorded);
      samplesDone += part.samples;
      continue;
    }
    const byTask = taskDone.get(shard);
    if (byTask && (await store.hasShard(shard, byTask.sampleIds.length))) {
      samplesDone += part.samples;
      continue;
    }
    // Embedded again under the current name: an old-named copy of the part must not stay recorded.
    if (!slice && legacy !== shard) await forgetShard(catalog, store, legacy);
    const progress = (n: number) =>
      options.onProgress?.({
        part: part.path,
        partsDone: index,
        parts: parts.length,
        samplesDone: samplesDone + n,
        samplesTotal,
      });
    const result = await embedPart(catalog, store, encoder, part, shard, options, progress);
    samplesDone += part.samples;
    samplesEmbedded += result.embedded;
    undecodable += result.undecodable;
    nonFinite += result.nonFinite;
    partsEmbedded += 1;
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    encoder: encoder.name,
    fingerprint: encoder.fingerprint,
    partsEmbedded,
    partsUnchanged: parts.length - partsEmbedded,
    samplesEmbedded,
    undecodable,
    nonFinite,
    seconds,
    samplesPerSecond: seconds > 0 ? samplesEmbedded / seconds : 0,
    shardsRegistered,
    ...(slice ? { slice } : {}),
  };
}

async function embedPart(
  catalog: Catalog,
  store: EmbeddingStore,
  encoder: Encoder,
  part: PartRow,
  shard: string,
  options: EmbedOptions,
  onProgress: (samples: number) => void,
): Promise<{ embedded: number; undecodable: number; nonFinite: number }> {
  const started = performance.now();
  const batchSize = options.batchSize ?? 32;
  const ids: bigint[] = [];
  const issues: SampleIssue[] = [];
  await store.removeRowMaps(shard);
  const writer = await store.beginShard(shard);
  // Preprocessing of the next batches (CLIP encoders: worker threads, src/embed/preprocessPool.ts)
  // overlaps inference of the current one: every image is handed out as soon as it is read, since the
  // main thread is held during inference. Three batches of images are in flight at most (two ahead, so
  // that a batch that preprocesses slowly does not leave the model waiting) and each finished batch
  // goes straight to disk, so memory stays bounded however large the part.
  let pending: PendingSample[] = [];
  // A batch's rows are written while the next batch is in the model (the write runs on libuv's pool and
  // would otherwise keep the model waiting ~10 ms a batch); one write is in flight at most.
  let writing: Promise<void> = Promise.resolve();
  const runBatch = async (batch: PendingSample[]) => {
    const settled = await Promise.all(batch.map((p) => p.prepared));
    const ok: PendingSample[] = [];
    const pixels: Float32Array[] = [];
    batch.forEach((p, i) => {
      const r = settled[i]!;
      if (r instanceof Error) {
        issues.push({
          kind: 'undecodable-image',
          severity: 'error',
          file: p.file,
          key: p.key,
          reason: r.message,
        });
      } else {
        ok.push(p);
        pixels.push(r);
      }
    });
    if (ok.length > 0) {
      const images = await encoder.embedPrepared(pixels);
      const texts = await encoder.embedTexts(ok.map((p) => p.caption));
      const finite = finiteRows(ok, images, texts, encoder, issues);
      if (finite.samples.length > 0) {
        await writing;
        writing = writer.append(finite.images, finite.texts);
        writing.catch(() => undefined); // awaited before the next append, the commit or the abandon
        for (const p of finite.samples) ids.push(p.id);
      }
    }
    onProgress(ids.length + issues.length);
  };

  try {
    for await (const sample of cataloguedSamples(catalog, part, options.signal)) {
      const prepared = sample
        .image()
        .then((bytes) => encoder.prepareImage(bytes))
        .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
      const file = sample.location.imagePath ?? sample.location.file;
      pending.push({ id: sample.id, caption: sample.caption, prepared, file, key: sample.key });
      if (pending.length >= 3 * batchSize) {
        await runBatch(pending.slice(0, batchSize));
        pending = pending.slice(batchSize);
      }
    }
    while (pending.length) {
      options.signal?.throwIfAborted();
      await runBatch(pending.slice(0, batchSize));
      pending = pending.slice(batchSize);
    }
    await writing;
    await writer.commit();
  } catch (err) {
    await writing.catch(() => undefined);
    await writer.abandon();
    throw err;
  }

  const record = {
    shard,
    datasetId: part.dataset_id,
    part: part.path,
    sampleIds: ids,
    fingerprint: encoder.fingerprint,
    seconds: (performance.now() - started) / 1000,
    issues,
  };
  if (options.slice) await writeTaskRecord(store, record);
  else {
    await catalog.recordEmbeddedShard(record);
    await writeRowMaps(catalog, store, shard);
  }
  const nonFinite = issues.filter((i) => i.kind === 'non-finite-embedding').length;
  return { embedded: ids.length, undecodable: issues.length - nonFinite, nonFinite };
}

/** Drop a shard's rows from the catalog and its files from the store (nothing happens if it has none). */
async function forgetShard(catalog: Catalog, store: EmbeddingStore, shard: string): Promise<void> {
  // embedding_shards is small (a row per shard); the embeddings table is scanned only when needed.
  const [recorded] = await catalog.rows('SELECT 1 FROM embedding_shards WHERE shard = $shard', { shard });
  if (recorded)
    await catalog.transaction(async () => {
      await catalog.connection.run('DELETE FROM embeddings WHERE shard = $shard', { shard });
      await catalog.connection.run('DELETE FROM embedding_shards WHERE shard = $shard', { shard });
    });
  await store.removeShard(shard);
}

/**
 * The samples of a batch whose image and caption embeddings are both finite, with their rows; every
 * other sample becomes a `non-finite-embedding` issue and gets no row, so nothing downstream can use it.
 */
function finiteRows(
  batch: PendingSample[],
  images: Float32Array,
  texts: Float32Array,
  encoder: Encoder,
  issues: SampleIssue[],
): { samples: PendingSample[]; images: Float32Array; texts: Float32Array } {
  const dim = encoder.dim;
  for (const [name, m] of [
    ['image', images],
    ['caption', texts],
  ] as const) {
    if (m.length !== batch.length * dim)
      throw new Error(
        `${encoder.name} returned ${m.length} ${name} values for ${batch.length} samples of dimension ${dim}`,
      );
  }
  const keep: number[] = [];
  batch.forEach((p, i) => {
    const reasons = (
      [
        ['image', images],
        ['caption', texts],
      ] as const
    ).flatMap(([name, m]) => {
      const why = nonFiniteReason(m, dim, i);
      return why ? [`the ${name} embedding has ${why}`] : [];
    });
    if (reasons.length === 0) keep.push(i);
    else
      issues.push({
        kind: 'non-finite-embedding',
        severity: 'error',
        file: p.file,
        key: p.key,
        reason: `${encoder.name}: ${reasons.join('; ')}`,
      });
  });
  if (keep.length === batch.length) return { samples: batch, images, texts };
  const pick = (m: Float32Array) => {
    const out = new Float32Array(keep.length * dim);
    keep.forEach((i, j) => out.set(m.subarray(i * dim, (i + 1) * dim), j * dim));
    return out;
  };
  return { samples: keep.map((i) => batch[i]!), images: pick(images), texts: pick(texts) };
}

interface PendingSample {
  id: bigint;
  caption: string;
  prepared: Promise<Float32Array | Error>;
  file: string;
  key: string;
}
