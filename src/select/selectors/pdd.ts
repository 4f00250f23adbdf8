/**
 * PDD-style progressive selection — OUR ADAPTATION (pdd.md §3.3 [R]) of Progressive Dataset Distillation
 * (Chen, Yang, Wang & Mirzasoleiman, ICLR 2024). The paper distils synthetic pixels in stages; it never
 * selects real examples, so nothing this selector reports is the paper's result (pitfall 1).
 *
 * P disjoint stages S_1..S_P of real examples, U_i = S_1 ∪ … ∪ S_i. For stage i:
 *  1. θ_{i−1}: the linear softmax proxy, trained from θ_{i−2} on U_{i−1} (step 1; θ_0 = seeded N(0, 0.01²));
 *  2. expert segment: from θ_{i−1}, E_e epochs on the whole pool, T_seg checkpoints evenly spaced (step 2)
 *     — the "what full-data training does next" of the code's MTT conditioning (pitfall 2);
 *  3. candidates C_i = V ∖ U_{i−1}, optionally minus easy examples (step 3, the paper's Table 6 idea);
 *  4. targets Ḡ_{k,τ}: per-class mean gradient at each checkpoint (step 4), one kernel pass per class;
 *  5. per class, stochastic greedy gradient matching conditioned on U_{i−1} (step 5, gradientMatching.ts).
 * Earlier stages stay frozen (pitfall 5). Output: all picks in stage order, the stage of each pick, and a
 * trace with the proxy's full-data accuracy per stage (pitfall 7: it should still be rising).
 */
import { z } from 'zod';
import { perPartitionForm } from '../partitioned.js';
import { seededRandom } from '../../compute/random.js';
import { type SelectContext, type Selection, type Selector } from '../contract.js';
import { gather, type Matrix } from '../kernels/similarity.js';
import { describeClasses, latentClassParams } from '../latentClasses.js';
import { proxyFeatureParam, proxyProblem } from '../proxy/problem.js';
import { greedyGradientMatch } from '../pdd/gradientMatching.js';
import {
  cloneHead,
  freshSgdState,
  headPass,
  initHead,
  trainHead,
  type SoftmaxHead,
} from '../proxy/softmaxHead.js';
import { allocateBudget, balancedBudget, interleaveByRank } from '../stratify.js';

/** What PDD-Select and PDD-Synth share: classes, stages, features, class budgets. */
export const pddCommonParams = {
  ...latentClassParams,
  clusters: z
    .union([z.literal('auto'), z.number().int().min(1)])
    .default(100)
    .describe(
      'k-means pseudo-classes when the pool has no labels (keep ≥ 50: docs/methods/pdd.md#pseudo-classes)',
    ),
  stages: z.number().int().min(1).default(5).describe('P, the number of stages (paper/code: 5)'),
  features: proxyFeatureParam,
  classBudget: z
    .enum(['proportional', 'balanced'])
    .default('proportional')
    .describe('per-class stage budgets: proportional to class size (largest remainder) or equal'),
};

export const pddParams = z.object({
  ...pddCommonParams,
  unionEpochs: z.number().int().min(0).default(20).describe('E_u: proxy epochs on U_{i−1} per stage'),
  unionMinSteps: z.number().int().min(0).default(200).describe('at least this many SGD steps on U_{i−1}'),
  expertEpochs: z.number().min(0).default(2).describe('E_e: epochs of the expert segment on the pool'),
  checkpoints: z.number().int().min(1).default(3).describe('T_seg checkpoints along the segment'),
  lr: z.number().positive().default(2),
  momentum: z.number().min(0).max(0.999).default(0.9),
  weightDecay: z.number().min(0).default(5e-4),
  batchSize: z.number().int().min(1).default(512),
  epsilon: z.number().gt(0).lt(1).default(0.01).describe('stochastic-greedy ε (sample ⌈(n/m)ln(1/ε)⌉)'),
  pruneEasy: z
    .boolean()
    .default(false)
    .describe('drop examples with p[y] ≥ easyThreshold never forgotten once learned (paper Table 6)'),
  easyThreshold: z.number().gt(0).lt(1).default(0.9),
  conditioning: z
    .enum(['previous-stages', 'none'])
    .default('previous-stages')
    .describe('none = ablation: each stage matched as if nothing had been selected before'),
});

