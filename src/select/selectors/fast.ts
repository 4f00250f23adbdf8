/**
 * FAST (Cui et al., CVPR 2026), as specified in fast.md, run on embeddings ("FAST on embeddings",
 * pitfall 9): per partition, a multi-scale fuzzy kNN graph (§3.1), its spectral embedding V (§3.2), M
 * continuous proxies Ỹ optimised to match V's characteristic function with the phase-decoupled CFD
 * (§3.4) on frequencies drawn by PDAS (§3.5), plus DPP diversity, a positional pull towards the assigned
 * real nodes and the induced-subgraph Laplacian term (§3.3); the final one-to-one assignment of proxies
 * to real nodes is the selection (§3.6), ordered by assignment cost.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { perPartitionForm } from '../partitioned.js';
import { setThreadSessionDefaults } from '../../compute/ort.js';
import { mapOnWorkers, serveJobs } from '../../io/threads.js';
import { kmeans } from '../../compute/kmeans.js';
import { asDense } from '../../compute/linalg.js';
import { gaussian, seededRandom } from '../../compute/random.js';
import type { Selector, TraceEvent } from '../contract.js';
import {
  cfdLoss,
  cfdLossKernel,
  dppLoss,
  graphLoss,
  matchLoss,
  type AnchorEdges,
  type FourierFeatures,
  type Proxies,
} from '../fast/losses.js';
import {
  buildLibrary,
  drawFrequencies,
  libraryDiscrepancy,
  normBound,
  type FrequencyLibrary,
} from '../fast/pdas.js';
import { auctionAssignment } from '../graph/assignment.js';
import { fuzzyKnnGraph, type SparseGraph } from '../graph/fuzzyGraph.js';
import { spectralEmbedding } from '../graph/spectral.js';
import { gather, nearestByDistance, type Matrix } from '../kernels/similarity.js';
import { latentClasses } from '../latentClasses.js';
import { allocateBudget, interleaveByRank } from '../stratify.js';
import { embeddingParam, vectorsOf } from './vectors.js';
import { Adam } from '../optim.js';

const params = z.object({
  embedding: embeddingParam,
  partition: z
    .enum(['auto', 'labels', 'kmeans', 'none'])
    .default('auto')
    .describe('run per class (labels), per k-means cluster, or on the whole pool; auto = labels if present'),
  clusters: z
    .union([z.literal('auto'), z.number().int().min(1)])
    .default('auto')
    .describe(
      'k-means partitions when there are no labels (auto = ⌈N / maxPartition⌉: docs/methods/fast.md#partitions)',
    ),
  maxPartition: z.number().int().min(100).default(20_000).describe('larger partitions are split by k-means'),
  spectralDims: z
    .number()
    .int()
    .min(2)
    .default(32)
    .describe('d_s, Laplacian eigenvectors used as coordinates'),
  iterations: z.number().int().min(1).default(400).describe('optimisation steps T'),
  frequencies: z.number().int().min(1).default(64).describe('frequencies per step k'),
  lambdaP: z.number().min(0).default(0.3).describe('phase weight λ_p'),
  alpha: z.number().min(0).default(1.2).describe('phase attenuation α'),
  lambdaDiv: z.number().min(0).default(0.01).describe('DPP diversity weight (loss divided by D)'),
  lambdaMatch: z.number().min(0).default(0.05).describe('positional pull towards assigned nodes'),
  lambdaGraph: z.number().min(0).default(0.05).describe('Laplacian smoothness weight (loss divided by M)'),
  graphLoss: z
    .enum(['induced', 'literal'])
    .default('induced')
    .describe('induced-subgraph Laplacian (default) or the literal submatrix'),
  learningRate: z.number().positive().default(0.02).describe('Adam step size'),
  assignEvery: z.number().int().min(1).default(10).describe('re-solve the assignment every T_a steps'),
  workers: z
    .union([z.literal('auto'), z.number().int().min(1)])
    .default('auto')
    .describe(
      'threads that optimise partitions side by side (auto = one per core from 20,000 items and 2 partitions on); the picks do not depend on it',
    ),
  levelOff: z
    .number()
    .min(0)
    .max(1)
    .default(0.005)
    .describe(
      'stop a partition early once its library CFD fell by less than this fraction over the last 50 steps, checked after the curriculum has opened (0 = always run all iterations)',
    ),
});

type Params = z.infer<typeof params>;

const SCALES = [5, 15, 30] as const;
/** Steps over which the level-off rule compares the library CFD (a multiple of the PDAS refresh, 10). */
const LEVEL_WINDOW = 50;
/** The curriculum has opened (τ_t = 3, normBound) from this fraction of the iterations on. */
const CURRICULUM_OPEN = 0.7;
const RFF_FEATURES = 128;
const CANDIDATES = 32;
/** Multiply-adds below which a product runs in JavaScript rather than on the kernel. */
const SMALL_PRODUCTS = 1 << 19;

