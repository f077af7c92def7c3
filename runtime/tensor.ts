// Host tensors: a shape and a flat row-major buffer. The reference interpreter computes in float64, or in
// float32 by rounding every result and storing in a Float32Array (i32 stays in a Float64Array). Bools are 0 or 1.
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
  // i32 always lives in float64: float32 cannot hold every 32-bit integer.
  return { dtype, shape: [...shape], data: precision === "f32" && dtype !== "i32" ? Float32Array.from(data) : Float64Array.from(data) };
}
