import { dense, matmul, transpose, type Dense } from './linalg.js';
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
}

const CHUNK = 16_384;

/**
 * Lloyd's k-means with greedy k-means++ seeding (Arthur & Vassilvitskii 2007). Assignment uses
 * ‖x − c‖² = ‖x‖² − 2·x·c + ‖c‖², the x·c products on the MatMul kernel in row chunks.
 */
export async function kmeans(x: Dense, k: number, options: KMeansOptions = {}): Promise<KMeansResult> {
  const { iterations = 10, seed = 0, seedingSample = 8_000 } = options;
  if (k < 1 || k > x.rows) throw new Error(`k-means needs 1 ≤ k ≤ n (k = ${k}, n = ${x.rows})`);
  const random = seededRandom(seed);
  const centroids = seedPlusPlus(x, k, Math.min(seedingSample, x.rows), random);
  const assignment = new Int32Array(x.rows);
  let inertia = 0;
  for (let it = 0; it < iterations; it++) {
    inertia = await assign(x, centroids, assignment);
    update(x, centroids, assignment, random);
  }
  inertia = await assign(x, centroids, assignment);
  return { centroids, assignment, inertia };
}

/**
 * Greedy k-means++ (as in scikit-learn): each step draws 2 + ⌊ln k⌋ candidates by D² sampling and keeps
 * the one that lowers the potential most, which avoids plain k-means++'s occasional double pick.
 */
function seedPlusPlus(x: Dense, k: number, sample: number, random: () => number): Dense {
  const d = x.cols;
  const stride = x.rows / sample;
  const pick = (i: number) => Math.min(x.rows - 1, Math.floor(i * stride));
  const trials = 2 + Math.floor(Math.log(k));
  const centroids = dense(k, d);
  const sqDist = (row: number, c: Float32Array) => {
    let dist = 0;
    for (let j = 0; j < d; j++) {
      const diff = x.data[row + j]! - c[j]!;
      dist += diff * diff;
    }
    return dist;
  };
  const first = pick(Math.floor(random() * sample));
  centroids.data.set(x.data.subarray(first * d, first * d + d), 0);
  let best = Float64Array.from({ length: sample }, (_, s) =>
    sqDist(pick(s) * d, centroids.data.subarray(0, d)),
  );
  let potential = best.reduce((a, b) => a + b, 0);
  for (let c = 1; c < k; c++) {
    let chosen = -1;
    let chosenBest = best;
    let chosenPotential = Infinity;
    for (let t = 0; t < trials; t++) {
      // D² sampling: a point is drawn with probability proportional to its squared distance.
      let target = random() * potential;
      let s = 0;
      for (; s < sample - 1; s++) {
        target -= best[s]!;
        if (target <= 0) break;
      }
      const candidate = x.data.subarray(pick(s) * d, pick(s) * d + d);
      const next = new Float64Array(sample);
      let total = 0;
      for (let q = 0; q < sample; q++) {
        next[q] = Math.min(best[q]!, sqDist(pick(q) * d, candidate));
        total += next[q]!;
      }
      if (total < chosenPotential) [chosen, chosenBest, chosenPotential] = [s, next, total];
    }
    centroids.data.set(x.data.subarray(pick(chosen) * d, pick(chosen) * d + d), c * d);
    best = chosenBest;
    potential = chosenPotential;
  }
  return centroids;
}

async function assign(x: Dense, centroids: Dense, assignment: Int32Array): Promise<number> {
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
      let xnorm = 0;
      for (let j = 0; j < d; j++) xnorm += block.data[r * d + j]! ** 2;
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
      inertia += Math.max(0, bestD + xnorm);
    }
  }
  return inertia;
}

function update(x: Dense, centroids: Dense, assignment: Int32Array, random: () => number): void {
  const { cols: d } = x;
  const k = centroids.rows;
  const sums = new Float64Array(k * d);
  const counts = new Int32Array(k);
  for (let r = 0; r < x.rows; r++) {
    const c = assignment[r]!;
    counts[c]! += 1;
    for (let j = 0; j < d; j++) sums[c * d + j]! += x.data[r * d + j]!;
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
