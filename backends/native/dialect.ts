// The C++ spelling of kernel expressions, shared by the CUDA and CPU targets: both compile with a C++ compiler
// (nvcc, g++) against the same scalar helpers (backends/native/cpp/ulc_scalar.h).
import type { DType } from "../../compiler/ir.js";
import { kernelOutputs, sxNodes, type Kernel, type Sx } from "../../compiler/kernel/ir.js";
import { C_BINARY, C_UNARY, call, calls, type Dialect } from "../c-like/expr.js";

/** Buffers hold float (f32, f16, and bools as 0/1) or int (i32). */
export const STORAGE: Record<DType, "float" | "int"> = { f32: "float", f16: "float", bool: "float", i32: "int" };

export const CPP: Dialect = {
  // INT_MIN has no literal: -2147483648 is the negation of a long.
  int: (v) => (v === -2147483648 ? "(-2147483647 - 1)" : String(v)),
  float: (s) => `${s}f`,
  bits: (b) => `ulc_as_float(0x${b.toString(16)}u)`,
  unary: { ...C_UNARY, ...calls({ exp: "expf", log: "logf", sqrt: "sqrtf", rsqrt: "ulc_rsqrt", sin: "sinf", cos: "cosf", tanh: "tanhf", abs: "fabsf", floor: "floorf", round_tf32: "ulc_round_tf32", round_bf16: "ulc_round_bf16" }) },
  // fmaxf drops a NaN operand; the interpreter's Math.max propagates it (ulc_max, overloaded for int).
  binary: { ...C_BINARY, maximum: call("ulc_max"), minimum: call("ulc_min") },
  // Signed overflow and x / 0 are undefined in C++ (x / 0 traps on a CPU): wrap as the interpreter does,
  // and x / 0 = x as in WGSL.
  intBinary: { add: call("ulc_iadd"), sub: call("ulc_isub"), mul: call("ulc_imul"), div: call("ulc_idiv") },
  absInt: call("abs"),
  select: (c, a, b) => `(${c} ? ${a} : ${b})`,
  toInt: (x) => `ulc_to_i32(${x})`,
  toFloat: (x) => `(float)(${x})`,
  toU32: (x) => `(unsigned)(${x})`,
  random: (dist, key, at) => `ulc_${dist}(seed, step, ${key}u, ${at})`,
};

/** CUDA's: the C++ spelling, with index division and remainder unsigned (expr.ts's Dialect says why that holds). */
export const CUDA: Dialect = {
  ...CPP,
  indexDiv: (a, c) => `(int)((unsigned)(${a}) / ${c}u)`,
  indexMod: (a, c) => `(int)((unsigned)(${a}) % ${c}u)`,
};

function usesRandom(x: Sx): boolean {
  return sxNodes(x).some((y) => y.k === "random");
}

/** Whether a kernel draws random numbers (and so reads the launch's {seed, step}). */
export function drawsRandom(k: Kernel): boolean {
  return kernelOutputs(k).some((o) => usesRandom(o.body)) || (k.reduce !== undefined && usesRandom(k.reduce.body));
}
