// Host tensors: a shape and a flat row-major buffer. The reference interpreter computes in float64, or in
// float32 by rounding every result (Math.fround) and storing in a Float32Array. Bools are 0 or 1.
import type { DType } from "../compiler/ir.js";

export type Precision = "f64" | "f32";

export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Float64Array | Float32Array;
}

export function tensorOf(dtype: DType, shape: readonly number[], data: ArrayLike<number>, precision: Precision = "f64"): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`tensorOf: [${shape.join(", ")}] needs ${n} values, got ${data.length}`);
  return { dtype, shape: [...shape], data: precision === "f32" ? Float32Array.from(data) : Float64Array.from(data) };
}