export type PddParams = z.infer<typeof pddParams>;

export interface PddStageReport {
  /** Proxy θ_{i−1} the stage was chosen for. */
  head: SoftmaxHead;
  /** Full-pool accuracy of θ_{i−1} against the (pseudo-)labels. */
  accuracy: number;
  /** Mean proxy loss under θ_{i−1} of U_{i−1} (NaN for stage 1) and of the new stage S_i. */
  meanLossPrevious: number;
  meanLossNew: number;
  /** Σ over classes of the matching objective before and after the stage's picks. */
  objectiveBefore: number;
  objectiveAfter: number;
  pruned: number;
}

export interface PddResult {
  indices: Int32Array;
  stages: Int32Array;
  classes: Int32Array;
  reports: PddStageReport[];
}

/** The stage loop on given features and labels (the selector and the tests call this). */
export async function pddSelect(
  features: Matrix,
  labels: Int32Array,
  classCount: number,
  budget: number,
  p: PddParams,
  ctx: SelectContext,
): Promise<PddResult> {
  const n = features.rows;
  const random = seededRandom(ctx.seed);
  const members: number[][] = Array.from({ length: classCount }, () => []);
  labels.forEach((k, i) => members[k]!.push(i));
  const sgd = { lr: p.lr, momentum: p.momentum, weightDecay: p.weightDecay, batchSize: p.batchSize };

  const head = initHead(classCount, features.cols, ctx.seed);
  const unionState = freshSgdState(head);
  const stageOf = new Int32Array(n).fill(-1);
  const history = new LearningHistory(n);
  const order: number[] = [];
  const stageLabels: number[] = [];
  const reports: PddStageReport[] = [];
  const stages = Math.min(p.stages, budget);

  for (let stage = 0; stage < stages; stage++) {
    const previous = order.slice();
    // Step 1: θ_{i−1} = θ_{i−2} trained on U_{i−1} (momentum carried from stage to stage, pitfall 4).
    if (previous.length > 0) {
      await trainHead(
        head,
        { x: gather(features, previous), labels: Int32Array.from(previous, (i) => labels[i]!) },
        {
          ...sgd,
          epochs: p.unionEpochs,
          minSteps: p.unionMinSteps,
          seed: ctx.seed + stage,
          signal: ctx.signal,
        },
        unionState,
      );
    }
    // Step 2: the expert segment from θ_{i−1} on the whole pool, T_seg checkpoints evenly spaced.
    const checkpoints = await expertSegment(head, features, labels, p, sgd, ctx.seed + 1000 + stage, ctx);

    // Step 3 (and the full-pool accuracy of θ_{i−1}): one pass per class under θ_{i−1}.
    const losses = new Float32Array(n);
    const pruned = new Uint8Array(n);
    let correct = 0;
    for (let k = 0; k < classCount; k++) {
      const ids = members[k]!;
      if (ids.length === 0) continue;
      const pass = await headPass(head, gather(features, ids), new Int32Array(ids.length).fill(k));
      ids.forEach((i, t) => {
        losses[i] = pass.losses[t]!;
        const r = pass.residuals.subarray(t * classCount, (t + 1) * classCount);
        const right = isArgmax(r, k);
        if (right) correct++;
        history.observe(i, right);
        if (p.pruneEasy && right && r[k]! + 1 >= p.easyThreshold && !history.forgotten[i] && stageOf[i]! < 0)
          pruned[i] = 1;
      });
    }
    if (p.pruneEasy)
      for (const ckpt of checkpoints.slice(1)) await observeCheckpoint(ckpt, features, members, history);

    const candidatesOf = members.map((ids) => ids.filter((i) => stageOf[i]! < 0 && !pruned[i]));
    const stageBudget = Math.floor(budget / stages) + (stage < budget % stages ? 1 : 0);
    const caps = candidatesOf.map((c) => c.length);
    const perClass =
      p.classBudget === 'balanced' ? balancedBudget(caps, stageBudget) : allocateBudget(caps, stageBudget);

    // Steps 4–5 per class.
    const picksPerClass: number[][] = [];
    let before = 0;
    let after = 0;
    for (let k = 0; k < classCount; k++) {
      const ids = members[k]!;
      const m = perClass[k]!;
      if (m === 0 || ids.length === 0) {
        picksPerClass.push([]);
        continue;
      }
      const x = gather(features, ids);
      const classLabels = new Int32Array(ids.length).fill(k);
      let targetRows = ids.map((i) => !pruned[i]);
      if (!targetRows.some(Boolean)) targetRows = ids.map(() => true);
      const targetCount = targetRows.filter(Boolean).length;
      const weights = Float32Array.from(targetRows, (t) => (t ? 1 / targetCount : 0));
      const residuals: Float32Array[] = [];
      const targets: Float64Array[] = [];
      for (const ckpt of checkpoints) {
        const pass = await headPass(ckpt, x, classLabels, weights);
        residuals.push(pass.residuals);
        targets.push(joinBias(pass.gradWeight, pass.gradBias, classCount, x.cols));
      }
      const position = new Map(ids.map((i, t) => [i, t]));
      const frozen = p.conditioning === 'none' ? [] : ids.flatMap((i, t) => (stageOf[i]! >= 0 ? [t] : []));
      const result = await greedyGradientMatch(
        {
          x,
          classes: classCount,
          residuals,
          targets,
          frozen,
          candidates: candidatesOf[k]!.map((i) => position.get(i)!),
        },
        m,
        p.epsilon,
        random,
        ctx.signal,
      );
      before += result.objective[0]!;
      after += result.objective.at(-1)!;
      picksPerClass.push(result.picked.map((t) => ids[t]!));
      ctx.progress?.(order.length + picksPerClass.flat().length, budget);
    }
    const picks = Array.from(interleaveByRank(picksPerClass));
    for (const i of picks) {
      stageOf[i] = stage;
      order.push(i);
      stageLabels.push(stage);
    }
    const meanOf = (ids: number[]) =>
      ids.length ? ids.reduce((s, i) => s + losses[i]!, 0) / ids.length : NaN;
    reports.push({
      head: cloneHead(head),
      accuracy: correct / n,
      meanLossPrevious: meanOf(previous),
      meanLossNew: meanOf(picks),
      objectiveBefore: before,
      objectiveAfter: after,
      pruned: pruned.reduce((s, v) => s + v, 0),
    });
  }
  return {
    indices: Int32Array.from(order),
    stages: Int32Array.from(stageLabels),
    classes: labels,
    reports,
  };
}

