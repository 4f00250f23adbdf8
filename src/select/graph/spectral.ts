/**
 * Spectral embedding (FAST, fast.md §3.2): eigenvectors of L_sym = I − D^{-1/2} B D^{-1/2} for the d_s
 * smallest non-zero eigenvalues, i.e. the top eigenvectors of M = D^{-1/2} B D^{-1/2} after the trivial
 * one. Computed by Chebyshev-filtered subspace iteration (Zhou & Saad 2007): the filter damps the part of
 * the spectrum below the current Ritz cut-off, Rayleigh–Ritz on the small block. Columns are then
 * standardised (zero mean, unit variance; §3.2 [R]).
 *
 * The work is the sparse product M·V (nnz × p multiply-adds, p = d_s + 9 columns) times the filter degree
 * per round; it runs on flat typed arrays with M's normalised weights computed once, and the Chebyshev
 * recurrence reuses three blocks instead of allocating one per product. Rounds stop early once every
 * wanted Ritz value has moved by less than `tolerance` since the previous round.
 */
import { dense, matmul64, symmetricEigen } from '../../compute/linalg.js';
import { GraphBuilder } from '../../compute/onnxGraph.js';
import { createSession, Tensor, type Session } from '../../compute/ort.js';
import { gaussian, seededRandom } from '../../compute/random.js';
import type { Matrix } from '../kernels/similarity.js';
import type { SparseGraph } from './fuzzyGraph.js';

export interface SpectralOptions {
  dims: number;
  seed: number;
  /** At most this many outer Rayleigh–Ritz rounds, and the Chebyshev degree per round. */
  rounds?: number;
  degree?: number;
  /**
   * Stop once no wanted Ritz value of M moved by more than this between rounds (0 = run every round).
   * At 1e-6 the Ritz values are converged to about 1e-3 of the smallest wanted eigenvalue of L_sym on our
   * k-means partitions (4 of 6 rounds; the next round moves them by ~1e-11).
   */
  tolerance?: number;
}

export async function spectralEmbedding(
  g: SparseGraph,
  options: SpectralOptions,
): Promise<Matrix & { eigenvalues: Float64Array; rounds: number }> {
  const { n } = g;
  const dims = Math.min(options.dims, Math.max(1, n - 2));
  const p = Math.min(n, dims + 1 + 8); // the trivial vector, d_s, oversampling
  const operator = orientedOperator(g);
  const normal = gaussian(seededRandom(options.seed));
  let v: Float64Array = Float64Array.from({ length: n * p }, normal);
  await orthonormalise(v, n, p);
  let ritz = await rayleighRitz(v, await operator.apply(v, p, 0, 0, 1), n, p);
  v = ritz.vectors;
  const maxRounds = options.rounds ?? 6;
  const degree = options.degree ?? 8;
  const tolerance = options.tolerance ?? 1e-6;
  let rounds = 0;
  while (rounds < maxRounds) {
    rounds++;
    // Damp eigenvalues in [−1, cut]; keep those above the cut-off (the block's smallest Ritz value).
    const cut = Math.min(ritz.values[p - 1]!, 0.999);
    const filtered = await operator.apply(v, p, degree, (cut - 1) / 2, (cut + 1) / 2);
    await orthonormalise(filtered, n, p);
    const before = ritz.values;
    ritz = await rayleighRitz(filtered, await operator.apply(filtered, p, 0, 0, 1), n, p);
    v = ritz.vectors;
    let moved = 0;
    for (let k = 0; k <= dims; k++) moved = Math.max(moved, Math.abs(ritz.values[k]! - before[k]!));
    if (moved < tolerance) break;
  }
  // Drop the trivial eigenvector (largest eigenvalue of M, = 1 on a connected graph), keep the next d_s.
  const data = new Float32Array(n * dims);
  for (let c = 0; c < dims; c++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += v[i * p + c + 1]!;
    mean /= n;
    let variance = 0;
    for (let i = 0; i < n; i++) variance += (v[i * p + c + 1]! - mean) ** 2;
    const scale = 1 / Math.sqrt(Math.max(variance / n, 1e-30));
    for (let i = 0; i < n; i++) data[i * dims + c] = (v[i * p + c + 1]! - mean) * scale;
  }
  return {
    rows: n,
    cols: dims,
    data,
    eigenvalues: ritz.values.slice(1, dims + 1).map((m) => 1 - m),
    rounds,
  };
}

/**
 * M = D^{-1/2} B D^{-1/2} as an operator on the kernel. Every pair {i, j} of the graph is stored once, in
 * the row of one of its ends (orientPairs keeps rows near the mean pair count: K is the table's width,
 * and every row pays for K slots whatever it holds), as an n × K table of (neighbour, M_ij); M·U is then
 * the table's gathered rows summed (i's side) plus the same products scattered back onto the neighbours
 * (j's side).
 */
