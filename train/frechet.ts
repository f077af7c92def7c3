// The Fréchet distance between two Gaussians fitted to feature sets (Heusel et al. 2017's FID, here on the
// features of our own Fashion-MNIST classifier rather than Inception's):
//   d² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2·(Σ₁^½ Σ₂ Σ₁^½)^½)
// tr((Σ₁Σ₂)^½) is computed as the trace of the square root of the symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½, whose
// eigenvalues (Jacobi's method, float64) are those of Σ₁Σ₂; tiny negative ones from rounding count as 0.

export interface Gaussian {
  readonly mean: Float64Array;
  /** d×d, row-major. */
  readonly cov: Float64Array;
  readonly dim: number;
}

/** Mean and unbiased covariance of `count` rows of `dim` features. */
export function fitGaussian(features: ArrayLike<number>, count: number, dim: number): Gaussian {
  if (count < 2) throw new Error(`a covariance needs at least 2 samples, got ${count}`);
  const mean = new Float64Array(dim);
  for (let i = 0; i < count; i++) for (let j = 0; j < dim; j++) mean[j]! += features[i * dim + j]! / count;
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < dim; j++) centred[j] = features[i * dim + j]! - mean[j]!;
    for (let a = 0; a < dim; a++) for (let b = a; b < dim; b++) cov[a * dim + b]! += (centred[a]! * centred[b]!) / (count - 1);
  }
  for (let a = 0; a < dim; a++) for (let b = 0; b < a; b++) cov[a * dim + b] = cov[b * dim + a]!;
  return { mean, cov, dim };
}

/** Eigenvalues and eigenvectors (columns of `vectors`) of a symmetric matrix, by cyclic Jacobi rotations. */
export function symmetricEigen(matrix: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  const offNorm = () => {
    let s = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) s += a[i * n + j]! ** 2;
    return s;
  };
  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i]! ** 2;
  for (let sweep = 0; sweep < 100 && offNorm() > 1e-30 * Math.max(total, 1e-300); sweep++) {
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!, akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!, aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!, vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  return { values: Float64Array.from({ length: n }, (_, i) => a[i * n + i]!), vectors: v };
}

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j]! += aik * b[k * n + j]!;
    }
  return out;
}

/** The PSD square root V·diag(√λ)·Vᵀ of a symmetric PSD matrix. */
function sqrtPsd(m: Float64Array, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(m, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const r = Math.sqrt(Math.max(values[k]!, 0));
    if (r === 0) continue;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j]! += r * vectors[i * n + k]! * vectors[j * n + k]!;
  }
  return out;
}

export function frechetDistance(x: Gaussian, y: Gaussian): number {
  if (x.dim !== y.dim) throw new Error(`feature dims differ: ${x.dim} and ${y.dim}`);
  const n = x.dim;
  let d2 = 0;
  for (let i = 0; i < n; i++) d2 += (x.mean[i]! - y.mean[i]!) ** 2;
  const root = sqrtPsd(x.cov, n);
  const { values } = symmetricEigen(matmul(matmul(root, y.cov, n), root, n), n);
  let trace = 0;
  for (let i = 0; i < n; i++) trace += x.cov[i * n + i]! + y.cov[i * n + i]!;
  for (const v of values) trace -= 2 * Math.sqrt(Math.max(v, 0));
  return d2 + trace;
}
