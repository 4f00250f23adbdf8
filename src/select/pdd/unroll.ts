/**
 * PDD-Synth's inner loop (pdd.md §3.4, our adaptation [R]): N_syn SGD steps of the softmax proxy with a
 * learnable step α on minibatches of synthetic embeddings, the normalised trajectory-matching loss
 *
 *   L = ‖θ̂_N − θ*_{s+E}‖² / ‖θ*_s − θ*_{s+E}‖²,   θ̂_0 = θ*_s,   θ̂_{n+1} = θ̂_n − α ḡ_n(θ̂_n)
 *
 * and its exact gradient by the adjoint recursion (no autodiff):
 *   Λ_N = 2(θ̂_N − θ*)/D,   Λ_n = Λ_{n+1} − α H_n[Λ_{n+1}],
 *   H[V] = mean_b J_p(V z̃_b) z̃_bᵀ with J_p v = p ⊙ (v − ⟨p, v⟩) and z̃ = [z; 1] (the bias column),
 *   ∂L/∂z_b (step n) = −(α/|b|) [ Wᵀ J_p(Λ z̃_b) + Λ^Wᵀ (p − e_y) ],
 *   ∂L/∂α = −Σ_n ⟨Λ_{n+1}, ḡ_n⟩.
 * Each backward step is one onnxruntime graph (HVP, the batch rows' gradients and ⟨Λ, ḡ⟩ together).
 */
import { GraphBuilder } from '../../compute/onnxGraph.js';
import { createSession, Tensor, type Session } from '../../compute/ort.js';
import { gather, type Matrix } from '../kernels/similarity.js';
import { cloneHead, headPass, type SoftmaxHead } from '../proxy/softmaxHead.js';

let backwardSession: Promise<Session> | undefined;

/**
 * z [b,d], w [K,d], c [K], y [b,K], lw [K,d], lc [K], alpha [1], scale [1] (= 1/b) →
 * hw [K,d], hc [K] (H[Λ]), gz [b,d] (∂L/∂z per row), lg [] (⟨Λ, ḡ⟩).
 */
function backwardGraph(): Promise<Session> {
  backwardSession ??= (async () => {
    const g = new GraphBuilder('softmax_unroll_backward');
    const z = g.input('z', 'float32', ['b', 'd']);
    const w = g.input('w', 'float32', ['K', 'd']);
    const c = g.input('c', 'float32', ['K']);
    const y = g.input('y', 'float32', ['b', 'K']);
    const lw = g.input('lw', 'float32', ['K', 'd']);
    const lc = g.input('lc', 'float32', ['K']);
    const alpha = g.input('alpha', 'float32', [1]);
    const scale = g.input('scale', 'float32', [1]);
    const t = (m: string) => g.op('Transpose', [m], { perm: [1, 0] });
    const p = g.op('Softmax', [g.op('Add', [g.op('MatMul', [z, t(w)]), c])], { axis: 1 });
    const r = g.op('Sub', [p, y]);
    const u = g.op('Add', [g.op('MatMul', [z, t(lw)]), lc]); // Λ z̃_b
    const pu = g.op('ReduceSum', [g.op('Mul', [p, u]), g.ints([1])], { keepdims: 1 });
    const jp = g.op('Mul', [p, g.op('Sub', [u, pu])]); // J_p(Λ z̃_b)
    g.op('Mul', [g.op('MatMul', [t(jp), z]), scale], {}, 'hw');
    g.op('Mul', [g.op('ReduceSum', [jp, g.ints([0])], { keepdims: 0 }), scale], {}, 'hc');
    const both = g.op('Add', [g.op('MatMul', [jp, w]), g.op('MatMul', [r, lw])]);
    g.op('Mul', [both, g.op('Neg', [g.op('Mul', [alpha, scale])])], {}, 'gz');
    g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [r, u]), g.ints([0, 1])], { keepdims: 0 }), scale], {}, 'lg');
    g.output('hw', 'float32', ['K', 'd']);
    g.output('hc', 'float32', ['K']);
    g.output('gz', 'float32', ['b', 'd']);
    g.output('lg', 'float32', [1]);
    return (await createSession(g.toBytes())).session;
  })();
  return backwardSession;
}

