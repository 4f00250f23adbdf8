/**
 * An encoder whose image embedding is the mean of A augmented views' unit embeddings, NOT renormalised
 * (sas.md §2: then ⟨z̄_i, z̄_j⟩ estimates E[cos(view of i, view of j)] for i ≠ j). Captions pass through.
 * Each image's views are seeded from its bytes and the run's seed, so a resumed run writes the same rows.
 * Wrapping an encoder lets the ordinary embed step produce, store and resume view embeddings.
 */
import { createHash } from 'node:crypto';
import { seededRandom } from '../../compute/random.js';
import { simclrView } from '../augment.js';
import { stack, type Encoder } from './types.js';

export interface ViewOptions {
  views: number;
  seed: number;
}

/** The store variant (folder and shard prefix) of a view setting. */
export function viewsVariant({ views, seed }: ViewOptions): string {
  return `views-a${views}-s${seed}`;
}

export class AugmentedViewsEncoder implements Encoder {
  readonly name: string;
  readonly fingerprint: string;
  readonly dim: number;
  readonly provider: string;
  readonly providerNote?: string;

  constructor(
    private readonly base: Encoder,
    private readonly options: ViewOptions,
  ) {
    if (!(options.views >= 1)) throw new Error(`views must be ≥ 1 (got ${options.views})`);
    this.name = `${base.name} · mean of ${options.views} SimCLR views`;
    this.fingerprint = `${base.fingerprint}+${viewsVariant(options)}`;
    this.dim = base.dim;
    this.provider = base.provider;
    if (base.providerNote) this.providerNote = base.providerNote;
  }

  /** All A prepared views of one image, concatenated. */
  async prepareImage(bytes: Buffer): Promise<Float32Array> {
    const digest = createHash('sha1').update(bytes).update(String(this.options.seed)).digest();
    const random = seededRandom(digest.readUInt32LE(0));
    const views: Float32Array[] = [];
    for (let v = 0; v < this.options.views; v++)
      views.push(await this.base.prepareImage(await simclrView(bytes, random)));
    return stack(views);
  }

  async embedPrepared(batch: Float32Array[]): Promise<Float32Array> {
    const A = this.options.views;
    const views = batch.flatMap((all) => {
      const size = all.length / A;
      return Array.from({ length: A }, (_, v) => all.subarray(v * size, (v + 1) * size));
    });
    const unit = await this.base.embedPrepared(views);
    const d = this.dim;
    const out = new Float32Array(batch.length * d);
    for (let i = 0; i < batch.length; i++)
      for (let v = 0; v < A; v++)
        for (let q = 0; q < d; q++) out[i * d + q]! += unit[(i * A + v) * d + q]! / A;
    return out;
  }

  embedTexts(texts: string[]): Promise<Float32Array> {
    return this.base.embedTexts(texts);
  }

  dispose(): Promise<void> {
    return this.base.dispose();
  }
}
