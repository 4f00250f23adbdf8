import { dense, matmul, matmul64, transpose, type Dense } from './linalg.js';
import { seededRandom } from './random.js';

export interface KMeansResult {
  centroids: Dense;
  assignment: Int32Array;
  /** Sum of squared distances to the assigned centroid. */
  inertia: number;
}

export interface KMeansOptions {
  iterations?: number;
  seed?: number;
  /** Points used for k-means++ seeding (all when smaller). */
  seedingSample?: number;
  /**
   * Lloyd's iterations run on at most k times this many evenly spaced points, and one last pass assigns
   * every point (faiss's max_points_per_centroid, 256 by default there). Unset: all points.
   */
  pointsPerCentroid?: number;
}

const CHUNK = 16_384;

/**
 * Lloyd's k-means with greedy k-means++ seeding (Arthur & Vassilvitskii 2007). Assignment uses
 * ‖x − c‖² = ‖x‖² − 2·x·c + ‖c‖², the x·c products on the MatMul kernel in row chunks.
 */
export async function kmeans(x: Dense, k: number, options: KMeansOptions = {}): Promise<KMeansResult> {
  const { iterations = 10, seed = 0, seedingSample = 8_000, pointsPerCentroid } = options;
  if (k < 1 || k > x.rows) throw new Error(`k-means needs 1 ≤ k ≤ n (k = ${k}, n = ${x.rows})`);
  const random = seededRandom(seed);
  const trainingRows = pointsPerCentroid === undefined ? x.rows : Math.max(1, pointsPerCentroid) * k;
  const train = trainingRows < x.rows ? evenlySpaced(x, trainingRows) : x;
  const centroids = await seedPlusPlus(train, k, Math.min(seedingSample, train.rows), random);
  // ‖x‖² once: recomputing it in every assignment pass cost as much as the pass's argmin (1M × 512).
  const trainNorms = rowSquaredNorms(train);
  const trainAssignment = new Int32Array(train.rows);
  for (let it = 0; it < iterations; it++) {
    await assign(train, trainNorms, centroids, trainAssignment);
    update(train, centroids, trainAssignment, random);
  }
  const assignment = train === x ? trainAssignment : new Int32Array(x.rows);
  const inertia = await assign(x, train === x ? trainNorms : rowSquaredNorms(x), centroids, assignment);
  return { centroids, assignment, inertia };
}

/** `count` rows of x at even strides (a copy). */
function evenlySpaced(x: Dense, count: number): Dense {
  const d = x.cols;
  const out = dense(count, d);
  const stride = x.rows / count;
  for (let s = 0; s < count; s++) {
    const r = Math.min(x.rows - 1, Math.floor(s * stride));
    out.data.set(x.data.subarray(r * d, r * d + d), s * d);
  }
  return out;
}

function rowSquaredNorms(x: Dense): Float64Array {
  const { rows, cols: d, data } = x;
  const norms = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let j = r * d, end = j + d; j < end; j++) sum += data[j]! * data[j]!;
    norms[r] = sum;
  }
  return norms;
}

/**
 * Greedy k-means++ (as in scikit-learn): each step draws 2 + ⌊ln k⌋ candidates by D² sampling and keeps
 * the one that lowers the potential most, which avoids plain k-means++'s occasional double pick. The
 * candidates' squared distances to the sample, ‖s‖² + ‖c‖² − 2⟨s, c⟩, come from one float64 MatMul per
 * step (float64, so the D² draws match the direct sum of squared differences).
 */
