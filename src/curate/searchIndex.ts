/**
 * The workspace's HNSW indexes (image, text or joint space), built from the embedding store, saved in
 * `<workspace>/index/`, reloaded, and queried by sample or by free text (embedded with the workspace's
 * encoder, searched among the images).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Encoder } from '../embed/encoders/types.js';
import { removeStaleTemps, WorkspaceStateError } from '../embed/store.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { KnnGraph } from '../select/contract.js';
import { HnswIndex, IndexFileError, type HnswOptions } from '../select/index/hnsw.js';
import type { Matrix } from '../select/kernels/similarity.js';
import { vectorsOf } from '../select/selectors/vectors.js';
import type { Catalog } from './catalog.js';
import { loadEmbeddings, type WorkspaceEmbeddings } from './embeddings.js';

export type Space = 'image' | 'text' | 'joint';

interface IndexMeta {
  space: Space;
  fingerprint: string;
  n: number;
  dim: number;
  ids: string[];
  /** Size of the `.hnsw` file written with this meta (absent in older workspaces). */
  bytes?: number;
}

const REBUILD_INDEX = 'run `curate index` to rebuild it';

export interface SearchHit {
  id: bigint;
  key: string;
  caption: string;
  similarity: number;
}

export class WorkspaceIndex {
  private constructor(
    readonly space: Space,
    readonly index: HnswIndex,
    readonly ids: BigInt64Array,
    readonly fingerprint: string,
  ) {}

  static dir(workspace: string): string {
    return path.join(path.resolve(workspace), 'index');
  }

  /** Build the index of one space from the workspace's embeddings and save it. */
  static async build(
    catalog: Catalog,
    workspace: string,
    space: Space,
    options: HnswOptions & {
      embeddings?: WorkspaceEmbeddings;
      onProgress?: (done: number, total: number) => void;
    } = {},
  ): Promise<WorkspaceIndex> {
    const e = options.embeddings ?? (await loadEmbeddings(catalog, workspace));
    const vectors = vectorsOf(e, space);
    const index = HnswIndex.build(vectors, options, options.onProgress);
    const dir = WorkspaceIndex.dir(workspace);
    await mkdir(dir, { recursive: true });
    await removeStaleTemps(dir, space); // what a killed build left: `<space>.hnsw.tmp`, `<space>.json.*.tmp`
    // Both files are written atomically, the index first; the meta records the index file's size, so
    // a kill between the two (new index, old meta) is seen as damage when loading, not silently used.
    const file = path.join(dir, `${space}.hnsw`);
    await index.save(file);
    const meta: IndexMeta = {
      space,
      fingerprint: e.encoder.fingerprint,
      n: e.n,
      dim: vectors.cols,
      ids: Array.from(e.ids, String),
      bytes: (await stat(file)).size,
    };
    await writeFileAtomic(path.join(dir, `${space}.json`), JSON.stringify(meta));
    return new WorkspaceIndex(space, index, e.ids, e.encoder.fingerprint);
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
      if (!Number.isInteger(meta?.dim) || !Array.isArray(meta.ids) || meta.ids.length !== meta.n)
        throw new Error('not an index description');
    } catch (err) {
      throw damaged(metaFile, (err as Error).message);
    }
    const file = path.join(dir, `${space}.hnsw`);
    let index: HnswIndex;
    try {
      const size = await stat(file).then(
        (s) => s.size,
        () => undefined,
      );
      if (size !== undefined && meta.bytes !== undefined && size !== meta.bytes)
        throw new IndexFileError(file, `${size} bytes, ${metaFile} says ${meta.bytes}`);
      index = await HnswIndex.load(file, meta.dim);
    } catch (err) {
      if (err instanceof IndexFileError) throw damaged(file, err.problem);
      throw err;
    }
    if (index.size !== meta.n) throw damaged(file, `${index.size} items, ${metaFile} lists ${meta.n}`);
    return new WorkspaceIndex(space, index, BigInt64Array.from(meta.ids, BigInt), meta.fingerprint);
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
    const hits = await this.nearest(catalog, this.index.vectorOf(row), k + 1);
    return hits.filter((h) => h.id !== BigInt(id)).slice(0, k);
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
