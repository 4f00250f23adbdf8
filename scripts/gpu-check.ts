/**
 * The GPU check behind scripts/gpu-check.sh: embeds the bundled demo sample (2,000 CIFAR pairs) with a
 * generated tower of ViT-B/32 cost, once on CPU and once on CUDA, through the real embed pipeline
 * (read → decode/resize → batch → ONNX → .npy), and prints images/s for each, how closely the two
 * agree, and the GPU's memory use. Without CUDA it runs the CPU part and says why CUDA was skipped.
 *
 *   npx tsx scripts/gpu-check.ts [--batch-size B] [--out DIR]
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { addDataset, Catalog, DEMO_DATASET, embedCatalog } from '../src/curate/api.js';
import { loadEmbeddings } from '../src/curate/embeddings.js';
import { cudaInstalled, type Device } from '../src/compute/ort.js';
import { ClipOnnxEncoder } from '../src/embed/encoders/clipOnnx.js';
import { writeTinyClip } from '../test/support/tinyClip.js';

const { values } = parseArgs({
  options: {
    'batch-size': { type: 'string', default: '64' },
    out: { type: 'string' },
  },
});
const batchSize = Number(values['batch-size']);
const scratch = await mkdtemp(path.join(tmpdir(), 'clipcurate-gpu-check-'));

function gpuMemory(): string {
  try {
    return execFileSync(
      'nvidia-smi',
      ['--query-gpu=name,memory.used,memory.total', '--format=csv,noheader'],
      {
        encoding: 'utf8',
      },
    ).trim();
  } catch {
    return 'nvidia-smi not available';
  }
}

interface Run {
  device: Device;
  provider: string;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  image: Float32Array;
  text: Float32Array;
  dim: number;
  gpuMemoryAfter: string;
}

async function embedOn(device: Device, model: string): Promise<Run> {
  const workspace = path.join(scratch, `ws-${device}`);
  const catalog = await Catalog.open(workspace);
  try {
    await addDataset(catalog, DEMO_DATASET);
    const encoder = await ClipOnnxEncoder.load(model, { device });
    const report = await embedCatalog(catalog, workspace, encoder, { batchSize });
    const gpuMemoryAfter = device === 'cuda' ? gpuMemory() : '';
    await encoder.dispose();
    const loaded = await loadEmbeddings(catalog, workspace);
    return {
      device,
      provider: encoder.provider,
      images: report.samplesEmbedded,
      seconds: report.seconds,
      imagesPerSecond: report.samplesPerSecond,
      image: loaded.image!,
      text: loaded.text!,
      dim: encoder.dim,
      gpuMemoryAfter,
    };
  } finally {
    catalog.close();
  }
}

/** Smallest cosine and largest absolute difference between matching rows. */
function agreement(a: Float32Array, b: Float32Array, dim: number): { minCosine: number; maxAbsDiff: number } {
  let minCosine = 1;
  let maxAbsDiff = 0;
  for (let r = 0; r < a.length; r += dim) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let i = r; i < r + dim; i++) {
      dot += a[i]! * b[i]!;
      na += a[i]! * a[i]!;
      nb += b[i]! * b[i]!;
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i]! - b[i]!));
    }
    minCosine = Math.min(minCosine, dot / Math.sqrt(na * nb));
  }
  return { minCosine, maxAbsDiff };
}

// 224×224 input, 16×16 patches, 8 layers of width 384: about ViT-B/32's 4.4 GFLOP per image.
const model = await writeTinyClip(path.join(scratch, 'tower'), { width: 384, depth: 8, patch: 16, dim: 512 });
const lines: string[] = [`gpu-check: ${new Date().toISOString()}`, `gpu: ${gpuMemory()}`];
const say = (line: string) => {
  lines.push(line);
  console.log(line);
};
const cpu = await embedOn('cpu', model);
say(`cpu:  ${cpu.images} images in ${cpu.seconds.toFixed(1)} s = ${cpu.imagesPerSecond.toFixed(1)} images/s`);
if (!cudaInstalled()) {
  say('cuda: skipped: onnxruntime-node has no CUDA provider here (scripts/gpu-check.sh installs it)');
} else {
  const cuda = await embedOn('cuda', model);
  say(
    `cuda: ${cuda.images} images in ${cuda.seconds.toFixed(1)} s = ${cuda.imagesPerSecond.toFixed(1)} images/s ` +
      `(provider ${cuda.provider}; ${(cuda.imagesPerSecond / cpu.imagesPerSecond).toFixed(1)}× CPU)`,
  );
  const img = agreement(cpu.image, cuda.image, cpu.dim);
  const txt = agreement(cpu.text, cuda.text, cpu.dim);
  say(
    `agreement cpu vs cuda: image min cosine ${img.minCosine.toFixed(6)}, max |Δ| ${img.maxAbsDiff.toExponential(2)}`,
  );
  say(
    `agreement cpu vs cuda: text  min cosine ${txt.minCosine.toFixed(6)}, max |Δ| ${txt.maxAbsDiff.toExponential(2)}`,
  );
  say(`gpu memory after the CUDA run: ${cuda.gpuMemoryAfter}`);
}
if (values.out) await writeFile(path.join(values.out, 'gpu-check.txt'), lines.join('\n') + '\n');
await rm(scratch, { recursive: true, force: true });