export const fast: Selector<Params> = {
  name: 'fast',
  description: 'FAST: frequency-domain distribution matching on the spectral graph embedding (on embeddings)',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx) {
    const x = vectorsOf(input, p.embedding);
    const partitions = await partitionsOf(input, x, p, ctx.seed);
    const quotas = allocateBudget(
      partitions.map((m) => m.length),
      budget,
    );
    const trace: TraceEvent[] = [
      {
        stage: 'partitions',
        message: `${partitions.length} partitions (${p.partition}), largest ${Math.max(...partitions.map((m) => m.length))}`,
      },
    ];
    const orders: number[][] = partitions.map((members, k) => (quotas[k]! >= members.length ? members : []));
    const steps: number[] = [];
    const seconds = { graph: 0, spectral: 0, library: 0, optimise: 0, assign: 0 };
    // Partitions are independent (each has its own seed), so they can run on worker threads in any order:
    // largest first, so the last job to finish is a small one and no thread idles long at the end.
    const work = partitions
      .flatMap((members, k) =>
        quotas[k]! > 0 && quotas[k]! < members.length ? [{ k, members, m: quotas[k]! }] : [],
      )
      .sort((a, b) => b.members.length - a.members.length || a.k - b.k);
    const threads = workerCount(p.workers, x.rows, work.length);
    let finished = partitions.length - work.length;
    const record = (k: number, members: number[], result: PartitionOutput) => {
      orders[k] = result.picks.map((local) => members[local]!);
      steps.push(result.steps);
      for (const key of Object.keys(seconds) as Array<keyof typeof seconds>)
        seconds[key] += result.seconds[key];
      if (k < 3 || k === partitions.length - 1)
        trace.push({ stage: `partition ${k}`, message: result.summary });
      ctx.progress?.(++finished, partitions.length);
    };
    if (threads <= 1) {
      for (const { k, members, m } of work) {
        ctx.signal?.throwIfAborted();
        record(k, members, await fastPartition(gather(x, members), m, p, ctx.seed + k, ctx.signal));
      }
    } else {
      const jobs = work.map(({ k, members, m }) => () => {
        const part = gather(x, members);
        const input: PartitionJob = {
          rows: part.rows,
          cols: part.cols,
          data: part.data,
          m,
          params: p,
          seed: ctx.seed + k,
        };
        return { input, transfer: [part.data.buffer as ArrayBuffer] };
      });
      await mapOnWorkers<PartitionJob, PartitionOutput>(import.meta.url, PARTITION_TASK, jobs, threads, {
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        onOutput: (j, result) => record(work[j]!.k, work[j]!.members, result),
      });
    }
    trace.sort((a, b) => partitionOrder(a.stage) - partitionOrder(b.stage));
    trace.push({
      stage: 'threads',
      message:
        `${threads} thread(s) optimised the partitions` +
        (threads > 1 ? ' (worker threads, one kernel thread each)' : ''),
    });
    if (steps.length > 0) {
      const sorted = [...steps].sort((a, b) => a - b);
      trace.push({
        stage: 'optimisation',
        message:
          `steps per partition: median ${sorted[sorted.length >> 1]}, min ${sorted[0]}, max ${sorted.at(-1)} of ${p.iterations}; ` +
          levelOffRule(p) +
          `; seconds: graph ${seconds.graph.toFixed(1)}, spectral ${seconds.spectral.toFixed(1)}, ` +
          `library ${seconds.library.toFixed(1)}, steps ${seconds.optimise.toFixed(1)}, final assignment ${seconds.assign.toFixed(1)}`,
      });
    }
    return { indices: interleaveByRank(orders), trace };
  },
  partitioned: perPartitionForm<Params>(
    (input, budget, p, ctx) => fast.select(input, budget, p, ctx),
    "each partition is one more of FAST's partitions (its own k-means pieces, each with a proportional budget); the merge runs FAST on the union to trim the rounding to B",
  ),
};

