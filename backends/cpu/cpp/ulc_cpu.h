// Helpers of the kernels ulc generates for the CPU (program.cpp includes this file): the scalar semantics shared
// with CUDA (ulc_scalar.h), the kernel table's entry, and the contractions that go to a BLAS (OpenBLAS's sgemm):
// matmul, and conv2d and its two gradients as im2col (or col2im) around one sgemm per group for the whole batch.
// Loops are parallel with OpenMP; sgemm parallelises itself.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

// glibc's vector math library (libmvec) has SIMD variants of these functions; declaring them so lets the
// compiler vectorise loops that call them (glibc declares them itself only under -ffast-math, which would
// also break the NaN semantics the kernels keep). Accuracy: within 4 ulp, like the scalar functions on a GPU.
extern "C" {
float expf(float) __attribute__((simd("notinbranch")));
float logf(float) __attribute__((simd("notinbranch")));
float log1pf(float) __attribute__((simd("notinbranch")));
float sinf(float) __attribute__((simd("notinbranch")));
float cosf(float) __attribute__((simd("notinbranch")));
float tanhf(float) __attribute__((simd("notinbranch")));
float powf(float, float) __attribute__((simd("notinbranch")));
}

#define ULC_FN static inline
ULC_FN float ulc_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
ULC_FN unsigned ulc_mulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
ULC_FN float ulc_rsqrt(float x) { return 1.0f / sqrtf(x); }
#include "ulc_scalar.h"

/** A kernel of the program: its name in schedule.txt and the function running it over its buffers. */
struct ulc_kernel_entry {
  const char* name;
  /** Runs the kernel on its buffers (inputs, then the output) with the run's {seed, step} words. */
  void (*run)(void* const* buffers, const unsigned* rng);
};

// The CBLAS interface, declared here so that a build needs only the library (libopenblas0), not its headers.
extern "C" void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                            float beta, float* c, int ldc);
enum { ulc_row_major = 101, ulc_no_trans = 111, ulc_trans = 112 };

