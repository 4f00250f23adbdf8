/**
 * Facility-location selection on a set of unit vectors, shared by `facility-location` (B7) and CRAIG's
 * feature mode (craig.md §3). Dense similarity blocks for small sets, a kNN graph for larger ones (exact
 * blocked top-k up to 50k items, k-means cells beyond); weights are cluster sizes (C7), with items no pick reaches in the sparse
 * graph given to their nearest pick afterwards so that Σγ = n.
 */
import { z } from 'zod';
import { cellKnn } from '../kernels/cellKnn.js';
import { innerProducts, topKInnerProduct, type Matrix } from '../kernels/similarity.js';
import {
  denseColumns,
  FacilityLocation,
  sparseColumns,
  type Columns,
} from '../submodular/facilityLocation.js';
import { maximize, type OptimizerName } from '../submodular/optimizers.js';
import { gather } from './vectors.js';

/** Largest set handled with a dense n×n block (n² floats: 100 MB at 5,000). */
export const DENSE_LIMIT = 5000;
/** Largest set whose kNN graph is computed exactly (N² · d flops: ~50 s at 100k × 512 here). */
export const EXACT_KNN_LIMIT = 50_000;

export const facilityParams = {
  mode: z
    .enum(['auto', 'dense', 'sparse'])
    .default('auto')
    .describe(`dense similarity up to ${DENSE_LIMIT} items, kNN graph above`),
  neighbors: z.number().int().min(1).max(1000).default(20).describe('kNN graph degree in sparse mode'),
  optimizer: z.enum(['lazy', 'stochastic', 'naive']).default('lazy').describe('greedy variant'),
  epsilon: z.number().gt(0).lt(1).default(0.1).describe('stochastic greedy ε'),
};

export type Similarity = 'cosine' | 'distance';

export interface FacilityResult {
  picks: Int32Array;
  gains: Float64Array;
  weights: Float32Array;
  /** The pick that represents each item (its most similar pick; itself for a pick), −1 when none. */
  owner: Int32Array;
  mode: 'dense' | 'sparse';
}

export interface FacilityOptions {
  mode: 'auto' | 'dense' | 'sparse';
  neighbors: number;
  optimizer: OptimizerName;
  epsilon: number;
  seed: number;
  /**
   * cosine (B7): dense s = ⟨x_i,x_j⟩ − min, sparse s = max(0, cos);
   * distance (C5): s = D_max − ‖x_i − x_j‖, D_max the block's (or the kNN graph's) largest distance.
   */
  similarity: Similarity;
  /**
   * How many items each row stands for (a merge round's candidates carry their first-round cluster
   * sizes): F(S) = Σ_i w_i max_{j∈S} s_ij, and each pick's weight is the multiplicity it represents.
   */
  multiplicity?: Float64Array;
  signal?: AbortSignal;
}

const distance = (cos: number) => Math.sqrt(Math.max(0, 2 - 2 * cos));

export async function facilitySelect(x: Matrix, budget: number, o: FacilityOptions): Promise<FacilityResult> {
  const n = x.rows;
  const dense = o.mode === 'dense' || (o.mode === 'auto' && n <= DENSE_LIMIT);
  let f: FacilityLocation;
  if (dense) {
    const s = await innerProducts(x, x);
    if (o.similarity === 'cosine') {
      const min = s.reduce((a, b) => Math.min(a, b), Infinity);
      for (let i = 0; i < s.length; i++) s[i] = s[i]! - min;
    } else {
      let dmax = 0;
      for (let i = 0; i < s.length; i++) dmax = Math.max(dmax, (s[i] = distance(s[i]!)));
      for (let i = 0; i < s.length; i++) s[i] = dmax - s[i]!;
    }
    f = new FacilityLocation(weighted(denseColumns(n, s), o.multiplicity));
  } else {
    const k = Math.min(o.neighbors, n - 1);
    const signal = o.signal ? { signal: o.signal } : {};
    // Exact graph while N² · d is affordable; k-means cells + exact search within nearby cells beyond.
    const knn =
      n <= EXACT_KNN_LIMIT
        ? await topKInnerProduct(x, x, k, { excludeSelf: true, ...signal })
        : await cellKnn(x, k, { seed: o.seed, ...signal });
    let dmax = 0;
    if (o.similarity === 'distance')
      for (const v of knn.values) if (v > -Infinity) dmax = Math.max(dmax, distance(v));
    const sim =
      o.similarity === 'cosine'
        ? (i: number, slot: number) => knn.values[i * k + slot]!
        : (i: number, slot: number) => dmax - distance(knn.values[i * k + slot]!);
    f = new FacilityLocation(
      weighted(sparseColumns(n, k, knn.indices, sim, o.similarity === 'cosine' ? 1 : dmax), o.multiplicity),
    );
  }
  const { picks, gains } = await maximize(f, o.optimizer, {
    budget,
    epsilon: o.epsilon,
    seed: o.seed,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  await assignUnreached(f, x, picks);
  return {
    picks,
    gains,
    weights: o.multiplicity ? representedWeight(f.owner, picks, o.multiplicity) : f.clusterSizes(picks),
    owner: f.owner,
    mode: dense ? 'dense' : 'sparse',
  };
}

/** Item i's similarities scaled by w_i: max_j w_i·s_ij = w_i·max_j s_ij, so greedy maximises Σ_i w_i m_i. */
function weighted(columns: Columns, multiplicity: Float64Array | undefined): Columns {
  if (!multiplicity) return columns;
  return {
    n: columns.n,
    forEach: (j, visit) => columns.forEach(j, (i, s) => visit(i, s * multiplicity[i]!)),
  };
}

/** Each pick's weight: the multiplicities of the items it represents (Σ = Σ w when every item is owned). */
function representedWeight(owner: Int32Array, picks: Int32Array, multiplicity: Float64Array): Float32Array {
  const position = new Map<number, number>();
  picks.forEach((j, t) => position.set(j, t));
  const out = new Float32Array(picks.length);
  owner.forEach((o, i) => {
    if (o >= 0) out[position.get(o)!]! += multiplicity[i]!;
  });
  return out;
}

/** Items whose kNN lists contain no pick go to their most similar pick (exact, on the kernel). */
async function assignUnreached(f: FacilityLocation, x: Matrix, picks: Int32Array): Promise<void> {
  const unreached: number[] = [];
  f.owner.forEach((o, i) => o === -1 && unreached.push(i));
  if (unreached.length === 0 || picks.length === 0) return;
  const nearest = await topKInnerProduct(gather(x, unreached), gather(x, picks), 1);
  unreached.forEach((i, t) => (f.owner[i] = picks[nearest.indices[t]!]!));
}
