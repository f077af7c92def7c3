// Device helpers of the kernels ulc generates (program.cu includes this file): the scalar semantics shared with
// the CPU target (ulc_scalar.h), warp and block reductions, and the kernel table's entry. Compiled by nvcc, or
// by g++ under ulc_emulate.h (CUDA on the CPU, for tests).
#pragma once

// A loop nvcc must not unroll (the CPU emulation's g++ takes no such pragma).
#ifdef ULC_EMULATE
#define ULC_NO_UNROLL
#else
#define ULC_NO_UNROLL _Pragma("unroll 1")
#endif

#define ULC_FN __device__ __forceinline__
ULC_FN float ulc_as_float(unsigned u) { return __uint_as_float(u); }
ULC_FN unsigned ulc_mulhi(unsigned a, unsigned b) { return __umulhi(a, b); }
ULC_FN float ulc_rsqrt(float x) { return rsqrtf(x); }
#include "ulc_scalar.h"

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
