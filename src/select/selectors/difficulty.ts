/**
 * Data-diet scores (Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021) on the
 * softmax proxy, averaged over `runs` independently seeded proxies:
 *   EL2N_i  = E_θ ‖p_θ(x_i) − e_{y_i}‖₂, after a few epochs of training (the paper: early in training);
 *   GraNd_i = E_θ ‖∇_θ ℓ_i‖₂ = E_θ ‖p_θ(x_i) − e_{y_i}‖₂ · √(‖x_i‖² + 1) for the linear head's weights and
 *   bias. The paper scores GraNd at initialisation; for a linear head at initialisation p ≈ uniform and
 *   the score is the same for every unit x, so the default here is after one epoch.
 * Keeps the B highest-scoring (hardest) examples after skipping the top `skipHardest` fraction: at small
 * budgets the paper keeps a window offset from the hardest end, and for image–caption data the very
 * hardest are largely mismatched pairs.
 */
import { z } from 'zod';
import type { Selector } from '../contract.js';
import { describeClasses } from '../latentClasses.js';
import { proxyParams, proxyProblem, proxySignals, warmProxy } from '../proxy/problem.js';

function difficultyParams(epochs: number) {
  return z.object({
    ...proxyParams(10),
    runs: z.number().int().min(1).default(4).describe('independently seeded proxies averaged'),
    epochs: z.number().int().min(0).default(epochs).describe('proxy training epochs before scoring'),
    skipHardest: z
      .number()
      .min(0)
      .lt(1)
      .default(0)
      .describe('fraction of the pool, from the hardest end, left out before keeping the top B'),
  });
}

type DifficultyParams = z.infer<ReturnType<typeof difficultyParams>>;

function difficultySelector(score: 'el2n' | 'grand', defaultEpochs: number, description: string) {
  const selector: Selector<DifficultyParams> = {
    name: score,
    description,
    params: difficultyParams(defaultEpochs),
    needs: ['image'],
    async select(input, budget, p, ctx) {
      const { features, classes } = await proxyProblem(input, p, ctx.seed, score);
      const sgd = { lr: p.lr, momentum: p.momentum, weightDecay: p.weightDecay, batchSize: p.batchSize };
      const n = input.n;
      const k = classes.k;
      const scores = new Float32Array(n);
      for (let run = 0; run < p.runs; run++) {
        ctx.signal?.throwIfAborted();
        const seed = ctx.seed + 7919 * run;
        const { head } = await warmProxy(features, classes.assignment, k, p.epochs, sgd, seed, ctx.signal);
        const { residuals } = await proxySignals(head, features, classes.assignment);
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let c = 0; c < k; c++) s += residuals[i * k + c]! ** 2;
          let x2 = 0;
          if (score === 'grand')
            for (let j = 0; j < features.cols; j++) x2 += features.data[i * features.cols + j]! ** 2;
          scores[i]! += Math.sqrt(s * (score === 'grand' ? x2 + 1 : 1)) / p.runs;
        }
      }
      const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]! || a - b);
      const skip = Math.min(Math.floor(p.skipHardest * n), n - budget);
      return {
        indices: Int32Array.from(order.slice(skip, skip + budget)),
        scores,
        trace: [
          { stage: 'classes', message: describeClasses(classes) },
          {
            stage: 'scores',
            message: `${score} over ${p.runs} proxies after ${p.epochs} epochs; kept ranks ${skip + 1}–${skip + budget} (hardest first)`,
          },
        ],
      };
    },
  };
  return selector;
}

export const el2n = difficultySelector(
  'el2n',
  2,
  'EL2N (Data Diet): keep the examples with the largest proxy error norm ‖p − e_y‖, averaged over seeds',
);

export const grand = difficultySelector(
  'grand',
  1,
  'GraNd (Data Diet): keep the examples with the largest expected proxy gradient norm',
);
