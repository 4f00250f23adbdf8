/**
 * The workspace's kNN indexes (image, text or joint space), built from the embedding store, saved in
 * `<workspace>/index/`, reloaded, and queried by sample or by free text (embedded with the workspace's
 * encoder, searched among the images). New indexes are hnswlib graphs sharded over the cores
 * (`<space>.hnsw`, or `<space>.0.hnsw`, `<space>.1.hnsw`, … for several shards; float32 vectors), or
 * usearch (`<space>.usearch`, float16 vectors) when asked for or when a float32 index would not fit in
 * memory. Indexes older versions wrote (one `<space>.hnsw`, or usearch) still load.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import path from 'node:path';
import type { Encoder } from '../embed/encoders/types.js';
import { int64Npy, readInt64Npy } from '../embed/npy.js';
import { EmbeddingStore, removeStaleTemps, WorkspaceStateError } from '../embed/store.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { KnnGraph } from '../select/contract.js';
import { IndexFileError } from '../select/index/hnsw.js';
import { RecallProbe, type RecallReport } from '../select/index/recall.js';
import { ShardedHnswBuilder, ShardedHnswIndex, shardFiles } from '../select/index/shardedHnsw.js';
import {
  INDEX_DEFAULTS,
  type Index,
  type IndexKind,
  type IndexOptions,
  type IndexPrecision,
} from '../select/index/types.js';
import { UsearchIndex } from '../select/index/usearch.js';
import type { Matrix } from '../select/kernels/similarity.js';
import { vectorsOf } from '../select/selectors/vectors.js';
import type { Catalog } from './catalog.js';
import { embeddingsDir } from './embed.js';
import { poolBlocks, type WorkspaceEmbeddings } from './embeddings.js';

export type Space = 'image' | 'text' | 'joint';

interface IndexMeta {
  space: Space;
  fingerprint: string;
  n: number;
  dim: number;
  /**
   * The catalog id of every index key, in key order: `<space>.ids.npy` (int64) beside this file; older
   * workspaces list them here as strings (one JSON string stops at ~500 MB, ~40M ids).
   */
  idsFile?: string;
  ids?: string[];
  /** Size of the index file written with this meta, all shards together (absent in older workspaces). */
  bytes?: number;
  /** Which library wrote the index (absent in older workspaces: hnswlib, `<space>.hnsw`). */
  kind?: IndexKind;
  /** hnswlib: how many shard files (absent: one, `<space>.hnsw`), and each one's size. */
  shards?: number;
  shardBytes?: number[];
  precision?: IndexPrecision;
  efSearch?: number;
  /** Recall@k against exact search, measured after the build (absent when not measured). */
  recall?: RecallReport;
  buildSeconds?: number;
  kindReason?: string;
}

const REBUILD_INDEX = 'run `curate index` to rebuild it';

/** The index file of a space: `<space>.usearch`, or `<space>.hnsw` for an hnswlib index. */
function indexFile(dir: string, space: Space, kind: IndexKind): string {
  return path.join(dir, `${space}.${kind === 'usearch' ? 'usearch' : 'hnsw'}`);
}

export interface SearchHit {
  id: bigint;
  key: string;
  caption: string;
  similarity: number;
}

export interface WorkspaceIndexOptions extends IndexOptions {
  /**
   * The library (default: hnswlib, or usearch when a float32 index would not fit, see `chooseIndexKind`;
   * `precision: 'f16'` asks for usearch, `shards` for hnswlib).
   */
  kind?: IndexKind;
  /** hnswlib: shards, each built on its own thread (default {@link defaultShards}). */
  shards?: number;
  embeddings?: WorkspaceEmbeddings;
  onProgress?: (done: number, total: number) => void;
  /** Items sampled to measure recall@10 after the build (default 200; 0 skips the measurement). */
  recallQueries?: number;
  /** Recall@10 the default efSearch is raised towards (default {@link TARGET_RECALL}). */
  targetRecall?: number;
  /** Rows per block read from the pool when `embeddings` is not given (default 100,000: `poolBlocks`). */
  blockRows?: number;
}

/** usearch: pools up to this size are indexed on one thread, so a rebuild is byte-identical to the last. */
export const REPRODUCIBLE_BUILD_ROWS = 20_000;

/** hnswlib: the fewest items a shard gets by default (below that one thread builds in under a minute). */
export const MIN_SHARD_ROWS = 50_000;

/** hnswlib's default shard count: one per core, at least MIN_SHARD_ROWS items each. */
export function defaultShards(rows: number): number {
  return Math.max(1, Math.min(availableParallelism(), Math.floor(rows / MIN_SHARD_ROWS)));
}