/** Copies of θ at T_seg evenly spaced steps of E_e epochs on the pool, starting at θ itself. */
async function expertSegment(
  start: SoftmaxHead,
  features: Matrix,
  labels: Int32Array,
  p: PddParams,
  sgd: { lr: number; momentum: number; weightDecay: number; batchSize: number },
  seed: number,
  ctx: SelectContext,
): Promise<SoftmaxHead[]> {
  const checkpoints = [cloneHead(start)];
  if (p.checkpoints === 1) return checkpoints;
  const stepsPerEpoch = Math.ceil(features.rows / Math.min(p.batchSize, features.rows));
  const total = Math.max(1, Math.round(p.expertEpochs * stepsPerEpoch));
  const at = new Set(
    Array.from({ length: p.checkpoints - 1 }, (_, t) =>
      Math.max(1, Math.round(((t + 1) * total) / (p.checkpoints - 1))),
    ),
  );
  const expert = cloneHead(start);
  await trainHead(
    expert,
    { x: features, labels },
    {
      ...sgd,
      epochs: Math.ceil(total / stepsPerEpoch),
      maxSteps: total,
      seed,
      signal: ctx.signal,
      onStep: (step, h) => {
        if (at.has(step)) checkpoints.push(cloneHead(h));
      },
    },
  );
  return checkpoints;
}