function orientedOperator(g: SparseGraph) {
  const { n } = g;
  const invSqrt = Float64Array.from(g.degree, (d) => (d > 0 ? 1 / Math.sqrt(d) : 0));
  const { owner, count } = orientPairs(g);
  const width = Math.max(1, ...count);
  // Padding slots point at the row itself with weight 0.
  const neighbour = new BigInt64Array(n * width);
  const weight = new Float32Array(n * width);
  for (let i = 0; i < n; i++) neighbour.fill(BigInt(i), i * width, (i + 1) * width);
  const fill = new Int32Array(n);
  for (let i = 0; i < n; i++)
    for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++) {
      const keeper = owner[e]!;
      if (keeper < 0) continue;
      const other = keeper === i ? g.cols[e]! : i;
      const slot = keeper * width + fill[keeper]!++;
      neighbour[slot] = BigInt(other);
      weight[slot] = g.weights[e]! * invSqrt[i]! * invSqrt[g.cols[e]!]!;
    }
  const neighbours = new Tensor('int64', neighbour, [n, width]);
  const weights = new Tensor('float32', weight, [n, width, 1]);
  return {
    /**
     * T_degree((M − c)/e)·v by the Chebyshev recurrence (T₁ = (M − c)v/e, T_k = 2(M − c)/e·T_{k−1} − T_{k−2});
     * degree 0 returns M·v.
     */
    async apply(v: Float64Array, p: number, degree: number, c: number, e: number): Promise<Float64Array> {
      const session = await chebyshevSession(degree);
      const out = await session.run({
        v: new Tensor('float32', Float32Array.from(v), [n, p]),
        neighbours,
        weights,
        c: new Tensor('float32', Float32Array.of(c), [1]),
        e: new Tensor('float32', Float32Array.of(e), [1]),
      });
      return Float64Array.from(out.out!.data as Float32Array);
    },
  };
}

/**
 * Which end of every pair holds it in the operator's table: `owner[e]` for the CSR entry e = (i, j > i),
 * −1 for the entries j ≤ i (the same pairs seen from the other end); `count` = pairs held per row.
 */
export function orientPairs(g: SparseGraph): { owner: Int32Array; count: Int32Array } {
  const owner = new Int32Array(g.cols.length).fill(-1);
  const count = new Int32Array(g.n);
  for (let i = 0; i < g.n; i++)
    for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++) {
      const j = g.cols[e]!;
      if (j <= i) continue; // each pair once, from its lower end's row
      const keeper = count[i]! <= count[j]! ? i : j;
      owner[e] = keeper;
      count[keeper]!++;
    }
  balanceOwners(g, owner, count);
  return { owner, count };
}

/**
 * Moves pairs from the row that holds them to their other end while that lowers the larger of the two
 * counts (pair by pair, until no move helps or after a few passes): the first-come orientation leaves
 * the fullest row ~1.5× the mean on kNN graphs, and the operator's table is as wide as its fullest row.
 */
function balanceOwners(g: SparseGraph, owner: Int32Array, count: Int32Array): void {
  for (let pass = 0; pass < 16; pass++) {
    let moved = 0;
    for (let i = 0; i < g.n; i++)
      for (let e = g.rowStart[i]!; e < g.rowStart[i + 1]!; e++) {
        const keeper = owner[e]!;
        if (keeper < 0) continue;
        const other = keeper === i ? g.cols[e]! : i;
        if (count[keeper]! > count[other]! + 1) {
          owner[e] = other;
          count[keeper]!--;
          count[other]!++;
          moved++;
        }
      }
    if (moved === 0) return;
  }
}

const chebyshevSessions = new Map<number, Promise<Session>>();

