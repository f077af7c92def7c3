// The scalar semantics of the IR's element-wise ops, in float64: the reference interpreter's loops, constant
// folding and the front end's compile-time arithmetic all compute with these, so they agree to the bit.
import type { BinaryFn, CompareFn, UnaryFn } from "./ir.js";

/** 1/(1+e^-x) for x ≥ 0 and e^x/(1+e^x) otherwise: no overflow to NaN for large |x|. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** max(x, 0) + log1p(e^-|x|): exact for large |x| where log(1 + e^x) overflows or loses all digits. */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** Cast to i32: truncate toward zero, saturate to [-2^31, 2^31 - 1]; NaN gives 0 (WGSL's and CUDA's rule). */
export function saturateToI32(x: number): number {
  if (Number.isNaN(x)) return 0;
  const t = Math.trunc(x);
  return t > 2147483647 ? 2147483647 : t < -2147483648 ? -2147483648 : t;
}

const F32_BOX = new Float32Array(1);
const F32_BITS = new Uint32Array(F32_BOX.buffer);

/**
 * x rounded to f32, then to TF32 as PTX's cvt.rna.tf32.f32 does: to nearest, ties away from zero, keeping 10
 * explicit mantissa bits (on the bits u of a finite f32, (u + 0x1000) & 0xffffe000), so a value that rounds past
 * the largest finite becomes ±Infinity. NaN stays NaN (masking its payload could make it an infinity or -0),
 * ±Infinity and ±0 stay. The result is an f32 value.
 */
export function roundTf32(x: number): number {
  const f = Math.fround(x);
  if (Number.isNaN(f)) return NaN;
  if (!Number.isFinite(f)) return f;
  F32_BOX[0] = f;
  F32_BITS[0] = (F32_BITS[0]! + 0x1000) & 0xffffe000;
  return F32_BOX[0]!;
}

/**
 * x rounded to f32, then to bfloat16 as PTX's cvt.rn.bf16.f32 (CUDA's __float2bfloat16_rn) does: to nearest, ties
 * to even, keeping 7 explicit mantissa bits (on the bits u of a finite f32, (u + 0x7fff + (u >> 16 & 1)) &
 * 0xffff0000), so a value that rounds past the largest finite becomes ±Infinity, and subnormals round on the same
 * grid (step 2^-133). NaN stays NaN, ±Infinity and ±0 stay. The result is an f32 value.
 */
export function roundBf16(x: number): number {
  const f = Math.fround(x);
  if (Number.isNaN(f)) return NaN;
  if (!Number.isFinite(f)) return f;
  F32_BOX[0] = f;
  const u = F32_BITS[0]!;
  F32_BITS[0] = (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
  return F32_BOX[0]!;
}

export const UNARY: { readonly [F in UnaryFn]: (x: number) => number } = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  sigmoid,
  softplus,
  abs: Math.abs,
  floor: Math.floor,
  round_tf32: roundTf32,
  round_bf16: roundBf16,
};

export const BINARY: { readonly [F in BinaryFn]: (a: number, b: number) => number } = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  maximum: Math.max,
  minimum: Math.min,
};

/** Where i32 differs from float64 arithmetic followed by ToInt32: mul keeps its low bits, x / 0 = x (WGSL). */
export const BINARY_I32: { readonly [F in BinaryFn]?: (a: number, b: number) => number } = {
  mul: (a, b) => Math.imul(a, b),
  div: (a, b) => (b === 0 ? a : Math.trunc(a / b)),
  pow: (a, b) => Math.trunc(Math.pow(a, b)),
};

export const COMPARE: { readonly [F in CompareFn]: (a: number, b: number) => boolean } = {
  lt: (a, b) => a < b,
  le: (a, b) => a <= b,
  gt: (a, b) => a > b,
  ge: (a, b) => a >= b,
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
};
