// Helpers of the kernels ulc generates for the CPU (program.cpp includes this file): the scalar semantics shared
// with CUDA (ulc_scalar.h), the kernel table's entry, and the contractions that go to oneDNN: matmul through its
// sgemm, conv2d and its two gradients through its convolution primitives. Generated loops are parallel with
// OpenMP, and so is oneDNN (Debian builds it on OpenMP): one team of threads for both.
#pragma once

#include <dnnl.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
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

/**
 * A batch of matrix products, C[i] = A[i]·B[i] with row-major A [m, k] and B [k, n], either stored transposed:
 * oneDNN's sgemm (AVX-512 where there is one).
 */
static inline void ulc_matmul(const float* a, const float* b, float* c, int batch, int m, int n, int k, bool ta, bool tb) {
  for (int i = 0; i < batch; ++i)
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a + (int64_t)i * m * k, ta ? m : k, b + (int64_t)i * k * n, tb ? k : n, 0.0f, c + (int64_t)i * m * n, n);
}

/** A convolution's geometry: x [N, C, H, W], w [O, C/G, KH, KW], y [N, O, OH, OW]. */
struct ulc_conv {
  int n, c, h, w, o, kh, kw, oh, ow, stride, pad, groups;
};

enum ulc_conv_pass { ulc_conv_forward, ulc_conv_backward_data, ulc_conv_backward_weights };

static inline dnnl::engine& ulc_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

static inline dnnl::stream& ulc_stream() {
  static dnnl::stream stream(ulc_engine());
  return stream;
}

/**
 * An operand of a oneDNN primitive: the kernel's buffer in its plain layout, and the layout the primitive
 * chose (blocked, for its vector width) with the reorder between them when the two differ.
 */
struct ulc_dnnl_operand {
  int arg;
  dnnl::memory plain, chosen;
  dnnl::reorder move;
  bool reordered;

  ulc_dnnl_operand(int arg, const dnnl::memory::desc& plain_desc, const dnnl::memory::desc& chosen_desc, bool output)
      : arg(arg), plain(plain_desc, ulc_engine(), DNNL_MEMORY_NONE), reordered(plain_desc != chosen_desc) {
    chosen = reordered ? dnnl::memory(chosen_desc, ulc_engine()) : plain;
    if (reordered) move = output ? dnnl::reorder(chosen, plain) : dnnl::reorder(plain, chosen);
  }
};

/**
 * One pass of a convolution (forward, or the gradient of its input or of its weights) as a oneDNN primitive,
 * created on the first call (oneDNN compiles its kernel for this shape and this processor) and kept. Inputs
 * and output are plain NCHW and OIHW buffers; the primitive works in the layouts it prefers, reordering on the
 * way in and out.
 */
class ulc_dnnl_conv {
 public:
  ulc_dnnl_conv(const ulc_conv& g, ulc_conv_pass pass) {
    using dnnl::memory;
    const memory::dims x{g.n, g.c, g.h, g.w}, y{g.n, g.o, g.oh, g.ow}, strides{g.stride, g.stride}, pad{g.pad, g.pad};
    const memory::dims w = g.groups == 1 ? memory::dims{g.o, g.c, g.kh, g.kw} : memory::dims{g.groups, g.o / g.groups, g.c / g.groups, g.kh, g.kw};
    const auto f32 = memory::data_type::f32;
    const memory::desc xp(x, f32, memory::format_tag::nchw), yp(y, f32, memory::format_tag::nchw),
        wp(w, f32, g.groups == 1 ? memory::format_tag::oihw : memory::format_tag::goihw);
    const memory::desc xa(x, f32, memory::format_tag::any), ya(y, f32, memory::format_tag::any), wa(w, f32, memory::format_tag::any);
    const auto direct = dnnl::algorithm::convolution_direct;
    const dnnl::convolution_forward::primitive_desc forward(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, direct, xa, wa, ya, strides, pad, pad), ulc_engine());
    if (pass == ulc_conv_forward) {
      primitive_ = dnnl::convolution_forward(forward);
      operands_ = {{DNNL_ARG_SRC, xp, forward.src_desc(), false}, {DNNL_ARG_WEIGHTS, wp, forward.weights_desc(), false}, {DNNL_ARG_DST, yp, forward.dst_desc(), true}};
    } else if (pass == ulc_conv_backward_data) {
      const dnnl::convolution_backward_data::primitive_desc backward(dnnl::convolution_backward_data::desc(direct, xa, wa, ya, strides, pad, pad), ulc_engine(), forward);
      primitive_ = dnnl::convolution_backward_data(backward);
      operands_ = {{DNNL_ARG_DIFF_DST, yp, backward.diff_dst_desc(), false}, {DNNL_ARG_WEIGHTS, wp, backward.weights_desc(), false},
                   {DNNL_ARG_DIFF_SRC, xp, backward.diff_src_desc(), true}};
    } else {
      const dnnl::convolution_backward_weights::primitive_desc backward(dnnl::convolution_backward_weights::desc(direct, xa, wa, ya, strides, pad, pad), ulc_engine(),
                                                                        forward);
      primitive_ = dnnl::convolution_backward_weights(backward);
      operands_ = {{DNNL_ARG_SRC, xp, backward.src_desc(), false}, {DNNL_ARG_DIFF_DST, yp, backward.diff_dst_desc(), false},
                   {DNNL_ARG_DIFF_WEIGHTS, wp, backward.diff_weights_desc(), true}};
    }
    for (const auto& o : operands_) args_[o.arg] = o.chosen;
  }

  /** The pass on the kernel's buffers: its two inputs, then its output (the op's order in the graph IR). */
  void run(const float* a, const float* b, float* out) {
    void* buffers[3] = {const_cast<float*>(a), const_cast<float*>(b), out};
    dnnl::stream& stream = ulc_stream();
    for (int i = 0; i < 3; ++i) {
      auto& o = operands_[i];
      o.plain.set_data_handle(buffers[i]);
      if (o.reordered && i < 2) o.move.execute(stream, o.plain, o.chosen);
    }
    primitive_.execute(stream, args_);
    if (operands_[2].reordered) operands_[2].move.execute(stream, operands_[2].chosen, operands_[2].plain);
    stream.wait();
  }

 private:
  dnnl::primitive primitive_;
  std::vector<ulc_dnnl_operand> operands_;
  std::unordered_map<int, dnnl::memory> args_;
};