/**
 * Points per centroid the partitioning k-means fits on (faiss's default cap, 256): the partitions only
 * divide the work, and fitting 50 centroids on all of a 1M pool took ~18 s of one thread while the
 * partition workers waited; every point is still assigned to its nearest centroid.
 */
const PARTITION_SAMPLE = 256;

async function partitionsOf(
  input: Parameters<Selector['select']>[0],
  x: Matrix,
  p: Params,
  seed: number,
): Promise<number[][]> {
  let groups: number[][];
  if (p.partition === 'none') groups = [Array.from({ length: x.rows }, (_, i) => i)];
  else {
    const choice = p.partition === 'auto' ? (input.labels ? 'labels' : 'kmeans') : p.partition;
    // fast.md §4: partitions of up to n_max points (~50–100 at N = 10⁶), not the latent-class default
    // of N/3000 — every partition pays for a graph, an eigensolve and 400 iterations.
    const clusters = p.clusters === 'auto' ? Math.max(1, Math.ceil(x.rows / p.maxPartition)) : p.clusters;
    groups = (await latentClasses(input, choice, clusters, x, seed, PARTITION_SAMPLE)).members.filter(
      (g) => g.length > 0,
    );
  }
  // Split partitions above maxPartition with k-means (§4), again where k-means left a piece above it
  // (k-means into ⌈n / maxPartition⌉ pieces need not give pieces of equal size).
  const fit = async (g: number[]): Promise<number[][]> => {
    if (g.length <= p.maxPartition) return [g];
    const parts = Math.ceil(g.length / p.maxPartition);
    const { assignment } = await kmeans(asDense(gather(x, g)), parts, {
      seed,
      pointsPerCentroid: PARTITION_SAMPLE,
    });
    const split = Array.from({ length: parts }, () => [] as number[]);
    assignment.forEach((c, i) => split[c]!.push(g[i]!));
    const pieces = split.filter((piece) => piece.length > 0);
    // k-means that cannot separate the group (identical rows) leaves one piece: halve it by index.
    if (pieces.length === 1) pieces.splice(0, 1, g.slice(0, g.length >> 1), g.slice(g.length >> 1));
    const out: number[][] = [];
    for (const piece of pieces) out.push(...(await fit(piece)));
    return out;
  };
  const out: number[][] = [];
  for (const g of groups) out.push(...(await fit(g)));
  return out;
}

/** Threads for `partitions` partitions of a pool of `items`: small pools stay in process (a thread costs ~1 s to start). */
function workerCount(requested: number | 'auto', items: number, partitions: number): number {
  if (requested !== 'auto') return Math.max(1, Math.min(requested, partitions));
  return items >= 20_000 && partitions >= 2 ? Math.min(partitions, availableParallelism()) : 1;
}

/** Trace events of partitions in partition order, after the partitions event. */
function partitionOrder(stage: string): number {
  const match = /^partition (\d+)$/.exec(stage);
  return match ? 1 + Number(match[1]) : 0;
}

const PARTITION_TASK = 'clipcurate:fast-partition';

interface PartitionJob {
  rows: number;
  cols: number;
  data: Float32Array;
  m: number;
  params: Params;
  seed: number;
}

type PartitionOutput = Pick<PartitionResult, 'picks' | 'steps' | 'seconds' | 'summary'>;

// In a FAST worker thread: optimise the partitions the selector sends, one kernel thread without
// spinning (the other workers use the other cores).
serveJobs<PartitionJob, PartitionOutput>(PARTITION_TASK, async (job) => {
  setThreadSessionDefaults({ intraOpThreads: 1, spin: false });
  const { picks, steps, seconds, summary } = await fastPartition(
    { rows: job.rows, cols: job.cols, data: job.data },
    job.m,
    job.params,
    job.seed,
  );
  return { picks, steps, seconds, summary };
});

