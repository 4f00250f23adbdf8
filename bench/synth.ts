/**
 * A complete synthetic workspace for benchmarks, which every `curate` command can open:
 *   npm run bench:synth -- --n N --dim D --out DIR [--part-size 10000] [--clusters 100]
 *                          [--noise 1.5] [--mismatch 0.1] [--seed 1]
 *
 * DIR/data holds one CSV manifest per part (key, image, caption, cluster) and one tiny PNG per cluster
 * (every sample of a cluster points at its cluster's image); the catalog is filled by the ordinary
 * `curate add` path (addDataset). The embedding store is float16, written shard by shard the way
 * `curate embed` writes it, with its row maps, under an encoder named `synthetic` (its fingerprint
 * names dim, noise and seed, so a text query through a real encoder is refused, not mixed in).
 *
 * Embeddings: image = unit(centre[cluster] + noise · N(0, I)), the same model as bench/synthetic.ts;
 * caption = unit(image + 0.05 · N(0, I)), except for a `mismatch` share of samples whose caption
 * is the caption of an unrelated sample of another cluster (recorded in the manifest's `mismatched`
 * column, ground truth for caption-noise filters).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { addDataset, Catalog } from '../src/curate/api.js';
import { embeddingsDir, shardName } from '../src/curate/embed.js';
import { writeRowMaps } from '../src/curate/rowMap.js';
import { gaussian, seededRandom } from '../src/compute/random.js';
import { EmbeddingStore } from '../src/embed/store.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string' },
    dim: { type: 'string', default: '512' },
    out: { type: 'string' },
    'part-size': { type: 'string', default: '10000' },
    clusters: { type: 'string', default: '100' },
    noise: { type: 'string', default: '1.5' },
    mismatch: { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '1' },
  },
});

function positive(name: string, text: string | undefined, integer = true): number {
  const v = Number(text);
  if (text === undefined || !Number.isFinite(v) || v < 0 || (integer && (!Number.isInteger(v) || v === 0))) {
    console.error(
      `bench:synth: --${name} must be a ${integer ? 'positive integer' : 'non-negative number'} (got ${text ?? 'nothing'})`,
    );
    process.exit(2);
  }
  return v;
}
if (!values.out) {
  console.error('bench:synth: --out DIR is required (the workspace folder to write)');
  process.exit(2);
}
const n = positive('n', values.n);
const dim = positive('dim', values.dim);
const partSize = positive('part-size', values['part-size']);
const clusters = positive('clusters', values.clusters);
const noise = positive('noise', values.noise, false);
const mismatch = positive('mismatch', values.mismatch, false);
const seed = positive('seed', values.seed);
if (mismatch > 1) {
  console.error(`bench:synth: --mismatch is a share of samples, 0 to 1 (got ${mismatch})`);
  process.exit(2);
}
const workspace = path.resolve(values.out);
const dataDir = path.join(workspace, 'data');
const started = performance.now();
const log = (text: string) =>
  console.error(`bench:synth ${((performance.now() - started) / 1000).toFixed(0).padStart(5)} s  ${text}`);

await rm(workspace, { recursive: true, force: true });
await mkdir(path.join(dataDir, 'img'), { recursive: true });

// One 16 × 16 PNG per cluster, coloured by cluster.
const rnd = seededRandom(seed);
for (let c = 0; c < clusters; c++) {
  const colour = { r: Math.floor(rnd() * 256), g: Math.floor(rnd() * 256), b: Math.floor(rnd() * 256) };
  await sharp({ create: { width: 16, height: 16, channels: 3, background: colour } })
    .png()
    .toFile(path.join(dataDir, 'img', `c${String(c).padStart(4, '0')}.png`));
}

// Cluster of each sample and which samples' captions are swapped in; decided up front (seeded).
const clusterOf = new Int32Array(n);
const captionFrom = new Int32Array(n);
for (let i = 0; i < n; i++) clusterOf[i] = Math.floor(rnd() * clusters);
for (let i = 0; i < n; i++) {
  captionFrom[i] = i;
  if (clusters > 1 && rnd() < mismatch) {
    let j = Math.floor(rnd() * n);
    while (clusterOf[j] === clusterOf[i]) j = Math.floor(rnd() * n);
    captionFrom[i] = j;
  }
}
const key = (i: number) => `s${String(i).padStart(9, '0')}`;
const parts = Math.ceil(n / partSize);
for (let p = 0; p < parts; p++) {
  const lines = ['key,image,caption,cluster,mismatched'];
  for (let i = p * partSize; i < Math.min(n, (p + 1) * partSize); i++) {
    const c = clusterOf[captionFrom[i]!]!;
    lines.push(
      `${key(i)},img/c${String(clusterOf[i]).padStart(4, '0')}.png,a photo of object ${c} (sample ${captionFrom[i]}),${clusterOf[i]},${captionFrom[i] !== i}`,
    );
  }
  await writeFile(path.join(dataDir, `part-${String(p).padStart(5, '0')}.csv`), lines.join('\n') + '\n');
}
log(`${parts} manifests and ${clusters} images in ${dataDir}`);

const catalog = await Catalog.open(workspace);
try {
  const report = await addDataset(catalog, path.join(dataDir, '*.csv'));
  log(`catalog: ${report.dataset.name}, ${parts} parts`);

  const normal = gaussian(seededRandom(seed + 1));
  const centres = Array.from({ length: clusters }, () => Float32Array.from({ length: dim }, normal));
  const unit = (v: Float32Array) => {
    let s = 0;
    for (const x of v) s += x * x;
    const inv = 1 / Math.sqrt(s);
    for (let k = 0; k < v.length; k++) v[k]! *= inv;
    return v;
  };
  // Each sample's image embedding is a function of its index alone (its own seeded stream), so a
  // mismatched caption can be made from another sample's image without keeping every vector.
  const imageOf = (i: number) => {
    const g = gaussian(seededRandom(seed * 1_000_003 + i));
    const centre = centres[clusterOf[i]!]!;
    return unit(Float32Array.from({ length: dim }, (_, k) => centre[k]! + noise * g()));
  };
  const fingerprint = `synthetic-d${dim}-c${clusters}-noise${noise}-seed${seed}`;
  const store = await EmbeddingStore.open(
    embeddingsDir(workspace),
    { name: 'synthetic', fingerprint, dim },
    'float16',
  );
  const partRows = await catalog.rows<{ part: string; ids: bigint[]; keys: string[] }>(
    `SELECT part, list(id ORDER BY id) AS ids, list(key ORDER BY id) AS keys FROM samples
     WHERE dataset_id = $id GROUP BY part ORDER BY part`,
    { id: report.dataset.id },
  );
  let done = 0;
  for (const { part, ids, keys } of partRows) {
    const shard = shardName(report.dataset.id, part);
    const images = new Float32Array(ids.length * dim);
    const texts = new Float32Array(ids.length * dim);
    keys.forEach((k, r) => {
      const i = Number(k.slice(1));
      images.set(imageOf(i), r * dim);
      const t = captionFrom[i] === i ? images.subarray(r * dim, (r + 1) * dim) : imageOf(captionFrom[i]!);
      const tg = gaussian(seededRandom(seed * 7_000_003 + i));
      texts.set(unit(Float32Array.from(t, (x) => x + 0.05 * tg())), r * dim);
    });
    const writer = await store.beginShard(shard);
    await writer.append(images, texts);
    await writer.commit();
    await catalog.recordEmbeddedShard({
      shard,
      datasetId: report.dataset.id,
      part,
      sampleIds: ids.map(BigInt),
      fingerprint,
      seconds: 0,
      issues: [],
    });
    await writeRowMaps(catalog, store, shard);
    done += ids.length;
    if (done % 100_000 < ids.length || done === n) log(`embeddings: ${done} of ${n} rows`);
  }
  log(`workspace ready: ${workspace} (${n} samples, d = ${dim}, float16 store)`);
} finally {
  catalog.close();
}
