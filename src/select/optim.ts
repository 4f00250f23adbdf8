/** Adam (Kingma & Ba 2015) with bias correction, in place; moments kept in float64. */
export class Adam {
  private readonly m1: Float64Array;
  private readonly m2: Float64Array;
  private t = 0;
  constructor(
    size: number,
    private readonly lr: number,
  ) {
    this.m1 = new Float64Array(size);
    this.m2 = new Float64Array(size);
  }

  step(x: Float32Array | Float64Array, grad: ArrayLike<number>): void {
    this.t++;
    const [b1, b2] = [0.9, 0.999];
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    for (let i = 0; i < x.length; i++) {
      this.m1[i] = b1 * this.m1[i]! + (1 - b1) * grad[i]!;
      this.m2[i] = b2 * this.m2[i]! + (1 - b2) * grad[i]! ** 2;
      x[i]! -= (this.lr * (this.m1[i]! / c1)) / (Math.sqrt(this.m2[i]! / c2) + 1e-8);
    }
  }
}
