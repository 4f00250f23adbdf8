/**
 * Multi-scale fuzzy kNN graph (FAST, fast.md §3.1, UMAP's fuzzy simplicial set): per scale k, ρ_i = the
 * first positive neighbour distance, σ_i solves Σ_j exp(−max(0, d_ij − ρ_i)/σ_i) = log2(k) (safeguarded
 * Newton), a_{i→j} = exp(−max(0, d_ij − ρ_i)/σ_i); symmetrised and fused across scales with the
 * probabilistic t-conorm a ⊕ b = a + b − ab. Disconnected components are linked to their nearest other
 * component with the smallest positive weight of the graph ([R], the "∪ MST" step's purpose).
 * Distances are cosine distances 1 − ⟨x_i, x_j⟩ from the exact top-k kernel.
 *
 * Every scale's neighbour list is a prefix of the largest scale's, so the graph's pairs are those of the
 * largest scale's directed kNN edges: they are grouped by unordered pair with a bucket sort (no hash maps;
 * at 20k points and k = 30 there are 600k directed edges).
 */
import { topKInnerProduct, type Matrix } from '../kernels/similarity.js';

/** Symmetric sparse graph in CSR form. */
export interface SparseGraph {
  n: number;
  rowStart: Int32Array;
  cols: Int32Array;
  weights: Float64Array;
  /** Weighted degree of every node. */
  degree: Float64Array;
  /** Component links that were added to connect the graph. */
  linksAdded: number;
}

/** Unordered pairs (lo < hi) with their fused weights. */
interface PairList {
  lo: Int32Array;
  hi: Int32Array;
  weight: Float64Array;
  length: number;
}

export async function fuzzyKnnGraph(
  x: Matrix,
  scales: readonly number[],
  signal?: AbortSignal,
): Promise<SparseGraph> {
  const n = x.rows;
  const kMax = Math.min(n - 1, Math.max(...scales));
  if (kMax < 1)
    return toCsr(
      n,
      { lo: new Int32Array(0), hi: new Int32Array(0), weight: new Float64Array(0), length: 0 },
      0,
    );
  const knn = await topKInnerProduct(x, x, kMax, { excludeSelf: true, ...(signal ? { signal } : {}) });
  // Directed memberships a_{i→slot} per scale (0 beyond the scale's k).
  const directed = scales.map((scale) => {
    const k = Math.min(scale, kMax);
    const a = new Float64Array(n * kMax);
    const dist = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < k; j++) dist[j] = Math.max(0, 1 - knn.values[i * kMax + j]!);
      const rho = dist.find((v) => v > 0) ?? 0;
      const sigma = solveSigma(dist, rho, Math.log2(k));
      for (let j = 0; j < k; j++) a[i * kMax + j] = Math.exp(-Math.max(0, dist[j]! - rho) / sigma);
    }
    return a;
  });
  const pairs = pairsOf(n, kMax, knn.indices, directed);
  const linked = await connectComponents(x, pairs);
  return toCsr(n, linked.pairs, linked.added);
}

/**
 * Groups the directed edges i → knn[i][slot] by unordered pair {lo, hi} and fuses each pair's weight:
 * per scale A = a + b − ab (a, b the two directions' memberships, 0 where absent), then across scales
 * with the same t-conorm.
 */
function pairsOf(n: number, kMax: number, neighbours: Int32Array, directed: Float64Array[]): PairList {
  const edges = n * kMax;
  const lowOf = (e: number) => Math.min(Math.floor(e / kMax), neighbours[e]!);
  const highOf = (e: number) => Math.max(Math.floor(e / kMax), neighbours[e]!);
  // Bucket sort by the lower end, then sort each bucket by the higher end (packed with the edge id).
  const bucketStart = new Int32Array(n + 1);
  for (let e = 0; e < edges; e++) if (neighbours[e]! >= 0) bucketStart[lowOf(e) + 1]!++;
  for (let i = 0; i < n; i++) bucketStart[i + 1]! += bucketStart[i]!;
  const fill = bucketStart.slice(0, n);
  const packed = new Float64Array(bucketStart[n]!);
  for (let e = 0; e < edges; e++) if (neighbours[e]! >= 0) packed[fill[lowOf(e)]!++] = highOf(e) * edges + e;
  for (let i = 0; i < n; i++) packed.subarray(bucketStart[i]!, bucketStart[i + 1]!).sort();
  const out: PairList = {
    lo: new Int32Array(packed.length),
    hi: new Int32Array(packed.length),
    weight: new Float64Array(packed.length),
    length: 0,
  };
  for (let lo = 0; lo < n; lo++) {
    for (let at = bucketStart[lo]!; at < bucketStart[lo + 1]!;) {
      const hi = Math.floor(packed[at]! / edges);
      const first = packed[at]! - hi * edges;
      const second =
        at + 1 < bucketStart[lo + 1]! && Math.floor(packed[at + 1]! / edges) === hi
          ? packed[at + 1]! - hi * edges
          : -1;
      at += second >= 0 ? 2 : 1;
      let fused = 0;
      for (const a of directed) {
        const w1 = a[first]!;
        const w2 = second >= 0 ? a[second]! : 0;
        const symmetric = w1 + w2 - w1 * w2;
        fused = fused + symmetric - fused * symmetric;
      }
      out.lo[out.length] = lo;
      out.hi[out.length] = hi;
      out.weight[out.length++] = fused;
    }
  }
  return out;
}

