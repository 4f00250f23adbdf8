/**
 * ClipCov (Joshi, Jain, Payani & Mirzasoleiman, AISTATS 2024), as specified in clipcov.md: inside every
 * latent class, keep pairs whose image is close to the class's captions and whose caption is close to
 * the class's images (cross-modal centrality c), whose own image and caption agree (e), whose caption
 * names the class (ℓ) and which are far from the other classes (o); a redundancy correction and class
 * saturation penalties are applied every Δ picks of a class (the notebook's batched lazy greedy, §3.3).
 *
 * Forms (§3.5): "pairwise" computes every thresholded sum Σ max(0, ⟨x_a, t_b⟩) with the clamped-product
 * kernel, never materialising a class's n_k × n_k block; "running-sum" uses class means instead, which is
 * exact when the threshold is off and O(N·d). "auto" = pairwise for classes up to `pairwiseLimit` items.
 */
import { z } from 'zod';
import { twoRoundForm } from '../partitioned.js';
import { REASON_MAX, type Selector } from '../contract.js';
import type { LatentClasses } from '../latentClasses.js';
import { clampedProductSums } from '../kernels/clampedSums.js';
import { gather, innerProducts, rowsOf, type Matrix } from '../kernels/similarity.js';
import { describeClasses, latentClasses, latentClassParams } from '../latentClasses.js';

const params = z.object({
  ...latentClassParams,
  threshold: z
    .union([z.literal(0), z.literal('none')])
    .default(0)
    .describe('similarity threshold τ: negative cross-modal cosines count as 0 (notebook), or none'),
  form: z
    .enum(['auto', 'pairwise', 'running-sum'])
    .default('auto')
    .describe('pairwise sums on the kernel, or class running sums (exact only without threshold)'),
  pairwiseLimit: z
    .number()
    .int()
    .min(1)
    .default(50_000)
    .describe('classes larger than this use running sums in form=auto'),
  delta: z
    .union([z.literal('auto'), z.number().int().min(1)])
    .default('auto')
    .describe('update period Δ in picks per class; auto = clamp(round(B/(1.5K)), 1, 200)'),
  classPenalty: z
    .enum(['notebook', 'linear', 'none'])
    .default('notebook')
    .describe('class saturation: notebook (cumulative, ~quadratic), linear, or none'),
  labelSim: z
    .enum(['cosine', 'softmax'])
    .default('cosine')
    .describe('ℓ: caption–class-prompt cosine, or its softmax over classes (T = 0.01)'),
  weightCentrality: z.number().default(1).describe('weight of the cross-modal centrality c'),
  weightEasiness: z.number().default(2).describe('weight of the CLIP score e'),
  weightLabel: z.number().default(0.5).describe('weight of the label similarity ℓ'),
  weightSeparation: z.number().default(1).describe('weight of the similarity to other classes o'),
});

type Params = z.infer<typeof params>;

