/**
 * Sparse rectangular assignment (FAST's "graph decoder", fast.md §3.3 and §4): each of M proxies has a
 * candidate list of real nodes with costs; find a one-to-one map minimising the total cost. Forward
 * auction (Bertsekas 1988): a free proxy bids for its best candidate (value = −cost − price) and raises
 * that node's price by (best − second best + ε). Nodes, once taken, stay taken, so untaken nodes keep
 * price 0 and the result is within M·ε of the optimum over the candidate lists. (No ε-scaling: restarts
 * would leave priced nodes untaken, which breaks that bound in the rectangular case.) Proxies left
 * unassigned (all candidates taken) come back as −1 so the caller can widen their lists.
 */
export interface AssignmentProblem {
  /** Proxies. */
  m: number;
  /** Candidate nodes per proxy, `width` per row (−1 = none), and their costs. */
  width: number;
  candidates: Int32Array;
  costs: Float64Array;
}

export interface Assignment {
  /** Node of each proxy (−1 when unassigned). */
  node: Int32Array;
  totalCost: number;
  bids: number;
}

export function auctionAssignment(
  problem: AssignmentProblem,
  options: { epsilon?: number; maxBids?: number } = {},
): Assignment {
  const { m, width, candidates, costs } = problem;
  let range = 0;
  for (const c of costs) if (Number.isFinite(c)) range = Math.max(range, Math.abs(c));
  const epsilon = options.epsilon ?? Math.max(1e-12, ((range || 1) * 1e-4) / Math.max(1, m));
  const maxBids = options.maxBids ?? 200 * m * width;
  const price = new Map<number, number>();
  const owner = new Map<number, number>();
  const node = new Int32Array(m).fill(-1);
  let bids = 0;
  const free = Array.from({ length: m }, (_, r) => m - 1 - r);
  while (free.length > 0 && bids < maxBids) {
    const r = free.pop()!;
    let best = -1;
    let bestValue = -Infinity;
    let second = -Infinity;
    for (let j = 0; j < width; j++) {
      const c = candidates[r * width + j]!;
      if (c < 0) continue;
      const value = -costs[r * width + j]! - (price.get(c) ?? 0);
      if (value > bestValue) [second, bestValue, best] = [bestValue, value, c];
      else if (value > second) second = value;
    }
    if (best < 0) continue;
    bids++;
    // With a single candidate there is no second best: bid as if the alternative were worthless.
    const increment = (Number.isFinite(second) ? bestValue - second : range + 1) + epsilon;
    price.set(best, (price.get(best) ?? 0) + increment);
    const previous = owner.get(best);
    if (previous !== undefined) {
      node[previous] = -1;
      free.push(previous);
    }
    owner.set(best, r);
    node[r] = best;
  }
  let totalCost = 0;
  for (let r = 0; r < m; r++) {
    const c = node[r]!;
    if (c < 0) continue;
    for (let j = 0; j < width; j++) if (candidates[r * width + j] === c) totalCost += costs[r * width + j]!;
  }
  return { node, totalCost, bids };
}
