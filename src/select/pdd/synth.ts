/**
 * PDD-Synth — OUR ADAPTATION (pdd.md §3.4 [R]) of Progressive Dataset Distillation to embeddings: the
 * paper's stage loop over MTT trajectory matching, with synthetic *embeddings* instead of pixels.
 *
 * Stage i:
 *  - experts: from each expert's start model (stage 1: seeded random inits; later: the previous start
 *    trained on U_{i−1} with the learned α, as the code's buffer regeneration, §3.2 step 4), plain SGD on
 *    real data for max_start + E + 1 epochs, parameters saved at the start and after every epoch;
 *  - Z_i: m vectors with fixed labels, initialised from distinct real embeddings of their class;
 *  - iterations: expert e and start epoch s uniform, N_syn steps on minibatches of U_{i−1} ∪ Z_i from
 *    θ*_s (unroll.ts), Adam on Z_i (lr 1e-2) and on log α (lr 1e-3), rows renormalised;
 *  - Z_i is then frozen (pitfall 5) and appended to U.
 * Synthetic vectors can train heads on frozen embeddings, not a CLIP encoder; `snapToReal` turns them into
 * a selection (nearest unused real example of the same label, stage by stage; pitfall 9).
 */
import { seededRandom } from '../../compute/random.js';
import type { SelectContext } from '../contract.js';
import { gather, innerProducts, type Matrix } from '../kernels/similarity.js';
import { cloneHead, freshSgdState, initHead, trainHead, type SoftmaxHead } from '../proxy/softmaxHead.js';
import { allocateBudget, balancedBudget } from '../stratify.js';
import { unrolledTrajectoryLoss } from './unroll.js';
import { Adam } from '../optim.js';

export interface SynthOptions {
  stages: number;
  classBudget: 'proportional' | 'balanced';
  experts: number;
  /** Real examples the experts train on (a seeded subsample above this; §3.4). */
  expertSample: number;
  /** E: expert epochs one unrolled segment must reproduce. */
  expertEpochs: number;
  /** Start epochs s are drawn from [0, maxStart). */
  maxStart: number;
  /** N_syn. */
  syntheticSteps: number;
  iterations: number;
  /** Minibatch of U_{i−1} ∪ Z_i per unrolled step (the whole set when smaller). */
  syntheticBatch: number;
  teacherLr: number;
  teacherBatch: number;
  /** E_u: epochs on U_{i−1} when experts are regenerated for a new stage. */
  unionEpochs: number;
  lrVectors: number;
  lrLogAlpha: number;
  renormalise: boolean;
}

/**
 * pdd.md §3.4's defaults except where 2 cores cannot afford them at K = 100, d = 512: one unrolled step
 * (forward + adjoint, 7 small GEMMs) costs 4–6 ms here, so the spec's 2000 iterations × 20 steps would
 * take ~4 minutes per stage, and its 20 experts on 100k examples ~1 minute more (500 iterations still
 * took 274 s for 5 stages at N = 100k). Defaults: 10 experts on a 20k sample, 200 iterations per stage,
 * minibatches of 256; the trace shows whether the trajectory loss has levelled off; options restore the
 * spec's values.
 */
export const SYNTH_DEFAULTS: SynthOptions = {
  stages: 5,
  classBudget: 'proportional',
  experts: 10,
  expertSample: 20_000,
  expertEpochs: 2,
  maxStart: 10,
  syntheticSteps: 20,
  iterations: 200,
  syntheticBatch: 256,
  teacherLr: 2,
  teacherBatch: 512,
  unionEpochs: 20,
  lrVectors: 1e-2,
  lrLogAlpha: 1e-3,
  renormalise: true,
};

export interface SynthStage {
  /** Synthetic vectors of this stage (m × d) and their labels. */
  vectors: Float32Array;
  labels: Int32Array;
  /** Mean normalised trajectory loss over the first and the last tenth of the iterations. */
  lossFirst: number;
  lossLast: number;
  alpha: number;
}

export interface SynthResult {
  dim: number;
  stages: SynthStage[];
}

