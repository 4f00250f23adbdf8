import { gaussian, seededRandom } from '../../src/compute/random.js';

/**
 * Toy view embeddings with latent classes, where view invariance is what separates the classes.
 * Each sample is a class centre (unit norm, in the first `signalDims` coordinates) plus a small
 * sample-specific offset there; each of its views adds fresh nuisance noise of norm ≈ `nuisance` in
 * the other coordinates and is renormalised. `image` is view 0 (as in a workspace, where the image
 * embedding is one of the views); `views` are all of them. Raw cosine neighbours are dominated by the
 * nuisance, so a head that learns to ignore what differs between views recovers the classes.
 */
export interface NuisanceClasses {
  n: number;
  dim: number;
  image: Float32Array;
  views: Float32Array[];
  labels: Int32Array;
}

export function nuisanceClasses(o: {
  n: number;
  dim: number;
  classes: number;
  signalDims: number;
  seed: number;
  views?: number;
  nuisance?: number;
  withinClass?: number;
  /** Centres to share between a training and a held-out split (default: drawn from the seed). */
  centres?: Float64Array[];
}): NuisanceClasses & { centres: Float64Array[] } {
  const { n, dim, classes, signalDims } = o;
  const random = seededRandom(o.seed);
  const normal = gaussian(random);
  const nuisance = o.nuisance ?? 2;
  const within = o.withinClass ?? 0.3;
  const centres =
    o.centres ??
    Array.from({ length: classes }, () => {
      const c = Float64Array.from({ length: signalDims }, normal);
      const norm = Math.hypot(...c);
      return c.map((v) => v / norm);
    });
  const labels = new Int32Array(n);
  const views = Array.from({ length: o.views ?? 2 }, () => new Float32Array(n * dim));
  const row = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(random() * classes);
    labels[i] = c;
    const own = Float64Array.from(
      { length: signalDims },
      (_, j) => centres[c]![j]! + (within * normal()) / Math.sqrt(signalDims),
    );
    for (const view of views) {
      row.fill(0);
      row.set(own);
      for (let j = signalDims; j < dim; j++) row[j] = (nuisance * normal()) / Math.sqrt(dim - signalDims);
      const norm = Math.hypot(...row);
      for (let j = 0; j < dim; j++) view[i * dim + j] = row[j]! / norm;
    }
  }
  return { n, dim, image: views[0]!, views, labels, centres };
}

/** The same view matrix with its rows permuted (seeded): every sample's "view" is another sample's. */
export function shuffledRows(m: Float32Array, n: number, dim: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) out.set(m.subarray(order[i]! * dim, (order[i]! + 1) * dim), i * dim);
  return out;
}
