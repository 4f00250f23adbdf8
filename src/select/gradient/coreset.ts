/**
 * CRAIG's per-class facility location on gradient proxies (craig.md §3), shared by CRAIG's gradient
 * mode, AdaCore, CREST's mini-batch coresets, augmentation coresets and NeSSA's shard coresets.
 *
 * Gradients are arbitrary vectors (not unit), so distances come from their Gram matrix:
 * D_ij = √(G_ii + G_jj − 2G_ij), clamped at 0 (craig.md §5, float32 cancellation). With head inputs h
 * the Gram is the last-layer form ⟨ĝ_i, ĝ_j⟩ = ⟨g_i, g_j⟩·(1 + ⟨h_i, h_j⟩) of ĝ = [g; g ⊗ h], never
 * materialised (craig.md §2). Both products run on the MatMul kernel.
 */
import { kmeans } from '../../compute/kmeans.js';
import { asDense } from '../../compute/linalg.js';
import { gather, innerProducts, type Matrix } from '../kernels/similarity.js';
import { denseColumns, FacilityLocation } from '../submodular/facilityLocation.js';
import { maximize, type OptimizerName } from '../submodular/optimizers.js';
import { allocateBudget, interleaveByRank } from '../stratify.js';

export interface GradientSpace {
  /** Per-example gradient proxies, n × q (e.g. g_i = p_i − e_{y_i}, or AdaCore's u_i). */
  g: Matrix;
  /** Head inputs h_i: use ĝ = [g; g ⊗ h] through the Gram trick. */
  h?: Matrix;
}

/**
 * maxMinusDist (C5): s_ij = max_block D − D_ij (CRAIG, DeepCore);
 * expKernel: s_ij = exp(−D_ij / q), submodlib's "euclidean" metric that CREST and the augmentation code
 * inherit (craig.md §8), q = number of gradient features.
 */
export type GradientSimilarity = 'maxMinusDist' | 'expKernel';

export interface CoresetOptions {
  similarity: GradientSimilarity;
  optimizer: OptimizerName;
  /** Stochastic greedy ε (C8). */
  epsilon: number;
  seed: number;
  /** Items each item id stands for, indexed by id (GreeDi's second round, nessa.md N4); default 1. */
  multiplicity?: ArrayLike<number>;
  /** Give picks that represent nobody weight 1 (augcoreset.md §8, the code's `sz[sz == 0] = 1`). */
  emptyClustersWeighOne?: boolean;
  signal?: AbortSignal;
}

export interface Coreset {
  /** Picked item ids (the caller's ids, i.e. `members[...]`), greedy order. */
  picks: Int32Array;
  /** γ_j (C7): how many items (Σ multiplicity) each pick represents. */
  weights: Float32Array;
  gains: Float64Array;
}

/** Largest block kept dense (m² floats, 100 MB at 5,000); larger classes are split (craig.md §5 [R]). */
export const DENSE_BLOCK = 5000;

/** Number of features of the (implicit) gradient vectors, the q of the exp kernel. */
export function featureCount(space: GradientSpace): number {
  return space.g.cols * (space.h ? space.h.cols + 1 : 1);
}

/** Gram matrix of the members' (implicit) gradients, m × m. */
export async function gradientGram(space: GradientSpace, members: ArrayLike<number>): Promise<Float32Array> {
  const g = gather(space.g, members);
  const gram = await innerProducts(g, g);
  if (space.h) {
    const h = gather(space.h, members);
    const hh = await innerProducts(h, h);
    for (let t = 0; t < gram.length; t++) gram[t]! *= 1 + hh[t]!;
  }
  return gram;
}

/** In place: Gram → Euclidean distances (clamped at 0 before the root). */
export function gramToDistances(gram: Float32Array, m: number): Float32Array {
  const diag = Float64Array.from({ length: m }, (_, i) => gram[i * m + i]!);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < m; j++)
      gram[i * m + j] = Math.sqrt(Math.max(0, diag[i]! + diag[j]! - 2 * gram[i * m + j]!));
  return gram;
}

