// The Fréchet distance against closed forms: for commuting (here diagonal) covariances it is
// ‖μ₁ − μ₂‖² + Σᵢ (√σ₁ᵢ − √σ₂ᵢ)², it is invariant under a rotation of both feature sets, and 0 between a set and itself.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { fitGaussian, frechetDistance, symmetricEigen, type Gaussian } from "../train/frechet.js";
import { mulberry32 } from "./support/prng.js";

function diagonal(mean: number[], variances: number[]): Gaussian {
  const n = mean.length;
  const cov = new Float64Array(n * n);
  variances.forEach((v, i) => (cov[i * n + i] = v));
  return { mean: Float64Array.from(mean), cov, dim: n };
}

/** A random orthogonal matrix: Gram–Schmidt on Gaussian columns. */
function rotation(n: number, rand: () => number): Float64Array {
  const q = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const v = Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()));
    for (let k = 0; k < j; k++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += v[i]! * q[i * n + k]!;
      for (let i = 0; i < n; i++) v[i]! -= dot * q[i * n + k]!;
    }
    const norm = Math.hypot(...v);
    for (let i = 0; i < n; i++) q[i * n + j] = v[i]! / norm;
  }
  return q;
}

/** R·G: mean R·μ, covariance R·Σ·Rᵀ. */
function rotate(g: Gaussian, r: Float64Array): Gaussian {
  const n = g.dim;
  const mean = new Float64Array(n);
  const rs = new Float64Array(n * n);
  const cov = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) mean[i]! += r[i * n + k]! * g.mean[k]!;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) rs[i * n + j]! += r[i * n + k]! * g.cov[k * n + j]!;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) cov[i * n + j]! += rs[i * n + k]! * r[j * n + k]!;
  return { mean, cov, dim: n };
}

describe("Fréchet distance", () => {
  test("diagonal covariances: the closed form; any rotation of both leaves it unchanged", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer(), (n, seed) => {
        const rand = mulberry32(seed);
        const [m1, m2, v1, v2] = [0, 1, 2, 3].map((k) => Array.from({ length: n }, () => (k < 2 ? 4 * rand() - 2 : 0.01 + 3 * rand())));
        const want = m1!.reduce((s, _, i) => s + (m1![i]! - m2![i]!) ** 2 + (Math.sqrt(v1![i]!) - Math.sqrt(v2![i]!)) ** 2, 0);
        const [x, y] = [diagonal(m1!, v1!), diagonal(m2!, v2!)];
        expect(frechetDistance(x, y)).toBeCloseTo(want, 8);
        const r = rotation(n, rand);
        expect(frechetDistance(rotate(x, r), rotate(y, r))).toBeCloseTo(want, 7);
      }),
      { numRuns: 40, seed: 11 },
    );
  });

  test("a set against itself is 0; the eigen-decomposition reconstructs its matrix", () => {
    const rand = mulberry32(4);
    const features = Array.from({ length: 200 * 6 }, () => rand() * rand());
    const g = fitGaussian(features, 200, 6);
    expect(Math.abs(frechetDistance(g, g))).toBeLessThan(1e-9);
    const { values, vectors } = symmetricEigen(g.cov, 6);
    for (let i = 0; i < 6; i++)
      for (let j = 0; j < 6; j++) {
        let s = 0;
        for (let k = 0; k < 6; k++) s += vectors[i * 6 + k]! * values[k]! * vectors[j * 6 + k]!;
        expect(s).toBeCloseTo(g.cov[i * 6 + j]!, 12);
      }
  });

  test("fitGaussian: the mean and the unbiased covariance", () => {
    const g = fitGaussian([1, 2, 3, 6], 2, 2);
    expect([...g.mean]).toEqual([2, 4]);
    expect([...g.cov]).toEqual([2, 4, 4, 8]);
  });
});