/** C = A·B for row-major A [m, k] and B [k, n], either given transposed; C is overwritten (beta 0) or added to (beta 1). */
static inline void ulc_gemm(bool ta, bool tb, int m, int n, int k, const float* a, const float* b, float beta, float* c) {
  cblas_sgemm(ulc_row_major, ta ? ulc_trans : ulc_no_trans, tb ? ulc_trans : ulc_no_trans, m, n, k, 1.0f, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

/** A batch of matrix products: C[i] = A[i]·B[i], A [m, k], B [k, n], either stored transposed. */
static inline void ulc_matmul(const float* a, const float* b, float* c, int batch, int m, int n, int k, bool ta, bool tb) {
  for (int i = 0; i < batch; ++i) ulc_gemm(ta, tb, m, n, k, a + (int64_t)i * m * k, b + (int64_t)i * k * n, 0.0f, c + (int64_t)i * m * n);
}

/** A convolution's geometry: x [N, C, H, W], w [O, C/G, KH, KW], y [N, O, OH, OW]. */
struct ulc_conv {
  int n, c, h, w, o, kh, kw, oh, ow, stride, pad, groups;
  int cg() const { return c / groups; }
  int og() const { return o / groups; }
  int plane() const { return oh * ow; }
  /** Rows of the im2col matrix: one per (channel, tap) of a group. */
  int taps() const { return cg() * kh * kw; }
  /** Columns of the batch's im2col matrix: one per (image, output position). */
  int64_t columns() const { return (int64_t)n * plane(); }
};

/** Scratch matrices (three, by `slot`), grown once and kept: a steady step allocates nothing. */
static inline float* ulc_workspace(int slot, size_t floats) {
  static std::vector<float> space[3];
  if (space[slot].size() < floats) space[slot].resize(floats);
  return space[slot].data();
}

/**
 * The batch's im2col matrix col [taps, N·OH·OW] of group `k`: row (c, kh, kw), column (image, oh, ow) holds the
 * input under that tap, 0 in the padding. One matrix for the whole batch makes one large GEMM of the per-image
 * small ones.
 */
static inline void ulc_im2col(const ulc_conv& g, int k, const float* x, float* col) {
  const int plane = g.plane();
#pragma omp parallel for collapse(2) schedule(static) if (g.taps() * g.columns() >= 32768)
  for (int row = 0; row < g.taps(); ++row)
    for (int n = 0; n < g.n; ++n) {
      const int c = row / (g.kh * g.kw), ki = row / g.kw % g.kh, kj = row % g.kw;
      const float* src = x + ((int64_t)n * g.c + (int64_t)k * g.cg() + c) * g.h * g.w;
      float* dst = col + row * g.columns() + (int64_t)n * plane;
      for (int i = 0; i < g.oh; ++i) {
        const int y = i * g.stride + ki - g.pad;
        float* out = dst + i * g.ow;
        if (y < 0 || y >= g.h) {
          std::memset(out, 0, sizeof(float) * g.ow);
          continue;
        }
        for (int j = 0; j < g.ow; ++j) {
          const int x0 = j * g.stride + kj - g.pad;
          out[j] = x0 >= 0 && x0 < g.w ? src[y * g.w + x0] : 0.0f;
        }
      }
    }
}

/** The adjoint of im2col: each entry of col [taps, N·OH·OW] added into group `k` of x at the position under its tap. */
static inline void ulc_col2im(const ulc_conv& g, int k, const float* col, float* x) {
  const int plane = g.plane(), taps = g.kh * g.kw;
  // Parallel over (image, channel): the taps of one channel add into the same plane.
#pragma omp parallel for collapse(2) schedule(static) if (g.taps() * g.columns() >= 32768)
  for (int n = 0; n < g.n; ++n)
    for (int c = 0; c < g.cg(); ++c) {
      float* dst = x + ((int64_t)n * g.c + (int64_t)k * g.cg() + c) * g.h * g.w;
      std::memset(dst, 0, sizeof(float) * g.h * g.w);
      for (int t = 0; t < taps; ++t) {
        const int ki = t / g.kw, kj = t % g.kw;
        const float* src = col + ((int64_t)c * taps + t) * g.columns() + (int64_t)n * plane;
        for (int i = 0; i < g.oh; ++i) {
          const int y = i * g.stride + ki - g.pad;
          if (y < 0 || y >= g.h) continue;
          for (int j = 0; j < g.ow; ++j) {
            const int x0 = j * g.stride + kj - g.pad;
            if (x0 >= 0 && x0 < g.w) dst[y * g.w + x0] += src[i * g.ow + j];
          }
        }
      }
    }
}

/**
 * Group `k` of an NCHW tensor t [N, O, OH·OW] as a matrix m [O/G, N·OH·OW] (to_matrix), or back (from_matrix):
 * the layout of the batch's GEMM.
 */
static inline void ulc_channels_to_matrix(const ulc_conv& g, int k, const float* t, float* m, bool to_matrix) {
  const int plane = g.plane();
#pragma omp parallel for collapse(2) schedule(static) if (g.og() * g.columns() >= 32768)
  for (int o = 0; o < g.og(); ++o)
    for (int n = 0; n < g.n; ++n) {
      float* row = m + o * g.columns() + (int64_t)n * plane;
      float* image = const_cast<float*>(t) + ((int64_t)n * g.o + (int64_t)k * g.og() + o) * plane;
      if (to_matrix) std::memcpy(row, image, sizeof(float) * plane);
      else std::memcpy(image, row, sizeof(float) * plane);
    }
}

/** y = conv2d(x, w): per group, y [O/G, N·OH·OW] = w [O/G, taps] · im2col(x). */
static inline void ulc_conv2d(const ulc_conv& g, const float* x, const float* w, float* y) {
  float* col = ulc_workspace(0, (size_t)g.taps() * g.columns());
  float* out = ulc_workspace(1, (size_t)g.og() * g.columns());
  for (int k = 0; k < g.groups; ++k) {
    ulc_im2col(g, k, x, col);
    ulc_gemm(false, false, g.og(), g.columns(), g.taps(), w + (int64_t)k * g.og() * g.taps(), col, 0.0f, out);
    ulc_channels_to_matrix(g, k, y, out, false);
  }
}

/**
 * dx = conv2d's input gradient. At stride 1 with a square kernel it is itself a convolution: of dy with the
 * kernel flipped and its channel axes swapped, padded by K - 1 - p; that GEMM sums over O/G·K² terms where the
 * col2im form below sums over only O/G, then scatters K² times as many values. Otherwise, per group,
 * col2im(wᵀ [taps, O/G] · dy [O/G, N·OH·OW]).
 */
static inline void ulc_conv2d_grad_input(const ulc_conv& g, const float* dy, const float* w, float* dx) {
  if (g.stride == 1 && g.kh == g.kw && g.pad <= g.kh - 1) {
    const ulc_conv t = {g.n, g.o, g.oh, g.ow, g.c, g.kh, g.kw, g.h, g.w, 1, g.kh - 1 - g.pad, g.groups};
    float* flipped = ulc_workspace(2, (size_t)g.o * g.taps());
    const int k2 = g.kh * g.kw;
    for (int k = 0; k < g.groups; ++k)
      for (int o = 0; o < g.og(); ++o)
        for (int c = 0; c < g.cg(); ++c)
          for (int i = 0; i < k2; ++i)
            flipped[(((int64_t)k * g.cg() + c) * g.og() + o) * k2 + (k2 - 1 - i)] = w[(((int64_t)k * g.og() + o) * g.cg() + c) * k2 + i];
    ulc_conv2d(t, dy, flipped, dx);
    return;
  }
  float* col = ulc_workspace(0, (size_t)g.taps() * g.columns());
  float* grad = ulc_workspace(1, (size_t)g.og() * g.columns());
  for (int k = 0; k < g.groups; ++k) {
    ulc_channels_to_matrix(g, k, dy, grad, true);
    ulc_gemm(true, false, g.taps(), g.columns(), g.og(), w + (int64_t)k * g.og() * g.taps(), grad, 0.0f, col);
    ulc_col2im(g, k, col, dx);
  }
}

/** dw = conv2d's weight gradient: per group, dy [O/G, N·OH·OW] · im2col(x)ᵀ, the sum over the batch in one GEMM. */
static inline void ulc_conv2d_grad_weight(const ulc_conv& g, const float* x, const float* dy, float* dw) {
  float* col = ulc_workspace(0, (size_t)g.taps() * g.columns());
  float* grad = ulc_workspace(1, (size_t)g.og() * g.columns());
  for (int k = 0; k < g.groups; ++k) {
    ulc_im2col(g, k, x, col);
    ulc_channels_to_matrix(g, k, dy, grad, true);
    ulc_gemm(false, true, g.og(), g.taps(), g.columns(), grad, col, 0.0f, dw + (int64_t)k * g.og() * g.taps());
  }
}