/** Bytes an hnswlib index of `rows` items of `dim` float32 dimensions holds (vectors, level-0 links, labels). */
export function hnswlibBytes(rows: number, dim: number, m: number = INDEX_DEFAULTS.m): number {
  return rows * (dim * 4 + 2 * m * 4 + 4 + 8);
}

/**
 * Which library indexes a pool when none is asked for, and why: hnswlib (sharded over the cores, the
 * fastest build and best recall measured at 1M), unless its float32 index would take more than half
 * of this machine's memory; then usearch, whose float16 vectors take half that.
 */
export function chooseIndexKind(
  rows: number,
  dim: number,
  m: number = INDEX_DEFAULTS.m,
  memory: number = totalmem(),
): { kind: IndexKind; why?: string } {
  const need = hnswlibBytes(rows, dim, m);
  if (need <= memory / 2) return { kind: 'hnswlib' };
  const gb = (b: number) => (b / 1e9).toFixed(1);
  return {
    kind: 'usearch',
    why:
      `a float32 hnswlib index of ${rows} items would need ${gb(need)} GB, more than half of this ` +
      `machine's ${gb(memory)} GB; usearch stores float16 vectors (--kind hnswlib to insist)`,
  };
}

/** The recall@10 `curate index` aims for when no efSearch is given: neighbours and search you can trust. */
export const TARGET_RECALL = 0.95;
/** Search breadth is not raised past this (query time grows about linearly with it). */
const MAX_EF_SEARCH = 1024;

export class WorkspaceIndex {
  private constructor(
    readonly space: Space,
    readonly index: Index,
    readonly ids: BigInt64Array,
    readonly fingerprint: string,
    private readonly workspace: string,
    /** Recall@10 measured when the index was built (absent for older indexes or when skipped). */
    readonly recall?: RecallReport,
    readonly buildSeconds?: number,
    /** Why the build chose its library, when it was not the default (usearch for lack of memory). */
    readonly kindReason?: string,
  ) {}

  /** The library and its storage, e.g. `hnswlib, 2 shards` or `usearch, f16`. */
  describe(): string {
    const index = this.index;
    if (index instanceof ShardedHnswIndex)
      return index.shards === 1 ? 'hnswlib' : `hnswlib, ${index.shards} shards`;
    return index instanceof UsearchIndex ? `usearch, ${index.precision}` : index.kind;
  }

  static dir(workspace: string): string {
    return path.join(path.resolve(workspace), 'index');
  }

