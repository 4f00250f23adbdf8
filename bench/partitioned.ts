/**
 * Partitioned selection against the single run on the same data (issue: scale): facility location at
 * N = 1M synthetic unit embeddings (d = 512), 1% budget, single process vs partition → local → merge
 * with N partitions; both subsets scored by the same exact evaluator, the facility-location objective
 * Σ_i max_{j∈S} ⟨x_i, x_j⟩ over every item (blocked MatMul + top-1 on onnxruntime).
 *   partitioned.ts [n] [partitions] [--methods=a,b]   (defaults 1,000,000, 10 and every method with a
 *                                                    partitioned form; methods left out keep their rows)
 */
import { runSelector } from '../src/select/contract.js';
import { topKInnerProduct, type Matrix } from '../src/select/kernels/similarity.js';
import { MERGE_FACTOR, partitionedFormOf, selectByPartitions } from '../src/select/partitioned.js';
import { getSelector, partitionedMethods } from '../src/select/registry.js';
import { gather } from '../src/select/selectors/vectors.js';
import { log } from './data.js';
import { previousResults, writeSection } from './results.js';
import { syntheticEmbeddings } from './synthetic.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const n = Number(positional[0] ?? 1_000_000);
const count = Number(positional[1] ?? 10);
const methodsArg = process.argv.find((a) => a.startsWith('--methods='));
const methods = methodsArg ? methodsArg.slice('--methods='.length).split(',') : partitionedMethods();
const dim = 512;
const budget = Math.round(0.01 * n);

const { image } = syntheticEmbeddings(n, dim, false);
const x: Matrix = { rows: n, cols: dim, data: image };

/** F(S) = Σ_i max_{j∈S} ⟨x_i, x_j⟩, exactly. */
async function objective(picks: ArrayLike<number>): Promise<number> {
  const best = await topKInnerProduct(x, gather(x, Array.from(picks)), 1);
  let total = 0;
  for (const v of best.values) total += v;
  return total;
}

interface Row {
  method: string;
  run: string;
  seconds: number;
  objective: number;
  /** Day the row was measured (rows of methods left out of a run are kept from earlier runs). */
  measured?: string;
}
const today = new Date().toISOString().slice(0, 10);

const rows: Row[] = [];
for (const method of methods) {
  const selector = getSelector(method);
  let t = performance.now();
  const single = await runSelector(selector, { n, dim, image }, { count: budget }, {}, { seed: 0 });
  const singleSeconds = (performance.now() - t) / 1000;
  const singleObjective = await objective(single.indices);
  log(method, 'single', singleSeconds.toFixed(0), 's', singleObjective.toFixed(1));
  rows.push({
    method,
    run: 'single process',
    seconds: singleSeconds,
    objective: singleObjective,
    measured: today,
  });

  // Partitions of contiguous rows (the synthetic clusters interleave, as shuffled shards would).
  const size = Math.ceil(n / count);
  const parts = Array.from({ length: count }, (_, t) => {
    const rows = Math.min(size, n - t * size);
    return { n: rows, dim, image: image.subarray(t * size * dim, (t * size + rows) * dim) };
  });
  const form = partitionedFormOf(selector, partitionedMethods()).partitioned;
  const params = (selector.params as { parse(v: unknown): object }).parse({});
  t = performance.now();
  const merged = await selectByPartitions(form, parts, budget, params, 0);
  const partSeconds = (performance.now() - t) / 1000;
  const partObjective = await objective(merged.indices);
  log(method, `${count} partitions`, partSeconds.toFixed(0), 's', partObjective.toFixed(1));
  rows.push({
    method,
    run: `${count} partitions`,
    seconds: partSeconds,
    objective: partObjective,
    measured: today,
  });
}

// Rows of methods this run left out are kept from the previous run (each row says when it was measured).
const kept = ((await previousResults<Row[]>('partitioned')) ?? []).filter((r) => !methods.includes(r.method));
rows.unshift(...kept);

await writeSection(
  'partitioned',
  [
    '## Partitioned selection',
    '',
    `### Partition → local → merge against one process, N = ${n.toLocaleString('en-US')} synthetic embeddings (d = ${dim}), 1% budget`,
    '',
    '| method | run | seconds | objective Σ_i max_{j∈S} ⟨x_i, x_j⟩ | vs single | measured |',
    '|---|---|---:|---:|---:|---|',
    ...rows.map((r) => {
      const single = rows.find((s) => s.method === r.method && s.run === 'single process')!;
      return `| ${r.method} | ${r.run} | ${r.seconds.toFixed(0)} | ${r.objective.toFixed(1)} | ${(100 * (r.objective / single.objective)).toFixed(2)}% | ${r.measured ?? '?'} |`;
    }),
    '',
    `Both runs in one process, one after the other; the objective is evaluated exactly over all ${n.toLocaleString('en-US')} items ` +
      '(blocked MatMul + top-1 against the picks on onnxruntime), not by either run’s own kNN graph. ' +
      `Partitions: ${count} blocks of contiguous rows (the 100 synthetic clusters interleave, as shuffled shards do); ` +
      `each keeps ⌈${MERGE_FACTOR}·k_I⌉ candidates, and the merge runs the method again on their union with each ` +
      'candidate counted as the items it stands for (docs/methods/baselines.md#facility-location, docs/methods/craig.md). ' +
      'CRAIG runs features mode (k-means pseudo-classes, per-class facility location on distances); the objective ' +
      'shown is the same coverage for every method. Goal ≥ 98% of the single run.',
  ].join('\n'),
  rows,
);
