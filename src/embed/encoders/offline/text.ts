/**
 * Caption features: hashed word unigrams, word bigrams and character 3–5-grams (the "hashing trick",
 * Weinberger et al. 2009), sublinear TF · IDF, L2-normalised, then latent semantic analysis (a truncated
 * SVD, Deerwester et al. 1990) computed with a randomized range finder (Halko, Martinsson & Tropp 2011).
 */
import { dense, matmul, symmetricEigen, tmatmul, type Dense } from '../../../compute/linalg.js';
import { gaussian, seededRandom } from '../../../compute/random.js';

export const HASH_BITS = 20;
const HASH_MASK = (1 << HASH_BITS) - 1;

/** FNV-1a, 32 bits. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Hashed term counts of one caption: bucket → count. */
export function hashedTerms(caption: string): Map<number, number> {
  const words = caption
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim()
    .split(' ')
    .filter(Boolean);
  const counts = new Map<number, number>();
  const add = (term: string) => {
    const b = fnv1a(term) & HASH_MASK;
    counts.set(b, (counts.get(b) ?? 0) + 1);
  };
  words.forEach((w, i) => {
    add(`w ${w}`);
    if (i > 0) add(`b ${words[i - 1]} ${w}`);
    const padded = ` ${w} `;
    for (let n = 3; n <= 5; n++)
      for (let s = 0; s + n <= padded.length; s++) add(`c ${padded.slice(s, s + n)}`);
  });
  return counts;
}

/** Sparse rows (CSR) over a fixed vocabulary of hash buckets. */
export interface Csr {
  rows: number;
  cols: number;
  indptr: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

export interface TextVocabulary {
  /** Kept hash buckets, in column order. */
  buckets: Int32Array;
  idf: Float32Array<ArrayBuffer>;
}

/** Keep buckets seen in at least `minDf` captions, the `maxVocab` most frequent; IDF = ln((1+n)/(1+df)) + 1. */
export function fitVocabulary(docs: Map<number, number>[], minDf = 2, maxVocab = 20_000): TextVocabulary {
  const df = new Map<number, number>();
  for (const doc of docs) for (const b of doc.keys()) df.set(b, (df.get(b) ?? 0) + 1);
  const kept = [...df]
    .filter(([, n]) => n >= minDf)
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, maxVocab);
  kept.sort((a, b) => a[0] - b[0]);
  const n = docs.length;
  return {
    buckets: Int32Array.from(kept, ([b]) => b),
    idf: Float32Array.from(kept, ([, d]) => Math.log((1 + n) / (1 + d)) + 1),
  };
}

/** TF-IDF rows (sublinear tf = 1 + ln tf), L2-normalised, over the vocabulary's columns. */
export function tfidf(docs: Map<number, number>[], vocab: TextVocabulary): Csr {
  const column = new Map<number, number>();
  vocab.buckets.forEach((b, i) => column.set(b, i));
  const indptr = new Int32Array(docs.length + 1);
  const indices: number[] = [];
  const values: number[] = [];
  docs.forEach((doc, r) => {
    const start = indices.length;
    for (const [b, tf] of doc) {
      const c = column.get(b);
      if (c === undefined) continue;
      indices.push(c);
      values.push((1 + Math.log(tf)) * vocab.idf[c]!);
    }
    let norm = 0;
    for (let i = start; i < values.length; i++) norm += values[i]! ** 2;
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let i = start; i < values.length; i++) values[i]! *= inv;
    indptr[r + 1] = indices.length;
  });
  return {
    rows: docs.length,
    cols: vocab.buckets.length,
    indptr,
    indices: Int32Array.from(indices),
    values: Float32Array.from(values),
  };
}

/** Sparse × dense: X (n×V, CSR) · M (V×k). */
export function csrTimesDense(x: Csr, m: Dense): Dense {
  const out = dense(x.rows, m.cols);
  const k = m.cols;
  for (let r = 0; r < x.rows; r++) {
    const row = out.data.subarray(r * k, (r + 1) * k);
    for (let p = x.indptr[r]!; p < x.indptr[r + 1]!; p++) {
      const v = x.values[p]!;
      const src = x.indices[p]! * k;
      for (let j = 0; j < k; j++) row[j]! += v * m.data[src + j]!;
    }
  }
  return out;
}

/** Xᵀ (V×n) · M (n×k) for CSR X. */
function csrTransposeTimesDense(x: Csr, m: Dense): Dense {
  const out = dense(x.cols, m.cols);
  const k = m.cols;
  for (let r = 0; r < x.rows; r++) {
    const src = m.data.subarray(r * k, (r + 1) * k);
    for (let p = x.indptr[r]!; p < x.indptr[r + 1]!; p++) {
      const v = x.values[p]!;
      const dst = x.indices[p]! * k;
      for (let j = 0; j < k; j++) out.data[dst + j]! += v * src[j]!;
    }
  }
  return out;
}

/** Orthonormal basis of Y's columns via its Gram matrix: Q = Y V Λ^{-1/2} (Y has full column rank here). */
async function orthonormalise(y: Dense): Promise<Dense> {
  const eig = symmetricEigen(await tmatmul(y, y));
  const k = y.cols;
  const scale = dense(k, k);
  const floor = Math.max(eig.values[0]!, 1e-12) * 1e-10;
  for (let j = 0; j < k; j++) {
    const inv = 1 / Math.sqrt(Math.max(eig.values[j]!, floor));
    for (let r = 0; r < k; r++) scale.data[r * k + j] = eig.vectors.data[r * k + j]! * inv;
  }
  return matmul(y, scale);
}

/**
 * Truncated SVD X ≈ U Σ Vᵀ by the randomized range finder with `powerIterations` subspace iterations.
 * Returns V_k (V × k): a caption's LSA coordinates are x · V_k.
 */
export async function lsa(
  x: Csr,
  k: number,
  seed = 0,
  oversample = 16,
  powerIterations = 2,
): Promise<{ v: Dense; singular: Float64Array }> {
  const l = Math.min(k + oversample, x.cols, x.rows);
  const normal = gaussian(seededRandom(seed));
  const omega = dense(x.cols, l, Float32Array.from({ length: x.cols * l }, normal));
  let q = await orthonormalise(csrTimesDense(x, omega)); // n × l, range of X
  for (let i = 0; i < powerIterations; i++) {
    q = await orthonormalise(csrTimesDense(x, await orthonormalise(csrTransposeTimesDense(x, q))));
  }
  // B = Qᵀ X (l × V) is kept as Bᵀ = Xᵀ Q (V × l); the top right singular vectors of B are eigenvectors of BᵀB,
  // obtained from the small l × l matrix B Bᵀ = (XᵀQ)ᵀ(XᵀQ).
  const bt = csrTransposeTimesDense(x, q);
  const small = symmetricEigen(await tmatmul(bt, bt));
  const rank = Math.min(k, l);
  // V_k = Bᵀ U_k Σ_k⁻¹.
  const uScaled = dense(l, rank);
  const singular = new Float64Array(rank);
  for (let j = 0; j < rank; j++) {
    singular[j] = Math.sqrt(Math.max(small.values[j]!, 0));
    const inv = singular[j]! > 0 ? 1 / singular[j]! : 0;
    for (let r = 0; r < l; r++) uScaled.data[r * rank + j] = small.vectors.data[r * l + j]! * inv;
  }
  return { v: await matmul(bt, uScaled), singular };
}
