/**
 * The offline default encoder: a DNN-free baseline, NOT CLIP, that needs no downloaded weights. It is
 * fitted on the dataset itself:
 *   image  Coates–Lee–Ng k-means patch features (./image.ts)
 *   text   hashed word/char n-gram TF-IDF reduced by LSA (./text.ts)
 *   shared linear CCA between the two (./align.ts), so image–caption cosine is meaningful.
 * The fitted state lives in the workspace (`.npy` arrays + meta.json) and is fingerprinted. It is saved
 * into a staging folder beside its own and swapped in by rename, so a kill at any moment leaves the
 * old fit or the new one (`recoverFit` finishes or undoes a swap that a kill cut short).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { syncDir, WriteError, writeFileAtomic } from '../../../io/atomic.js';
import { failpoint } from '../../../io/failpoints.js';
import { WorkspaceStateError } from '../../store.js';
import { kmeans } from '../../../compute/kmeans.js';
import {
  centerRows,
  columnMeans,
  covariance,
  dense,
  matmul,
  symmetricEigen,
  transpose,
  type Dense,
} from '../../../compute/linalg.js';
import { createSession, Tensor, type Device, type Session } from '../../../compute/ort.js';
import { seededRandom } from '../../../compute/random.js';
import { readNpy, writeNpy } from '../../npy.js';
import { l2NormalizeRows, stack, type Encoder } from '../types.js';
import { affine, fitAlignment } from './align.js';
import { decodeSmall, featureGraph, PATCH_DIM, samplePatches, type ImageFeatureParams } from './image.js';
import { csrTimesDense, fitVocabulary, hashedTerms, lsa, tfidf, type TextVocabulary } from './text.js';

/** Fewer pairs than this cannot fit a useful shared space. */
export const MIN_FIT_PAIRS = 64;

export const OFFLINE_ENCODER_NAME = 'offline-kmeans-lsa-cca (DNN-free baseline, not CLIP)';

export interface OfflineFitOptions {
  /** k-means dictionary size (features = 4 × k). */
  dictionary?: number;
  /** Output (shared space) dimension. */
  dim?: number;
  /** LSA dimension of the caption side. */
  textDim?: number;
  /** Whitened dimensions per side before CCA. */
  whitenedDim?: number;
  /** Regularised-CCA ridge, relative to each side's mean eigenvalue. */
  ridge?: number;
  /** Canonical direction i is weighted by ρ_i^power. */
  power?: number;
  /** Patches sampled for the dictionary, in total. */
  patches?: number;
  seed?: number;
  onStage?: (stage: string) => void;
  /** Called for each pair whose image cannot be decoded: it is left out and the fit goes on. */
  onSkip?: (skipped: SkippedFitImage) => void;
}

export interface FitPair {
  bytes: Buffer;
  caption: string;
  /** Where the pair comes from, to name it when its image cannot be decoded. */
  key?: string;
  file?: string;
}

/** A fit pair left out because its image cannot be decoded (bad CRC, pixel bomb, truncated, …). */
export interface SkippedFitImage {
  key?: string;
  file?: string;
  reason: string;
}

/** How to fit the offline encoder again; `curate embed --refit` refuses a fit that embeddings contradict. */
const REFIT_HINT = 'run `curate embed --refit` to fit it again';

interface OfflineMeta {
  version: 1;
  name: string;
  dim: number;
  dictionary: number;
  fitPairs: number;
  correlations: number[];
  options: Required<Omit<OfflineFitOptions, 'onStage' | 'onSkip'>>;
}

interface OfflineState {
  meta: OfflineMeta;
  image: ImageFeatureParams;
  imageProjection: { w: Dense; b: Float32Array<ArrayBuffer> };
  vocab: TextVocabulary;
  textProjection: { w: Dense; b: Float32Array<ArrayBuffer> };
}