/** Component of every node under the pairs with positive weight (union–find), and the component sizes. */
function componentsOf(n: number, pairs: PairList): { component: Int32Array; sizes: number[] } {
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
    return i;
  };
  for (let p = 0; p < pairs.length; p++)
    if (pairs.weight[p]! > 0) parent[find(pairs.lo[p]!)] = find(pairs.hi[p]!);
  const component = new Int32Array(n);
  const label = new Map<number, number>();
  const sizes: number[] = [];
  for (let i = 0; i < n; i++) {
    const root = find(i);
    let c = label.get(root);
    if (c === undefined) label.set(root, (c = sizes.push(0) - 1));
    component[i] = c;
    sizes[c]!++;
  }
  return { component, sizes };
}

/** Above this many components, each is linked to the largest one instead of to its nearest other one. */
const MAX_COMPONENT_DIMS = 1024;
/**
 * A component larger than this searches from this many of its points (evenly spaced) rather than all of
 * them: its link is then the closest outside point of a sample, not of the whole component. Linking two
 * 10k-point clusters otherwise costs half a kNN pass of the partition.
 */
const LINK_QUERIES = 2048;

/**
 * Links every component but the largest to its closest point outside it (searched from at most
 * LINK_QUERIES of its points), with the graph's smallest
 * positive weight, until the graph is connected. One top-1 kernel pass per round answers all components
 * at once: a component indicator is appended to the vectors so that ⟨q', b'⟩ = ⟨q, b⟩ − 4·[same
 * component] (cosines lie in [−1, 1], so a point of the query's own component never wins).
 */
async function connectComponents(
  points: Matrix,
  pairs: PairList,
): Promise<{ pairs: PairList; added: number }> {
  const n = points.rows;
  const d = points.cols;
  let minWeight = Infinity;
  for (let p = 0; p < pairs.length; p++)
    if (pairs.weight[p]! > 0) minWeight = Math.min(minWeight, pairs.weight[p]!);
  if (!Number.isFinite(minWeight)) minWeight = 1e-3;
  const links: Array<[number, number]> = [];
  for (;;) {
    const { component, sizes } = componentsOf(n, withLinks(pairs, links, minWeight));
    if (sizes.length <= 1) break;
    const largest = sizes.indexOf(Math.max(...sizes));
    // Few components: an indicator column per component; many: everything but the largest is one group.
    const grouped = sizes.length > MAX_COMPONENT_DIMS;
    const groupOf = (i: number) => (grouped ? (component[i] === largest ? 0 : 1) : component[i]!);
    const groups = grouped ? 2 : sizes.length;
    const width = d + groups;
    const base: Matrix = { rows: n, cols: width, data: new Float32Array(n * width) };
    // Queries: every point of the components to link, or an evenly spaced LINK_QUERIES of a larger one.
    const queryRows: number[] = [];
    const seen = new Int32Array(sizes.length);
    for (let i = 0; i < n; i++) {
      base.data.set(points.data.subarray(i * d, (i + 1) * d), i * width);
      base.data[i * width + d + groupOf(i)] = -2;
      const c = component[i]!;
      if (c === largest) continue;
      const rank = seen[c]!++;
      const size = sizes[c]!;
      if (
        size <= LINK_QUERIES ||
        Math.floor((rank * LINK_QUERIES) / size) !== Math.floor(((rank - 1) * LINK_QUERIES) / size)
      )
        queryRows.push(i);
    }
    const queries: Matrix = {
      rows: queryRows.length,
      cols: width,
      data: new Float32Array(queryRows.length * width),
    };
    queryRows.forEach((i, r) => {
      queries.data.set(points.data.subarray(i * d, (i + 1) * d), r * width);
      queries.data[r * width + d + groupOf(i)] = 2;
    });
    const near = await topKInnerProduct(queries, base, 1);
    // The closest outside point of each component (highest cosine, then lowest indices).
    const best = new Map<number, [number, number, number]>();
    queryRows.forEach((i, r) => {
      const o = near.indices[r]!;
      if (o < 0 || component[o] === component[i]) return;
      const score = near.values[r]!;
      const prior = best.get(component[i]!);
      if (!prior || score > prior[2]) best.set(component[i]!, [i, o, score]);
    });
    if (best.size === 0) break;
    const linked = new Set(links.map(([a, b]) => a * n + b));
    for (const [a, b] of best.values()) {
      const [lo, hi] = [Math.min(a, b), Math.max(a, b)];
      if (linked.has(lo * n + hi)) continue;
      linked.add(lo * n + hi);
      links.push([lo, hi]);
    }
  }
  return { pairs: withLinks(pairs, links, minWeight), added: links.length };
}