export interface PartitionResult {
  /** Selected rows of the partition, cheapest assignment first. */
  picks: number[];
  /** Standardised spectral coordinates V (n × d_s). */
  spectral: Matrix;
  summary: string;
  /** Optimisation steps actually run (fewer than `iterations` when the level-off rule stopped it). */
  steps: number;
  /** Library CFD (mean L_CF over the whole frequency library) at step 0 and after every PDAS refresh. */
  cfdHistory: Array<{ step: number; cfd: number }>;
  /** Wall-clock seconds per phase. */
  seconds: { graph: number; spectral: number; library: number; optimise: number; assign: number };
}

/** The stopping rule in words, for the trace. */
export function levelOffRule(p: { levelOff: number; iterations: number }): string {
  return p.levelOff > 0
    ? `stopping rule: from step ${Math.ceil(CURRICULUM_OPEN * p.iterations)} (curriculum open) a partition stops at the first PDAS refresh where its library CFD fell by less than ${(100 * p.levelOff).toFixed(2)}% over the last ${LEVEL_WINDOW} steps`
    : 'stopping rule: off (all iterations run)';
}

/** The level-off rule: checked at refreshes once the curriculum has opened; compares with the CFD LEVEL_WINDOW steps back. */
function levelledOff(
  history: ReadonlyArray<{ step: number; cfd: number }>,
  p: { levelOff: number; iterations: number },
): boolean {
  const now = history.at(-1)!;
  if (p.levelOff <= 0 || now.step < CURRICULUM_OPEN * p.iterations) return false;
  const before = history.find((h) => h.step === now.step - LEVEL_WINDOW);
  return before !== undefined && before.cfd - now.cfd < p.levelOff * before.cfd;
}

