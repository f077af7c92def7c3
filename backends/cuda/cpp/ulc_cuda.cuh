// Device helpers of the kernels ulc generates (program.cu includes this file). The scalar functions follow the
// reference interpreter's semantics (compiler/scalar.ts): NaN-propagating max/min, wrapping i32 arithmetic with
// x / 0 = x, saturating float -> i32 casts. The random streams are Philox-4x32-10 in u32 operations, bit-exact
// with runtime/random.ts. Compiled by nvcc, or by g++ under ulc_emulate.h (CUDA on the CPU, for tests).
#pragma once

__device__ __forceinline__ float ulc_sigmoid(float x) {
  // e^-|x| never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise.
  const float e = expf(-fabsf(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

__device__ __forceinline__ float ulc_softplus(float x) {
  return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

__device__ __forceinline__ float ulc_pow(float x, float y) {
  // C's powf, except where JavaScript's Math.pow differs: a NaN exponent, and (+-1)^(+-inf), give NaN.
  if (y != y || (fabsf(x) == 1.0f && fabsf(y) == __uint_as_float(0x7f800000u))) return __uint_as_float(0x7fc00000u);
  return powf(x, y);
}

__device__ __forceinline__ float ulc_max(float a, float b) {
  return a != a || b != b ? a + b : fmaxf(a, b);
}

__device__ __forceinline__ float ulc_min(float a, float b) {
  return a != a || b != b ? a + b : fminf(a, b);
}

__device__ __forceinline__ int ulc_max(int a, int b) {
  return a > b ? a : b;
}

__device__ __forceinline__ int ulc_min(int a, int b) {
  return a < b ? a : b;
}

__device__ __forceinline__ int ulc_iadd(int a, int b) {
  return (int)((unsigned)a + (unsigned)b);
}

__device__ __forceinline__ int ulc_isub(int a, int b) {
  return (int)((unsigned)a - (unsigned)b);
}

__device__ __forceinline__ int ulc_imul(int a, int b) {
  return (int)((unsigned)a * (unsigned)b);
}

__device__ __forceinline__ int ulc_idiv(int a, int b) {
  // x / 0 = x (WGSL's rule, which the interpreter follows); INT_MIN / -1 wraps to INT_MIN.
  if (b == 0) return a;
  if (b == -1) return ulc_isub(0, a);
  return a / b;
}

/** Truncate toward zero, saturate, NaN -> 0 (the interpreter's cast). */
__device__ __forceinline__ int ulc_to_i32(float x) {
  if (x != x) return 0;
  if (x >= 2147483648.0f) return 2147483647;
  if (x <= -2147483648.0f) return -2147483647 - 1;
  return (int)x;
}

struct ulc_u4 {
  unsigned x, y, z, w;
};

__device__ __forceinline__ ulc_u4 ulc_philox(unsigned c0, unsigned c1, unsigned c2, unsigned c3, unsigned k0, unsigned k1) {
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const unsigned hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const unsigned hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  return ulc_u4{c0, c1, c2, c3};
}

/** Element i of the uniform stream `key` at (seed, step): (x0 >> 8) * 2^-24. */
__device__ __forceinline__ float ulc_uniform(unsigned seed, unsigned step, unsigned key, unsigned i) {
  const ulc_u4 x = ulc_philox(i, key, step, 0u, seed, 0u);
  return (float)(x.x >> 8) * 5.9604644775390625e-8f;
}

/** Element i of the normal stream `key` at (seed, step): Box-Muller's first output. */
__device__ __forceinline__ float ulc_normal(unsigned seed, unsigned step, unsigned key, unsigned i) {
  const ulc_u4 x = ulc_philox(i, key, step, 0u, seed, 0u);
  const float u1 = (float)((x.x >> 8) + 1u) * 5.9604644775390625e-8f;
  const float u2 = (float)(x.y >> 8) * 5.9604644775390625e-8f;
  return sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u2);
}

struct ulc_sum_op {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};

struct ulc_max_op {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return ulc_max(a, b); }
};

template <class T, class Op> __device__ __forceinline__ T ulc_warp_reduce(T v, Op op) {
  for (int d = 16; d > 0; d >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, d));
  return v;
}

/**
 * The reduction of `v` over the block, valid in thread 0: each warp reduces through shuffles, then warp 0
 * reduces the warps' partial results. Every thread of the block must call it (it synchronises the block).
 */
template <class T, class Op> __device__ __forceinline__ T ulc_block_reduce(T v, Op op, T identity) {
  __shared__ T partial[32];
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  v = ulc_warp_reduce(v, op);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  // Every warp reduces the partial results (only warp 0's is used): the shuffles stay block-uniform.
  v = lane < (blockDim.x >> 5) ? partial[lane] : identity;
  return ulc_warp_reduce(v, op);
}

// ------------------------------------------------------------------------------------------ host side

/** A kernel of the program: its name in schedule.txt, the function, and its launch with that program's shape. */
struct ulc_kernel_entry {
  const char* name;
  const void* function;
  /** Launches the kernel on `stream` with its buffers (inputs, then the output) and the {seed, step} words. */
  void (*launch)(void* const* buffers, const unsigned* rng, cudaStream_t stream);
};

#ifndef ULC_EMULATE
/** `kernel<<<grid, block, 0, stream>>>(args...)`; `cooperative` (threads synchronise) matters to emulation only. */
template <class... P, class... A> void ulc_launch(void (*kernel)(P...), unsigned grid, unsigned block, bool, cudaStream_t stream, A... args) {
  kernel<<<grid, block, 0, stream>>>(args...);
}
#endif
