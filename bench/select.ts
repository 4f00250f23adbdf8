/**
 * Selection benchmarks (npm run bench):
 *  1. kernel throughput: blocked top-k (MatMul + TopK on onnxruntime) as a fraction of plain MatMul;
 *  2. every selector on synthetic unit embeddings (d = 512) at N = 10k and 100k: time and peak RSS,
 *     each in a fresh process;
 *  3. quality on the CIFAR-10 captions (offline encoder): each method picks 1%, 5%, 10% and 30% of
 *     shards 0–7; kept mismatched / generic / duplicate rates and the linear-probe evaluator trained on
 *     the (weighted) subset, tested on shards 8–10. Falls back to the bundled demo shards without ../shared.
 *
 *   select.ts [kernels] [synthetic] [quality] [--methods=a,b]
 * Parts or methods left out keep their previous numbers (bench/out/results.json), so one method can be
 * re-measured without re-running the rest.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { addDataset, Catalog, embedCatalog, offlineEncoderFor } from '../src/curate/api.js';
import { loadEmbeddings } from '../src/curate/embeddings.js';
import { gaussian, seededRandom } from '../src/compute/random.js';
import { runSelector } from '../src/select/contract.js';
import { innerProducts, topKInnerProduct } from '../src/select/kernels/similarity.js';
import { linearProbe } from '../src/select/proxy/probe.js';
import { HELD_SPEC, log, POOL_SPEC, ROOT } from './data.js';
import { previousResults, writeSection } from './results.js';
import { benchMethods, resolveMethod } from './variants.js';

async function kernels() {
  const n = 16384;
  const d = 512;
  const normal = gaussian(seededRandom(1));
  const x = { rows: n, cols: d, data: Float32Array.from({ length: n * d }, normal) };
  const q = { rows: 4096, cols: d, data: x.data.subarray(0, 4096 * d) };
  await innerProducts(q, x);
  let t = performance.now();
  for (let i = 0; i < 4; i++) await innerProducts(q, x);
  const matmul = (2 * 4 * 4096 * n * d) / ((performance.now() - t) / 1000) / 1e9;
  await topKInnerProduct(q, x, 10);
  t = performance.now();
  await topKInnerProduct(x, x, 10, { excludeSelf: true });
  const topk = (2 * n * n * d) / ((performance.now() - t) / 1000) / 1e9;
  log('kernels', { matmul, topk });
  return { matmulGflops: matmul, topkGflops: topk, ratio: topk / matmul };
}

interface Timing {
  method: string;
  n: number;
  seconds: number;
  peakRssMiB: number;
  matrixMiB: number;
}

function synthetic(methods: string[]): Timing[] {
  const out: Timing[] = [];
  for (const n of [10_000, 100_000]) {
    for (const method of methods) {
      const json = execFileSync(
        process.execPath,
        ['--import', 'tsx', path.join(ROOT, 'bench/selectWorker.ts'), method, String(n), '512', '0.01'],
        { encoding: 'utf8' },
      );
      const r = JSON.parse(json.trim().split('\n').at(-1)!) as Timing;
      log('synthetic', r);
      out.push(r);
    }
  }
  return out;
}

const BUDGETS = [0.01, 0.05, 0.1, 0.3];
const RANDOM_SEEDS = [0, 1, 2];

interface QualityRow {
  method: string;
  budget: number;
  kept: number;
  mismatched: number;
  generic: number;
  duplicates: number;
  probe: number;
  seconds: number;
  /** Seeds averaged into this row (random). */
  seeds?: number;
}

interface Quality {
  rows: QualityRow[];
  pool: number;
  heldOut: number;
  encoder: string;
  base: { mismatched: number; generic: number; duplicates: number; probe: number };
}

