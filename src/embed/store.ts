import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { syncDir, WriteError, writeFileAtomic } from '../io/atomic.js';
import { failpoint } from '../io/failpoints.js';
import { npyHeader, NpyWriter, readNpy, type NpyDtype, type NpyMatrix } from './npy.js';

export interface StoreEncoderInfo {
  name: string;
  fingerprint: string;
  dim: number;
}

/** `store.json`: what identifies the encoder of the store, nothing else (no fitted state, no clock). */
interface StoreMeta {
  encoder: StoreEncoderInfo;
  dtype: NpyDtype;
}

export const STORE_FILE = 'store.json';

/** How to start the embeddings over, for messages (the commands exist: `curate reset`, `curate embed`). */
export const REBUILD_EMBEDDINGS = 'run `curate reset embeddings`, then `curate embed` to rebuild them';

/**
 * Workspace state that is missing or damaged (empty, cut short, not what this version writes): the
 * message names the file and the command that rebuilds it. A usage-level error (exit 2), not a bug.
 */
export class WorkspaceStateError extends Error {
  override name = 'WorkspaceStateError';
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}

/** The workspace already holds embeddings from another encoder: mixing them is refused. */
export class EncoderMismatchError extends Error {
  constructor(store: string, had: StoreEncoderInfo, wanted: StoreEncoderInfo) {
    super(
      `${store} holds embeddings from ${had.name} (${had.fingerprint}); refusing to mix in ${wanted.name} ` +
        `(${wanted.fingerprint}). Use the same encoder or another workspace (-w), or run ` +
        '`curate reset embeddings` to start the embeddings over.',
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
 * Remove what a killed writer left beside `base` in `dir`: `<base>.<random>.tmp` from writeFileAtomic,
 * `<base>.tmp` from a streamed write. Call only while holding the workspace (its catalog is open).
 */
export async function removeStaleTemps(dir: string, base?: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.endsWith('.tmp')) continue;
    if (base !== undefined && !name.startsWith(`${base}.`)) continue;
    await rm(path.join(dir, name), { force: true, recursive: true }).catch(() => undefined);
  }
}

/**
 * Read a store's `store.json`, or explain what is wrong with it. `undefined` when there is none.
 * Anything but a well-formed meta (empty after a crash, cut short, edited) is a WorkspaceStateError
 * naming the file and how to rebuild.
 */
export async function readStoreMeta(dir: string): Promise<StoreMeta | undefined> {
  const file = path.join(dir, STORE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WorkspaceStateError(file, `cannot read ${file}: ${(err as Error).message}`);
  }
  const damaged = (why: string) =>
    new WorkspaceStateError(file, `${file} is damaged (${why}); ${REBUILD_EMBEDDINGS}`);
  if (text.trim() === '') throw damaged('empty');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw damaged(`not valid JSON: ${(err as Error).message}`);
  }
  const m = parsed as Partial<StoreMeta> | null;
  const e = m?.encoder;
  if (
    !e ||
    typeof e.name !== 'string' ||
    typeof e.fingerprint !== 'string' ||
    e.fingerprint === '' ||
    !Number.isInteger(e.dim) ||
    e.dim <= 0 ||
    (m.dtype !== 'float32' && m.dtype !== 'float16')
  )
    throw damaged('no encoder name, fingerprint, dim and dtype');
  return { encoder: { name: e.name, fingerprint: e.fingerprint, dim: e.dim }, dtype: m.dtype };
}

/** The row maps beside a shard's `.npy` files: which sample each row holds, readable without DuckDB. */
export type RowMapKind = 'csv' | 'parquet';
export const ROW_MAP_KINDS: readonly RowMapKind[] = ['csv', 'parquet'];

