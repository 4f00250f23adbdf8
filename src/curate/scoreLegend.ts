/**
 * What the per-sample score of a selection means, for the panel's cards and legend: the score each
 * method stores in `scores.npy` (selections.ts) is a different quantity per method, so a bare number
 * under a card says nothing until it is named.
 */

export interface ScoreLegend {
  method: string;
  /** Short name shown beside the number. */
  name: string;
  /** One sentence: what is measured, and which end the method prefers. */
  meaning: string;
}

const LEGENDS: Record<string, Omit<ScoreLegend, 'method'>> = {
  'clip-score': {
    name: 'CLIP score',
    meaning:
      'cosine similarity of the image and caption embeddings; higher = the caption fits the image better (the method keeps the highest)',
  },
  el2n: {
    name: 'EL2N',
    meaning:
      'error L2 norm of a proxy classifier early in training, averaged over runs; higher = harder example (the method keeps the hardest)',
  },
  grand: {
    name: 'GraNd',
    meaning:
      'expected gradient norm of a proxy classifier, averaged over runs; higher = harder example (the method keeps the hardest)',
  },
  'k-center': {
    name: 'distance to nearest centre',
    meaning:
      'embedding distance from the sample to the closest picked centre; lower = better covered by the subset',
  },
  semdedup: {
    name: 'max similarity in cluster',
    meaning:
      'highest cosine similarity to a sample ordered before it in its k-means cluster; near 1 = near-duplicate (dropped)',
  },
  sas: {
    name: 'augmentation similarity',
    meaning:
      'mean similarity of the sample to its latent class under augmentation; higher = more typical of the class (kept first)',
  },
  seta: {
    name: 'proxy loss',
    meaning: 'final loss of the proxy model on the sample; higher = harder for the proxy',
  },
  crest: {
    name: 'training exposure',
    meaning: 'weight × steps the simulated proxy run trained on the sample; higher = used more',
  },
  graft: {
    name: 'pivot value',
    meaning: 'the value of the sample when GRAFT chose it as a pivot (0 for samples that were not pivots)',
  },
  clipcov: {
    name: 'initial coverage gain',
    meaning:
      'the sample’s greedy score before the first pick; higher = more attractive to the method at the start',
  },
};

/** The legend for `method`'s score, or a plain one naming the method when it has none recorded here. */
export function scoreLegend(method: string): ScoreLegend {
  const known = LEGENDS[method];
  if (known) return { method, ...known };
  return {
    method,
    name: `${method} score`,
    meaning: `the per-sample score ${method} stored with the selection (see \`curate methods\` for the method)`,
  };
}