  /**
   * Build the index of one space from the workspace's embeddings, save it, and measure its recall@10 on
   * sampled items against exact search. The library is `options.kind`, or `chooseIndexKind`'s: hnswlib
   * sharded over the cores (each shard built on its own worker thread, byte-reproducible for a given
   * shard count), or usearch (float16, every core) when float32 vectors would not fit in memory.
   * Without an explicit efSearch, the search breadth starts at 64 and doubles until recall reaches
   * `targetRecall` (0.95) or 1024; the breadth reached is saved with the index and used by every query.
   *
   * The pool is read a block of catalog parts at a time (`poolBlocks`), twice: once to add it to the
   * index (the next block is read while the shards add this one), once for the sampled items' exact
   * neighbours. The JavaScript side holds about two blocks and the ids; the index itself is native
   * memory: ~2.2 kB an item at d = 512 for hnswlib (float32), ~1.1 kB for usearch's float16.
   */
  static async build(
    catalog: Catalog,
    workspace: string,
    space: Space,
    options: WorkspaceIndexOptions = {},
  ): Promise<WorkspaceIndex> {
    // The pool a block of parts at a time (memory follows the block, not the pool), or the embeddings
    // the caller already holds as one block.
    const given = options.embeddings;
    const source = given
      ? {
          expectedRows: given.n,
          blocks: async function* () {
            yield given;
          },
        }
      : await poolBlocks(catalog, workspace, options.blockRows);
    if (options.kind === 'hnswlib' && options.precision === 'f16')
      throw new Error('hnswlib stores float32 vectors: --precision f16 needs --kind usearch');
    if (options.kind === 'usearch' && options.shards !== undefined)
      throw new Error('shards apply to hnswlib indexes, not usearch');
    let efSearch = options.efSearch ?? INDEX_DEFAULTS.efSearch;
    const recallQueries = options.recallQueries ?? 200;
    const probe =
      recallQueries > 0 ? new RecallProbe(source.expectedRows, { queries: recallQueries }) : undefined;
    const dir = WorkspaceIndex.dir(workspace);
    await mkdir(dir, { recursive: true });
    // What a killed build left: `<space>.hnsw.tmp`, `<space>.usearch.tmp`, `<space>.json.*.tmp`.
    await removeStaleTemps(dir, space);
    const started = performance.now();
    let builder: IndexBuilder | undefined;
    let fingerprint = '';
    const idBlocks: BigInt64Array[] = [];
    try {
      let first = 0;
      for await (const block of source.blocks()) {
        const vectors = vectorsOf(block, space);
        builder ??= startBuild(vectors.cols, source.expectedRows, dir, space, { ...options, efSearch });
        await builder.add(vectors);
        probe?.collect(vectors, first);
        first += vectors.rows;
        idBlocks.push(block.ids);
        fingerprint = block.encoder.fingerprint;
      }
      if (!builder) throw new Error(`no embeddings to index in ${workspace}: run curate embed first`);
    } catch (err) {
      await builder?.abandon();
      throw err;
    }
    // Both files are written atomically, the index first; the meta records the index files' sizes, so
    // a kill between the two (new index, old meta) is seen as damage when loading, not silently used.
    let index = await builder.save();
    const buildSeconds = (performance.now() - started) / 1000;
    const ids = concatIds(idBlocks);
    const dim = index.dim;
    let recall: RecallReport | undefined;
    if (probe) {
      // Exact neighbours of the sampled items: a second pass over the pool.
      let first = 0;
      for await (const block of source.blocks()) {
        await probe.search(vectorsOf(block, space), first);
        first += block.n;
      }
      recall = probe.recallOf(index);
      // Without an efSearch asked for, search breadth doubles until recall@10 reaches the target or
      // the cap.
      const target = options.targetRecall ?? TARGET_RECALL;
      while (options.efSearch === undefined && recall.recall < target && efSearch < MAX_EF_SEARCH) {
        efSearch *= 2;
        index = await builder.atEfSearch(index, efSearch);
        recall = probe.recallOf(index);
      }
    }
    const idsFile = `${space}.ids.npy`;
    await writeFileAtomic(path.join(dir, idsFile), int64Npy(ids));
    const shardBytes = await Promise.all(builder.files.map((f) => stat(f).then((x) => x.size)));
    const meta: IndexMeta = {
      space,
      fingerprint,
      n: ids.length,
      dim,
      idsFile,
      bytes: shardBytes.reduce((a, b) => a + b, 0),
      kind: builder.kind,
      ...(builder.kind === 'hnswlib'
        ? { precision: 'f32' as const, shards: builder.files.length, shardBytes }
        : { precision: builder.precision }),
      efSearch,
      ...(recall ? { recall } : {}),
      buildSeconds,
      ...(builder.why ? { kindReason: builder.why } : {}),
    };
    await writeFileAtomic(path.join(dir, `${space}.json`), JSON.stringify(meta));
    // Index files of an earlier build the meta no longer points at (the other library, other shard counts).
    await removeOtherIndexFiles(dir, space, builder.files);
    return new WorkspaceIndex(
      space,
      index,
      ids,
      fingerprint,
      path.resolve(workspace),
      recall,
      buildSeconds,
      builder.why,
    );
  }

