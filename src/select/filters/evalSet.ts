/**
 * An evaluation set's image embeddings, for eval-dedup: a `.npy` matrix (rows × dim, float32 or
 * float16), an embeddings store folder (`store.json` + `<shard>.image.npy`), or a clipcurate workspace
 * holding one (`<workspace>/embeddings/`). Rows are scaled to unit length; a row that cannot be (zero,
 * NaN, infinite) is an error naming the file and row.
 */
import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { readNpy } from '../../embed/npy.js';
import { EmbeddingStore, STORE_FILE } from '../../embed/store.js';
import { SelectionInputError } from '../contract.js';
import type { Matrix } from '../kernels/similarity.js';

export interface EvalSet extends Matrix {
  /** Where the rows came from, for messages and traces. */
  source: string;
  /** The encoder, when the source records it (a store or workspace; a bare .npy does not). */
  encoder?: { name: string; fingerprint: string };
}

export async function loadEvalSet(spec: string): Promise<EvalSet> {
  const target = path.resolve(spec);
  if (!existsSync(target))
    throw new SelectionInputError(`eval-dedup: evaluation set ${target} does not exist`);
  if (statSync(target).isFile()) return normalised(await readMatrix(target), target);
  const storeDir = existsSync(path.join(target, STORE_FILE)) ? target : path.join(target, 'embeddings');
  if (!existsSync(path.join(storeDir, STORE_FILE)))
    throw new SelectionInputError(
      `eval-dedup: ${target} is neither a .npy file, an embeddings folder (with ${STORE_FILE}) nor a ` +
        'workspace with embeddings (run `curate embed` there first)',
    );
  const store = await EmbeddingStore.read(storeDir);
  const shards = (await readdir(storeDir))
    .filter((f) => f.endsWith('.image.npy'))
    .map((f) => f.slice(0, -'.image.npy'.length))
    .sort();
  if (shards.length === 0)
    throw new SelectionInputError(`eval-dedup: no image embeddings (*.image.npy) in ${storeDir}`);
  const parts = await Promise.all(shards.map((s) => store.readShard(s, 'image')));
  const rows = parts.reduce((k, m) => k + m.rows, 0);
  const data = new Float32Array(rows * store.meta.encoder.dim);
  let at = 0;
  for (const m of parts) {
    data.set(m.data, at);
    at += m.data.length;
  }
  const { name, fingerprint } = store.meta.encoder;
  return {
    ...normalised({ rows, cols: store.meta.encoder.dim, data }, storeDir),
    encoder: { name, fingerprint },
  };
}

async function readMatrix(file: string): Promise<Matrix> {
  try {
    return await readNpy(file);
  } catch (err) {
    throw new SelectionInputError(`eval-dedup: cannot read ${file}: ${(err as Error).message}`);
  }
}

function normalised(m: Matrix, source: string): EvalSet {
  if (m.rows === 0) throw new SelectionInputError(`eval-dedup: ${source} holds no rows`);
  const data = new Float32Array(m.data.length);
  for (let r = 0; r < m.rows; r++) {
    let sq = 0;
    for (let k = r * m.cols; k < (r + 1) * m.cols; k++) sq += m.data[k]! ** 2;
    const norm = Math.sqrt(sq);
    if (!(norm > 0 && Number.isFinite(norm)))
      throw new SelectionInputError(
        `eval-dedup: row ${r} of ${source} has ${norm === 0 ? 'zero length' : 'NaN or infinite values'}`,
      );
    for (let k = r * m.cols; k < (r + 1) * m.cols; k++) data[k] = m.data[k]! / norm;
  }
  return { rows: m.rows, cols: m.cols, data, source };
}