export const clipcov: Selector<Params> = {
  name: 'clipcov',
  description:
    'ClipCov: per latent class, central, well-aligned, class-naming pairs, with redundancy penalties',
  params,
  needs: ['image', 'text'],
  async select(input, budget, p, ctx) {
    const { n, dim: d } = input;
    const x: Matrix = { rows: n, cols: d, data: input.image! };
    const t: Matrix = { rows: n, cols: d, data: input.text! };
    const classes = await latentClasses(input, p.classes, p.clusters, x, ctx.seed);
    const floor = p.threshold === 0 ? 0 : -Infinity;
    const K = classes.k;
    const trace = [{ stage: 'classes', message: describeClasses(classes) }];
    const pairwise = (size: number) =>
      p.form === 'pairwise' || (p.form === 'auto' && p.threshold === 0 && size <= p.pairwiseLimit);
    if (p.form === 'running-sum' && p.threshold === 0)
      trace.push({ stage: 'form', message: 'running sums with τ = 0 ignore the threshold (approximation)' });

    // Class sums of images and captions: class means (running-sum form), other-class means (o) and the
    // fallback class prompt (normalised mean caption, §2).
    const sumX = new Float64Array(K * d);
    const sumT = new Float64Array(K * d);
    for (let i = 0; i < n; i++) {
      const k = classes.assignment[i]!;
      for (let j = 0; j < d; j++) {
        sumX[k * d + j]! += x.data[i * d + j]!;
        sumT[k * d + j]! += t.data[i * d + j]!;
      }
    }

    // c_i = (1/n_k) Σ_{j∈V_k} (s_ij + s_ji), s_ab = max(0, ⟨x_a, t_b⟩) (§3.1).
    const centrality = new Float64Array(n);
    let negatives = 0;
    let pairs = 0;
    for (const [k, members] of classes.members.entries()) {
      ctx.signal?.throwIfAborted();
      const nk = members.length;
      if (nk === 0) continue;
      if (pairwise(nk)) {
        const sums = await clampedProductSums(gather(x, members), gather(t, members), floor, ctx.signal);
        members.forEach((i, a) => (centrality[i] = (sums.rowSums[a]! + sums.colSums[a]!) / nk));
        negatives += sums.negatives;
        pairs += nk * nk;
      } else {
        members.forEach((i) => (centrality[i] = (dotRow(x, i, sumT, k) + dotRow(t, i, sumX, k)) / nk));
      }
      ctx.progress?.(k + 1, K + 1);
    }
    if (pairs > 0)
      trace.push({
        stage: 'threshold',
        message: `${((100 * negatives) / pairs).toFixed(2)}% of same-class image–caption cosines are negative`,
      });

    // e_i = s_ii (the notebook reads the thresholded diagonal).
    const easiness = new Float64Array(n);
    for (let i = 0; i < n; i++) easiness[i] = Math.max(floor, dotRows(x, i, t, i));

    // ℓ_i = ⟨t_i, w_k(i)⟩ with w = class prompts (zero-shot) or normalised mean captions.
    const prompts: Matrix =
      input.classPrompts && classes.source === 'zero-shot'
        ? { rows: K, cols: d, data: input.classPrompts.embeddings }
        : { rows: K, cols: d, data: normalisedRows(sumT, K, d) };
    const label = await labelSimilarity(t, prompts, classes.assignment, p.labelSim);

    // o_i = ⟨x_i, m^T_{−k}⟩ + ⟨t_i, m^I_{−k}⟩, data-weighted means of the other classes (§3.1).
    const totalX = new Float64Array(d);
    const totalT = new Float64Array(d);
    for (let k = 0; k < K; k++)
      for (let j = 0; j < d; j++) {
        totalX[j]! += sumX[k * d + j]!;
        totalT[j]! += sumT[k * d + j]!;
      }
    const separation = new Float64Array(n);
    const otherX = new Float64Array(d);
    const otherT = new Float64Array(d);
    for (const [k, members] of classes.members.entries()) {
      const rest = n - members.length;
      if (rest === 0 || members.length === 0) continue;
      for (let j = 0; j < d; j++) {
        otherX[j] = (totalX[j]! - sumX[k * d + j]!) / rest;
        otherT[j] = (totalT[j]! - sumT[k * d + j]!) / rest;
      }
      for (const i of members) separation[i] = dotRow(x, i, otherT, 0) + dotRow(t, i, otherX, 0);
    }

    // σ_i = c_i + 2e_i + ℓ_i/2 − o_i (§3.3 step 1, weights of §3.4).
    const score = new Float64Array(n);
    for (let i = 0; i < n; i++)
      score[i] =
        p.weightCentrality * centrality[i]! +
        p.weightEasiness * easiness[i]! +
        p.weightLabel * label[i]! -
        p.weightSeparation * separation[i]!;
    const initial = Float32Array.from(score);

    const delta = p.delta === 'auto' ? Math.min(200, Math.max(1, Math.round(budget / (1.5 * K)))) : p.delta;
    trace.push({ stage: 'greedy', message: `update period Δ = ${delta} picks per class` });

    // Steps 2–5: batched lazy greedy. Each class keeps its remaining members sorted by σ; the class
    // penalties 4(b)–(c) are constant within a class, so they live in a per-class offset.
    const remaining = classes.members.map((m) => sortByScore(m, score));
    const head = new Int32Array(K);
    const offset = new Float64Array(K);
    const picked = classes.members.map(() => [] as number[]);
    const fresh = classes.members.map(() => [] as number[]);
    const indices = new Int32Array(budget);
    const gains = new Float64Array(budget);
    for (let s = 0; s < budget; s++) {
      ctx.signal?.throwIfAborted();
      let best = -1;
      let bestScore = -Infinity;
      let bestItem = -1;
      for (let k = 0; k < K; k++) {
        const item = remaining[k]![head[k]!];
        if (item === undefined) continue;
        const v = score[item]! + offset[k]!;
        if (v > bestScore || (v === bestScore && item < bestItem)) [best, bestScore, bestItem] = [k, v, item];
      }
      indices[s] = bestItem;
      gains[s] = bestScore;
      head[best]!++;
      picked[best]!.push(bestItem);
      fresh[best]!.push(bestItem);
      if (picked[best]!.length % delta === 0) {
        await applyUpdate(best);
        fresh[best] = [];
      }
      if (s % 1024 === 0) ctx.progress?.(K + s / budget, K + 1);
    }

    // Step 4: corrections for class k after Δ new picks.
    async function applyUpdate(k: number) {
      const nk = classes.members[k]!.length;
      const rest = remaining[k]!.slice(head[k]!);
      const news = fresh[k]!;
      if (rest.length > 0) {
        // (a) redundancy: σ_a −= (1/n_k) Σ_{j∈new_k} (s_aj + s_ja).
        const redundancy = new Float64Array(rest.length);
        if (pairwise(nk)) {
          const [xr, tr, xn, tn] = [gather(x, rest), gather(t, rest), gather(x, news), gather(t, news)];
          const imageSide = await clampedProductSums(xr, tn, floor, ctx.signal);
          const captionSide = await clampedProductSums(tr, xn, floor, ctx.signal);
          rest.forEach((_, a) => (redundancy[a] = imageSide.rowSums[a]! + captionSide.rowSums[a]!));
        } else {
          const newX = new Float64Array(d);
          const newT = new Float64Array(d);
          for (const j of news)
            for (let q = 0; q < d; q++) {
              newX[q]! += x.data[j * d + q]!;
              newT[q]! += t.data[j * d + q]!;
            }
          rest.forEach((i, a) => (redundancy[a] = dotRow(x, i, newT, 0) + dotRow(t, i, newX, 0)));
        }
        rest.forEach((i, a) => (score[i]! -= (p.weightCentrality * redundancy[a]!) / nk));
        remaining[k] = sortByScore(rest, score);
        head[k] = 0;
      }
      if (p.classPenalty !== 'none') {
        // (b) saturation of the cross term: notebook = cumulative S_k at every update; linear = new picks only.
        const saturating = p.classPenalty === 'notebook' ? picked[k]! : news;
        offset[k]! -= (p.weightCentrality * saturating.reduce((a, j) => a + centrality[j]!, 0)) / nk;
        // (c) label-similarity saturation: σ −= (1/(2 n_k)) Σ_{j∈new_k} ℓ_j.
        offset[k]! -= (p.weightLabel * news.reduce((a, j) => a + label[j]!, 0)) / nk;
      }
    }

    const className = (k: number) => {
      const name = classes.source === 'zero-shot' ? input.classPrompts?.names[k] : undefined;
      if (name !== undefined) return `class '${name.length > 16 ? `${name.slice(0, 15)}…` : name}'`;
      return classes.source === 'labels' ? `class ${k}` : `cluster ${k}`;
    };
    const terms = { centrality, easiness, label, separation };
    const reasons = clipcovReasons(indices, gains, initial, classes, className, terms);
    return { indices, scores: initial, gains, reasons, trace };
  },
  partitioned: twoRoundForm<z.infer<typeof params>>(
    (input, budget, p, ctx) => clipcov.select(input, budget, p, ctx),
    "ClipCov again on the union of the partitions' picks (latent classes, class sums and penalties over the candidates, each once); each pick weighted by the items nearest to it",
  ),
};