export interface UnrollInput {
  /** θ*_s. */
  start: SoftmaxHead;
  /** θ*_{s+E}. */
  target: SoftmaxHead;
  /** The rows the steps train on (earlier stages first, then the learnable rows). */
  pool: Matrix;
  labels: Int32Array;
  /** Rows of the pool at or after this index are learnable; the others are frozen. */
  firstLearnable: number;
  /** Pool rows of each step's minibatch (N_syn steps). */
  batches: Int32Array[];
  alpha: number;
}

export interface UnrollResult {
  loss: number;
  /** ∂L/∂z for the learnable rows ((pool.rows − firstLearnable) × d). */
  gradRows: Float32Array;
  gradAlpha: number;
}

const squaredDistance = (a: SoftmaxHead, b: SoftmaxHead) => {
  let s = 0;
  for (let j = 0; j < a.weight.length; j++) s += (a.weight[j]! - b.weight[j]!) ** 2;
  for (let k = 0; k < a.bias.length; k++) s += (a.bias[k]! - b.bias[k]!) ** 2;
  return s;
};

export async function unrolledTrajectoryLoss(u: UnrollInput): Promise<UnrollResult> {
  const { K, d } = { K: u.start.classes, d: u.start.dim };
  const steps: Array<{ head: SoftmaxHead; x: Matrix; y: Int32Array }> = [];
  const theta = cloneHead(u.start);
  for (const batch of u.batches) {
    const x = gather(u.pool, batch);
    const y = Int32Array.from(batch, (i) => u.labels[i]!);
    steps.push({ head: cloneHead(theta), x, y });
    const g = await headPass(theta, x, y);
    for (let j = 0; j < theta.weight.length; j++) theta.weight[j]! -= u.alpha * g.gradWeight[j]!;
    for (let k = 0; k < K; k++) theta.bias[k]! -= u.alpha * g.gradBias[k]!;
  }
  const denominator = Math.max(squaredDistance(u.start, u.target), 1e-30);
  const loss = squaredDistance(theta, u.target) / denominator;

  const lw = new Float32Array(K * d);
  const lc = new Float32Array(K);
  for (let j = 0; j < lw.length; j++) lw[j] = (2 * (theta.weight[j]! - u.target.weight[j]!)) / denominator;
  for (let k = 0; k < K; k++) lc[k] = (2 * (theta.bias[k]! - u.target.bias[k]!)) / denominator;
  const gradRows = new Float32Array((u.pool.rows - u.firstLearnable) * d);
  let gradAlpha = 0;
  const session = await backwardGraph();
  for (let n = steps.length - 1; n >= 0; n--) {
    const { head, x, y } = steps[n]!;
    const b = x.rows;
    const onehot = new Float32Array(b * K);
    y.forEach((label, t) => (onehot[t * K + label] = 1));
    const out = await session.run({
      z: new Tensor('float32', x.data, [b, d]),
      w: new Tensor('float32', head.weight, [K, d]),
      c: new Tensor('float32', head.bias, [K]),
      y: new Tensor('float32', onehot, [b, K]),
      lw: new Tensor('float32', lw, [K, d]),
      lc: new Tensor('float32', lc, [K]),
      alpha: new Tensor('float32', Float32Array.of(u.alpha), [1]),
      scale: new Tensor('float32', Float32Array.of(1 / b), [1]),
    });
    gradAlpha -= (out.lg!.data as Float32Array)[0]!;
    const gz = out.gz!.data as Float32Array;
    u.batches[n]!.forEach((row, t) => {
      if (row < u.firstLearnable) return;
      const at = (row - u.firstLearnable) * d;
      for (let j = 0; j < d; j++) gradRows[at + j]! += gz[t * d + j]!;
    });
    const hw = out.hw!.data as Float32Array;
    const hc = out.hc!.data as Float32Array;
    for (let j = 0; j < lw.length; j++) lw[j]! -= u.alpha * hw[j]!;
    for (let k = 0; k < K; k++) lc[k]! -= u.alpha * hc[k]!;
  }
  return { loss, gradRows, gradAlpha };
}
