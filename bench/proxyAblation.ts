/**
 * Why ClipCov and clip-score do not beat random on proxy CLIP zero-shot (bench/RESULTS.md, "Judging
 * subsets by proxy pre-training"): ablation subsets on the same pool, held-out split and proxy settings as
 * `compare` (seed 0, 20% held out, 300 steps × 256, 3 seeds), then the per-class zero-shot of the compare's
 * saved 10% selections (run `curate compare … --name cifar-10pct` first).
 *
 *   npx tsx bench/proxyAblation.ts /tmp/cifar/ws
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { trainProxyClip, embedProxy } from '../src/eval/proxyClip.js';
import { Catalog } from '../src/curate/catalog.js';
import { loadEmbeddings } from '../src/curate/embeddings.js';
import { splitHeldOut } from '../src/curate/pipeline.js';
import { resolveClassNames, labelsFromNameField } from '../src/curate/classNames.js';
import { evaluateSubset, type EvaluationSetup } from '../src/eval/evaluate.js';
import { staticPlan } from '../src/eval/types.js';
import { getSelector } from '../src/select/registry.js';
import { runSelector } from '../src/select/contract.js';
import { seededRandom } from '../src/compute/random.js';

const W = process.argv[2] ?? '/tmp/cifar/ws';
const catalog = await Catalog.open(W, { readOnly: true });
const e = await loadEmbeddings(catalog, W, { labelField: 'label_index' });
const { train, test } = splitHeldOut(e.labels!, 0.2, 0);
const d = e.dim;
const rows = (m: Float32Array, r: number[]) => {
  const o = new Float32Array(r.length * d);
  r.forEach((i, t) => o.set(m.subarray(i * d, (i + 1) * d), t * d));
  return o;
};
const part = (r: number[]) => ({
  n: r.length,
  dim: d,
  image: rows(e.image!, r),
  text: rows(e.text!, r),
  labels: Int32Array.from(r, (i) => e.labels![i]!),
});
const classes = await resolveClassNames(catalog, W, { kind: 'field', field: 'label' });
const heldLabels = await labelsFromNameField(
  catalog,
  BigInt64Array.from(test, (i) => e.ids[i]!),
  'label',
  classes.names,
);
const kinds = await catalog.rows<{ id: bigint; kind: string }>(
  `SELECT id, metadata->>'caption_kind' AS kind FROM samples`,
);
const kindOf = new Map(kinds.map((r) => [BigInt(r.id), r.kind]));
const pool = part(train);
const setup: EvaluationSetup = {
  evaluators: ['clip', 'probe'],
  seeds: 3,
  pool,
  heldOut: part(test),
  zeroShot: { prompts: classes.embeddings, heldOutLabels: heldLabels },
  clip: { steps: 300, batch: 256 },
};
const B = Math.round(0.1 * pool.n);
const rnd = seededRandom(11);
const shuffle = (a: number[]) => {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
};
const clean = train.map((_, t) => t).filter((t) => kindOf.get(e.ids[train[t]!]!) === 'clean');
const bad = train.map((_, t) => t).filter((t) => kindOf.get(e.ids[train[t]!]!) !== 'clean');
const cos = train.map((_, t) => {
  let s = 0;
  for (let k = 0; k < d; k++) s += pool.image[t * d + k]! * pool.text[t * d + k]!;
  return s;
});
// clip-score balanced: top B/10 by cosine within each class (labels), so the class mix stays the pool's.
const perClass = new Map<number, number[]>();
train.forEach((_, t) => perClass.set(pool.labels[t]!, [...(perClass.get(pool.labels[t]!) ?? []), t]));
const balanced = [...perClass.values()].flatMap((m) =>
  m.sort((a, b) => cos[b]! - cos[a]!).slice(0, Math.round((B * m.length) / pool.n)),
);
const input = {
  n: pool.n,
  dim: d,
  image: pool.image,
  text: pool.text,
  labels: pool.labels,
  classPrompts: { names: classes.names, embeddings: classes.embeddings },
};
const run = async (method: string, params: object) =>
  Array.from((await runSelector(getSelector(method), input, { count: B }, params, { seed: 0 })).indices);
const subsets: Record<string, number[]> = {
  random: shuffle(train.map((_, t) => t)).slice(0, B),
  'oracle: random among clean captions': shuffle([...clean]).slice(0, B),
  'random with 50% bad captions': [
    ...shuffle([...clean]).slice(0, B / 2),
    ...shuffle([...bad]).slice(0, B / 2),
  ],
  'clip-score (top cosine)': train
    .map((_, t) => t)
    .sort((a, b) => cos[b]! - cos[a]!)
    .slice(0, B),
  'clip-score balanced per class': balanced,
  'clipcov, zero-shot classes (as compared)': await run('clipcov', { classes: 'zero-shot' }),
  'clipcov, k-means classes': await run('clipcov', { classes: 'kmeans' }),
  'clipcov, true labels': await run('clipcov', { classes: 'labels' }),
};
const hist = (s: number[]) => {
  const h = new Array(10).fill(0);
  for (const t of s) h[pool.labels[t]!]++;
  return h.map((v) => ((100 * v) / s.length).toFixed(0)).join('/');
};
const badShare = (s: number[]) =>
  ((100 * s.filter((t) => kindOf.get(e.ids[train[t]!]!) !== 'clean').length) / s.length).toFixed(1);
const f = (m: { mean: number; std: number } | null | undefined) =>
  m ? `${(100 * m.mean).toFixed(1)} ± ${(100 * m.std).toFixed(1)}%` : '–';
console.log(
  '| subset (10% of the 16,000-pair pool) | bad captions | class mix (% per class) | proxy CLIP zero-shot | i2t R@5 | label probe |',
);
console.log('|---|---:|---|---:|---:|---:|');
for (const [name, s] of Object.entries(subsets)) {
  const r = await evaluateSubset(setup, staticPlan(s));
  console.log(
    `| ${name} | ${badShare(s)}% | ${hist(s)} | ${f(r.proxyClip!.zeroShotTop1)} | ${f(r.proxyClip!.i2tR5)} | ${f(r.probe)} |`,
  );
}
// The proxy's inputs: zero-shot of the frozen space itself (no training), the floor every subset starts from.
{
  const { zeroShotTop1 } = await import('../src/eval/retrieval.js');
  const t = part(test);
  console.log(
    `\nfrozen offline space, no proxy training: zero-shot ${(100 * (await zeroShotTop1(t.image, t.n, d, classes.embeddings, heldLabels))).toFixed(1)}%`,
  );
}

// Per-class proxy-CLIP zero-shot of the compare's 10% selections.
const position = new Map(Array.from(train, (i, t) => [Number(e.ids[i]!), t]));
const picksOf = (m: string) =>
  (
    JSON.parse(readFileSync(path.join(W, `selections/cifar-10pct/${m}-10pct/selection.json`), 'utf8'))
      .sampleIds as number[]
  ).map((id) => position.get(id)!);
const heldImage = rows(e.image!, test);
const K = classes.names.length;
const held = heldLabels;
console.log(`| subset @10% | ${classes.names.join(' | ')} | mean |`);
console.log(`|---|${classes.names.map(() => '---:').join('|')}|---:|`);
for (const m of ['random', 'clipcov', 'clip-score', 'craig']) {
  const picks = picksOf(m);
  const correct = new Float64Array(K);
  const total = new Float64Array(K);
  for (let seed = 0; seed < 3; seed++) {
    const model = await trainProxyClip(pool, staticPlan(picks), { steps: 300, batch: 256, seed });
    const zi = await embedProxy(model, heldImage, test.length, 'image');
    const zt = await embedProxy(model, classes.embeddings, K, 'text');
    const w = zi.length / test.length;
    for (let t = 0; t < test.length; t++) {
      let best = -1,
        bv = -Infinity;
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let q = 0; q < w; q++) s += zi[t * w + q]! * zt[k * w + q]!;
        if (s > bv) {
          bv = s;
          best = k;
        }
      }
      total[held[t]!]! += 1;
      if (best === held[t]) correct[held[t]!]! += 1;
    }
  }
  const acc = Array.from(correct, (c, k) => (100 * c) / total[k]!);
  const count = new Array(K).fill(0);
  for (const p of picks) count[e.labels![train[p]!]!]++;
  console.log(
    `| ${m} (kept per class: ${count.join('/')}) | ${acc.map((a) => a.toFixed(0)).join(' | ')} | ${(acc.reduce((a, b) => a + b, 0) / K).toFixed(1)} |`,
  );
}
catalog.close();
