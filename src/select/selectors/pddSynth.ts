/**
 * PDD-Synth — distilled embeddings, OUR ADAPTATION (pdd.md §3.4 [R]) of Progressive Dataset Distillation;
 * the paper distils pixels. Returns the synthetic vectors (Selection.synthetic) and, as the selection,
 * each vector's nearest unused real example of its label, stage by stage.
 */
import { z } from 'zod';
import type { Selection, Selector } from '../contract.js';
import { describeClasses } from '../latentClasses.js';
import { quotaForm } from '../partitioned.js';
import { distilEmbeddings, snapToReal, SYNTH_DEFAULTS } from '../pdd/synth.js';
import { proxyProblem } from '../proxy/problem.js';
import { pddCommonParams } from './pdd.js';

const D = SYNTH_DEFAULTS;
const params = z.object({
  ...pddCommonParams,
  experts: z.number().int().min(1).default(D.experts).describe('N_exp expert runs of the proxy'),
  expertSample: z
    .number()
    .int()
    .min(1)
    .default(D.expertSample)
    .describe('real examples the experts train on'),
  expertEpochs: z.number().int().min(1).default(D.expertEpochs).describe('E: expert epochs to reproduce'),
  maxStart: z.number().int().min(1).default(D.maxStart).describe('start epochs drawn from [0, maxStart)'),
  syntheticSteps: z.number().int().min(1).default(D.syntheticSteps).describe('N_syn unrolled steps'),
  iterations: z.number().int().min(1).default(D.iterations).describe('distillation iterations per stage'),
  syntheticBatch: z.number().int().min(1).default(D.syntheticBatch),
  teacherLr: z.number().positive().default(D.teacherLr).describe('expert SGD step, and α’s start'),
  teacherBatch: z.number().int().min(1).default(D.teacherBatch),
  unionEpochs: z.number().int().min(0).default(D.unionEpochs),
  lrVectors: z.number().positive().default(D.lrVectors).describe('Adam step on the synthetic vectors'),
  lrLogAlpha: z.number().positive().default(D.lrLogAlpha).describe('Adam step on log α'),
  renormalise: z.boolean().default(D.renormalise).describe('unit-normalise synthetic rows after each step'),
});

type Params = z.infer<typeof params>;

export const pddSynth: Selector<Params> = {
  name: 'pdd-synth',
  description:
    'PDD-style distilled embeddings (our adaptation of Progressive Dataset Distillation): staged trajectory matching of synthetic vectors, snapped to real examples',
  params,
  needs: ['image'],
  async select(input, budget, p, ctx): Promise<Selection> {
    const { features, classes } = await proxyProblem(input, p, ctx.seed, 'pdd-synth');
    const result = await distilEmbeddings(features, classes.assignment, classes.k, budget, p, ctx);
    const snapped = await snapToReal(features, classes.assignment, result);
    const vectors = new Float32Array(result.stages.reduce((s, st) => s + st.vectors.length, 0));
    let at = 0;
    for (const st of result.stages) {
      vectors.set(st.vectors, at);
      at += st.vectors.length;
    }
    return {
      indices: snapped.indices,
      stages: snapped.stages,
      synthetic: {
        dim: result.dim,
        vectors,
        labels: Int32Array.from(result.stages.flatMap((st) => Array.from(st.labels))),
        stages: Int32Array.from(result.stages.flatMap((st, s) => Array.from(st.labels, () => s))),
        classes: classes.source,
      },
      trace: [
        { stage: 'classes', message: describeClasses(classes) },
        ...result.stages.map((st, s) => ({
          stage: `stage ${s + 1}`,
          message: `${st.labels.length} vectors; trajectory loss ${st.lossFirst.toFixed(3)} → ${st.lossLast.toFixed(3)}; α ${st.alpha.toPrecision(3)}`,
        })),
        {
          stage: 'snap',
          message: `${snapped.indices.length} nearest unused real examples of the same label`,
        },
      ],
    };
  },
  partitioned: quotaForm(
    (input, budget, p, ctx) => pddSynth.select(input, budget, p, ctx),
    'each partition distils its own vectors (its own experts and classes) for its quota of the budget ' +
      '(largest remainder over the partition sizes, adding up to B) and snaps them to its own real ' +
      'examples; the merge selects nothing again but joins the snapped examples stage by stage (stage s ' +
      'of the result is every partition’s stage s); the synthetic vectors are joined the same way (k-means ' +
      'cluster ids renumbered so that each partition’s clusters stay distinct)',
  ),
};