async function seedPlusPlus(x: Dense, k: number, sample: number, random: () => number): Promise<Dense> {
  const d = x.cols;
  const stride = x.rows / sample;
  const pick = (i: number) => Math.min(x.rows - 1, Math.floor(i * stride));
  const trials = 2 + Math.floor(Math.log(k));
  const centroids = dense(k, d);
  const points = new Float64Array(sample * d);
  for (let s = 0; s < sample; s++) points.set(x.data.subarray(pick(s) * d, pick(s) * d + d), s * d);
  const norms = new Float64Array(sample);
  for (let s = 0; s < sample; s++) for (let j = 0; j < d; j++) norms[s]! += points[s * d + j]! ** 2;
  /** Squared distances of every sample point to each of the given sample points (sample × count). */
  const distancesTo = async (chosen: number[]) => {
    const count = chosen.length;
    const columns = new Float64Array(d * count);
    chosen.forEach((s, t) => {
      for (let j = 0; j < d; j++) columns[j * count + t] = points[s * d + j]!;
    });
    const dots = await matmul64(points, [sample, d], columns, count);
    for (let q = 0; q < sample; q++)
      for (let t = 0; t < count; t++) {
        const i = q * count + t;
        dots[i] = Math.max(0, norms[q]! + norms[chosen[t]!]! - 2 * dots[i]!);
      }
    return dots;
  };
  const first = Math.floor(random() * sample);
  centroids.data.set(x.data.subarray(pick(first) * d, pick(first) * d + d), 0);
  let best = await distancesTo([first]);
  let potential = best.reduce((a, b) => a + b, 0);
  for (let c = 1; c < k; c++) {
    // D² sampling: a point is drawn with probability proportional to its squared distance.
    const candidates: number[] = [];
    for (let t = 0; t < trials; t++) {
      let target = random() * potential;
      let s = 0;
      for (; s < sample - 1; s++) {
        target -= best[s]!;
        if (target <= 0) break;
      }
      candidates.push(s);
    }
    const distances = await distancesTo(candidates);
    let chosen = -1;
    let chosenPotential = Infinity;
    for (let t = 0; t < trials; t++) {
      let total = 0;
      for (let q = 0; q < sample; q++) total += Math.min(best[q]!, distances[q * trials + t]!);
      if (total < chosenPotential) [chosen, chosenPotential] = [t, total];
    }
    const next = new Float64Array(sample);
    for (let q = 0; q < sample; q++) next[q] = Math.min(best[q]!, distances[q * trials + chosen]!);
    const s = candidates[chosen]!;
    centroids.data.set(x.data.subarray(pick(s) * d, pick(s) * d + d), c * d);
    best = next;
    potential = chosenPotential;
  }
  return centroids;
}

async function assign(
  x: Dense,
  squaredNorms: Float64Array,
  centroids: Dense,
  assignment: Int32Array,
): Promise<number> {
  const { cols: d } = x;
  const k = centroids.rows;
  const ct = transpose(centroids);
  const cnorm = new Float64Array(k);
  for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) cnorm[c]! += centroids.data[c * d + j]! ** 2;
  let inertia = 0;
  for (let start = 0; start < x.rows; start += CHUNK) {
    const rows = Math.min(CHUNK, x.rows - start);
    const block = dense(rows, d, x.data.subarray(start * d, (start + rows) * d));
    const dots = (await matmul(block, ct)).data;
    for (let r = 0; r < rows; r++) {
      let bestC = 0;
      let bestD = Infinity;
      for (let c = 0; c < k; c++) {
        const dist = cnorm[c]! - 2 * dots[r * k + c]!;
        if (dist < bestD) {
          bestD = dist;
          bestC = c;
        }
      }
      assignment[start + r] = bestC;
      inertia += Math.max(0, bestD + squaredNorms[start + r]!);
    }
  }
  return inertia;
}

function update(x: Dense, centroids: Dense, assignment: Int32Array, random: () => number): void {
  const { cols: d } = x;
  const k = centroids.rows;
  const sums = new Float64Array(k * d);
  const counts = new Int32Array(k);
  const data = x.data;
  for (let r = 0; r < x.rows; r++) {
    const c = assignment[r]!;
    counts[c]! += 1;
    const to = c * d;
    const from = r * d;
    // Unrolled by four: V8 runs this loop ~1.8× faster than the plain one (the whole update is n·d adds).
    let j = 0;
    for (; j + 4 <= d; j += 4) {
      sums[to + j]! += data[from + j]!;
      sums[to + j + 1]! += data[from + j + 1]!;
      sums[to + j + 2]! += data[from + j + 2]!;
      sums[to + j + 3]! += data[from + j + 3]!;
    }
    for (; j < d; j++) sums[to + j]! += data[from + j]!;
  }
  for (let c = 0; c < k; c++) {
    if (counts[c] === 0) {
      // An empty cluster restarts at a random point rather than staying dead.
      const r = Math.floor(random() * x.rows);
      centroids.data.set(x.data.subarray(r * d, r * d + d), c * d);
      continue;
    }
    for (let j = 0; j < d; j++) centroids.data[c * d + j] = sums[c * d + j]! / counts[c]!;
  }
}