const ARRAYS = [
  'zca_w',
  'zca_b',
  'centroids',
  'image_w',
  'image_b',
  'text_buckets',
  'text_idf',
  'text_w',
  'text_b',
] as const;
type ArrayName = (typeof ARRAYS)[number];

export class OfflineEncoder implements Encoder {
  readonly name = OFFLINE_ENCODER_NAME;
  readonly provider: string;
  readonly providerNote?: string;
  readonly dim: number;
  /** Pairs the fit left out because their images could not be decoded (empty after `load`). */
  skipped: SkippedFitImage[] = [];
  private readonly textColumns: Map<number, number>;

  private constructor(
    private readonly state: OfflineState,
    readonly fingerprint: string,
    private readonly session: Session,
    provider: { provider: string; note?: string },
  ) {
    this.dim = state.meta.dim;
    this.provider = provider.provider;
    if (provider.note) this.providerNote = provider.note;
    this.textColumns = new Map(Array.from(state.vocab.buckets, (b, i) => [b, i]));
  }

  get correlations(): number[] {
    return this.state.meta.correlations;
  }

  /**
   * Fit on image–caption pairs; images are decoded to 32×32 as they arrive, so only those stay in memory.
   */
  static async fit(
    source: Iterable<FitPair> | AsyncIterable<FitPair>,
    options: OfflineFitOptions = {},
    device: Device = 'cpu',
  ): Promise<OfflineEncoder> {
    const o: Required<Omit<OfflineFitOptions, 'onStage' | 'onSkip'>> = {
      dictionary: 256,
      dim: 128,
      textDim: 256,
      whitenedDim: 256,
      ridge: 0.1,
      power: 4,
      patches: 200_000,
      seed: 0,
      ...Object.fromEntries(Object.entries(options).filter(([k]) => k !== 'onStage' && k !== 'onSkip')),
    };
    const stage = options.onStage ?? (() => {});
    const random = seededRandom(o.seed);

    stage('decoding images');
    const images: Float32Array[] = [];
    const captions: string[] = [];
    const skipped: SkippedFitImage[] = [];
    let window: FitPair[] = [];
    // Each image is decoded on its own: one that cannot be (bad CRC, pixel bomb) is left out and named,
    // and the fit goes on with the others.
    const drain = async () => {
      const attempt = (bytes: Buffer) =>
        decodeSmall(bytes).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
      const decoded = await Promise.all(window.map((p) => attempt(p.bytes)));
      // libvips keeps one error buffer for the process: a failure among concurrent decodes can come back
      // as "Unknown error". Decoding the failed image again on its own gives its real reason.
      for (const [i, d] of decoded.entries())
        if (d instanceof Error) decoded[i] = await attempt(window[i]!.bytes);
      decoded.forEach((d, i) => {
        const pair = window[i]!;
        if (d instanceof Error) {
          const skip: SkippedFitImage = {
            ...(pair.key !== undefined ? { key: pair.key } : {}),
            ...(pair.file !== undefined ? { file: pair.file } : {}),
            reason: d.message,
          };
          skipped.push(skip);
          options.onSkip?.(skip);
          return;
        }
        images.push(d);
        captions.push(pair.caption);
      });
      window = [];
    };
    for await (const pair of source) {
      window.push(pair);
      if (window.length === 64) await drain();
    }
    await drain();
    if (images.length < MIN_FIT_PAIRS) {
      throw new Error(
        `the offline encoder needs at least ${MIN_FIT_PAIRS} image-caption pairs to fit (got ${images.length}` +
          (skipped.length ? `; ${skipped.length} more could not be decoded` : '') +
          ')',
      );
    }
    // Small datasets get smaller spaces: CCA on n pairs cannot estimate more than ~n/4 directions.
    o.dim = Math.min(o.dim, Math.floor(images.length / 4));
    o.textDim = Math.min(o.textDim, Math.floor(images.length / 2));
    o.whitenedDim = Math.min(o.whitenedDim, Math.floor(images.length / 2));

    stage('whitening patches');
    const patches = samplePatches(images, Math.max(1, Math.ceil(o.patches / images.length)), random);
    const patchMean = columnMeans(patches);
    const eig = symmetricEigen(await covariance(centerRows(patches, patchMean)));
    // ZCA: W = V diag(1/sqrt(λ + 0.1)) Vᵀ (Coates et al. use ε = 0.1 on normalised patches).
    const scaled = dense(PATCH_DIM, PATCH_DIM);
    for (let r = 0; r < PATCH_DIM; r++) {
      for (let j = 0; j < PATCH_DIM; j++)
        scaled.data[r * PATCH_DIM + j] =
          eig.vectors.data[r * PATCH_DIM + j]! / Math.sqrt(Math.max(eig.values[j]!, 0) + 0.1);
    }
    const zcaW = await matmul(scaled, transpose(eig.vectors));
    const zca = affine(patchMean, zcaW); // patches are centred already: whitened = centred · W

    stage(`k-means dictionary (k = ${o.dictionary})`);
    const white = await matmul(patches, zcaW);
    const { centroids } = await kmeans(white, o.dictionary, { iterations: 10, seed: o.seed });
    const image: ImageFeatureParams = { zcaW, zcaB: zca.b, centroids };

    stage('image features');
    const features = await runFeatures(await createSession(featureGraph(image), { device }), images);
    const featureMean = columnMeans(features);
    const featureStd = columnStd(features, featureMean);
    const standardised = dense(features.rows, features.cols);
    for (let r = 0; r < features.rows; r++) {
      for (let c = 0; c < features.cols; c++) {
        standardised.data[r * features.cols + c] =
          (features.data[r * features.cols + c]! - featureMean[c]!) / featureStd[c]!;
      }
    }

    stage('caption TF-IDF and LSA');
    const docs = captions.map((c) => hashedTerms(c));
    const vocab = fitVocabulary(docs);
    o.textDim = Math.min(o.textDim, vocab.buckets.length);
    const x = tfidf(docs, vocab);
    const { v: lsaBasis } = await lsa(x, o.textDim, o.seed);
    const textLsa = csrTimesDense(x, lsaBasis);

    stage('aligning image and text (CCA)');
    const align = await fitAlignment(standardised, textLsa, {
      whitenedDim: o.whitenedDim,
      dim: o.dim,
      ridge: o.ridge,
      power: o.power,
    });
    // Fold standardisation and centring into one affine map per side.
    const imageW = dense(align.projA.rows, align.projA.cols);
    const imageShift = new Float64Array(align.projA.rows);
    for (let r = 0; r < align.projA.rows; r++) {
      imageShift[r] = featureMean[r]! / featureStd[r]! + align.meanA[r]!;
      for (let j = 0; j < align.projA.cols; j++)
        imageW.data[r * align.projA.cols + j] = align.projA.data[r * align.projA.cols + j]! / featureStd[r]!;
    }
    const imageB = affine(imageShift, align.projA).b;
    const textProjection = affine(align.meanB, align.projB);
    const state: OfflineState = {
      meta: {
        version: 1,
        name: OFFLINE_ENCODER_NAME,
        dim: align.projA.cols,
        dictionary: o.dictionary,
        fitPairs: images.length,
        correlations: Array.from(align.correlations),
        options: o,
      },
      image,
      imageProjection: { w: imageW, b: imageB },
      vocab,
      textProjection: { w: await matmul(lsaBasis, textProjection.w), b: textProjection.b },
    };
    const encoder = await OfflineEncoder.fromState(state, device);
    encoder.skipped = skipped;
    return encoder;
  }

