import { gaussian, seededRandom } from '../../src/compute/random.js';

/**
 * Synthetic image–caption embeddings whose two spaces are NOT pre-aligned: every pair shares a latent
 * z = class mean + per-pair variation, and the image and the caption are z through two DIFFERENT random
 * linear maps (plus independent noise), renormalised to unit rows like CLIP embeddings. A model can only
 * match images to captions by learning the alignment between the maps.
 */
export interface ClipWorld {
  dim: number;
  latent: number;
  classes: number;
  /** classes × latent. */
  means: Float64Array;
  /** dim × latent each. */
  imageMap: Float64Array;
  textMap: Float64Array;
}

export interface ClipPairs {
  n: number;
  dim: number;
  image: Float32Array;
  text: Float32Array;
  labels: Int32Array;
}

export function clipWorld(dim: number, latent: number, classes: number, seed: number): ClipWorld {
  const normal = gaussian(seededRandom(seed));
  return {
    dim,
    latent,
    classes,
    means: Float64Array.from({ length: classes * latent }, normal),
    imageMap: Float64Array.from({ length: dim * latent }, () => normal() / Math.sqrt(latent)),
    textMap: Float64Array.from({ length: dim * latent }, () => normal() / Math.sqrt(latent)),
  };
}

function mapped(
  world: ClipWorld,
  map: Float64Array,
  z: Float64Array,
  noise: () => number,
  out: Float32Array,
  at: number,
) {
  const { dim, latent } = world;
  let norm = 0;
  const row = new Float64Array(dim);
  for (let r = 0; r < dim; r++) {
    let v = noise();
    for (let c = 0; c < latent; c++) v += map[r * latent + c]! * z[c]!;
    row[r] = v;
    norm += v * v;
  }
  norm = Math.sqrt(norm);
  for (let r = 0; r < dim; r++) out[at + r] = row[r]! / norm;
}

/**
 * n pairs: z = mean[class] + `variation` · N(0, I), image = norm(A_img z + ε), caption = norm(A_txt z + ε′),
 * ε of standard deviation `noise`.
 */
export function clipPairs(
  world: ClipWorld,
  n: number,
  seed: number,
  variation = 0.7,
  noise = 0.1,
): ClipPairs {
  const random = seededRandom(seed);
  const normal = gaussian(random);
  const { dim, latent, classes } = world;
  const image = new Float32Array(n * dim);
  const text = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const z = new Float64Array(latent);
  for (let i = 0; i < n; i++) {
    const k = Math.floor(random() * classes);
    labels[i] = k;
    for (let c = 0; c < latent; c++) z[c] = world.means[k * latent + c]! + variation * normal();
    mapped(world, world.imageMap, z, () => noise * normal(), image, i * dim);
    mapped(world, world.textMap, z, () => noise * normal(), text, i * dim);
  }
  return { n, dim, image, text, labels };
}

/** Class "prompts": the caption map applied to each class mean (no noise), unit rows, K × dim. */
export function classPrompts(world: ClipWorld): Float32Array {
  const out = new Float32Array(world.classes * world.dim);
  for (let k = 0; k < world.classes; k++)
    mapped(
      world,
      world.textMap,
      world.means.subarray(k * world.latent, (k + 1) * world.latent),
      () => 0,
      out,
      k * world.dim,
    );
  return out;
}

/** A copy of `pairs` whose captions at rows `rows` are permuted among themselves (seeded derangement-ish shuffle). */
export function shuffleCaptions(pairs: ClipPairs, rows: ArrayLike<number>, seed: number): ClipPairs {
  const random = seededRandom(seed);
  const order = Array.from(rows);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const text = pairs.text.slice();
  const d = pairs.dim;
  for (let t = 0; t < order.length; t++) {
    const to = rows[t]!;
    const from = order[t]!;
    text.set(pairs.text.subarray(from * d, (from + 1) * d), to * d);
  }
  return { ...pairs, text };
}

/** Cosine of row i of a and row j of b (float64). */
export function cosine(a: Float32Array, i: number, b: Float32Array, j: number, d: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let q = 0; q < d; q++) {
    dot += a[i * d + q]! * b[j * d + q]!;
    na += a[i * d + q]! ** 2;
    nb += b[j * d + q]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

/** Float64 brute force, written from the definition: own match hit at k iff < k items score strictly higher. */
export function bruteRecall(
  queries: Float32Array,
  base: Float32Array,
  n: number,
  d: number,
  ks: number[],
): Record<number, number> {
  const beaten = Array.from({ length: n }, (_, i) => {
    const own = cosine(queries, i, base, i, d);
    let higher = 0;
    for (let j = 0; j < n; j++) if (j !== i && cosine(queries, i, base, j, d) > own) higher++;
    return higher;
  });
  return Object.fromEntries(ks.map((k) => [k, beaten.filter((b) => b < k).length / n]));
}