export async function distilEmbeddings(
  features: Matrix,
  labels: Int32Array,
  classCount: number,
  budget: number,
  o: SynthOptions,
  ctx: SelectContext,
): Promise<SynthResult> {
  const d = features.cols;
  const random = seededRandom(ctx.seed);
  const sample = subsample(features.rows, o.expertSample, random);
  const real = { x: gather(features, sample), labels: Int32Array.from(sample, (i) => labels[i]!) };
  const members: number[][] = Array.from({ length: classCount }, () => []);
  labels.forEach((k, i) => members[k]!.push(i));

  const starts = Array.from({ length: o.experts }, (_, e) => initHead(classCount, d, ctx.seed * 1009 + e));
  // U_{i−1}: the frozen earlier stages' vectors (one chunk per stage) and labels.
  const union = {
    chunks: [] as Float32Array[],
    labels: [] as number[],
    matrix(): Float32Array {
      const out = new Float32Array(this.labels.length * d);
      let at = 0;
      for (const c of this.chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    },
  };
  let alpha = o.teacherLr;
  const stages: SynthStage[] = [];
  const stageCount = Math.min(o.stages, budget);

  for (let stage = 0; stage < stageCount; stage++) {
    if (stage > 0) {
      const u = {
        x: { rows: union.labels.length, cols: d, data: union.matrix() },
        labels: Int32Array.from(union.labels),
      };
      for (const [e, head] of starts.entries()) {
        await trainHead(
          head,
          u,
          {
            lr: alpha,
            momentum: 0.9,
            weightDecay: 5e-4,
            batchSize: o.teacherBatch,
            epochs: o.unionEpochs,
            seed: ctx.seed + 7919 * stage + e,
            signal: ctx.signal,
          },
          freshSgdState(head),
        );
      }
    }
    const trajectories: SoftmaxHead[][] = [];
    for (const [e, head] of starts.entries()) {
      const path = [cloneHead(head)];
      await trainHead(cloneHead(head), real, {
        lr: o.teacherLr,
        momentum: 0,
        weightDecay: 0,
        batchSize: o.teacherBatch,
        epochs: o.maxStart + o.expertEpochs + 1,
        seed: ctx.seed + 104_729 * (stage + 1) + e,
        signal: ctx.signal,
        onEpoch: (_, h) => void path.push(cloneHead(h)),
      });
      trajectories.push(path);
    }

    // Z_i: labels by class budget, initialised from distinct real embeddings of each class.
    const stageBudget = Math.floor(budget / stageCount) + (stage < budget % stageCount ? 1 : 0);
    const available = members.map((m) => m.length);
    const perClass =
      o.classBudget === 'balanced'
        ? balancedBudget(available, stageBudget)
        : allocateBudget(available, stageBudget);
    const zLabels: number[] = [];
    const z = new Float32Array(stageBudget * d);
    perClass.forEach((count, k) => {
      const pool = members[k]!.slice();
      for (let t = 0; t < count; t++) {
        const j = t + Math.floor(random() * (pool.length - t));
        [pool[t], pool[j]] = [pool[j]!, pool[t]!];
        z.set(features.data.subarray(pool[t]! * d, (pool[t]! + 1) * d), zLabels.length * d);
        zLabels.push(k);
      }
    });
    const frozen = union.labels.length;
    const rows = frozen + zLabels.length;
    const poolData = new Float32Array(rows * d);
    poolData.set(union.matrix());
    poolData.set(z.subarray(0, zLabels.length * d), frozen * d);
    const pool = { rows, cols: d, data: poolData };
    const poolLabels = Int32Array.from(union.labels.concat(zLabels));

    const adamZ = new Adam(zLabels.length * d, o.lrVectors);
    const adamAlpha = new Adam(1, o.lrLogAlpha);
    const losses: number[] = [];
    for (let it = 0; it < o.iterations; it++) {
      ctx.signal?.throwIfAborted();
      const path = trajectories[Math.floor(random() * trajectories.length)]!;
      const s = Math.floor(random() * o.maxStart);
      const batches = Array.from({ length: o.syntheticSteps }, () =>
        minibatch(rows, o.syntheticBatch, random),
      );
      const r = await unrolledTrajectoryLoss({
        start: path[s]!,
        target: path[s + o.expertEpochs]!,
        pool,
        labels: poolLabels,
        firstLearnable: frozen,
        batches,
        alpha,
      });
      losses.push(r.loss);
      adamZ.step(poolData.subarray(frozen * d), r.gradRows);
      const logAlpha = Float32Array.of(Math.log(alpha));
      adamAlpha.step(logAlpha, Float32Array.of(alpha * r.gradAlpha)); // ∂L/∂log α = α ∂L/∂α
      alpha = Math.exp(logAlpha[0]!);
      if (o.renormalise) normaliseRows(poolData.subarray(frozen * d), d);
      ctx.progress?.(stage * o.iterations + it + 1, stageCount * o.iterations);
    }
    const vectors = poolData.slice(frozen * d);
    union.chunks.push(vectors);
    union.labels = union.labels.concat(zLabels);
    const tenth = Math.max(1, Math.floor(losses.length / 10));
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
    stages.push({
      vectors,
      labels: Int32Array.from(zLabels),
      lossFirst: mean(losses.slice(0, tenth)),
      lossLast: mean(losses.slice(-tenth)),
      alpha,
    });
  }
  return { dim: d, stages };
}

/** Nearest unused real example of the same label for every synthetic vector, stage by stage (exact). */
export async function snapToReal(
  features: Matrix,
  labels: Int32Array,
  result: SynthResult,
): Promise<{ indices: Int32Array; stages: Int32Array }> {
  const d = result.dim;
  const used = new Uint8Array(features.rows);
  const members = new Map<number, number[]>();
  labels.forEach((k, i) => (members.get(k) ?? members.set(k, []).get(k)!).push(i));
  const indices: number[] = [];
  const stageOf: number[] = [];
  for (const [s, stage] of result.stages.entries()) {
    const rowsOf = new Map<number, number[]>();
    stage.labels.forEach((k, t) => (rowsOf.get(k) ?? rowsOf.set(k, []).get(k)!).push(t));
    for (const [k, rows] of rowsOf) {
      const candidates = (members.get(k) ?? []).filter((i) => !used[i]);
      if (candidates.length === 0) continue;
      // One product block per class and stage: its synthetic rows × its unused real examples.
      const sims = await innerProducts(
        gather({ rows: stage.labels.length, cols: d, data: stage.vectors }, rows),
        gather(features, candidates),
      );
      const taken = new Uint8Array(candidates.length);
      rows.forEach((_, r) => {
        let best = -1;
        for (let c = 0; c < candidates.length; c++) {
          if (
            !taken[c] &&
            (best < 0 || sims[r * candidates.length + c]! > sims[r * candidates.length + best]!)
          )
            best = c;
        }
        if (best < 0) return;
        taken[best] = 1;
        used[candidates[best]!] = 1;
        indices.push(candidates[best]!);
        stageOf.push(s);
      });
    }
  }
  return { indices: Int32Array.from(indices), stages: Int32Array.from(stageOf) };
}

function normaliseRows(data: Float32Array, d: number): void {
  for (let r = 0; r < data.length / d; r++) {
    let norm = 0;
    for (let j = 0; j < d; j++) norm += data[r * d + j]! ** 2;
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let j = 0; j < d; j++) data[r * d + j]! *= inv;
  }
}

function minibatch(rows: number, size: number, random: () => number): Int32Array {
  if (size >= rows) return Int32Array.from({ length: rows }, (_, i) => i);
  const order = Int32Array.from({ length: rows }, (_, i) => i);
  for (let t = 0; t < size; t++) {
    const j = t + Math.floor(random() * (rows - t));
    [order[t], order[j]] = [order[j]!, order[t]!];
  }
  return order.slice(0, size);
}

function subsample(n: number, size: number, random: () => number): Int32Array {
  if (size >= n) return Int32Array.from({ length: n }, (_, i) => i);
  return minibatch(n, size, random).sort();
}
