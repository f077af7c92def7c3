// The scalar semantics of ulc's generated kernels, shared by the CUDA and CPU targets: the functions that
// backends/c-like/expr.ts's C++ dialects call, following the reference interpreter (compiler/scalar.ts):
// NaN-propagating max/min, wrapping i32 arithmetic with x / 0 = x, saturating float -> i32 casts; and the
// random streams, Philox-4x32-10 in u32 operations, bit-exact with runtime/random.ts.
// The includer defines ULC_FN (how a helper is declared) and three primitives: ulc_as_float (the float with the
// given bits), ulc_mulhi (the high 32 bits of a 32 x 32-bit product) and ulc_rsqrt (1 / sqrt(x)).
#pragma once

ULC_FN float ulc_sigmoid(float x) {
  // e^-|x| never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise.
  const float e = expf(-fabsf(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

ULC_FN float ulc_softplus(float x) {
  return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

ULC_FN float ulc_pow(float x, float y) {
  // C's powf, except where JavaScript's Math.pow differs: a NaN exponent, and (+-1)^(+-inf), give NaN.
  if (y != y || (fabsf(x) == 1.0f && fabsf(y) == ulc_as_float(0x7f800000u))) return ulc_as_float(0x7fc00000u);
  return powf(x, y);
}

ULC_FN float ulc_max(float a, float b) {
  return a != a || b != b ? a + b : fmaxf(a, b);
}

ULC_FN float ulc_min(float a, float b) {
  return a != a || b != b ? a + b : fminf(a, b);
}

ULC_FN int ulc_max(int a, int b) {
  return a > b ? a : b;
}

ULC_FN int ulc_min(int a, int b) {
  return a < b ? a : b;
}

ULC_FN int ulc_iadd(int a, int b) {
  return (int)((unsigned)a + (unsigned)b);
}

ULC_FN int ulc_isub(int a, int b) {
  return (int)((unsigned)a - (unsigned)b);
}

ULC_FN int ulc_imul(int a, int b) {
  return (int)((unsigned)a * (unsigned)b);
}

ULC_FN int ulc_idiv(int a, int b) {
  // x / 0 = x (WGSL's rule, which the interpreter follows); INT_MIN / -1 wraps to INT_MIN.
  if (b == 0) return a;
  if (b == -1) return ulc_isub(0, a);
  return a / b;
}

/** The bits of a float, the inverse of ulc_as_float: nvcc's intrinsic, else memcpy (ulc_cpu.h and ulc_emulate.h include <cstring>). */
ULC_FN unsigned ulc_float_bits(float x) {
#ifdef __CUDACC__
  return __float_as_uint(x);
#else
  unsigned u;
  std::memcpy(&u, &x, 4);
  return u;
#endif
}

/**
 * x rounded to TF32 as cvt.rna.tf32.f32 does (compiler/scalar.ts, roundTf32): to nearest, ties away from zero,
 * keeping 10 mantissa bits; past the largest finite it becomes Inf. NaN, told by its bits, stays NaN: masking its
 * payload could make it Inf or -0.
 */
ULC_FN float ulc_round_tf32(float x) {
  const unsigned u = ulc_float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return x;
  return ulc_as_float((u + 0x1000u) & 0xffffe000u);
}

/**
 * x rounded to bfloat16 as cvt.rn.bf16.f32 (__float2bfloat16_rn) does (compiler/scalar.ts, roundBf16): to nearest,
 * ties to even, keeping 7 mantissa bits; past the largest finite it becomes Inf, subnormals round on the same
 * grid. A NaN stays NaN with its low 16 bits cleared and its quiet bit set (so it is a bfloat16 value too: a GEMM
 * that keeps only the high half of each operand must not read Inf).
 */
ULC_FN float ulc_round_bf16(float x) {
  const unsigned u = ulc_float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return ulc_as_float((u | 0x00400000u) & 0xffff0000u);
  return ulc_as_float((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}

/** Truncate toward zero, saturate, NaN -> 0 (the interpreter's cast). */
ULC_FN int ulc_to_i32(float x) {
  if (x != x) return 0;
  if (x >= 2147483648.0f) return 2147483647;
  if (x <= -2147483648.0f) return -2147483647 - 1;
  return (int)x;
}

struct ulc_u4 {
  unsigned x, y, z, w;
};

ULC_FN ulc_u4 ulc_philox(unsigned c0, unsigned c1, unsigned c2, unsigned c3, unsigned k0, unsigned k1) {
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const unsigned hi0 = ulc_mulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const unsigned hi1 = ulc_mulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  return ulc_u4{c0, c1, c2, c3};
}

/** Element i of the uniform stream `key` at (seed, step): (x0 >> 8) * 2^-24. */
ULC_FN float ulc_uniform(unsigned seed, unsigned step, unsigned key, unsigned i) {
  const ulc_u4 x = ulc_philox(i, key, step, 0u, seed, 0u);
  return (float)(x.x >> 8) * 5.9604644775390625e-8f;
}

/** Element i of the normal stream `key` at (seed, step): Box-Muller's first output. */
ULC_FN float ulc_normal(unsigned seed, unsigned step, unsigned key, unsigned i) {
  const ulc_u4 x = ulc_philox(i, key, step, 0u, seed, 0u);
  const float u1 = (float)((x.x >> 8) + 1u) * 5.9604644775390625e-8f;
  const float u2 = (float)(x.y >> 8) * 5.9604644775390625e-8f;
#ifdef __CUDACC__
  // cos(2π·u2) as cospi(2·u2): the same value within an ulp, without cosf's reduction of huge arguments (a local
  // array, which otherwise costs every kernel that draws a normal a stack frame, and a GEMM a spill).
  return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
#else
  return sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u2);
#endif
}