  /**
   * Load a saved fit. A damaged one (a file missing, empty or cut short, or arrays that do not give the
   * fingerprint meta.json recorded) is a WorkspaceStateError naming the file and how to fit again.
   */
  static async load(dir: string, device: Device = 'cpu'): Promise<OfflineEncoder> {
    const metaFile = path.join(dir, 'meta.json');
    const damaged = (file: string, why: string) =>
      new WorkspaceStateError(file, `the offline encoder's ${file} is damaged (${why}); ${REFIT_HINT}`);
    let saved: string | undefined;
    let meta: OfflineMeta;
    try {
      const parsed = JSON.parse(await readFile(metaFile, 'utf8')) as OfflineMeta & { fingerprint?: string };
      ({ fingerprint: saved, ...meta } = parsed);
      if (meta.version !== 1 || !Number.isInteger(meta.dim))
        throw new Error('not an offline encoder meta.json');
    } catch (err) {
      throw damaged(metaFile, (err as Error).message);
    }
    const a = {} as Record<ArrayName, Dense>;
    for (const name of ARRAYS) {
      const file = path.join(dir, `${name}.npy`);
      try {
        const m = await readNpy(file);
        a[name] = dense(m.rows, m.cols, Float32Array.from(m.data));
      } catch (err) {
        throw damaged(file, (err as Error).message);
      }
    }
    let encoder: OfflineEncoder;
    try {
      encoder = await OfflineEncoder.fromState(
        {
          meta,
          image: { zcaW: a.zca_w, zcaB: a.zca_b.data, centroids: a.centroids },
          imageProjection: { w: a.image_w, b: a.image_b.data },
          vocab: { buckets: Int32Array.from(a.text_buckets.data), idf: a.text_idf.data },
          textProjection: { w: a.text_w, b: a.text_b.data },
        },
        device,
      );
    } catch (err) {
      throw damaged(dir, `arrays do not fit together: ${(err as Error).message}`);
    }
    if (saved !== undefined && saved !== encoder.fingerprint) {
      await encoder.dispose();
      throw damaged(dir, `its arrays give ${encoder.fingerprint}, meta.json says ${saved}`);
    }
    return encoder;
  }

