import { z } from 'zod';
import type { SelectInput } from '../contract.js';
import { pcaProject } from '../kernels/pca.js';
import type { Matrix } from '../kernels/similarity.js';

export { gather } from '../kernels/similarity.js';

export const embeddingParam = z
  .enum(['image', 'text', 'joint'])
  .default('image')
  .describe('which embeddings: image, caption, or both (normalised concatenation)');

/** The vectors a geometric method works on: image, caption, or [u; t]/√2 (unit norm again). */
export function vectorsOf(input: SelectInput, which: z.infer<typeof embeddingParam>): Matrix {
  const { n, dim } = input;
  if (which === 'joint') {
    if (!input.image || !input.text) throw new Error('joint embeddings need image and text embeddings');
    const data = new Float32Array(n * 2 * dim);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < dim; k++) {
        data[i * 2 * dim + k] = input.image[i * dim + k]! * Math.SQRT1_2;
        data[i * 2 * dim + dim + k] = input.text[i * dim + k]! * Math.SQRT1_2;
      }
    }
    return { rows: n, cols: 2 * dim, data };
  }
  const data = input[which];
  if (!data) throw new Error(`${which} embeddings are needed`);
  return { rows: n, cols: dim, data };
}

export const pcaDimsParam = z
  .number()
  .int()
  .min(0)
  .default(64)
  .describe('principal components to work in (0 = all dimensions)');

/** The vectors of a sequential O(N·B·d) method, projected onto the top `dims` principal components (baselines.md §5). */
export async function reducedVectorsOf(
  input: SelectInput,
  which: z.infer<typeof embeddingParam>,
  dims: number,
): Promise<Matrix> {
  const full = vectorsOf(input, which);
  return dims > 0 ? (await pcaProject(full, dims)).projected : full;
}