/**
 * "Never misclassified at any checkpoint so far" (step 3), read as "never forgotten once learned": the
 * random θ_0 misclassifies nearly everything, so the literal reading would prune nothing after stage 1.
 */
class LearningHistory {
  readonly learned: Uint8Array;
  readonly forgotten: Uint8Array;
  constructor(n: number) {
    this.learned = new Uint8Array(n);
    this.forgotten = new Uint8Array(n);
  }
  observe(i: number, correct: boolean): void {
    if (correct) this.learned[i] = 1;
    else if (this.learned[i]) this.forgotten[i] = 1;
  }
}

async function observeCheckpoint(
  head: SoftmaxHead,
  features: Matrix,
  members: number[][],
  history: LearningHistory,
): Promise<void> {
  for (let k = 0; k < members.length; k++) {
    const ids = members[k]!;
    if (ids.length === 0) continue;
    const pass = await headPass(head, gather(features, ids), new Int32Array(ids.length).fill(k));
    ids.forEach((i, t) =>
      history.observe(i, isArgmax(pass.residuals.subarray(t * head.classes, (t + 1) * head.classes), k)),
    );
  }
}

/** Is class k the arg-max of p = r + e_k? */
function isArgmax(r: Float32Array, k: number): boolean {
  const pk = r[k]! + 1;
  for (let c = 0; c < r.length; c++) if (c !== k && r[c]! > pk) return false;
  return true;
}

/** [G | g_c] as one K × (d + 1) float64 matrix. */
function joinBias(gw: Float32Array, gc: Float32Array, K: number, d: number): Float64Array {
  const out = new Float64Array(K * (d + 1));
  for (let k = 0; k < K; k++) {
    for (let j = 0; j < d; j++) out[k * (d + 1) + j] = gw[k * d + j]!;
    out[k * (d + 1) + d] = gc[k]!;
  }
  return out;
}

export const pdd: Selector<PddParams> = {
  name: 'pdd',
  description:
    'PDD-style progressive selection (our adaptation of Progressive Dataset Distillation): stages that each match the next phase of full-data proxy training, conditioned on earlier stages',
  params: pddParams,
  needs: ['image'],
  async select(input, budget, p, ctx): Promise<Selection> {
    const { features, classes } = await proxyProblem(input, p, ctx.seed, 'pdd');
    const result = await pddSelect(features, classes.assignment, classes.k, budget, p, ctx);
    return {
      indices: result.indices,
      stages: result.stages,
      trace: [
        { stage: 'classes', message: describeClasses(classes) },
        ...result.reports.map((r, i) => ({
          stage: `stage ${i + 1}`,
          message:
            `proxy θ_${i} full-pool accuracy ${(100 * r.accuracy).toFixed(1)}%; ` +
            `matching objective ${r.objectiveBefore.toPrecision(3)} → ${r.objectiveAfter.toPrecision(3)}; ` +
            `mean proxy loss new ${r.meanLossNew.toFixed(3)} vs earlier stages ${Number.isNaN(r.meanLossPrevious) ? '–' : r.meanLossPrevious.toFixed(3)}` +
            (p.pruneEasy ? `; ${r.pruned} easy examples pruned` : ''),
        })),
        {
          stage: 'recipe',
          message: `train in ${result.reports.length} stages on U_1 ⊂ … ⊂ U_P (the stage column), equal epochs per stage, carrying optimizer state`,
        },
      ],
    };
  },
  partitioned: perPartitionForm<PddParams>(
    (input, budget, p, ctx) => pdd.select(input, budget, p, ctx),
    'each partition runs PDD for its share of the budget; the merge runs PDD on the union to trim the rounding to B',
  ),
};