  /**
   * Save the fit into `dir` atomically: every file is written and synced in `<dir>.staging-<random>`,
   * then the old folder (if any) is renamed aside, the staging folder renamed to `dir`, and the old
   * one removed. Failures (ENOSPC, …) remove the staging folder and name the file (WriteError).
   */
  async save(dir: string): Promise<void> {
    const parent = path.dirname(dir);
    await mkdir(parent, { recursive: true });
    await recoverFit(dir);
    const suffix = randomBytes(4).toString('hex');
    const staging = `${dir}.staging-${suffix}`;
    let current = staging;
    try {
      await mkdir(staging);
      for (const [name, m] of Object.entries(this.arrays())) {
        current = path.join(staging, `${name}.npy`);
        await writeNpy(current, 'float32', m.data, m.cols); // synced by NpyWriter.finish
      }
      current = path.join(staging, 'meta.json');
      await writeFileAtomic(
        current,
        JSON.stringify({ ...this.state.meta, fingerprint: this.fingerprint }, null, 2) + '\n',
      );
      await syncDir(staging);
      failpoint('embed.offline-fit');
      current = dir;
      const old = `${dir}.old-${suffix}`;
      const hadOld = existsSync(dir);
      if (hadOld) await rename(dir, old);
      await rename(staging, dir);
      await syncDir(parent);
      if (hadOld) await rm(old, { recursive: true, force: true });
    } catch (err) {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      if (err instanceof WriteError) throw err;
      throw new WriteError(current, (err as NodeJS.ErrnoException).code, err);
    }
  }

  prepareImage(bytes: Buffer): Promise<Float32Array> {
    return decodeSmall(bytes);
  }

  async embedPrepared(batch: Float32Array[]): Promise<Float32Array> {
    const out = await this.session.run({
      pixels: new Tensor('float32', stack(batch), [batch.length, 3, 32, 32]),
    });
    return l2NormalizeRows(Float32Array.from(out.embeds!.data as Float32Array), this.dim);
  }