function dotRows(a: Matrix, i: number, b: Matrix, j: number): number {
  let s = 0;
  for (let q = 0, ra = i * a.cols, rb = j * b.cols; q < a.cols; q++) s += a.data[ra + q]! * b.data[rb + q]!;
  return s;
}

/** ⟨a_i, v[k·d .. k·d+d)⟩ for a float64 vector block. */
function dotRow(a: Matrix, i: number, v: Float64Array, k: number): number {
  let s = 0;
  for (let q = 0, ra = i * a.cols, rv = k * a.cols; q < a.cols; q++) s += a.data[ra + q]! * v[rv + q]!;
  return s;
}

function normalisedRows(sums: Float64Array, k: number, d: number): Float32Array {
  const out = new Float32Array(k * d);
  for (let r = 0; r < k; r++) {
    let norm = 0;
    for (let q = 0; q < d; q++) norm += sums[r * d + q]! ** 2;
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let q = 0; q < d; q++) out[r * d + q] = sums[r * d + q]! * inv;
  }
  return out;
}

/** Descending σ, ties by pool position. */
function sortByScore(items: readonly number[], score: Float64Array): number[] {
  return [...items].sort((a, b) => score[b]! - score[a]! || a - b);
}

async function labelSimilarity(
  t: Matrix,
  prompts: Matrix,
  assignment: Int32Array,
  mode: 'cosine' | 'softmax',
): Promise<Float64Array> {
  const out = new Float64Array(t.rows);
  const K = prompts.rows;
  const tile = Math.max(1, Math.floor((4 * 1024 * 1024) / K));
  for (let r0 = 0; r0 < t.rows; r0 += tile) {
    const block = rowsOf(t, r0, Math.min(t.rows, r0 + tile));
    const logits = await innerProducts(block, prompts);
    for (let r = 0; r < block.rows; r++) {
      const row = logits.subarray(r * K, (r + 1) * K);
      const own = row[assignment[r0 + r]!]!;
      if (mode === 'cosine') out[r0 + r] = own;
      else {
        const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
        let z = 0;
        for (const v of row) z += Math.exp((v - max) / 0.01);
        out[r0 + r] = Math.exp((own - max) / 0.01) / z;
      }
    }
  }
  return out;
}

