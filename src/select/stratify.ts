/**
 * Per-class budgets by largest-remainder rounding (baselines.md §0): class c gets ⌊B·N_c/N⌋, and the
 * leftover units go to the largest fractional parts (ties → lowest class), so Σ = B exactly.
 */
export function allocateBudget(classSizes: ArrayLike<number>, budget: number): Int32Array {
  const total = Array.from(classSizes).reduce((a, b) => a + b, 0);
  const out = new Int32Array(classSizes.length);
  if (total === 0) return out;
  const remainders: Array<[number, number]> = [];
  let given = 0;
  for (let c = 0; c < classSizes.length; c++) {
    const exact = (budget * classSizes[c]!) / total;
    out[c] = Math.min(classSizes[c]!, Math.floor(exact));
    given += out[c]!;
    remainders.push([exact - Math.floor(exact), c]);
  }
  remainders.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, c] of remainders) {
    if (given >= budget) break;
    if (out[c]! < classSizes[c]!) {
      out[c]! += 1;
      given += 1;
    }
  }
  return out;
}

/** Item positions grouped by label. */
export function groupByLabel(labels: Int32Array): number[][] {
  const groups: number[][] = [];
  labels.forEach((l, i) => (groups[l] ??= []).push(i));
  return Array.from(groups, (g) => g ?? []);
}

/**
 * Merge per-class pick orders into one list by relative rank (pick r of a class with q picks sits at
 * (r + 0.5)/q), so any prefix of the result is itself close to class-proportional.
 */
export function interleaveByRank(orders: ReadonlyArray<readonly number[]>): Int32Array {
  return Int32Array.from(
    orders
      .flatMap((order) => order.map((item, r) => ({ item, at: (r + 0.5) / order.length })))
      .sort((a, b) => a.at - b.at || a.item - b.item),
    (e) => e.item,
  );
}

/** Equal shares per class (the paper's IPC), capped by what each class has; leftovers spread evenly. */
export function balancedBudget(caps: ArrayLike<number>, budget: number): Int32Array {
  const out = new Int32Array(caps.length);
  let left = Math.min(
    budget,
    Array.from(caps).reduce((a, b) => a + b, 0),
  );
  while (left > 0) {
    const open = Array.from(caps, (c, k) => k).filter((k) => out[k]! < caps[k]!);
    const share = Math.max(1, Math.floor(left / open.length));
    for (const k of open) {
      const add = Math.min(share, caps[k]! - out[k]!, left);
      out[k]! += add;
      left -= add;
      if (left === 0) break;
    }
  }
  return out;
}
