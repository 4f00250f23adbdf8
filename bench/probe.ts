import { dense, matmul, tmatmul } from '../src/embed/backends/linalg.js';

/**
 * Multinomial logistic regression on embeddings by full-batch gradient descent (products on the MatMul
 * kernel); optional per-example weights (a weighted coreset). Returns held-out accuracy.
 */
export async function linearProbe(
  train: { x: Float32Array; labels: Int32Array; weights?: Float32Array },
  test: { x: Float32Array; labels: Int32Array },
  dim: number,
  classes = 10,
  epochs = 300,
  rate = 2,
  l2 = 1e-4,
): Promise<number> {
  const n = train.labels.length;
  const x = dense(n, dim + 1);
  for (let i = 0; i < n; i++) {
    x.data.set(train.x.subarray(i * dim, (i + 1) * dim), i * (dim + 1));
    x.data[i * (dim + 1) + dim] = 1;
  }
  const totalWeight = train.weights ? train.weights.reduce((a, b) => a + b, 0) : n;
  const w = dense(dim + 1, classes);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const logits = await matmul(x, w);
    for (let i = 0; i < n; i++) {
      const row = logits.data.subarray(i * classes, (i + 1) * classes);
      const max = Math.max(...row);
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += row[c] = Math.exp(row[c]! - max);
      const wi = (train.weights ? train.weights[i]! : 1) / totalWeight;
      for (let c = 0; c < classes; c++) row[c] = (row[c]! / sum - (c === train.labels[i] ? 1 : 0)) * wi;
    }
    const grad = await tmatmul(x, logits);
    for (let j = 0; j < w.data.length; j++) w.data[j]! -= rate * (grad.data[j]! + l2 * w.data[j]!);
  }
  let correct = 0;
  for (let i = 0; i < test.labels.length; i++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      let score = w.data[dim * classes + c]!;
      for (let k = 0; k < dim; k++) score += test.x[i * dim + k]! * w.data[k * classes + c]!;
      if (score > bestScore) [best, bestScore] = [c, score];
    }
    if (best === test.labels[i]) correct += 1;
  }
  return correct / test.labels.length;
}