/** FAST on one partition (§3.6): x are the partition's vectors, m its budget. */
export async function fastPartition(
  x: Matrix,
  m: number,
  p: Omit<Params, 'embedding' | 'partition' | 'clusters' | 'maxPartition'>,
  seed: number,
  signal?: AbortSignal,
): Promise<PartitionResult> {
  const random = seededRandom(seed);
  const clock = phaseClock();
  const graph = await fuzzyKnnGraph(x, SCALES, signal);
  const graphSeconds = clock();
  const v = await spectralEmbedding(graph, { dims: p.spectralDims, seed });
  const spectralSeconds = clock();
  const n = v.rows;
  const d = v.cols;
  const decoder = new Decoder(v, graph);
  // Step 2: Ỹ initialised at M distinct rows of V by k-means++ seeding.
  const init = seedRows(v, m, random);
  const y = new Float64Array(m * d);
  init.forEach((row, i) => {
    for (let q = 0; q < d; q++) y[i * d + q] = v.data[row * d + q]!;
  });
  const proxies: Proxies = { m, d, y };
  const asMatrix = (): Matrix => ({ rows: m, cols: d, data: Float32Array.from(y) });
  const weights = { lambdaP: p.lambdaP, alpha: p.alpha };
  // Step 3: frequency library and φ_ref on it.
  const library: FrequencyLibrary = await buildLibrary(v, asMatrix(), 1024, weights, random);
  const rff = fourierFeatures(d, y, m, random);
  const adam = new Adam(m * d, p.learningRate);
  // The DPP term's products (M·min(M, D)·D multiply-adds, dppLoss picks the smaller form): small ones in
  // float64 JavaScript, where four kernel calls per step would cost more than the arithmetic.
  const dppProducts = m * Math.min(m, RFF_FEATURES) * RFF_FEATURES < SMALL_PRODUCTS ? 'exact' : 'kernel';
  let lcf = await libraryDiscrepancy(library, asMatrix(), weights);
  const mean = (values: Float64Array) => values.reduce((a, b) => a + b, 0) / values.length;
  const initialCfd = mean(lcf);
  const cfdHistory = [{ step: 0, cfd: initialCfd }];
  const librarySeconds = clock();
  let assignment = await decoder.assign(asMatrix());
  let steps = p.iterations;
  for (let t = 0; t < p.iterations; t++) {
    signal?.throwIfAborted();
    if (t > 0 && t % 10 === 0) {
      lcf = await libraryDiscrepancy(library, asMatrix(), weights);
      cfdHistory.push({ step: t, cfd: mean(lcf) });
      if (levelledOff(cfdHistory, p)) {
        steps = t;
        break;
      }
    }
    if (t > 0 && t % p.assignEvery === 0) assignment = await decoder.assign(asMatrix());
    const chosen = drawFrequencies(library, lcf, normBound(t, p.iterations), p.frequencies, random);
    const batch = {
      k: chosen.length,
      omega: new Float64Array(chosen.length * d),
      refRe: Float64Array.from(chosen, (j) => library.refRe[j]!),
      refIm: Float64Array.from(chosen, (j) => library.refIm[j]!),
    };
    chosen.forEach((j, i) => batch.omega.set(library.omega.subarray(j * d, (j + 1) * d), i * d));
    const grad = new Float64Array(m * d);
    if (m * batch.k * d < SMALL_PRODUCTS / 4) cfdLoss(proxies, batch, { mode: 'pd', ...weights }, grad);
    else await cfdLossKernel(proxies, batch, { mode: 'pd', ...weights }, grad);
    if (p.lambdaDiv > 0)
      await dppLoss(proxies, rff, grad, p.lambdaDiv / RFF_FEATURES, dppProducts, 'auto', { loss: false });
    if (p.lambdaMatch > 0) matchLoss(proxies, assignment.anchors, grad, p.lambdaMatch);
    if (p.lambdaGraph > 0) graphLoss(proxies, assignment.edges, p.graphLoss, grad, p.lambdaGraph);
    adam.step(y, grad);
  }
  const finalCfd = mean(await libraryDiscrepancy(library, asMatrix(), weights));
  const optimiseSeconds = clock();
  // Step 5: final assignment with wider candidate lists; order by cost.
  const final = await decoder.assign(asMatrix(), 2 * CANDIDATES);
  const order = Array.from({ length: m }, (_, i) => i).sort(
    (a, b) => final.cost[a]! - final.cost[b]! || a - b,
  );
  const picks = order.map((i) => final.node[i]!);
  const initSet = new Set(init);
  const moved = picks.filter((node) => !initSet.has(node)).length / m;
  return {
    picks,
    spectral: v,
    steps,
    cfdHistory,
    seconds: {
      graph: graphSeconds,
      spectral: spectralSeconds,
      library: librarySeconds,
      optimise: optimiseSeconds,
      assign: clock(),
    },
    summary:
      `n ${n}, M ${m}; λ₂…: ${Array.from(v.eigenvalues.slice(0, 3), (e) => e.toFixed(4)).join(', ')}; ` +
      `library CFD ${initialCfd.toFixed(4)} → ${finalCfd.toFixed(4)} in ${steps} steps; ${(100 * moved).toFixed(0)}% of anchors moved from the initialisation` +
      (graph.linksAdded ? `; ${graph.linksAdded} component links added` : ''),
  };
}

/** Seconds since the previous call (or since creation). */
function phaseClock(): () => number {
  let last = performance.now();
  return () => {
    const now = performance.now();
    const seconds = (now - last) / 1000;
    last = now;
    return seconds;
  };
}

/** Step 2: M distinct rows by k-means++ D² sampling. */
function seedRows(v: Matrix, m: number, random: () => number): number[] {
  const { rows: n, cols: d, data } = v;
  const dist = new Float64Array(n).fill(Infinity);
  const chosen: number[] = [Math.floor(random() * n)];
  const taken = new Uint8Array(n);
  taken[chosen[0]!] = 1;
  const centre = new Float64Array(d);
  while (chosen.length < m) {
    const c = chosen.at(-1)!;
    for (let q = 0; q < d; q++) centre[q] = data[c * d + q]!;
    let total = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let q = 0, at = i * d; q < d; q++, at++) {
        const diff = data[at]! - centre[q]!;
        s += diff * diff;
      }
      if (s < dist[i]!) dist[i] = s;
      if (!taken[i]) total += dist[i]!;
    }
    let r = random() * total;
    let pick = -1;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      pick = i;
      r -= dist[i]!;
      if (r <= 0) break;
    }
    taken[pick] = 1;
    chosen.push(pick);
  }
  return chosen;
}