/** Similarities of one block from its distances, in place: (C5) or the exp kernel. */
export function distancesToSimilarities(
  d: Float32Array,
  similarity: GradientSimilarity,
  q: number,
): Float32Array {
  if (similarity === 'maxMinusDist') {
    let max = 0;
    for (const v of d) max = Math.max(max, v);
    for (let t = 0; t < d.length; t++) d[t] = max - d[t]!;
  } else {
    for (let t = 0; t < d.length; t++) d[t] = Math.exp(-d[t]! / q);
  }
  return d;
}

/**
 * Facility location (C3) over `members` with |S| = budget, greedy (C6), weights = cluster sizes (C7).
 * Blocks above DENSE_BLOCK are split by k-means on the gradients with proportional budgets.
 */
export async function facilityCoreset(
  space: GradientSpace,
  members: ArrayLike<number>,
  budget: number,
  o: CoresetOptions,
): Promise<Coreset> {
  const m = members.length;
  const b = Math.min(budget, m);
  if (b === 0) return { picks: new Int32Array(0), weights: new Float32Array(0), gains: new Float64Array(0) };
  if (m > DENSE_BLOCK) return splitCoreset(space, members, b, o);
  const s = distancesToSimilarities(
    gramToDistances(await gradientGram(space, members), m),
    o.similarity,
    featureCount(space),
  );
  // Weighted facility location: Σ_i μ_i max_j s_ij; scaling the similarities of item i by μ_i gives
  // exactly that gain (μ_i·max(0, s_ij − m_i) = max(0, μ_i s_ij − μ_i m_i)). Column j holds s(j → i).
  const mult = o.multiplicity
    ? Float64Array.from({ length: m }, (_, i) => o.multiplicity![members[i]!]!)
    : undefined;
  if (mult) for (let j = 0; j < m; j++) for (let i = 0; i < m; i++) s[j * m + i]! *= mult[i]!;
  const f = new FacilityLocation(denseColumns(m, s));
  const { picks, gains } = await maximize(f, o.optimizer, {
    budget: b,
    epsilon: o.epsilon,
    seed: o.seed,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const position = new Map<number, number>();
  picks.forEach((j, t) => position.set(j, t));
  const weights = new Float32Array(picks.length);
  f.owner.forEach((owner, i) => {
    if (owner >= 0) weights[position.get(owner)!]! += mult ? mult[i]! : 1;
  });
  if (o.emptyClustersWeighOne) for (let t = 0; t < weights.length; t++) weights[t] ||= 1;
  return { picks: Int32Array.from(picks, (j) => members[j]!), weights, gains };
}

async function splitCoreset(
  space: GradientSpace,
  members: ArrayLike<number>,
  budget: number,
  o: CoresetOptions,
): Promise<Coreset> {
  const parts = Math.ceil(members.length / DENSE_BLOCK);
  const { assignment } = await kmeans(asDense(gather(space.g, members)), parts, { seed: o.seed });
  const groups: number[][] = Array.from({ length: parts }, () => []);
  assignment.forEach((k, t) => groups[k]!.push(members[t]!));
  const mass = (id: number) => (o.multiplicity ? o.multiplicity[id]! : 1);
  const quotas = allocateBudget(
    groups.map((g) => g.reduce((a, id) => a + mass(id), 0)),
    budget,
  );
  const results: Coreset[] = [];
  for (const [k, group] of groups.entries()) {
    // k-means can leave a part larger than the block; recursion splits it again.
    results.push(
      await facilityCoreset(space, group, Math.min(quotas[k]!, group.length), { ...o, seed: o.seed + k + 1 }),
    );
  }
  const weightOf = new Map<number, number>();
  const gainOf = new Map<number, number>();
  for (const r of results)
    r.picks.forEach((id, t) => {
      weightOf.set(id, r.weights[t]!);
      gainOf.set(id, r.gains[t]!);
    });
  const picks = interleaveByRank(results.map((r) => Array.from(r.picks)));
  return {
    picks,
    weights: Float32Array.from(picks, (id) => weightOf.get(id)!),
    gains: Float64Array.from(picks, (id) => gainOf.get(id)!),
  };
}

export type ClassBudgetMode = 'equal' | 'proportional';

/**
 * Per-class budgets, craig.md step 1. proportional: b_c = ⌈B·N_c/N⌉. equal: b_c = ⌈B/C⌉, classes with
 * fewer members give their shortfall to the others, split evenly (⌈·⌉), repeated until it settles.
 * Σ b_c may exceed B by < C (the merge trims the tail).
 */
export function classBudgets(sizes: ArrayLike<number>, budget: number, mode: ClassBudgetMode): Int32Array {
  const c = sizes.length;
  const n = Array.from(sizes).reduce((a, b) => a + b, 0);
  const out = new Int32Array(c);
  if (mode === 'proportional') {
    for (let k = 0; k < c; k++) out[k] = Math.min(sizes[k]!, Math.ceil((budget * sizes[k]!) / n));
    return out;
  }
  const nonEmpty = Array.from(sizes).filter((s) => s > 0).length;
  const share = Math.ceil(budget / Math.max(1, nonEmpty));
  for (let k = 0; k < c; k++) out[k] = Math.min(sizes[k]!, share);
  for (;;) {
    const given = out.reduce((a, b) => a + b, 0);
    const open = Array.from(sizes, (_, k) => k).filter((k) => out[k]! < sizes[k]!);
    if (given >= budget || open.length === 0) return out;
    const extra = Math.ceil((budget - given) / open.length);
    for (const k of open) out[k] = Math.min(sizes[k]!, out[k]! + extra);
  }
}

/**
 * Merge per-class greedy orders (craig.md step 5): round-robin, props_c = rint(b_c / min b) items of class
 * c per turn (1 each for equal budgets), then the tail trimmed to exactly `budget`.
 */
export function mergeClassOrders(
  orders: ReadonlyArray<{ picks: ArrayLike<number>; weights: ArrayLike<number> }>,
  budget: number,
): { indices: Int32Array; weights: Float32Array } {
  const quotas = orders.map((o) => o.picks.length);
  const minQuota = Math.max(1, Math.min(...quotas.filter((q) => q > 0)));
  const props = quotas.map((q) => Math.max(1, Math.round(q / minQuota)));
  const indices: number[] = [];
  const weights: number[] = [];
  const cursor = orders.map(() => 0);
  while (indices.length < budget && cursor.some((at, c) => at < quotas[c]!)) {
    orders.forEach((o, c) => {
      for (let t = 0; t < props[c]! && cursor[c]! < quotas[c]!; t++, cursor[c]!++) {
        indices.push(o.picks[cursor[c]!]!);
        weights.push(o.weights[cursor[c]!]!);
      }
    });
  }
  return {
    indices: Int32Array.from(indices.slice(0, budget)),
    weights: Float32Array.from(weights.slice(0, budget)),
  };
}

export interface ClassCoreset {
  indices: Int32Array;
  /** Raw γ: Σ over a class's picks = the class's Σ multiplicity (trimmed picks' clusters included). */
  weights: Float32Array;
  quotas: Int32Array;
  /** Picks trimmed by the merge whose clusters moved to the nearest kept pick. */
  moved: number;
}

/**
 * CRAIG steps 1–5 over classes (each a list of item ids): per-class budgets, per-class FL, merge. The
 * ⌈·⌉ budgets can overshoot B; the trimmed picks' clusters go to the nearest kept pick of their class
 * (any kept pick if the class kept none), so Σγ still equals the pool: the (C2) bound grows by
 * γ_j·D(j, kept) for each trimmed j and stays valid by the triangle inequality.
 */
export async function perClassCoreset(
  space: GradientSpace,
  classes: ReadonlyArray<ArrayLike<number>>,
  budget: number,
  mode: ClassBudgetMode,
  o: CoresetOptions,
): Promise<ClassCoreset> {
  const quotas = classBudgets(
    classes.map((c) => c.length),
    budget,
    mode,
  );
  const orders: Coreset[] = [];
  for (const [c, members] of classes.entries()) {
    o.signal?.throwIfAborted();
    orders.push(await facilityCoreset(space, members, quotas[c]!, { ...o, seed: o.seed + 7919 * c }));
  }
  const merged = mergeClassOrders(orders, budget);
  const kept = new Set(merged.indices);
  const trimmed: Array<{ id: number; weight: number }> = [];
  for (const order of orders)
    order.picks.forEach((id, j) => {
      if (!kept.has(id)) trimmed.push({ id, weight: order.weights[j]! });
    });
  if (trimmed.length > 0 && merged.indices.length > 0) {
    const classOf = new Int32Array(space.g.rows).fill(-1);
    classes.forEach((members, c) => Array.from(members).forEach((id) => (classOf[id] = c)));
    const nearest = await nearestTargets(
      space,
      trimmed.map((t) => t.id),
      merged.indices,
      classOf,
    );
    nearest.forEach((at, t) => (merged.weights[at]! += trimmed[t]!.weight));
  }
  return { ...merged, quotas, moved: trimmed.length };
}

/** Largest cross block items × targets held at once (64 MB of float32). */
const CROSS_ELEMENTS = 16 * 1024 * 1024;

/**
 * For each item, the position in `targets` of the nearest target in (implicit) gradient distance, among
 * the targets of its class when there are any, else among all; ties → earlier target (earlier pick).
 * ‖ĝ_i − ĝ_j‖² = G_ii + G_jj − 2G_ij with the Gram of craig.md §2; the cross products run on the kernel.
 */
export async function nearestTargets(
  space: GradientSpace,
  items: readonly number[],
  targets: ArrayLike<number>,
  classOf: Int32Array,
): Promise<Int32Array> {
  const m = targets.length;
  const tg = gather(space.g, targets);
  const th = space.h ? gather(space.h, targets) : undefined;
  const targetNorm = implicitNorms(tg, th);
  const ofClass = new Map<number, number[]>();
  for (let j = 0; j < m; j++) {
    const c = classOf[targets[j]!]!;
    let list = ofClass.get(c);
    if (!list) ofClass.set(c, (list = []));
    list.push(j);
  }
  const all = Array.from({ length: m }, (_, j) => j);
  const out = new Int32Array(items.length);
  const chunk = Math.max(1, Math.floor(CROSS_ELEMENTS / Math.max(1, m)));
  for (let a = 0; a < items.length; a += chunk) {
    const ids = items.slice(a, a + chunk);
    const cross = await innerProducts(gather(space.g, ids), tg);
    if (space.h && th) {
      const hh = await innerProducts(gather(space.h, ids), th);
      for (let t = 0; t < cross.length; t++) cross[t]! *= 1 + hh[t]!;
    }
    ids.forEach((id, r) => {
      let best = -1;
      let bestValue = Infinity;
      // G_ii is the same for every target: argmin_j G_jj − 2G_ij.
      for (const j of ofClass.get(classOf[id]!) ?? all) {
        const v = targetNorm[j]! - 2 * cross[r * m + j]!;
        if (v < bestValue || (v === bestValue && j < best)) [best, bestValue] = [j, v];
      }
      out[a + r] = best;
    });
  }
  return out;
}

/** ‖ĝ_i‖² = ‖g_i‖²·(1 + ‖h_i‖²), or ‖g_i‖² without head inputs. */
export function implicitNorms(g: Matrix, h?: Matrix): Float64Array {
  const out = new Float64Array(g.rows);
  for (let i = 0; i < g.rows; i++) {
    let gg = 0;
    for (let k = 0; k < g.cols; k++) gg += g.data[i * g.cols + k]! ** 2;
    let hh = 0;
    if (h) for (let k = 0; k < h.cols; k++) hh += h.data[i * h.cols + k]! ** 2;
    out[i] = gg * (h ? 1 + hh : 1);
  }
  return out;
}
