/**
 * SeTa's pure arithmetic (seta.md §3): keep ratio (S1), the random-prune size (S2), deterministic 1-D
 * k-means on losses (S4), the sliding window (S5), the annealing rule (S6) and the saved ratio (S7).
 * Nothing here draws random numbers or touches the proxy.
 */

/** (S1) κ = min(1, max(0.1, 1 − prune_ratio)). */
export function keepRatio(pruneRatio: number): number {
  return Math.min(1, Math.max(0.1, 1 - pruneRatio));
}

/**
 * (S2) ⌊κN⌋. The tiny tolerance keeps float products such as 0.29·100 = 28.999… from losing an item
 * (Python's int() would; the spec's ⌊κN⌋ means the exact product).
 */
export function keptCount(keep: number, n: number): number {
  return Math.min(n, Math.floor(keep * n + 1e-9));
}

/** Python's round(): halves go to the even neighbour (seta.md §8; Math.round sends them up). */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** (S5) w = round(G·window_scale), half to even; must lie in 1..G. */
export function windowWidth(groups: number, windowScale: number): number {
  const w = roundHalfEven(groups * windowScale);
  if (w < 1 || w > groups)
    throw new RangeError(`window width round(${groups}·${windowScale}) = ${w} must lie in 1..${groups}`);
  return w;
}

/** (S5) s = G − w + 1 window positions. */
export function windowPositions(groups: number, width: number): number {
  return groups - width + 1;
}

export interface Window {
  /** First kept group, 0 = easiest. */
  start: number;
  /** Number of kept groups (start … start + width − 1). */
  width: number;
}

/** (S5) Round t keeps every group when t = 0, else groups t mod s … t mod s + w − 1. */
export function windowAt(round: number, groups: number, width: number): Window {
  if (round === 0) return { start: 0, width: groups };
  return { start: round % windowPositions(groups, width), width };
}

/**
 * The window of the static analogue (seta.md §4): the middle position ⌊(s − 1)/2⌋, which drops the
 * extreme groups as evenly as w allows (the hardest first when the drop is odd).
 */
export function middleWindow(groups: number, width: number): Window {
  return { start: Math.floor((windowPositions(groups, width) - 1) / 2), width };
}

/** (S6) The sampler counts epochs from 1 and anneals for epochs e > δ·E; `epoch` here is 0-based. */
export function isAnnealed(epoch: number, epochs: number, delta: number): boolean {
  return epoch + 1 > delta * epochs;
}

/** (S7) Σ_e (N − |kept_e|) / (N·E). */
export function savedRatio(keptSizes: readonly number[], n: number, epochs: number): number {
  let pruned = 0;
  for (const k of keptSizes) pruned += n - k;
  return pruned / (n * epochs);
}

export interface LossGroups {
  /** Positions into the scored list, sorted by (score, position): easy → hard. */
  order: Int32Array;
  /** G + 1 offsets into `order`: group g is order[bounds[g] .. bounds[g + 1]). */
  bounds: Int32Array;
  /** Mean score per group (ascending; NaN for an empty group). */
  means: Float64Array;
  /** Largest score per group (NaN for an empty group): the loss thresholds between groups. */
  upper: Float64Array;
  /** How the groups were formed. */
  method: 'kmeans' | 'single' | 'chunks';
}

/**
 * (S4) G difficulty groups of the scores, sorted easy → hard. 1-D k-means is solved exactly (dynamic
 * programming over the sorted values), so the result depends on nothing but the scores: no seed, no
 * initialisation (seta.md §8). Special cases: G = 1 → one group; all scores equal, or fewer scores
 * than groups → G balanced chunks in list order (the official code's torch.chunk, made exactly G).
 */
export function lossGroups(scores: ArrayLike<number>, groups: number): LossGroups {
  const n = scores.length;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => scores[a]! - scores[b]! || a - b);
  let bounds: Int32Array;
  let method: LossGroups['method'];
  const allEqual = n === 0 || scores[order[0]!] === scores[order[n - 1]!];
  if (groups === 1) {
    bounds = Int32Array.of(0, n);
    method = 'single';
  } else if (allEqual || n < groups) {
    bounds = Int32Array.from({ length: groups + 1 }, (_, g) => Math.floor((g * n) / groups));
    method = 'chunks';
  } else {
    bounds = kmeans1d(
      Float64Array.from(order, (i) => scores[i]!),
      groups,
    );
    method = 'kmeans';
  }
  const means = new Float64Array(groups);
  const upper = new Float64Array(groups);
  for (let g = 0; g < groups; g++) {
    const [a, b] = [bounds[g]!, bounds[g + 1]!];
    let sum = 0;
    for (let t = a; t < b; t++) sum += scores[order[t]!]!;
    means[g] = b > a ? sum / (b - a) : NaN;
    upper[g] = b > a ? scores[order[b - 1]!]! : NaN;
  }
  return { order, bounds, means, upper, method };
}

/**
 * Exact 1-D k-means: split ascending values into k non-empty contiguous runs minimising the within-run
 * sum of squares (optimal 1-D clusters are contiguous in sorted order). Layer-by-layer DP,
 * D_k(j) = min_i D_{k−1}(i) + SSE(i, j), with the divide-and-conquer speed-up (the leftmost optimal i is
 * monotone in j because SSE satisfies the quadrangle inequality): O(k·n·log n) time, O(k·n) memory.
 * Returns k + 1 offsets. Needs n ≥ k.
 */
export function kmeans1d(sorted: Float64Array, k: number): Int32Array {
  const n = sorted.length;
  if (n < k) throw new RangeError(`${n} values cannot form ${k} non-empty clusters`);
  // Shift by the mean so the prefix-sum SSE loses no precision to cancellation.
  let mean = 0;
  for (const v of sorted) mean += v / n;
  const s1 = new Float64Array(n + 1);
  const s2 = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) {
    const v = sorted[i]! - mean;
    s1[i + 1] = s1[i]! + v;
    s2[i + 1] = s2[i]! + v * v;
  }
  /** SSE of sorted[i .. j). */
  const sse = (i: number, j: number) => {
    const sum = s1[j]! - s1[i]!;
    return Math.max(0, s2[j]! - s2[i]! - (sum * sum) / (j - i));
  };
  let previous = new Float64Array(n + 1).fill(Infinity);
  for (let j = 1; j <= n; j++) previous[j] = sse(0, j);
  const splits: Int32Array[] = [];
  for (let layer = 2; layer <= k; layer++) {
    const current = new Float64Array(n + 1).fill(Infinity);
    const split = new Int32Array(n + 1);
    // D_layer(j) for j = layer … n; its last run is [i, j) with layer − 1 ≤ i ≤ j − 1.
    const solve = (jLo: number, jHi: number, iLo: number, iHi: number): void => {
      if (jLo > jHi) return;
      const j = (jLo + jHi) >> 1;
      let best = Infinity;
      let bestI = Math.max(iLo, layer - 1);
      for (let i = bestI, last = Math.min(iHi, j - 1); i <= last; i++) {
        const cost = previous[i]! + sse(i, j);
        if (cost < best) [best, bestI] = [cost, i];
      }
      current[j] = best;
      split[j] = bestI;
      solve(jLo, j - 1, iLo, bestI);
      solve(j + 1, jHi, bestI, iHi);
    };
    solve(layer, n, layer - 1, n - 1);
    splits.push(split);
    previous = current;
  }
  const bounds = new Int32Array(k + 1);
  bounds[k] = n;
  for (let layer = k; layer >= 2; layer--) bounds[layer - 1] = splits[layer - 2]![bounds[layer]!]!;
  return bounds;
}
