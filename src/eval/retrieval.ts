/**
 * Held-out retrieval and zero-shot metrics, as CLIP benchmarks report them.
 *
 *   i2t recall@k = share of images i whose own caption i is among the k captions of highest cosine
 *   t2i recall@k = the same with captions as queries and images as the base
 *
 * Ties: a query's own match counts as retrieved at k when at most k − 1 items score STRICTLY higher
 * than it (an item tied with the match does not push it out). The n × n similarity matrix is computed on
 * onnxruntime one row tile at a time, and the kernel itself counts, per row, the items that beat the
 * match, reading the match's score from the same MatMul output (so rounding cannot make the match beat
 * itself). JavaScript only normalises rows and adds up counts.
 */
import { GraphBuilder } from '../compute/onnxGraph.js';
import { createSession, Tensor, type Session } from '../compute/ort.js';

export const RECALL_KS: readonly number[] = [1, 5, 10];

export interface RetrievalRecall {
  /** k → share of images whose caption is in their top k (0..1). */
  i2t: Record<number, number>;
  /** k → share of captions whose image is in their top k (0..1). */
  t2i: Record<number, number>;
}

/** Elements of one similarity tile (rows × n), ~64 MB of float32. */
const TILE_ELEMENTS = 16 * 1024 * 1024;

let beatSession: Promise<Session> | undefined;
let argmaxSession: Promise<Session> | undefined;

/**
 * q [m,d] (queries q0..q0+m−1), b [n,d], own [m,1] int64 (= q0 + r, the column of row r's match) →
 * beaten [m] int64: how many base rows score strictly higher than the match.
 */
function beatGraph(): Promise<Session> {
  beatSession ??= (async () => {
    const g = new GraphBuilder('retrieval_rank');
    const q = g.input('q', 'float32', ['m', 'd']);
    const b = g.input('b', 'float32', ['n', 'd']);
    const own = g.input('own', 'int64', ['m', 1]);
    const s = g.op('MatMul', [q, g.op('Transpose', [b], { perm: [1, 0] })]);
    const match = g.op('GatherElements', [s, own], { axis: 1 });
    const higher = g.op('Cast', [g.op('Greater', [s, match])], { to: 7 /* int64 */ });
    g.op('ReduceSum', [higher, g.ints([1])], { keepdims: 0 }, 'beaten');
    g.output('beaten', 'int64', ['m']);
    return (await createSession(g.toBytes())).session;
  })();
  return beatSession;
}

/** q [m,d], c [K,d] → best [m] int64: the first column of the largest q·cᵀ. */
function argmaxGraph(): Promise<Session> {
  argmaxSession ??= (async () => {
    const g = new GraphBuilder('zero_shot_argmax');
    const q = g.input('q', 'float32', ['m', 'd']);
    const c = g.input('c', 'float32', ['K', 'd']);
    const s = g.op('MatMul', [q, g.op('Transpose', [c], { perm: [1, 0] })]);
    g.op('ArgMax', [s], { axis: 1, keepdims: 0 }, 'best');
    g.output('best', 'int64', ['m']);
    return (await createSession(g.toBytes())).session;
  })();
  return argmaxSession;
}

/** Unit-length copy of every row (cosine = inner product); a zero or non-finite row is an error. */
export function normalizeRows(x: Float32Array, n: number, dim: number, what: string): Float32Array {
  if (x.length !== n * dim) throw new Error(`${what}: expected ${n} × ${dim} values, got ${x.length}`);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += x[i * dim + j]! ** 2;
    norm = Math.sqrt(norm);
    if (!(norm > 0) || !Number.isFinite(norm))
      throw new Error(`${what}: row ${i} has norm ${norm}; cosine needs a finite non-zero vector`);
    for (let j = 0; j < dim; j++) out[i * dim + j] = x[i * dim + j]! / norm;
  }
  return out;
}

