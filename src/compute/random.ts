/** mulberry32: a small, fast, seeded generator; every random choice in clipcurate goes through one. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws (Box–Muller) from a uniform generator. */
export function gaussian(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/**
 * The first `size` entries of a seeded partial Fisher–Yates shuffle of 0 … n − 1 (for i < size: swap i
 * with i + ⌊random() · (n − i)⌋), without an array of n: the swaps are kept in a map of 2 · size entries
 * at most, so a sample of a 10M-item pool costs what the sample does.
 */
export function partialShuffle(n: number, size: number, random: () => number): number[] {
  const swapped = new Map<number, number>();
  const at = (i: number) => swapped.get(i) ?? i;
  const out: number[] = [];
  for (let i = 0; i < Math.min(size, n); i++) {
    const j = i + Math.floor(random() * (n - i));
    const [vi, vj] = [at(i), at(j)];
    swapped.set(i, vj);
    swapped.set(j, vi);
    out.push(vj);
  }
  return out;
}

/** `size` distinct rows out of n, in increasing order (a seeded partial Fisher–Yates). */
export function sampleRows(n: number, size: number, random: () => number): number[] {
  return partialShuffle(n, size, random).sort((a, b) => a - b);
}
