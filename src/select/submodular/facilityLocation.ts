/**
 * Facility location, F(S) = Σ_i max_{j∈S} s_ij (craig.md C3, baselines.md B7), with memoised
 * m_i = max_{j∈S} s_ij so one marginal gain (C6), Δ(j|S) = Σ_i max(0, s_ij − m_i), costs one pass over
 * the items j represents. Similarities are stored by column j (who j can represent): dense blocks for
 * small sets, the reverse adjacency of a kNN graph for large ones.
 */
export interface SetFunction {
  readonly n: number;
  /** F(S) from scratch (tests and reports). */
  evaluate(set: ArrayLike<number>): number;
  /** Δ(j | current S). */
  gain(j: number): number;
  /** Add j to S and update the memo. */
  commit(j: number): void;
}

/** Column storage: for candidate j, the items i it can represent and s_ij ≥ 0. */
export interface Columns {
  n: number;
  forEach(j: number, visit: (i: number, s: number) => void): void;
}

/** A dense symmetric n × n block (row-major); s must be ≥ 0. */
export function denseColumns(n: number, similarity: Float32Array): Columns {
  return {
    n,
    forEach(j, visit) {
      for (let i = 0; i < n; i++) visit(i, similarity[j * n + i]!);
    },
  };
}

/** Reverse adjacency (CSR by column) built from per-item neighbour lists; every item represents itself with `selfSimilarity`. */
export function sparseColumns(
  n: number,
  k: number,
  neighbors: Int32Array,
  similarity: (i: number, slot: number) => number,
  selfSimilarity: number,
): Columns {
  const counts = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    counts[i + 1]! += 1; // self
    for (let s = 0; s < k; s++) {
      const j = neighbors[i * k + s]!;
      if (j >= 0) counts[j + 1]! += 1;
    }
  }
  for (let j = 0; j < n; j++) counts[j + 1]! += counts[j]!;
  const rows = new Int32Array(counts[n]!);
  const values = new Float32Array(counts[n]!);
  const fill = counts.slice(0, n);
  for (let i = 0; i < n; i++) {
    rows[fill[i]!] = i;
    values[fill[i]!++] = selfSimilarity;
    for (let s = 0; s < k; s++) {
      const j = neighbors[i * k + s]!;
      if (j < 0) continue;
      rows[fill[j]!] = i;
      values[fill[j]!++] = Math.max(0, similarity(i, s));
    }
  }
  return {
    n,
    forEach(j, visit) {
      for (let p = counts[j]!; p < counts[j + 1]!; p++) visit(rows[p]!, values[p]!);
    },
  };
}

export class FacilityLocation implements SetFunction {
  readonly n: number;
  /** m_i: best similarity of item i to the current set. */
  readonly best: Float32Array;
  /** Which pick represents item i (−1 before any pick). Ties keep the earlier pick. */
  readonly owner: Int32Array;

  constructor(private readonly columns: Columns) {
    this.n = columns.n;
    this.best = new Float32Array(this.n);
    this.owner = new Int32Array(this.n).fill(-1);
  }

  evaluate(set: ArrayLike<number>): number {
    const best = new Float32Array(this.n);
    for (let t = 0; t < set.length; t++) {
      this.columns.forEach(set[t]!, (i, s) => {
        if (s > best[i]!) best[i] = s;
      });
    }
    return best.reduce((a, b) => a + b, 0);
  }

  gain(j: number): number {
    let g = 0;
    this.columns.forEach(j, (i, s) => {
      const d = s - this.best[i]!;
      if (d > 0) g += d;
    });
    return g;
  }

  commit(j: number): void {
    this.columns.forEach(j, (i, s) => {
      if (s > this.best[i]!) {
        this.best[i] = s;
        this.owner[i] = j;
      } else if (this.owner[i] === -1) {
        this.owner[i] = j; // first pick to reach i at all (s = 0); later equal picks do not take it
      }
    });
  }

  /** γ_j (C7): how many items each pick represents. Items no pick reaches are left out. */
  clusterSizes(picks: ArrayLike<number>): Float32Array {
    const position = new Map<number, number>();
    for (let t = 0; t < picks.length; t++) position.set(picks[t]!, t);
    const sizes = new Float32Array(picks.length);
    for (const o of this.owner) if (o >= 0) sizes[position.get(o)!]! += 1;
    return sizes;
  }
}