/** For each query row i, how many base rows have cosine strictly above base row i's. */
async function beatenCounts(queries: Float32Array, base: Float32Array, n: number, dim: number) {
  const session = await beatGraph();
  const beaten = new Int32Array(n);
  const bT = new Tensor('float32', base, [n, dim]);
  const tile = Math.max(1, Math.min(n, Math.floor(TILE_ELEMENTS / n)));
  for (let q0 = 0; q0 < n; q0 += tile) {
    const m = Math.min(tile, n - q0);
    const own = BigInt64Array.from({ length: m }, (_, r) => BigInt(q0 + r));
    const out = await session.run({
      q: new Tensor('float32', queries.subarray(q0 * dim, (q0 + m) * dim), [m, dim]),
      b: bT,
      own: new Tensor('int64', own, [m, 1]),
    });
    const counts = out.beaten!.data as BigInt64Array;
    for (let r = 0; r < m; r++) beaten[q0 + r] = Number(counts[r]!);
  }
  return beaten;
}

function recallAt(beaten: Int32Array, ks: readonly number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const k of ks) {
    let hits = 0;
    for (const b of beaten) if (b <= k - 1) hits++;
    out[k] = beaten.length ? hits / beaten.length : 0;
  }
  return out;
}

/**
 * Recall@k both ways for n held-out pairs (row i of `image` matches row i of `text`), by cosine.
 * Rows need not be unit length; they are normalised here.
 */
export async function retrievalRecall(
  image: Float32Array,
  text: Float32Array,
  n: number,
  dim: number,
  ks: readonly number[] = RECALL_KS,
): Promise<RetrievalRecall> {
  for (const k of ks)
    if (!Number.isInteger(k) || k < 1) throw new Error(`recall@k: k must be a positive integer, got ${k}`);
  if (n === 0) throw new Error('retrieval recall needs at least one held-out pair');
  const img = normalizeRows(image, n, dim, 'held-out image embeddings');
  const txt = normalizeRows(text, n, dim, 'held-out caption embeddings');
  return {
    i2t: recallAt(await beatenCounts(img, txt, n, dim), ks),
    t2i: recallAt(await beatenCounts(txt, img, n, dim), ks),
  };
}

/**
 * Zero-shot classification accuracy: each image is assigned the class whose embedding has the highest
 * cosine (on an exact tie, the lower class index), and the share of images whose class is their label is
 * returned.
 */
export async function zeroShotTop1(
  image: Float32Array,
  n: number,
  dim: number,
  classEmbeddings: Float32Array,
  labels: Int32Array,
): Promise<number> {
  if (n === 0) throw new Error('zero-shot accuracy needs at least one held-out image');
  if (classEmbeddings.length % dim !== 0 || classEmbeddings.length === 0)
    throw new Error(
      `class embeddings: ${classEmbeddings.length} values is not a whole number of ${dim}-d rows`,
    );
  const K = classEmbeddings.length / dim;
  if (labels.length !== n) throw new Error(`zero-shot: ${labels.length} labels for ${n} images`);
  for (let i = 0; i < n; i++)
    if (!(labels[i]! >= 0 && labels[i]! < K))
      throw new Error(`zero-shot: label ${labels[i]} of image ${i} is outside the ${K} classes 0..${K - 1}`);
  const img = normalizeRows(image, n, dim, 'held-out image embeddings');
  const classes = normalizeRows(classEmbeddings, K, dim, 'class embeddings');
  const session = await argmaxGraph();
  const cT = new Tensor('float32', classes, [K, dim]);
  const tile = Math.max(1, Math.min(n, Math.floor(TILE_ELEMENTS / K)));
  let correct = 0;
  for (let q0 = 0; q0 < n; q0 += tile) {
    const m = Math.min(tile, n - q0);
    const out = await session.run({
      q: new Tensor('float32', img.subarray(q0 * dim, (q0 + m) * dim), [m, dim]),
      c: cT,
    });
    const best = out.best!.data as BigInt64Array;
    for (let r = 0; r < m; r++) if (Number(best[r]!) === labels[q0 + r]) correct++;
  }
  return correct / n;
}