  static async load(workspace: string, space: Space): Promise<WorkspaceIndex> {
    const dir = WorkspaceIndex.dir(workspace);
    const metaFile = path.join(dir, `${space}.json`);
    if (!existsSync(metaFile))
      throw new WorkspaceStateError(metaFile, `no ${space} index in ${dir}: run \`curate index\` first`);
    const damaged = (file: string, why: string) =>
      new WorkspaceStateError(file, `${file} is damaged (${why}); ${REBUILD_INDEX}`);
    let meta: IndexMeta;
    try {
      meta = JSON.parse(await readFile(metaFile, 'utf8')) as IndexMeta;
      if (!Number.isInteger(meta?.dim) || (!meta.idsFile && !Array.isArray(meta.ids)))
        throw new Error('not an index description');
    } catch (err) {
      throw damaged(metaFile, (err as Error).message);
    }
    let ids: BigInt64Array;
    const idsPath = meta.idsFile ? path.join(dir, path.basename(meta.idsFile)) : metaFile;
    try {
      ids = meta.idsFile ? await readInt64Npy(idsPath) : BigInt64Array.from(meta.ids!, BigInt);
    } catch (err) {
      throw damaged(idsPath, (err as Error).message);
    }
    if (ids.length !== meta.n) throw damaged(idsPath, `${ids.length} ids, ${metaFile} says ${meta.n}`);
    const kind = meta.kind ?? 'hnswlib';
    const file = indexFile(dir, space, kind);
    const files = kind === 'hnswlib' ? shardFiles(file, meta.shards ?? 1) : [file];
    const expectedBytes = meta.shardBytes ?? [meta.bytes];
    let index: Index;
    try {
      for (const [s, f] of files.entries()) {
        const size = await stat(f).then(
          (x) => x.size,
          () => undefined,
        );
        const want = expectedBytes[s];
        if (size !== undefined && want !== undefined && size !== want)
          throw new IndexFileError(f, `${size} bytes, ${metaFile} says ${want}`);
      }
      const efSearch = meta.efSearch ?? INDEX_DEFAULTS.efSearch;
      index =
        kind === 'usearch'
          ? await UsearchIndex.load(file, meta.dim, {
              ...(meta.precision ? { precision: meta.precision } : {}),
              efSearch,
            })
          : await ShardedHnswIndex.load(files, meta.dim, efSearch);
    } catch (err) {
      if (err instanceof IndexFileError) throw damaged(err.file, err.problem);
      throw err;
    }
    if (index.size !== meta.n) throw damaged(file, `${index.size} items, ${metaFile} lists ${meta.n}`);
    return new WorkspaceIndex(
      space,
      index,
      ids,
      meta.fingerprint,
      path.resolve(workspace),
      meta.recall,
      meta.buildSeconds,
      meta.kindReason,
    );
  }

  /** The k items most similar to a vector of this space. */
  async nearest(catalog: Catalog, vector: ArrayLike<number>, k: number): Promise<SearchHit[]> {
    const found = this.index.query(vector, k);
    const ids = found.map((f) => this.ids[f.index]!);
    const rows = await catalog.rows<{ id: bigint; key: string; caption: string }>(
      `SELECT id, key, caption FROM samples WHERE id IN (SELECT unnest(string_split($ids, ','))::BIGINT)`,
      { ids: ids.join(',') },
    );
    const byId = new Map(rows.map((r) => [BigInt(r.id), r]));
    return found.map((f, t) => ({
      id: ids[t]!,
      key: byId.get(ids[t]!)?.key ?? '',
      caption: byId.get(ids[t]!)?.caption ?? '',
      similarity: f.similarity,
    }));
  }

  /** The k samples nearest to catalog sample `id` in this space, itself left out. */
  async neighboursOf(catalog: Catalog, id: number, k: number): Promise<SearchHit[]> {
    const row = this.ids.indexOf(BigInt(id));
    if (row < 0) throw new Error(`sample ${id} is not in the ${this.space} index (embed and index it first)`);
    const hits = await this.nearest(catalog, await this.vectorOfSample(catalog, id), k + 1);
    return hits.filter((h) => h.id !== BigInt(id)).slice(0, k);
  }

  /**
   * The vector of sample `id` in this space, read from the embedding store (usearch cannot hand back a
   * stored vector, and its float16 copy would be rounded anyway).
   */
  private async vectorOfSample(catalog: Catalog, id: number): Promise<Float32Array> {
    const store = await EmbeddingStore.read(embeddingsDir(this.workspace));
    const [at] = await catalog.rows<{ shard: string; row: number }>(
      `SELECT e.shard, e."row" FROM embeddings e
       JOIN embedding_shards es ON es.shard = e.shard AND es.fingerprint = $fp WHERE e.sample_id = $id`,
      { fp: this.fingerprint, id },
    );
    if (!at) throw new Error(`sample ${id} has no ${this.fingerprint} embedding (run \`curate embed\`)`);
    const rowOf = async (tower: 'image' | 'text') => {
      const m = await store.readShard(at.shard, tower);
      return m.data.subarray(at.row * m.cols, (at.row + 1) * m.cols);
    };
    if (this.space !== 'joint') return Float32Array.from(await rowOf(this.space));
    // The joint space is [u; t]/√2 (vectorsOf).
    const [u, t] = [await rowOf('image'), await rowOf('text')];
    return Float32Array.from([...u, ...t], (x) => x * Math.SQRT1_2);
  }

  /** Images matching a free-text query: the caption tower embeds it, the image index is searched. */
  async searchText(catalog: Catalog, encoder: Encoder, query: string, k: number): Promise<SearchHit[]> {
    if (this.space !== 'image') throw new Error('free-text search runs against the image index');
    if (encoder.fingerprint !== this.fingerprint) {
      throw new Error(
        `the index was built from ${this.fingerprint} embeddings; the query encoder is ${encoder.fingerprint}`,
      );
    }
    return this.nearest(catalog, await encoder.embedTexts([query]), k);
  }