/** The Chebyshev filter of `degree` (or, for 0, the plain product) as one graph: see orientedOperator. */
function chebyshevSession(degree: number): Promise<Session> {
  let session = chebyshevSessions.get(degree);
  if (!session) {
    session = (async () => {
      const g = new GraphBuilder(`chebyshev_${degree}`, 16); // ScatterND's reduction needs opset 16
      const v = g.input('v', 'float32', ['n', 'p']);
      const neighbours = g.input('neighbours', 'int64', ['n', 'k']);
      const weights = g.input('weights', 'float32', ['n', 'k', 1]);
      const c = g.input('c', 'float32', [1]);
      const e = g.input('e', 'float32', [1]);
      const targets = g.op('Unsqueeze', [neighbours, g.ints([2])]); // n × k × 1
      const times = (u: string) => {
        const rowSide = g.op(
          'ReduceSum',
          [g.op('Mul', [g.op('Gather', [u, neighbours], { axis: 0 }), weights]), g.ints([1])],
          {
            keepdims: 0,
          },
        );
        const spread = g.op('Mul', [g.op('Unsqueeze', [u, g.ints([1])]), weights]); // n × k × p
        const zero = g.op('Sub', [u, u]); // zeros of u's shape and type (u is finite)
        return g.op('Add', [rowSide, g.op('ScatterND', [zero, targets, spread], { reduction: 'add' })]);
      };
      const shifted = (u: string) => g.op('Div', [g.op('Sub', [times(u), g.op('Mul', [u, c])]), e]);
      let result: string;
      if (degree === 0) result = times(v);
      else {
        let [previous, current] = [v, shifted(v)];
        for (let k = 2; k <= degree; k++) {
          const step = shifted(current);
          const next = g.op('Sub', [g.op('Add', [step, step]), previous]);
          [previous, current] = [current, next];
        }
        result = current;
      }
      g.node('Identity', [result], {}, ['out']);
      g.output('out', 'float32', ['n', 'p']);
      // One thread: onnxruntime's ScatterND adds repeated indices without synchronisation when it runs
      // on several threads (lost updates, seen as wrong and run-to-run different eigenvalues).
      return (await createSession(g.toBytes(), { intraOpThreads: 1 })).session;
    })();
    chebyshevSessions.set(degree, session);
  }
  return session;
}

/**
 * Orthonormal columns of an n × p row-major block, in place: Cholesky QR twice (V ← V R⁻¹ with
 * VᵀV = RᵀR; the second pass restores the orthogonality the first loses to rounding). The two n-sized
 * products run on the float64 MatMul kernel, the p × p factorisation in JavaScript. A rank-deficient
 * block falls back to modified Gram–Schmidt.
 */
async function orthonormalise(v: Float64Array, n: number, p: number): Promise<void> {
  for (let pass = 0; pass < 2; pass++) if (!(await choleskyQr(v, n, p))) return gramSchmidt(v, n, p);
}

async function choleskyQr(v: Float64Array, n: number, p: number): Promise<boolean> {
  const gram = await matmul64(v, [n, p], v, p, true);
  // Upper-triangular R with RᵀR = gram.
  const r = new Float64Array(p * p);
  for (let a = 0; a < p; a++) {
    let diag = gram[a * p + a]!;
    for (let k = 0; k < a; k++) diag -= r[k * p + a]! ** 2;
    if (!(diag > 1e-10 * Math.max(gram[a * p + a]!, 1e-300))) return false;
    const root = Math.sqrt(diag);
    r[a * p + a] = root;
    for (let b = a + 1; b < p; b++) {
      let s = gram[a * p + b]!;
      for (let k = 0; k < a; k++) s -= r[k * p + a]! * r[k * p + b]!;
      r[a * p + b] = s / root;
    }
  }
  v.set(await matmul64(v, [n, p], upperTriangularInverse(r, p), p));
  return true;
}

/** R⁻¹ of an upper-triangular p × p matrix with a positive diagonal (back substitution per column). */
function upperTriangularInverse(r: Float64Array, p: number): Float64Array {
  const inverse = new Float64Array(p * p);
  for (let c = 0; c < p; c++) {
    inverse[c * p + c] = 1 / r[c * p + c]!;
    for (let row = c - 1; row >= 0; row--) {
      let s = 0;
      for (let k = row + 1; k <= c; k++) s += r[row * p + k]! * inverse[k * p + c]!;
      inverse[row * p + c] = -s / r[row * p + row]!;
    }
  }
  return inverse;
}

/** Modified Gram–Schmidt on the columns of an n × p row-major block, in place. */
function gramSchmidt(v: Float64Array, n: number, p: number): void {
  for (let c = 0; c < p; c++) {
    for (let prev = 0; prev < c; prev++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += v[i * p + c]! * v[i * p + prev]!;
      for (let i = 0; i < n; i++) v[i * p + c]! -= dot * v[i * p + prev]!;
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[i * p + c]! ** 2;
    const inv = 1 / Math.sqrt(Math.max(norm, 1e-300));
    for (let i = 0; i < n; i++) v[i * p + c]! *= inv;
  }
}

/** Ritz pairs of the block: H = Vᵀ(MV), H = QΛQᵀ, vectors VQ (descending Λ); the products in float64 on the kernel. */
async function rayleighRitz(
  v: Float64Array,
  mv: Float64Array,
  n: number,
  p: number,
): Promise<{ values: Float64Array; vectors: Float64Array }> {
  const h = await matmul64(v, [n, p], mv, p, true);
  const eig = symmetricEigen(dense(p, p, Float32Array.from(h)));
  const q = Float64Array.from(eig.vectors.data);
  return { values: Float64Array.from(eig.values), vectors: await matmul64(v, [n, p], q, p) };
}