async function quality(methods: string[]): Promise<Quality> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'clipcurate-bench-select-'));
  try {
    const catalog = await Catalog.open(scratch);
    const pool = await addDataset(catalog, POOL_SPEC);
    await addDataset(catalog, HELD_SPEC);
    const encoder = await offlineEncoderFor(catalog, scratch);
    await embedCatalog(catalog, scratch, encoder, { batchSize: 128 });
    const all = await loadEmbeddings(catalog, scratch, { labelField: 'label_index' });
    const truth = await catalog.rows<{ id: bigint; dataset_id: number; kind: string; dup: boolean }>(
      `SELECT id, dataset_id, metadata->>'caption_kind' AS kind, (metadata->>'dup_of') IS NOT NULL AS dup FROM samples ORDER BY id`,
    );
    const byId = new Map(truth.map((t) => [BigInt(t.id), t]));
    const inPool: number[] = [];
    const inHeld: number[] = [];
    all.ids.forEach((id, i) => (byId.get(id)!.dataset_id === pool.dataset.id ? inPool : inHeld).push(i));
    const d = all.dim;
    const take = (m: Float32Array, rows: ArrayLike<number>) => {
      const out = new Float32Array(rows.length * d);
      for (let t = 0; t < rows.length; t++) out.set(m.subarray(rows[t]! * d, (rows[t]! + 1) * d), t * d);
      return out;
    };
    const matrix = (data: Float32Array) => ({ rows: data.length / d, cols: d, data });
    const poolInput = {
      n: inPool.length,
      dim: d,
      image: take(all.image!, inPool),
      text: take(all.text!, inPool),
      labels: Int32Array.from(inPool, (r) => all.labels![r]!),
    };
    const test = {
      x: matrix(take(all.image!, inHeld)),
      labels: Int32Array.from(inHeld, (r) => all.labels![r]!),
    };
    const probe = async (x: Float32Array, labels: Int32Array, weights?: Float32Array) =>
      (await linearProbe({ x: matrix(x), labels, ...(weights ? { weights } : {}) }, test, { classes: 10 }))
        .accuracy;
    const rate = (ids: ArrayLike<number>, pred: (t: { kind: string; dup: boolean }) => boolean) =>
      Array.from(ids).filter((i) => pred(byId.get(all.ids[inPool[i]!]!)!)).length / ids.length;
    const full = Array.from({ length: poolInput.n }, (_, i) => i);
    const base = {
      mismatched: rate(full, (t) => t.kind === 'mismatched'),
      generic: rate(full, (t) => t.kind === 'generic'),
      duplicates: rate(full, (t) => t.dup),
      probe: await probe(poolInput.image, poolInput.labels),
    };
    log('quality base', base);
    const rows: QualityRow[] = [];
    for (const method of methods) {
      for (const budget of BUDGETS) {
        const seeds = method === 'random' ? RANDOM_SEEDS : [0];
        const perSeed: QualityRow[] = [];
        const synthetic: number[] = [];
        for (const seed of seeds) {
          const t = performance.now();
          const { selector, params } = resolveMethod(method);
          const s = await runSelector(selector, poolInput, { fraction: budget }, params, { seed });
          const seconds = (performance.now() - t) / 1000;
          const ids = s.indices;
          perSeed.push({
            method,
            budget,
            kept: ids.length,
            mismatched: rate(ids, (x) => x.kind === 'mismatched'),
            generic: rate(ids, (x) => x.kind === 'generic'),
            duplicates: rate(ids, (x) => x.dup),
            probe: await probe(
              take(poolInput.image, ids),
              Int32Array.from(ids, (i) => poolInput.labels[i]!),
              s.weights,
            ),
            seconds,
          });
          if (s.synthetic) synthetic.push(await probe(s.synthetic.vectors, s.synthetic.labels));
        }
        const mean = (f: (r: QualityRow) => number) => perSeed.reduce((a, r) => a + f(r), 0) / perSeed.length;
        const row: QualityRow = {
          method,
          budget,
          kept: perSeed[0]!.kept,
          mismatched: mean((r) => r.mismatched),
          generic: mean((r) => r.generic),
          duplicates: mean((r) => r.duplicates),
          probe: mean((r) => r.probe),
          seconds: mean((r) => r.seconds),
          ...(seeds.length > 1 ? { seeds: seeds.length } : {}),
        };
        rows.push(row);
        log('quality', row);
        if (synthetic.length > 0) {
          // The distilled vectors themselves (not dataset items): only the probe applies.
          rows.push({
            ...row,
            method: `${method} (synthetic vectors)`,
            probe: synthetic[0]!,
            mismatched: NaN,
            generic: NaN,
            duplicates: NaN,
          });
        }
      }
    }
    catalog.close();
    return { rows, pool: poolInput.n, heldOut: test.labels.length, encoder: encoder.name, base };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

interface SelectResults {
  kernels: Awaited<ReturnType<typeof kernels>>;
  synthetic: Timing[];
  quality: Quality;
}

const args = process.argv.slice(2);
const methodsArg = args.find((a) => a.startsWith('--methods='));
const methods = methodsArg ? methodsArg.slice('--methods='.length).split(',') : benchMethods();
const parts = args.filter((a) => !a.startsWith('--'));
const wants = (part: string) => parts.length === 0 || parts.includes(part);
const previous = await previousResults<SelectResults>('select');
/** New rows replace the previous run's rows of the same method; order follows the registry. */
function merge<T extends { method: string }>(
  old: T[] | undefined,
  fresh: T[],
  key = (r: T) => r.method,
): T[] {
  const redone = new Set(fresh.map(key));
  const kept = (old ?? []).filter((r) => !redone.has(key(r)));
  const order = benchMethods();
  const rank = (r: T) => {
    const i = order.indexOf(r.method.replace(/ \(.*\)$/, ''));
    return i < 0 ? order.length : i;
  };
  return [...kept, ...fresh].sort((a, b) => rank(a) - rank(b));
}

const k = wants('kernels') || !previous ? await kernels() : previous.kernels;
const timings = wants('synthetic')
  ? merge(previous?.synthetic, synthetic(methods), (r) => `${r.method}@${r.n}`).sort((a, b) => a.n - b.n)
  : (previous?.synthetic ?? []);
let q: Quality | undefined = previous?.quality;
if (wants('quality')) {
  const fresh = await quality(methods);
  q = {
    ...fresh,
    rows: merge(
      q?.rows.filter((r) => 'budget' in r),
      fresh.rows,
      (r) => r.method,
    ),
  };
}
// NaN (not applicable) comes back from results.json as null.
const pct = (v: number | null) => (v === null || Number.isNaN(v) ? '–' : `${(100 * v).toFixed(1)}%`);
const byMethod = new Map<string, QualityRow[]>();
for (const r of q?.rows ?? []) byMethod.set(r.method, [...(byMethod.get(r.method) ?? []), r]);
const budgetTable = (title: string, cell: (r: QualityRow) => string, baseCell: string) => [
  `**${title}**`,
  '',
  `| method | ${BUDGETS.map((b) => `${100 * b}%`).join(' | ')} |`,
  `|---|${BUDGETS.map(() => '---:').join('|')}|`,
  `| full pool (no selection) | ${BUDGETS.map(() => baseCell).join(' | ')} |`,
  ...[...byMethod].map(
    ([method, rows]) =>
      `| ${method}${rows[0]?.seeds ? ` (mean of ${rows[0].seeds} seeds)` : ''} | ${BUDGETS.map((b) => {
        const r = rows.find((x) => x.budget === b);
        return r ? cell(r) : '';
      }).join(' | ')} |`,
  ),
  '',
];
await writeSection(
  'select',
  [
    '## Selection',
    '',
    '### Kernel throughput',
    '',
    `Blocked inner-product top-10 over 16,384 × 16,384 × 512 (MatMul + TopK per tile on onnxruntime): ${k.topkGflops.toFixed(0)} GFLOP/s; ` +
      `plain MatMul tiles (4,096 × 16,384 × 512, result returned to JS): ${k.matmulGflops.toFixed(0)} GFLOP/s; ratio **${k.ratio.toFixed(2)}** (goal ≥ 0.5).`,
    '',
    '### Time and peak RSS on synthetic embeddings (d = 512, budget 1%, fresh process each)',
    '',
    '| method | N | seconds | peak RSS MiB | embedding matrices read MiB (image, + captions where the method reads them) |',
    '|---|---:|---:|---:|---:|',
    ...timings.map(
      (t) =>
        `| ${t.method} | ${t.n.toLocaleString('en-US')} | ${t.seconds.toFixed(1)} | ${t.peakRssMiB.toFixed(0)} | ${t.matrixMiB.toFixed(0)} |`,
    ),
    '',
    'N = 1M: the next table (`bench/select1m.ts`); herding at 1M (O(N·B·64), no lazy form since its argmax target moves with every pick) is not run.',
    '',
    ...(q
      ? [
          `### Quality on the CIFAR-10 caption pool at 1%, 5%, 10%, 30% (${q.encoder})`,
          '',
          `Pool = shards 0–7 (${q.pool.toLocaleString('en-US')} samples; ${pct(q.base.mismatched)} mismatched and ${pct(q.base.generic)} generic captions, ${pct(q.base.duplicates)} exact duplicates). ` +
            `Probe = the linear-probe evaluator (\`src/select/proxy/probe.ts\`: softmax head, 300 full-batch momentum steps, weighted when the method gives weights) on the selected image embeddings, accuracy on shards 8–10 (${q.heldOut.toLocaleString('en-US')}). ` +
            'Every method with its defaults and seed 0 (random: mean of 3 seeds); classes = the CIFAR labels where a method works per class. ' +
            'pdd and pdd-synth are our PDD-style adaptations, not the paper’s method; “synthetic vectors” trains the probe on pdd-synth’s distilled embeddings themselves. ' +
            'craig-gradients = craig with `mode: gradients`; adacore is reconstructed (no official code). The dynamic methods are scored on their static subset: ' +
            'craig/adacore/augcoreset/graft at one warm proxy checkpoint, crest = the examples its simulated run trained on most, seta = its labelled static analogue (random pool minus the extreme loss groups); ' +
            'their schedules are what a trainer would use. graft returns ≈ N·f (fewer at 1%: one pivot per 128-row batch); el2n/grand keep the hardest examples, which the Data Diet paper itself finds harmful at small budgets.',
          '',
          ...budgetTable('Linear-probe accuracy (held out)', (r) => pct(r.probe), pct(q.base.probe)),
          ...budgetTable(
            'Bad captions kept (mismatched + generic)',
            (r) => pct(r.mismatched + r.generic),
            pct(q.base.mismatched + q.base.generic),
          ),
          ...budgetTable('Mismatched captions kept', (r) => pct(r.mismatched), pct(q.base.mismatched)),
          ...budgetTable('Exact duplicates kept', (r) => pct(r.duplicates), pct(q.base.duplicates)),
          ...budgetTable('Selection seconds', (r) => r.seconds.toFixed(1), '–'),
        ]
      : []),
  ].join('\n'),
  { kernels: k, synthetic: timings, quality: q },
);
