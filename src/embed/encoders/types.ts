/**
 * One interface for every encoder: CLIP through transformers.js, raw CLIP ONNX exports, and the offline
 * DNN-free baseline. Image embedding is split in two so the pipeline can decode and resize the next
 * batch (sharp's thread pool) while the model runs the current one.
 */
export interface Encoder {
  /** Human name shown in logs and provenance, e.g. `clip-onnx:ViT-B-32` or `offline-kmeans-lsa (not CLIP)`. */
  readonly name: string;
  /** Changes whenever the embeddings would change: weights, preprocessing, fitted state. */
  readonly fingerprint: string;
  /** Embedding dimension (image and text share it). */
  readonly dim: number;
  /** Execution provider actually used, and a note when it differs from the one asked for. */
  readonly provider: string;
  readonly providerNote?: string;

  /** Decode + preprocess one image into the model's input (throws on undecodable bytes). */
  prepareImage(bytes: Buffer): Promise<Float32Array>;
  /** Embed prepared images: `batch.length × dim`, each row L2-normalised. */
  embedPrepared(batch: Float32Array[]): Promise<Float32Array>;
  /** Embed captions: `texts.length × dim`, each row L2-normalised. */
  embedTexts(texts: string[]): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Normalise each row of a row-major matrix to unit L2 norm, in place (zero rows stay zero). */
export function l2NormalizeRows(data: Float32Array, dim: number): Float32Array {
  for (let r = 0; r < data.length; r += dim) {
    let sum = 0;
    for (let i = r; i < r + dim; i++) sum += data[i]! * data[i]!;
    const inv = sum > 0 ? 1 / Math.sqrt(sum) : 0;
    for (let i = r; i < r + dim; i++) data[i]! *= inv;
  }
  return data;
}

/** Stack equally sized arrays into one contiguous buffer. */
export function stack(rows: Float32Array[]): Float32Array {
  const size = rows[0]?.length ?? 0;
  const out = new Float32Array(rows.length * size);
  rows.forEach((row, i) => out.set(row, i * size));
  return out;
}