function withLinks(pairs: PairList, links: Array<[number, number]>, weight: number): PairList {
  if (links.length === 0) return pairs;
  const length = pairs.length + links.length;
  const out: PairList = {
    lo: new Int32Array(length),
    hi: new Int32Array(length),
    weight: new Float64Array(length),
    length,
  };
  out.lo.set(pairs.lo.subarray(0, pairs.length));
  out.hi.set(pairs.hi.subarray(0, pairs.length));
  out.weight.set(pairs.weight.subarray(0, pairs.length));
  links.forEach(([lo, hi], k) => {
    out.lo[pairs.length + k] = lo;
    out.hi[pairs.length + k] = hi;
    out.weight[pairs.length + k] = weight;
  });
  return out;
}

/**
 * σ with Σ_j exp(−max(0, d_j − ρ)/σ) = target to within 1e-6 (UMAP's smooth_knn_dist solves the same
 * equation by bisection). The sum grows with σ, so Newton steps are taken inside a bracket that every
 * evaluation narrows, and a step that would leave the bracket bisects it instead: 4–6 evaluations where
 * bisection from σ = 1 needed ~30 (a third of the graph's JavaScript time at k = 30).
 */
export function solveSigma(dist: Float64Array, rho: number, target: number): number {
  let lo = 0;
  let hi = Infinity;
  let sigma = 1;
  for (let step = 0; step < 64; step++) {
    let sum = 0;
    let slope = 0; // d sum / dσ = Σ exp(−r/σ)·r/σ²
    for (const d of dist) {
      const r = Math.max(0, d - rho);
      const e = Math.exp(-r / sigma);
      sum += e;
      slope += (e * r) / (sigma * sigma);
    }
    const gap = sum - target;
    if (Math.abs(gap) < 1e-6) break;
    if (gap > 0) hi = sigma;
    else lo = sigma;
    const newton = slope > 0 ? sigma - gap / slope : NaN;
    if (newton > lo && newton < hi) sigma = newton;
    else sigma = hi === Infinity ? sigma * 2 : (lo + hi) / 2;
  }
  return Math.max(sigma, 1e-12);
}

function toCsr(n: number, pairs: PairList, linksAdded: number): SparseGraph {
  const count = new Int32Array(n + 1);
  for (let p = 0; p < pairs.length; p++) {
    count[pairs.lo[p]! + 1]!++;
    count[pairs.hi[p]! + 1]!++;
  }
  for (let i = 0; i < n; i++) count[i + 1]! += count[i]!;
  const cols = new Int32Array(count[n]!);
  const weights = new Float64Array(count[n]!);
  const fill = count.slice(0, n);
  const degree = new Float64Array(n);
  for (let p = 0; p < pairs.length; p++) {
    const [i, j, w] = [pairs.lo[p]!, pairs.hi[p]!, pairs.weight[p]!];
    cols[fill[i]!] = j;
    weights[fill[i]!++] = w;
    cols[fill[j]!] = i;
    weights[fill[j]!++] = w;
    degree[i]! += w;
    degree[j]! += w;
  }
  return { n, rowStart: count, cols, weights, degree, linksAdded };
}
