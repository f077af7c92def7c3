// Device helpers of the kernels ulc generates (program.cu includes this file): the scalar semantics shared with
// the CPU target (ulc_scalar.h), warp and block reductions, and the kernel table's entry. Compiled by nvcc, or
// by g++ under ulc_emulate.h (CUDA on the CPU, for tests).
#pragma once

// A loop nvcc must not unroll, and one it must unroll whole (its indices into register arrays then stay
// constants: the arrays stay in registers). The CPU emulation's g++ takes no such pragma.
#ifdef ULC_EMULATE
#define ULC_NO_UNROLL
#define ULC_UNROLL
#else
#define ULC_NO_UNROLL _Pragma("unroll 1")
#define ULC_UNROLL _Pragma("unroll")
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

/**
 * d += a·b on the tensor cores, for one warp: a 16 × 8 tile of A times an 8 × 8 tile of B, TF32 operands (already
 * rounded to TF32: the hardware would drop their low 13 bits), fp32 accumulators. Fragments as the PTX ISA lays
 * them out for mma.m16n8k8 (g = lane / 4, t = lane % 4): a = A[g][t], A[g+8][t], A[g][t+4], A[g+8][t+4];
 * b = B[t][g], B[t+4][g]; d = D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1]. Every lane of the warp must call it.
 *
 * ulc_mma_bf16 likewise for a 16 × 16 tile of A times a 16 × 8 tile of B, bfloat16 operands two to a register (the
 * lower-numbered in the low 16 bits: ulc_bf16x2), as the PTX ISA lays them out for mma.m16n8k16 with .bf16
 * ("Matrix Fragments for mma.m16n8k16 with floating point type"): a = A[g][2t, 2t+1], A[g+8][2t, 2t+1],
 * A[g][2t+8, 2t+9], A[g+8][2t+8, 2t+9]; b = B[2t, 2t+1][g], B[2t+8, 2t+9][g]; d as for m16n8k8.
 */
#ifndef ULC_EMULATE
ULC_FN void ulc_mma_tf32(float (&d)[4], const float (&a)[4], const float (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])), "r"(__float_as_uint(a[3])),
                 "r"(__float_as_uint(b[0])), "r"(__float_as_uint(b[1])));
}

ULC_FN void ulc_mma_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

/**
 * Two bfloat16 values in one .bf16x2 register, `lo` in the low 16 bits: each a float whose low 16 bits are zero
 * (round_bf16 leaves them so), whose high half is its bfloat16 encoding, so the packing is exact.
 */
ULC_FN unsigned ulc_bf16x2(float lo, float hi) {
  return (ulc_float_bits(lo) >> 16) | (ulc_float_bits(hi) & 0xffff0000u);
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