/**
 * A pick: its class, its place among the class's picks, its gain (σ with the redundancy and saturation
 * corrections at that point) and the unweighted score terms; an item left out: its class and initial σ.
 */
function clipcovReasons(
  indices: Int32Array,
  gains: Float64Array,
  initial: Float32Array,
  classes: LatentClasses,
  className: (k: number) => string,
  terms: { centrality: Float64Array; easiness: Float64Array; label: Float64Array; separation: Float64Array },
): Map<number, string> {
  const f = (v: number) => v.toFixed(3);
  const reasons = new Map<number, string>();
  // Long class names and large terms could pass the contract's bound: cut rather than fail the run.
  const set = (i: number, text: string) =>
    reasons.set(i, text.length > REASON_MAX ? `${text.slice(0, REASON_MAX - 1)}…` : text);
  const pickedOfClass = new Int32Array(classes.k);
  indices.forEach((i, s) => {
    const k = classes.assignment[i]!;
    set(
      i,
      `${className(k)} pick ${++pickedOfClass[k]!}: gain ${f(gains[s]!)}; centrality ${f(terms.centrality[i]!)}, ` +
        `alignment ${f(terms.easiness[i]!)}, label ${f(terms.label[i]!)}, separation ${f(terms.separation[i]!)}`,
    );
  });
  for (let i = 0; i < initial.length; i++) {
    if (reasons.has(i)) continue;
    const k = classes.assignment[i]!;
    set(
      i,
      `not picked: ${className(k)} (${pickedOfClass[k]} of ${classes.members[k]!.length} picked); ` +
        `initial σ ${f(initial[i]!)}, alignment ${f(terms.easiness[i]!)}`,
    );
  }
  return reasons;
}