  /** The sparse kNN graph of the indexed items, for graph-based selectors. */
  knnGraph(vectors: Matrix, k: number): KnnGraph {
    return this.index.knnGraph(vectors, k);
  }
}

function concatIds(blocks: readonly BigInt64Array[]): BigInt64Array {
  const out = new BigInt64Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** One build of either library, as `WorkspaceIndex.build` drives it. */
interface IndexBuilder {
  readonly kind: IndexKind;
  readonly precision: IndexPrecision;
  /** The files `save` writes. */
  readonly files: string[];
  /** Why this library, when it is not the default one. */
  readonly why?: string;
  /** Add the next block of rows. */
  add(vectors: Matrix): Promise<void>;
  /** Write the index files and return the index, ready to query. */
  save(): Promise<Index>;
  /** The saved index searching with breadth `efSearch`. */
  atEfSearch(index: Index, efSearch: number): Promise<Index>;
  /** Stop a build that will not be saved. */
  abandon(): Promise<void>;
}

function startBuild(
  dim: number,
  expectedRows: number,
  dir: string,
  space: Space,
  options: WorkspaceIndexOptions & { efSearch: number },
): IndexBuilder {
  const { efSearch, onProgress } = options;
  // Float16 storage is usearch's, shards are hnswlib's: asking for either picks its library.
  const asked =
    options.kind ??
    (options.precision === 'f16' ? 'usearch' : options.shards !== undefined ? 'hnswlib' : undefined);
  const chosen = asked ? { kind: asked } : chooseIndexKind(expectedRows, dim, options.m);
  if (chosen.kind === 'hnswlib') {
    const shards = Math.min(options.shards ?? defaultShards(expectedRows), Math.max(1, expectedRows));
    const file = indexFile(dir, space, 'hnswlib');
    const hnswOptions = {
      efSearch,
      ...(options.m !== undefined ? { m: options.m } : {}),
      ...(options.efConstruction !== undefined ? { efConstruction: options.efConstruction } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
    };
    const builder = new ShardedHnswBuilder(dim, expectedRows, shards, hnswOptions, onProgress);
    let saved: ShardedHnswIndex | undefined;
    return {
      kind: 'hnswlib',
      precision: 'f32',
      files: shardFiles(file, shards),
      add: (vectors) => builder.add(vectors),
      save: async () => (saved = await builder.save(file, efSearch)),
      // hnswlib's breadth is set in place, no reload.
      atEfSearch: async (_, ef) => {
        saved!.setEfSearch(ef);
        return saved!;
      },
      abandon: () => builder.close(),
    };
  }
  const precision = options.precision ?? 'f16';
  // A one-thread usearch build is byte-reproducible (a multi-threaded one inserts in a racy order):
  // small pools, where it costs seconds, get reruns identical to the byte.
  const threads = options.threads ?? (expectedRows <= REPRODUCIBLE_BUILD_ROWS ? 1 : undefined);
  const index = UsearchIndex.empty(dim, { ...options, precision, ...(threads ? { threads } : {}) });
  const file = indexFile(dir, space, 'usearch');
  return {
    kind: 'usearch',
    precision,
    files: [file],
    ...(chosen.why ? { why: chosen.why } : {}),
    add: async (vectors) => {
      const first = index.size;
      index.add(vectors, (added) => onProgress?.(first + added, expectedRows));
    },
    save: async () => {
      await index.save(file);
      return index;
    },
    // Mapped: each reload would otherwise hold its own copy until the garbage collector frees the last
    // one (a 1M-pair build peaked at 8.2 GB that way, against 2.5 GB while building).
    atEfSearch: (_, ef) => UsearchIndex.load(file, dim, { precision, efSearch: ef, mapped: true }),
    abandon: async () => undefined,
  };
}

/** Remove the index files of `space` in `dir` other than `keep`: what an earlier build left. */
async function removeOtherIndexFiles(dir: string, space: Space, keep: readonly string[]): Promise<void> {
  const kept = new Set(keep.map((f) => path.basename(f)));
  const indexName = new RegExp(`^${space}\\.((\\d+\\.)?hnsw|usearch)$`);
  for (const name of await readdir(dir))
    if (indexName.test(name) && !kept.has(name)) await rm(path.join(dir, name), { force: true });
}