/** Random Fourier features for the DPP term: W ~ N(0, h⁻²I), h = median pairwise distance of the initial Ỹ. */
function fourierFeatures(d: number, y: Float64Array, m: number, random: () => number): FourierFeatures {
  const distances: number[] = [];
  for (let s = 0; s < 2000; s++) {
    const [a, b] = [Math.floor(random() * m), Math.floor(random() * m)];
    if (a === b) continue;
    let sum = 0;
    for (let q = 0; q < d; q++) sum += (y[a * d + q]! - y[b * d + q]!) ** 2;
    distances.push(Math.sqrt(sum));
  }
  distances.sort((a, b) => a - b);
  const h = distances[distances.length >> 1] ?? 1;
  const normal = gaussian(random);
  return {
    D: RFF_FEATURES,
    w: Float64Array.from({ length: d * RFF_FEATURES }, () => normal() / Math.max(h, 1e-6)),
    b: Float64Array.from({ length: RFF_FEATURES }, () => 2 * Math.PI * random()),
    delta: 1e-3,
  };
}

/**
 * The graph decoder (§3.3, §4): candidate nodes per proxy = its nearest rows of V (exact, on the top-k
 * kernel), degree-discounted cost ‖y − v‖²/(deg + ε), the cheapest `width` kept, sparse auction; proxies
 * left out take their cheapest free candidate.
 */
class Decoder {
  constructor(
    private readonly v: Matrix,
    private readonly graph: SparseGraph,
  ) {}

  async assign(y: Matrix, width = CANDIDATES) {
    const { rows: m, cols: d } = y;
    const n = this.v.rows;
    const near = await nearestByDistance(y, this.v, 2 * width);
    const k = near.k;
    const keep = Math.min(width, k);
    const candidates = new Int32Array(m * keep).fill(-1);
    const costs = new Float64Array(m * keep);
    for (let r = 0; r < m; r++) {
      const list = Array.from({ length: k }, (_, j) => {
        const node = near.indices[r * k + j]!;
        return { node, cost: near.squared[r * k + j]! / (this.graph.degree[node]! + 1e-6) };
      })
        .filter((c) => c.node >= 0)
        .sort((a, b) => a.cost - b.cost)
        .slice(0, keep);
      list.forEach((c, j) => {
        candidates[r * keep + j] = c.node;
        costs[r * keep + j] = c.cost;
      });
    }
    const solved = auctionAssignment({ m, width: keep, candidates, costs });
    const node = solved.node;
    const cost = new Float64Array(m);
    const taken = new Uint8Array(n);
    node.forEach((c) => c >= 0 && (taken[c] = 1));
    for (let r = 0; r < m; r++) {
      for (let j = 0; j < keep; j++) if (candidates[r * keep + j] === node[r]) cost[r] = costs[r * keep + j]!;
      if (node[r]! >= 0) continue;
      // Unassigned: the cheapest free candidate, else the nearest free node overall.
      let pick = -1;
      for (let j = 0; j < keep && pick < 0; j++) {
        const c = candidates[r * keep + j]!;
        if (c >= 0 && !taken[c]) [pick, cost[r]] = [c, costs[r * keep + j]!];
      }
      for (let i = 0; pick < 0 && i < n; i++) if (!taken[i]) [pick, cost[r]] = [i, Infinity];
      node[r] = pick;
      taken[pick] = 1;
    }
    const anchors = new Float64Array(m * d);
    const proxyOf = new Int32Array(n).fill(-1);
    node.forEach((c, r) => {
      proxyOf[c] = r;
      for (let j = 0; j < d; j++) anchors[r * d + j] = this.v.data[c * d + j]!;
    });
    const from: number[] = [];
    const to: number[] = [];
    const weight: number[] = [];
    node.forEach((c, r) => {
      for (let e = this.graph.rowStart[c]!; e < this.graph.rowStart[c + 1]!; e++) {
        const other = proxyOf[this.graph.cols[e]!]!;
        if (other > r) {
          from.push(r);
          to.push(other);
          weight.push(this.graph.weights[e]!);
        }
      }
    });
    const edges: AnchorEdges = {
      from: Int32Array.from(from),
      to: Int32Array.from(to),
      weight: Float64Array.from(weight),
      degree: Float64Array.from(node, (c) => this.graph.degree[c]!),
    };
    return { node, cost, anchors, edges };
  }
}