/**
 * Per-shard `.npy` files, `<shard>.image.npy` and `<shard>.text.npy` (rows × dim, float32 or float16), in
 * `<workspace>/embeddings/`, plus `store.json` naming the encoder (name, fingerprint, dim) and dtype.
 * Beside them, `<shard>.keys.csv` and `<shard>.keys.parquet` map each row to its sample (written by
 * src/curate/rowMap.ts once the catalog has recorded the shard). Shard names say which source part they
 * hold (src/curate/embed.ts `shardName`). Every file is written under a temporary name, synced and
 * renamed (store.json through writeFileAtomic), so a file under its final name is always whole; the
 * catalog records which sample each row belongs to.
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
    options: { shared?: boolean } = {},
  ): Promise<EmbeddingStore> {
    await mkdir(dir, { recursive: true });
    // The workspace is ours (its catalog is open): whatever a killed run left half-written goes. Not
    // when other tasks write into the same store at the same time (`shared`): their temporary files
    // are live, and each task overwrites the temporary files of its own shards anyway.
    if (!options.shared) await removeStaleTemps(dir);
    const existing = await readStoreMeta(dir);
    if (existing) {
      if (existing.encoder.fingerprint !== encoder.fingerprint)
        throw new EncoderMismatchError(dir, existing.encoder, encoder);
      return new EmbeddingStore(dir, existing);
    }
    // Only what identifies the encoder: `encoder` may be the encoder object itself, with its whole state.
    const meta: StoreMeta = {
      encoder: { name: encoder.name, fingerprint: encoder.fingerprint, dim: encoder.dim },
      dtype,
    };
    await writeFileAtomic(path.join(dir, STORE_FILE), JSON.stringify(meta, null, 2) + '\n', {
      failpoint: 'embed.store-meta',
    });
    return new EmbeddingStore(dir, meta);
  }

  /** Open whatever store the folder holds, for reading. */
  static async read(dir: string): Promise<EmbeddingStore> {
    const meta = await readStoreMeta(dir);
    if (!meta) {
      throw new WorkspaceStateError(
        path.join(dir, STORE_FILE),
        `no embeddings in ${dir} (no ${STORE_FILE}): run \`curate embed\` first`,
      );
    }
    return new EmbeddingStore(dir, meta);
  }

  file(shard: string, tower: Tower): string {
    return path.join(this.dir, `${shard}.${tower}.npy`);
  }

  /** `<shard>.keys.csv` / `<shard>.keys.parquet`: row → sample key, caption and source. */
  rowMapFile(shard: string, kind: RowMapKind): string {
    return path.join(this.dir, `${shard}.keys.${kind}`);
  }

  /** Whether both row maps of the shard exist (they are renamed into place whole, never cut short). */
  async hasRowMaps(shard: string): Promise<boolean> {
    for (const kind of ROW_MAP_KINDS) {
      const found = await stat(this.rowMapFile(shard, kind)).then(
        (s) => s.isFile(),
        () => false,
      );
      if (!found) return false;
    }
    return true;
  }

  /** Remove the shard's row maps (before its `.npy` files are written again: a map must never be stale). */
  async removeRowMaps(shard: string): Promise<void> {
    for (const kind of ROW_MAP_KINDS) await rm(this.rowMapFile(shard, kind), { force: true });
  }

  /** Remove every file of a shard: its `.npy` files and row maps. */
  async removeShard(shard: string): Promise<void> {
    await this.removeRowMaps(shard);
    for (const tower of ['image', 'text'] as const) await rm(this.file(shard, tower), { force: true });
    await syncDir(this.dir);
  }

  /**
   * Start writing a shard: rows are appended batch by batch, and only `commit` gives the files their
   * names. A failed write (ENOSPC, …) removes both temporary files and names the file it was writing.
   */
  async beginShard(shard: string): Promise<ShardWriter> {
    const dim = this.meta.encoder.dim;
    const tmp = (tower: Tower) => `${this.file(shard, tower)}.tmp`;
    const removeTemps = () =>
      Promise.all(
        (['image', 'text'] as const).map((t) => rm(tmp(t), { force: true }).catch(() => undefined)),
      );
    const fail = async (tower: Tower, err: unknown): Promise<never> => {
      await removeTemps();
      if (err instanceof WriteError) throw err;
      throw new WriteError(this.file(shard, tower), (err as NodeJS.ErrnoException).code, err);
    };
    const image = await NpyWriter.create(tmp('image'), this.meta.dtype, dim).catch((e) => fail('image', e));
    const text = await NpyWriter.create(tmp('text'), this.meta.dtype, dim).catch(async (e) => {
      await image.abandon().catch(() => undefined);
      return fail('text', e);
    });
    // Closing a closed FileHandle is a no-op, so this is safe after finish() too.
    const closeBoth = () =>
      Promise.all([image.abandon().catch(() => undefined), text.abandon().catch(() => undefined)]);
    return {
      append: async (images, texts) => {
        let tower: Tower = 'image';
        try {
          await image.append(images);
          tower = 'text';
          await text.append(texts);
        } catch (err) {
          await closeBoth();
          await fail(tower, err);
        }
      },
      commit: async () => {
        let tower: Tower = 'image';
        try {
          await image.finish();
          tower = 'text';
          await text.finish();
          failpoint('embed.shard-written');
          for (const t of ['image', 'text'] as const) {
            tower = t;
            await rename(tmp(t), this.file(shard, t));
          }
          await syncDir(this.dir);
          failpoint('embed.shard-renamed');
        } catch (err) {
          await closeBoth();
          await fail(tower, err);
        }
      },
      abandon: async () => {
        await closeBoth();
        await removeTemps();
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

  async readShard(shard: string, tower: Tower): Promise<NpyMatrix> {
    const file = this.file(shard, tower);
    try {
      return await readNpy(file);
    } catch (err) {
      const why =
        (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `damaged (${(err as Error).message})`;
      // `curate embed` writes again every shard whose files are not whole.
      throw new WorkspaceStateError(
        file,
        `embedding shard ${file} is ${why}; run \`curate embed\` to write it again`,
      );
    }
  }
}
