import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { npyHeader, NpyWriter, readNpy, type NpyDtype, type NpyMatrix } from './npy.js';

export interface StoreEncoderInfo {
  name: string;
  fingerprint: string;
  dim: number;
}

interface StoreMeta {
  encoder: StoreEncoderInfo;
  dtype: NpyDtype;
  created: string;
}

/** The workspace already holds embeddings from another encoder: mixing them is refused. */
export class EncoderMismatchError extends Error {
  constructor(store: string, had: StoreEncoderInfo, wanted: StoreEncoderInfo) {
    super(
      `${store} holds embeddings from ${had.name} (${had.fingerprint}); refusing to mix in ${wanted.name} ` +
        `(${wanted.fingerprint}). Use the same encoder, another workspace, or --reset-embeddings to start over.`,
    );
    this.name = 'EncoderMismatchError';
  }
}

export type Tower = 'image' | 'text';

export interface ShardWriter {
  append(images: Float32Array, texts: Float32Array): Promise<void>;
  commit(): Promise<void>;
  abandon(): Promise<void>;
}

/**
 * Per-shard `.npy` files, `<shard>.image.npy` and `<shard>.text.npy` (rows × dim, float32 or float16), in
 * `<workspace>/embeddings/`, plus `store.json` naming the encoder. A shard is written to `*.tmp`, synced
 * and renamed, so a file under its final name is always whole; the catalog records which sample each row
 * belongs to.
 */
export class EmbeddingStore {
  private constructor(
    readonly dir: string,
    readonly meta: StoreMeta,
  ) {}

  static async open(
    dir: string,
    encoder: StoreEncoderInfo,
    dtype: NpyDtype = 'float32',
  ): Promise<EmbeddingStore> {
    await mkdir(dir, { recursive: true });
    const metaFile = path.join(dir, 'store.json');
    const existing = await readFile(metaFile, 'utf8').then(
      (t) => JSON.parse(t) as StoreMeta,
      () => undefined,
    );
    if (existing) {
      if (existing.encoder.fingerprint !== encoder.fingerprint)
        throw new EncoderMismatchError(dir, existing.encoder, encoder);
      return new EmbeddingStore(dir, existing);
    }
    const meta: StoreMeta = { encoder, dtype, created: new Date().toISOString() };
    await writeFile(metaFile, JSON.stringify(meta, null, 2) + '\n');
    return new EmbeddingStore(dir, meta);
  }

  /** Open whatever store the folder holds, for reading. */
  static async read(dir: string): Promise<EmbeddingStore> {
    const meta = JSON.parse(await readFile(path.join(dir, 'store.json'), 'utf8')) as StoreMeta;
    return new EmbeddingStore(dir, meta);
  }

  file(shard: string, tower: Tower): string {
    return path.join(this.dir, `${shard}.${tower}.npy`);
  }

  /** Start writing a shard: rows are appended batch by batch, and only `commit` gives the files their names. */
  async beginShard(shard: string): Promise<ShardWriter> {
    const dim = this.meta.encoder.dim;
    const image = await NpyWriter.create(`${this.file(shard, 'image')}.tmp`, this.meta.dtype, dim);
    const text = await NpyWriter.create(`${this.file(shard, 'text')}.tmp`, this.meta.dtype, dim);
    return {
      append: async (images, texts) => {
        await image.append(images);
        await text.append(texts);
      },
      commit: async () => {
        await Promise.all([image.finish(), text.finish()]);
        for (const tower of ['image', 'text'] as const)
          await rename(`${this.file(shard, tower)}.tmp`, this.file(shard, tower));
      },
      abandon: async () => {
        await Promise.all([image.abandon(), text.abandon()]);
      },
    };
  }

  /** True when both files exist with exactly the size `rows` rows need (a cut-short file is not whole). */
  async hasShard(shard: string, rows: number): Promise<boolean> {
    const dim = this.meta.encoder.dim;
    const expected =
      npyHeader(this.meta.dtype, rows, dim).length + rows * dim * (this.meta.dtype === 'float32' ? 4 : 2);
    for (const tower of ['image', 'text'] as const) {
      const size = await stat(this.file(shard, tower)).then(
        (s) => s.size,
        () => -1,
      );
      if (size !== expected) return false;
    }
    return true;
  }

  readShard(shard: string, tower: Tower): Promise<NpyMatrix> {
    return readNpy(this.file(shard, tower));
  }
}
