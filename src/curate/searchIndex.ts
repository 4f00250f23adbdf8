/**
 * The workspace's kNN indexes (image, text or joint space), built from the embedding store, saved in
 * `<workspace>/index/`, reloaded, and queried by sample or by free text (embedded with the workspace's
 * encoder, searched among the images). New indexes are usearch (`<space>.usearch`, float16 vectors,
 * built on every core); `<space>.hnsw` indexes written by older versions (hnswlib) still load.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Encoder } from '../embed/encoders/types.js';
import { int64Npy, readInt64Npy } from '../embed/npy.js';
import { EmbeddingStore, removeStaleTemps, WorkspaceStateError } from '../embed/store.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { KnnGraph } from '../select/contract.js';
import { HnswIndex, IndexFileError } from '../select/index/hnsw.js';
import { RecallProbe, type RecallReport } from '../select/index/recall.js';
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
  /** Size of the index file written with this meta (absent in older workspaces). */
  bytes?: number;
  /** Which library wrote the index (absent in older workspaces: hnswlib, `<space>.hnsw`). */
  kind?: IndexKind;
  precision?: IndexPrecision;
  efSearch?: number;
  /** Recall@k against exact search, measured after the build (absent when not measured). */
  recall?: RecallReport;
  buildSeconds?: number;
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
  embeddings?: WorkspaceEmbeddings;
  onProgress?: (done: number, total: number) => void;
  /** Items sampled to measure recall@10 after the build (default 200; 0 skips the measurement). */
  recallQueries?: number;
  /** Recall@10 the default efSearch is raised towards (default {@link TARGET_RECALL}). */
  targetRecall?: number;
  /** Rows per block read from the pool when `embeddings` is not given (default 100,000: `poolBlocks`). */
  blockRows?: number;
}

/** Pools up to this size are indexed on one thread, so a rebuild is byte-identical to the last. */
export const REPRODUCIBLE_BUILD_ROWS = 20_000;

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
  ) {}

  static dir(workspace: string): string {
    return path.join(path.resolve(workspace), 'index');
  }

  /**
   * Build the index of one space from the workspace's embeddings (usearch, float16 unless asked
   * otherwise, every core), save it, and measure its recall@10 on sampled items against exact search.
   * Without an explicit efSearch, the search breadth starts at 64 and doubles until recall reaches
   * `targetRecall` (0.95) or 1024; the breadth reached is saved with the index and used by every query.
   *
   * The pool is read a block of catalog parts at a time (`poolBlocks`), twice: once to add it to the
   * index, once for the sampled items' exact neighbours. The JavaScript side holds one block and the
   * ids; the index itself (float16 vectors and graph) is native memory, about 1.1 kB an item at d = 512.
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
    const precision = options.precision ?? 'f16';
    let efSearch = options.efSearch ?? INDEX_DEFAULTS.efSearch;
    // A one-thread build is byte-reproducible (a multi-threaded one inserts in a racy order): small
    // pools, where it costs seconds, get reruns identical to the byte; large ones use every core.
    const threads = options.threads ?? (source.expectedRows <= REPRODUCIBLE_BUILD_ROWS ? 1 : undefined);
    const recallQueries = options.recallQueries ?? 200;
    const probe =
      recallQueries > 0 ? new RecallProbe(source.expectedRows, { queries: recallQueries }) : undefined;
    const started = performance.now();
    let index: UsearchIndex | undefined;
    let fingerprint = '';
    const idBlocks: BigInt64Array[] = [];
    for await (const block of source.blocks()) {
      const vectors = vectorsOf(block, space);
      index ??= UsearchIndex.empty(vectors.cols, {
        ...options,
        precision,
        efSearch,
        ...(threads ? { threads } : {}),
      });
      const first = index.size;
      index.add(vectors, (added) => options.onProgress?.(first + added, source.expectedRows));
      probe?.collect(vectors, first);
      idBlocks.push(block.ids);
      fingerprint = block.encoder.fingerprint;
    }
    if (!index) throw new Error(`no embeddings to index in ${workspace}: run curate embed first`);
    const buildSeconds = (performance.now() - started) / 1000;
    const ids = concatIds(idBlocks);
    const dim = index.dim;
    const dir = WorkspaceIndex.dir(workspace);
    await mkdir(dir, { recursive: true });
    await removeStaleTemps(dir, space); // what a killed build left: `<space>.usearch.tmp`, `<space>.json.*.tmp`
    // Both files are written atomically, the index first; the meta records the index file's size, so
    // a kill between the two (new index, old meta) is seen as damage when loading, not silently used.
    const file = indexFile(dir, space, 'usearch');
    await index.save(file);
    let recall: RecallReport | undefined;
    if (probe) {
      // Exact neighbours of the sampled items: a second pass over the pool.
      let first = 0;
      for await (const block of source.blocks()) {
        await probe.search(vectorsOf(block, space), first);
        first += block.n;
      }
      recall = probe.recallOf(index);
      // Without an efSearch asked for, search breadth doubles (reloading the saved index, whose
      // breadth is fixed when it opens) until recall@10 reaches the target or the cap.
      const target = options.targetRecall ?? TARGET_RECALL;
      while (options.efSearch === undefined && recall.recall < target && efSearch < MAX_EF_SEARCH) {
        efSearch *= 2;
        // Mapped: each reload would otherwise hold its own copy until the garbage collector frees the
        // last one (a 1M-pair build peaked at 8.2 GB that way, against 2.5 GB while building).
        index = await UsearchIndex.load(file, dim, { precision, efSearch, mapped: true });
        recall = probe.recallOf(index);
      }
    }
    const idsFile = `${space}.ids.npy`;
    await writeFileAtomic(path.join(dir, idsFile), int64Npy(ids));
    const meta: IndexMeta = {
      space,
      fingerprint,
      n: ids.length,
      dim,
      idsFile,
      bytes: (await stat(file)).size,
      kind: 'usearch',
      precision,
      efSearch,
      ...(recall ? { recall } : {}),
      buildSeconds,
    };
    await writeFileAtomic(path.join(dir, `${space}.json`), JSON.stringify(meta));
    // An hnswlib index an older version wrote is now stale (the meta no longer points at it).
    await rm(indexFile(dir, space, 'hnswlib'), { force: true });
    return new WorkspaceIndex(space, index, ids, fingerprint, path.resolve(workspace), recall, buildSeconds);
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
    let index: Index;
    try {
      const size = await stat(file).then(
        (s) => s.size,
        () => undefined,
      );
      if (size !== undefined && meta.bytes !== undefined && size !== meta.bytes)
        throw new IndexFileError(file, `${size} bytes, ${metaFile} says ${meta.bytes}`);
      index =
        kind === 'usearch'
          ? await UsearchIndex.load(file, meta.dim, {
              ...(meta.precision ? { precision: meta.precision } : {}),
              efSearch: meta.efSearch ?? INDEX_DEFAULTS.efSearch,
            })
          : await HnswIndex.load(file, meta.dim, meta.efSearch ?? INDEX_DEFAULTS.efSearch);
    } catch (err) {
      if (err instanceof IndexFileError) throw damaged(file, err.problem);
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