  async embedTexts(texts: string[]): Promise<Float32Array> {
    const { w, b } = this.state.textProjection;
    const out = new Float32Array(texts.length * this.dim);
    texts.forEach((text, i) => {
      const row = out.subarray(i * this.dim, (i + 1) * this.dim);
      row.set(b);
      // Sparse TF-IDF (unit norm) times the folded LSA · CCA projection.
      const terms: Array<[number, number]> = [];
      let norm = 0;
      for (const [bucket, tf] of hashedTerms(text)) {
        const c = this.textColumns.get(bucket);
        if (c === undefined) continue;
        const v = (1 + Math.log(tf)) * this.state.vocab.idf[c]!;
        terms.push([c, v]);
        norm += v * v;
      }
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (const [c, v] of terms)
        for (let j = 0; j < this.dim; j++) row[j]! += v * inv * w.data[c * this.dim + j]!;
    });
    return l2NormalizeRows(out, this.dim);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }

  private arrays(): Record<ArrayName, Dense> {
    const s = this.state;
    const row = (v: Float32Array<ArrayBuffer>) => dense(1, v.length, v);
    return {
      zca_w: s.image.zcaW,
      zca_b: row(s.image.zcaB),
      centroids: s.image.centroids,
      image_w: s.imageProjection.w,
      image_b: row(s.imageProjection.b),
      text_buckets: row(Float32Array.from(s.vocab.buckets)),
      text_idf: row(s.vocab.idf),
      text_w: s.textProjection.w,
      text_b: row(s.textProjection.b),
    };
  }

  private static async fromState(state: OfflineState, device: Device): Promise<OfflineEncoder> {
    const opened = await createSession(featureGraph(state.image, state.imageProjection), { device });
    const hash = createHash('sha256').update(JSON.stringify({ ...state.meta, fitPairs: undefined }));
    const probe = new OfflineEncoder(state, '', opened.session, opened);
    for (const m of Object.values(probe.arrays()))
      hash.update(new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength));
    return new OfflineEncoder(state, `offline-${hash.digest('hex').slice(0, 16)}`, opened.session, opened);
  }
}

/**
 * Tidy what a save killed part-way left beside `dir`: staging folders go; when `dir` itself is gone
 * (killed between the two renames) the old fit set aside is put back, otherwise it is removed.
 */
export async function recoverFit(dir: string): Promise<void> {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(`${base}.staging-`)))
    await rm(path.join(parent, name), { recursive: true, force: true });
  for (const name of names.filter((n) => n.startsWith(`${base}.old-`))) {
    const old = path.join(parent, name);
    if (!existsSync(path.join(dir, 'meta.json')) && existsSync(path.join(old, 'meta.json'))) {
      await rm(dir, { recursive: true, force: true });
      await rename(old, dir);
      await syncDir(parent);
    } else {
      await rm(old, { recursive: true, force: true });
    }
  }
}

async function runFeatures(opened: { session: Session }, images: Float32Array[]): Promise<Dense> {
  let out: Dense | undefined;
  for (let i = 0; i < images.length; i += 256) {
    const batch = images.slice(i, i + 256);
    const r = await opened.session.run({
      pixels: new Tensor('float32', stack(batch), [batch.length, 3, 32, 32]),
    });
    const f = r.features!;
    const cols = f.dims[1] as number;
    out ??= dense(images.length, cols);
    out.data.set(f.data as Float32Array, i * cols);
  }
  await opened.session.release();
  return out!;
}

function columnStd(x: Dense, mean: Float64Array): Float64Array {
  const v = new Float64Array(x.cols);
  for (let r = 0; r < x.rows; r++)
    for (let c = 0; c < x.cols; c++) v[c]! += (x.data[r * x.cols + c]! - mean[c]!) ** 2;
  // A floor keeps dead features (always 0) from dividing by zero.
  return v.map((s) => Math.sqrt(s / Math.max(1, x.rows)) + 1e-3);
}
