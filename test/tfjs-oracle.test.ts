// An independent oracle for the IR primitives: TensorFlow.js's CPU backend (@tensorflow/tfjs-core and
// @tensorflow/tfjs-backend-cpu, devDependencies pinned at 4.22.0; pure JavaScript, nothing is downloaded or
// compiled at run time). For each primitive TF.js has, on random inputs, random shapes (size-1 dims included)
// and a fixed fast-check seed, it compares
//   (a) the forward value of our interpreter, in "f64" and in "f32" mode, with TF.js's (float32), and
//   (b) the gradients of f = Σ c ⊙ op(x…) (c random, fixed) that `vjp` appends to the graph, run by the
//       interpreter in both modes, with tf.grads of the same function in TF.js.
// Inputs are float32 numbers (Math.fround), so both sides start from the same values.
//
// Tolerances (U = 2^-24, float32's unit roundoff). TF.js's CPU kernels compute each element in JS doubles from
// float32 inputs and store the result to a Float32Array, i.e. round once to float32; its gradients are chains
// of such ops (a few roundings each). Three kinds of check:
//  - EXACT: bitwise equality (for float outputs, after rounding our f64 value to float32; ±0 not told apart).
//    For ops without arithmetic (data movement,
//    select, compare, cast, neg, abs, floor, maximum, minimum, reduce max), and for add, sub, mul, div, sqrt:
//    these are correctly rounded in TF.js (double then float32 rounding of +, −, ×, ÷, √ of float32 operands is
//    innocuous, 53 ≥ 2·24 + 2), and our f64 value rounded to float32, and our f32 value, are the same number.
//  - REL(r): |ours − tf| ≤ r·max(|ours|, |tf|) per element. Forward transcendental functions: r = 4U ≈ 2.4e-7
//    (TF.js rounds Math.exp/log/sin/… once, error ≤ U; our f32 mode rounds once too, so ≤ 1 ulp ≤ 2U apart
//    when the two double formulas round differently, e.g. sigmoid for x < 0); this is tighter than the 1e-5 one
//    would need for a float32 library with its own transcendental functions, and it holds. Element-wise
//    gradients: r = 1e-5. TF.js evaluates e.g. tanh' as dy·(1 − y·y) in float32 with y rounded, whose relative
//    error is ~3U·y²/(1 − y²) + 3U; each generator's domain keeps such cancellation factors below ~50 (tanh at
//    |x| ≤ 2: 13; sigmoid' = y(1 − y) at |x| ≤ 4: 54), so errors stay below ~2e-6 and r = 1e-5 leaves a margin of
//    5 or more (observed: ≤ 9e-7), while a wrong rule (a sign, a factor, a wrong argument) is off by O(1).
//  - SUM(L): |ours − tf| ≤ 2(L + 1)·U·S per element, for reductions, matmul, conv2d, avg_pool and the
//    gradients that sum (broadcast, upsample), where L is the number of terms summed into that element and
//    S = Σ|terms| is computed by running the same graph in f64 on |inputs| and |c| (exact for these ops and
//    their gradient graphs, which are multilinear with non-negative coefficients). (L + 1)·U·S bounds the error
//    of any float32 evaluation order of an L-term sum of products (Higham's γ_L, plus one rounding of the
//    product); the factor 2 covers our own f32 mode's rounding. (TF.js's CPU kernels actually accumulate in
//    double, so the observed errors are ~U·|result|, ≤ 0.33 of this tolerance.) Cancellation cannot hide a
//    wrong index: S is a sum of absolute values.
//
// Inputs are kept away from kinks and ties, where conventions legitimately differ (stated at each generator):
// abs at 0 (TF.js: step(x, −1), so −1 at 0; ours 0), maximum/minimum at a == b (TF.js gives all the cotangent to
// the first argument for both; ours splits it), reduce max at ties (TF.js gives each tied element the
// full cotangent; ours splits it), floor near integers, pow with a non-positive base, softplus beyond TF.js's
// thresholds ±13.94 (where it returns x or e^x instead of log(1 + e^x): ≤ 4.4e-7 relative, float32 noise but
// not a bitwise match), and casts through int32/bool in gradients (TF.js's Cast gradient passes the cotangent
// through unchanged, whatever the dtypes; ours is 0 a.e., the derivative of truncation).
//
// Covered, forward and gradient: the 12 unary and 7 binary functions, select (and select of each compare),
// reduce sum/max, batched matmul, conv2d (groups = 1, depthwise, general groups), reshape, transpose, broadcast,
// slice, concat, pad (negative widths emulated with tf.slice then tf.pad), upsample, avg_pool, cast f32 → f32.
// Forward only: the 6 compares, casts between f32/i32/bool, and int32 neg/abs/add/sub/mul/maximum/minimum/
// lt/eq. The gradients of conv2d, avg_pool and upsample exercise conv2d_grad_input, conv2d_grad_weight and
// avg_pool_grad. Not covered (no TF.js counterpart, or a different convention): input/param/constant/iota/
// random (leaves), stop_gradient, f16 (TF.js has no float16), int32 div and pow, the second-order rules of the
// *_grad ops.
//
// Found in TF.js (worked around, see `viaChannels`): its CPU ResizeNearestNeighborGrad is wrong for a batch > 1.
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { vjp } from "../compiler/autodiff.js";
import { BINARY_FNS, COMPARE_FNS, GraphBuilder, isRounding, UNARY_FNS, size, windowOut, type BinaryFn, type CompareFn, type DType, type RoundingFn, type UnaryFn } from "../compiler/ir.js";
import { interpret } from "../runtime/interpreter.js";
import { tensorOf, type Precision, type Tensor } from "../runtime/tensor.js";
import { mulberry32, type Rng } from "./support/prng.js";

const SEED = 20240611; // fast-check's seed: the runs are the same every time
const RUNS = 30;
const U = 2 ** -24;

// ---------------------------------------------------------------------------------------------------------
// TF.js setup. tfjs-core's Node entry (CommonJS) does not register any gradient: `@tensorflow/tfjs` does it by
// importing dist/register_all_gradients (ES modules with extension-less imports, which vitest transforms).
// Loading only the configs used here takes ~1 s instead of ~8 s for all of them. The registries are global
// (tfjs-core keeps them on globalThis, and tensors are recognised by shape, not by class identity), so
// configs loaded through this second copy of the module graph register with the engine of the first.

const GRADIENTS = [
  "Abs", "Add", "AvgPool", "BatchMatMul", "BroadcastTo", "Cast", "Concat", "Conv2D", "Cos", "DepthwiseConv2dNative",
  "Exp", "Floor", "Identity", "Log", "Max", "Maximum", "Minimum", "Multiply", "Neg", "PadV2", "Pow", "RealDiv",
  "Reshape", "ResizeNearestNeighbor", "Rsqrt", "Select", "Sigmoid", "Sin", "Slice", "Softplus", "Sqrt", "Sub",
  "Sum", "Tanh", "Tile", "Transpose",
]; // prettier-ignore

const network: string[] = [];
let numTensors = 0;

beforeAll(async () => {
  const modules = await Promise.all(GRADIENTS.map((n) => import(/* @vite-ignore */ `@tensorflow/tfjs-core/dist/gradients/${n}_grad.js`) as Promise<Record<string, unknown>>));
  for (const m of modules) for (const [k, v] of Object.entries(m)) if (k.endsWith("GradConfig")) tf.registerGradient(v as tf.GradConfig);
  tf.env().set("PROD", true); // silences the "install tfjs-node" advice
  // Nothing here should touch the network: record any attempt.
  const platform = tf.env().platform;
  platform.fetch = (path: string | Request) => {
    network.push(String(path));
    throw new Error("tfjs-oracle: TF.js tried to fetch " + String(path));
  };
  expect(await tf.setBackend("cpu")).toBe(true);
  numTensors = tf.memory().numTensors;
}, 60_000);

afterAll(() => {
  // every run disposes what it made
  expect(tf.memory().numTensors).toBe(numTensors);
});

// ---------------------------------------------------------------------------------------------------------
// Random values: fast-check draws the shapes and parameters (and shrinks them); a seeded generator fills in the
// values.

const f32 = Math.fround;
const uni = (r: Rng, lo: number, hi: number) => f32(lo + (hi - lo) * r());
const int = (r: Rng, lo: number, hi: number) => lo + Math.floor((hi - lo + 1) * r());
const sign = (r: Rng) => (r() < 0.5 ? -1 : 1);
type Gen = (r: Rng) => number;
const D = {
  range: (lo: number, hi: number): Gen => (r) => uni(r, lo, hi),
  /** |x| in [0.1, hi]: away from 0 (abs's kink, division by ~0). */
  awayFromZero: (hi: number): Gen => (r) => f32(sign(r) * uni(r, 0.1, hi)),
  /** At least 0.1 from the nearest integer (floor's jumps). */
  awayFromInt: (r: Rng) => f32(int(r, -5, 4) + uni(r, 0.1, 0.9)),
};
const fill = (n: number, r: Rng, gen: Gen) => Array.from({ length: n }, () => gen(r));

/** Distinct values at least 0.04 apart, shuffled: no ties for reduce max. */
function distinct(n: number, r: Rng): number[] {
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.map((k) => f32((k - n / 2) * 0.05 + uni(r, 0, 0.01)));
}

const dim = fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 4 }));
const shapeArb = (minRank: number, maxRank: number) => fc.array(dim, { minLength: minRank, maxLength: maxRank });
const valueSeed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

// ---------------------------------------------------------------------------------------------------------
// The checker.

type Spec = { readonly kind: "exact" } | { readonly kind: "rel"; readonly r: number } | { readonly kind: "sum"; readonly terms: number };
const EXACT: Spec = { kind: "exact" };
const rel = (r: number): Spec => ({ kind: "rel", r });
const sum = (terms: number): Spec => ({ kind: "sum", terms });
const FWD_TRANSCENDENTAL = rel(4 * U);
const GRAD_ELEMENTWISE = rel(1e-5);

interface Arg {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: readonly number[];
  /** Differentiate with respect to it (only f32 arguments). */
  readonly diff: boolean;
}

const arg = (shape: readonly number[], data: readonly number[], diff = true): Arg => ({ dtype: "f32", shape, data, diff });

interface Case {
  readonly args: readonly Arg[];
  /** Adds the op under test to the builder; `ids` are the argument nodes. */
  readonly ir: (b: GraphBuilder, ids: number[]) => number;
  /** The same function in TF.js, of tensors in the arguments' order. */
  readonly tf: (xs: tf.Tensor[]) => tf.Tensor;
  readonly fwd: Spec;
  /** One per differentiated argument (or one for all). */
  readonly grad?: Spec | readonly Spec[];
  /** Also checks TF.js's forward value against this (an independent plain-JS definition). */
  readonly tfForward?: (xs: readonly Arg[]) => number[];
}

const TF_DTYPE: Record<DType, "float32" | "int32" | "bool"> = { f32: "float32", f16: "float32", i32: "int32", bool: "bool" };

interface Ours {
  readonly y: Tensor;
  readonly grads: Tensor[];
}

function describeArgs(cs: Case): string {
  return cs.args.map((a) => `${a.dtype}[${a.shape}]`).join(", ");
}

function compare(what: string, spec: Spec, precision: Precision, float: boolean, ours: ArrayLike<number>, theirs: ArrayLike<number>, scale?: ArrayLike<number>): void {
  if (ours.length !== theirs.length) throw new Error(`${what}: ${ours.length} values vs TF.js's ${theirs.length}`);
  for (let i = 0; i < ours.length; i++) {
    const o = ours[i]!;
    const t = theirs[i]!;
    let ok: boolean;
    let tol = 0;
    switch (spec.kind) {
      case "exact":
        ok = o === t || (float && f32(o) === t); // (the sign of a zero is not compared)
        break;
      case "rel":
        tol = spec.r * Math.max(Math.abs(o), Math.abs(t));
        ok = Math.abs(o - t) <= tol;
        break;
      case "sum":
        tol = 2 * (spec.terms + 1) * U * Math.abs(scale![i]!);
        ok = Math.abs(o - t) <= tol;
        break;
    }
    if (!ok) {
      throw new Error(`${what} (${precision}) at flat index ${i}: ours ${o}, TF.js ${t}, difference ${Math.abs(o - t)}, ${spec.kind === "exact" ? "exact check" : `tolerance ${tol}`}`);
    }
  }
}

/** Runs one case: builds f = Σ c ⊙ op(x…) and its gradients, evaluates both sides, and compares. */
function checkCase(cs: Case, seed: number): void {
  const r = mulberry32(seed ^ 0x5bd1e995);
  const b = new GraphBuilder();
  const ids = cs.args.map((a, i) => b.add({ kind: "input", name: `x${i}` }, [], a.shape, a.dtype));
  const y = cs.ir(b, ids);
  const yNode = b.node(y);
  const outputs = [{ name: "y", node: y }];
  const diff = cs.args.flatMap((a, i) => (a.diff ? [i] : []));
  const cData = fill(size(yNode.shape), r, D.range(-1, 1));
  if (diff.length > 0) {
    const c = b.add({ kind: "input", name: "c" }, [], yNode.shape, "f32");
    const prod = b.add({ kind: "binary", fn: "mul" }, [c, y]);
    const f = b.add({ kind: "reduce", fn: "sum", axes: [...yNode.shape.keys()] }, [prod]);
    vjp(b, f, diff.map((i) => ids[i]!)).forEach((g, k) => outputs.push({ name: `g${k}`, node: g }));
  }
  const graph = b.build(outputs);
  const run = (precision: Precision, abs = false): Ours => {
    const m = (d: readonly number[]) => (abs ? d.map(Math.abs) : d);
    // i32 values live in a Float64Array in both modes (the interpreter's contract; tensorOf's "f32" would
    // round them to float32)
    const inputs = new Map<string, Tensor>(cs.args.map((a, i) => [`x${i}`, tensorOf(a.dtype, a.shape, m(a.data), a.dtype === "i32" ? "f64" : precision)]));
    if (diff.length > 0) inputs.set("c", tensorOf("f32", yNode.shape, m(cData), precision));
    const out = interpret(graph, { inputs }, { precision, seed: 0, step: 0 });
    return { y: out.get("y")!, grads: diff.map((_, k) => out.get(`g${k}`)!) };
  };

  // TF.js
  const xs = cs.args.map((a) => tf.tensor(a.data as number[], a.shape as number[], TF_DTYPE[a.dtype]));
  const cT = tf.tensor(cData, yNode.shape as number[], "float32");
  let tfY: number[];
  let tfShape: number[];
  let tfGrads: number[][] = [];
  try {
    [tfY, tfShape, tfGrads] = tf.tidy(() => {
      const yT = cs.tf(xs);
      const gs =
        diff.length === 0
          ? []
          : tf
              .grads((...dx: tf.Tensor[]) => {
                const all = [...xs];
                diff.forEach((i, k) => (all[i] = dx[k]!));
                return tf.sum(tf.mul(cT, cs.tf(all)));
              })(diff.map((i) => xs[i]!))
              .map((g) => Array.from(g.dataSync()));
      return [Array.from(yT.dataSync()), yT.shape, gs] as [number[], number[], number[][]];
    });
  } finally {
    tf.dispose([...xs, cT]);
  }

  const where = `[${describeArgs(cs)}]`;
  if (JSON.stringify(tfShape) !== JSON.stringify(yNode.shape)) throw new Error(`${where}: output shape [${yNode.shape}] vs TF.js's [${tfShape}]`);
  if (cs.tfForward) compare(`${where} TF.js forward vs its plain definition`, EXACT, "f64", true, cs.tfForward(cs.args), tfY);
  const needsScale = [cs.fwd, ...(Array.isArray(cs.grad) ? cs.grad : [cs.grad])].some((s) => s?.kind === "sum");
  const scale = needsScale ? run("f64", true) : undefined;
  for (const precision of ["f64", "f32"] as const) {
    const ours = run(precision);
    compare(`${where} forward`, cs.fwd, precision, yNode.dtype === "f32", ours.y.data, tfY, scale?.y.data);
    diff.forEach((i, k) => {
      const spec = Array.isArray(cs.grad) ? (cs.grad as Spec[])[k]! : (cs.grad as Spec);
      compare(`${where} gradient wrt argument ${i}`, spec, precision, true, ours.grads[k]!.data, tfGrads[k]!, scale?.grads[k]!.data);
    });
  }
}

/** A property test: `checkCase` on `runs` random cases. */
function prop<T>(name: string, arb: fc.Arbitrary<T>, make: (params: T, r: Rng) => Case, runs = RUNS): void {
  test(name, () => {
    fc.assert(
      fc.property(arb, valueSeed, (params, seed) => checkCase(make(params, mulberry32(seed)), seed)),
      { seed: SEED, numRuns: runs },
    );
  });
}

// ---------------------------------------------------------------------------------------------------------
// Element-wise ops.

const un = (fn: UnaryFn) => (b: GraphBuilder, [x]: number[]) => b.add({ kind: "unary", fn }, [x!]);
const bin = (fn: BinaryFn) => (b: GraphBuilder, [x, y]: number[]) => b.add({ kind: "binary", fn }, [x!, y!]);

// The roundings have no TF.js counterpart (test/interpreter.test.ts checks them on tables of hand-derived cases).
const UNARY: Record<Exclude<UnaryFn, RoundingFn>, { gen: Gen; tf: (x: tf.Tensor) => tf.Tensor; fwd: Spec; grad: Spec }> = {
  neg: { gen: D.range(-3, 3), tf: tf.neg, fwd: EXACT, grad: EXACT },
  exp: { gen: D.range(-8, 8), tf: tf.exp, fwd: FWD_TRANSCENDENTAL, grad: GRAD_ELEMENTWISE },
  // positive arguments for log, sqrt, rsqrt
  log: { gen: D.range(0.05, 20), tf: tf.log, fwd: FWD_TRANSCENDENTAL, grad: GRAD_ELEMENTWISE },
  sqrt: { gen: D.range(0.05, 20), tf: tf.sqrt, fwd: EXACT, grad: GRAD_ELEMENTWISE },
  rsqrt: { gen: D.range(0.05, 20), tf: tf.rsqrt, fwd: FWD_TRANSCENDENTAL, grad: GRAD_ELEMENTWISE },
  sin: { gen: D.range(-10, 10), tf: tf.sin, fwd: FWD_TRANSCENDENTAL, grad: GRAD_ELEMENTWISE },
  cos: { gen: D.range(-10, 10), tf: tf.cos, fwd: FWD_TRANSCENDENTAL, grad: GRAD_ELEMENTWISE },
  // |x| ≤ 2: TF.js's dy·(1 − y²) in float32 cancels by a factor ≤ 13 here
  tanh: { gen: D.range(-2, 2), tf: tf.tanh, fwd: FWD_TRANSCENDENTAL, grad: GRAD_ELEMENTWISE },
  // |x| ≤ 4: TF.js's dy·y·(1 − y) cancels by a factor ≤ 54 here
  sigmoid: { gen: D.range(-4, 4), tf: tf.sigmoid, fwd: FWD_TRANSCENDENTAL, grad: GRAD_ELEMENTWISE },
  // inside TF.js's thresholds ±13.94, where it computes log(1 + e^x) (in double); beyond, x or e^x
  softplus: { gen: D.range(-13, 13), tf: tf.softplus, fwd: FWD_TRANSCENDENTAL, grad: GRAD_ELEMENTWISE },
  // away from 0, where TF.js's derivative is −1 and ours 0
  abs: { gen: D.awayFromZero(3), tf: tf.abs, fwd: EXACT, grad: EXACT },
  // away from integers (jumps); the derivative is 0 on both sides
  floor: { gen: D.awayFromInt, tf: tf.floor, fwd: EXACT, grad: EXACT },
};

describe("unary", () => {
  for (const fn of UNARY_FNS) {
    if (isRounding(fn)) continue;
    const u = UNARY[fn];
    prop(fn, shapeArb(0, 4), (shape, r) => ({
      args: [arg(shape, fill(size(shape), r, u.gen))],
      ir: un(fn),
      tf: ([x]) => u.tf(x!),
      fwd: u.fwd,
      grad: u.grad,
    }));
  }
});

const BINARY: Record<BinaryFn, { gen: (r: Rng) => [number, number]; tf: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor; fwd: Spec; grad: Spec }> = {
  add: { gen: (r) => [uni(r, -3, 3), uni(r, -3, 3)], tf: tf.add, fwd: EXACT, grad: EXACT },
  sub: { gen: (r) => [uni(r, -3, 3), uni(r, -3, 3)], tf: tf.sub, fwd: EXACT, grad: EXACT },
  mul: { gen: (r) => [uni(r, -3, 3), uni(r, -3, 3)], tf: tf.mul, fwd: EXACT, grad: EXACT },
  // divisor away from 0
  div: { gen: (r) => [uni(r, -3, 3), D.awayFromZero(3)(r)], tf: tf.div, fwd: EXACT, grad: GRAD_ELEMENTWISE },
  // positive base (d/db = log(a)·a^b, and TF.js's and our conventions differ for a ≤ 0)
  pow: { gen: (r) => [uni(r, 0.3, 3), uni(r, -2.5, 2.5)], tf: tf.pow, fwd: FWD_TRANSCENDENTAL, grad: GRAD_ELEMENTWISE },
  // no ties: |a − b| ≥ 0.05 (TF.js gives a tie's cotangent to a, ours splits it)
  maximum: { gen: (r) => untied(r), tf: tf.maximum, fwd: EXACT, grad: EXACT },
  minimum: { gen: (r) => untied(r), tf: tf.minimum, fwd: EXACT, grad: EXACT },
};

function untied(r: Rng): [number, number] {
  const a = uni(r, -3, 3);
  return [a, f32(a + sign(r) * uni(r, 0.05, 2))];
}

function pairs(n: number, r: Rng, gen: (r: Rng) => [number, number]): [number[], number[]] {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < n; i++) {
    const [x, y] = gen(r);
    a.push(x);
    b.push(y);
  }
  return [a, b];
}

describe("binary", () => {
  for (const fn of BINARY_FNS) {
    const op = BINARY[fn];
    prop(fn, shapeArb(0, 4), (shape, r) => {
      const [a, b] = pairs(size(shape), r, op.gen);
      return { args: [arg(shape, a), arg(shape, b)], ir: bin(fn), tf: ([x, y]) => op.tf(x!, y!), fwd: op.fwd, grad: op.grad };
    });
  }
});

const COMPARE: Record<CompareFn, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor> = {
  lt: tf.less,
  le: tf.lessEqual,
  gt: tf.greater,
  ge: tf.greaterEqual,
  eq: tf.equal,
  ne: tf.notEqual,
};

/** Half the pairs tied (a == b), which is where lt/le, gt/ge, eq/ne differ. */
const maybeTied = (r: Rng): [number, number] => {
  const a = uni(r, -2, 2);
  return [a, r() < 0.5 ? a : uni(r, -2, 2)];
};

describe("compare", () => {
  for (const fn of COMPARE_FNS) {
    // Forward only: compare is nondifferentiable (a bool output).
    prop(fn, shapeArb(0, 4), (shape, r) => {
      const [a, b] = pairs(size(shape), r, maybeTied);
      return {
        args: [arg(shape, a, false), arg(shape, b, false)],
        ir: (g, [x, y]) => g.add({ kind: "compare", fn }, [x!, y!]),
        tf: ([x, y]) => COMPARE[fn](x!, y!),
        fwd: EXACT,
      };
    });
    // Through select: f = Σ c ⊙ select(a op b, a, b). Our rule gives the comparison no gradient; TF.js has no
    // gradient for Less & co. at all (tf.grad throws), so there the condition is a constant tensor made from the
    // same values (its forward values are TF.js's compare's, checked just above): a constant, as our
    // convention makes it. Ties are kept: select's gradient has no kink there.
    prop(`select(${fn}(a, b), a, b)`, shapeArb(0, 4), (shape, r) => {
      const [a, b] = pairs(size(shape), r, maybeTied);
      const cond = a.map((v, i) => (compareJs(fn, v, b[i]!) ? 1 : 0));
      return {
        args: [arg(shape, a), arg(shape, b)],
        ir: (g, [x, y]) => g.add({ kind: "select" }, [g.add({ kind: "compare", fn }, [x!, y!]), x!, y!]),
        tf: ([x, y]) => tf.where(tf.tensor(cond, shape, "bool"), x!, y!),
        fwd: EXACT,
        grad: EXACT,
      };
    });
  }
});

function compareJs(fn: CompareFn, a: number, b: number): boolean {
  return { lt: a < b, le: a <= b, gt: a > b, ge: a >= b, eq: a === b, ne: a !== b }[fn];
}

// int32 element-wise (forward only: nothing is differentiated through an integer). Both sides wrap mod 2^32:
// TF.js computes in double and stores to an Int32Array (ToInt32), ours wraps explicitly; values span the
// whole int32 range, extremes included. mul: |a|, |b| ≤ 2^26, so that TF.js's double product is exact before
// it wraps (beyond, TF.js rounds the product, where ours is Math.imul). abs: |x| ≤ 2^24, because TF.js's CPU
// Abs computes into a Float32Array even for int32 (larger values come back rounded to float32, and
// abs(−2^31) = 2^31 unwrapped). Not covered: div (TF.js's int32 div is floor division, ours truncates and has
// x / 0 = x) and pow.
const i32Gen =
  (limit: number): Gen =>
  (r) => {
    const k = r();
    if (k < 0.1) return 0;
    if (k < 0.2) return r() < 0.5 ? -limit : Math.min(limit, 2 ** 31 - 1);
    if (k < 0.6) return int(r, -100, 100);
    return int(r, -limit, Math.min(limit, 2 ** 31 - 1));
  };

describe("int32", () => {
  const I32: [string, number, Gen, (b: GraphBuilder, ids: number[]) => number, (xs: tf.Tensor[]) => tf.Tensor][] = [
    ["neg", 1, i32Gen(2 ** 31), un("neg"), ([x]) => tf.neg(x!)],
    ["abs", 1, i32Gen(2 ** 24), un("abs"), ([x]) => tf.abs(x!)],
    ["add", 2, i32Gen(2 ** 31), bin("add"), ([x, y]) => tf.add(x!, y!)],
    ["sub", 2, i32Gen(2 ** 31), bin("sub"), ([x, y]) => tf.sub(x!, y!)],
    ["mul", 2, i32Gen(2 ** 26), bin("mul"), ([x, y]) => tf.mul(x!, y!)],
    ["maximum", 2, i32Gen(2 ** 31), bin("maximum"), ([x, y]) => tf.maximum(x!, y!)],
    ["minimum", 2, i32Gen(2 ** 31), bin("minimum"), ([x, y]) => tf.minimum(x!, y!)],
    ["lt", 2, i32Gen(2 ** 31), (b, [x, y]) => b.add({ kind: "compare", fn: "lt" }, [x!, y!]), ([x, y]) => tf.less(x!, y!)],
    ["eq", 2, i32Gen(100), (b, [x, y]) => b.add({ kind: "compare", fn: "eq" }, [x!, y!]), ([x, y]) => tf.equal(x!, y!)],
  ];
  for (const [name, arity, gen, ir, tfFn] of I32) {
    prop(
      name,
      shapeArb(0, 4),
      (shape, r) => ({
        args: Array.from({ length: arity }, () => ({ dtype: "i32" as const, shape, data: fill(size(shape), r, gen), diff: false })),
        ir,
        tf: tfFn,
        fwd: EXACT,
      }),
      20,
    );
  }
});

describe("select", () => {
  prop("select", shapeArb(0, 4), (shape, r) => {
    const n = size(shape);
    return {
      args: [{ dtype: "bool", shape, data: fill(n, r, (r) => (r() < 0.5 ? 1 : 0)), diff: false }, arg(shape, fill(n, r, D.range(-3, 3))), arg(shape, fill(n, r, D.range(-3, 3)))],
      ir: (g, [c, x, y]) => g.add({ kind: "select" }, [c!, x!, y!]),
      tf: ([c, x, y]) => tf.where(c!, x!, y!),
      fwd: EXACT,
      grad: EXACT,
    };
  });
});

// ---------------------------------------------------------------------------------------------------------
// Reductions, matmul, conv2d.

/** A shape of rank ≥ 1 and a non-empty subset of its axes. */
const reduceArb = shapeArb(1, 4).chain((shape) =>
  fc.subarray([...shape.keys()], { minLength: 1 }).map((axes) => ({ shape, axes })),
);

describe("reduce", () => {
  prop("sum", reduceArb, ({ shape, axes }, r) => ({
    args: [arg(shape, fill(size(shape), r, D.range(-3, 3)))],
    ir: (g, [x]) => g.add({ kind: "reduce", fn: "sum", axes }, [x!]),
    tf: ([x]) => tf.sum(x!, axes, true),
    fwd: sum(axes.reduce((p, a) => p * shape[a]!, 1)),
    grad: EXACT, // the cotangent broadcast back
  }));
  // Distinct values (≥ 0.04 apart): no ties, where TF.js gives every tied element the whole cotangent and we
  // split it.
  prop("max", reduceArb, ({ shape, axes }, r) => ({
    args: [arg(shape, distinct(size(shape), r))],
    ir: (g, [x]) => g.add({ kind: "reduce", fn: "max", axes }, [x!]),
    tf: ([x]) => tf.max(x!, axes, true),
    fwd: EXACT,
    grad: EXACT,
  }));
});

describe("matmul", () => {
  const arb = fc.record({ batch: shapeArb(0, 2), m: fc.integer({ min: 1, max: 5 }), k: fc.integer({ min: 1, max: 6 }), n: fc.integer({ min: 1, max: 5 }) });
  prop("batched matmul", arb, ({ batch, m, k, n }, r) => {
    const sa = [...batch, m, k];
    const sb = [...batch, k, n];
    return {
      args: [arg(sa, fill(size(sa), r, D.range(-2, 2))), arg(sb, fill(size(sb), r, D.range(-2, 2)))],
      ir: (g, [a, b]) => g.add({ kind: "matmul" }, [a!, b!]),
      tf: ([a, b]) => tf.matMul(a!, b!),
      fwd: sum(k),
      grad: [sum(n), sum(m)], // dA = dC·Bᵀ sums over n, dB = Aᵀ·dC over m
    };
  });
});

// conv2d. Ours: NCHW input, [Cout, Cin/groups, KH, KW] weight, symmetric zero padding. TF.js: NHWC input, HWIO
// filter, explicit padding; the test transposes. groups = 1 is tf.conv2d; groups > 1 with one input channel
// per group (depthwise, any channel multiplier) is tf.depthwiseConv2d with the weight [C·M, 1, KH, KW]
// reshaped to [KH, KW, C, M] (output channel c·M + m is group c's m-th, as in ours); other groups > 1 are
// computed group by group with tf.conv2d on channel slices and concatenated (TF.js's conv2d has no groups).
type ConvParams = { n: number; groups: number; cinG: number; coutG: number; h: number; w: number; kh: number; kw: number; stride: number; padding: number };

const convArb = (groups: fc.Arbitrary<number>, cinG: fc.Arbitrary<number>) =>
  fc
    .record({
      n: fc.integer({ min: 1, max: 2 }),
      groups,
      cinG,
      coutG: fc.integer({ min: 1, max: 3 }),
      h: fc.integer({ min: 1, max: 7 }),
      w: fc.integer({ min: 1, max: 7 }),
      kh: fc.integer({ min: 1, max: 3 }),
      kw: fc.integer({ min: 1, max: 3 }),
      stride: fc.integer({ min: 1, max: 3 }),
      padding: fc.integer({ min: 0, max: 2 }),
    })
    .filter((p) => windowOut(p.h, p.kh, p.stride, p.padding) >= 1 && windowOut(p.w, p.kw, p.stride, p.padding) >= 1);

function tfConv(p: ConvParams, mode: "conv2d" | "depthwise" | "per-group") {
  return ([x, w]: tf.Tensor[]): tf.Tensor => {
    const xh = tf.transpose(x!, [0, 2, 3, 1]) as tf.Tensor4D; // NCHW → NHWC
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p.padding, p.padding], [p.padding, p.padding], [0, 0]];
    let y: tf.Tensor4D;
    if (mode === "depthwise") {
      const f = tf.reshape(tf.transpose(w!, [2, 3, 1, 0]), [p.kh, p.kw, p.groups, p.coutG]) as tf.Tensor4D;
      y = tf.depthwiseConv2d(xh, f, p.stride, pad);
    } else {
      const f = tf.transpose(w!, [2, 3, 1, 0]) as tf.Tensor4D; // OIHW → HWIO
      if (mode === "conv2d") y = tf.conv2d(xh, f, p.stride, pad);
      else {
        const parts = Array.from({ length: p.groups }, (_, g) =>
          tf.conv2d(tf.slice(xh, [0, 0, 0, g * p.cinG], [-1, -1, -1, p.cinG]), tf.slice(f, [0, 0, 0, g * p.coutG], [-1, -1, -1, p.coutG]), p.stride, pad),
        );
        y = tf.concat(parts, 3);
      }
    }
    return tf.transpose(y, [0, 3, 1, 2]);
  };
}

function convCase(p: ConvParams, r: Rng, mode: "conv2d" | "depthwise" | "per-group"): Case {
  const cin = p.groups * p.cinG;
  const cout = p.groups * p.coutG;
  const xs = [p.n, cin, p.h, p.w];
  const ws = [cout, p.cinG, p.kh, p.kw];
  const ho = windowOut(p.h, p.kh, p.stride, p.padding);
  const wo = windowOut(p.w, p.kw, p.stride, p.padding);
  return {
    args: [arg(xs, fill(size(xs), r, D.range(-2, 2))), arg(ws, fill(size(ws), r, D.range(-2, 2)))],
    ir: (g, [x, w]) => g.add({ kind: "conv2d", stride: p.stride, padding: p.padding, groups: p.groups }, [x!, w!]),
    tf: tfConv(p, mode),
    fwd: sum(p.cinG * p.kh * p.kw),
    // dx: each input pixel meets ≤ coutG·KH·KW (output channel, tap) pairs; dw: sums over n, oh, ow
    grad: [sum(p.coutG * p.kh * p.kw), sum(p.n * ho * wo)],
  };
}

describe("conv2d", () => {
  prop("groups = 1 (tf.conv2d)", convArb(fc.constant(1), fc.integer({ min: 1, max: 3 })), (p, r) => convCase(p, r, "conv2d"), 25);
  prop("depthwise: groups = Cin > 1 (tf.depthwiseConv2d)", convArb(fc.integer({ min: 2, max: 3 }), fc.constant(1)), (p, r) => convCase(p, r, "depthwise"), 25);
  prop("groups > 1, several channels per group (group by group)", convArb(fc.integer({ min: 2, max: 3 }), fc.integer({ min: 1, max: 3 })), (p, r) => convCase(p, r, "per-group"), 25);
});

// ---------------------------------------------------------------------------------------------------------
// Data movement. No arithmetic: exact, except the gradients that sum (broadcast, upsample).

function shuffle<T>(xs: T[], r: Rng): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

function primeFactors(n: number): number[] {
  const out: number[] = [];
  for (let p = 2; n > 1; p++) while (n % p === 0) (out.push(p), (n /= p));
  return out;
}

describe("data movement", () => {
  prop("reshape", shapeArb(0, 4), (shape, r) => {
    // a random shape with the same element count: the prime factors regrouped, with some 1s
    const to: number[] = [];
    for (const p of shuffle(shape.flatMap(primeFactors), r)) {
      if (to.length === 0 || r() < 0.5) to.push(p);
      else to[to.length - 1]! *= p;
    }
    for (let k = int(r, 0, 2); k > 0; k--) to.splice(int(r, 0, to.length), 0, 1);
    return {
      args: [arg(shape, fill(size(shape), r, D.range(-3, 3)))],
      ir: (g, [x]) => g.add({ kind: "reshape" }, [x!], to),
      tf: ([x]) => tf.reshape(x!, to),
      fwd: EXACT,
      grad: EXACT,
    };
  });

  prop("transpose", shapeArb(1, 5), (shape, r) => {
    const perm = shuffle([...shape.keys()], r);
    return {
      args: [arg(shape, fill(size(shape), r, D.range(-3, 3)))],
      ir: (g, [x]) => g.add({ kind: "transpose", perm }, [x!]),
      tf: ([x]) => tf.transpose(x!, perm),
      fwd: EXACT,
      grad: EXACT,
    };
  });

  prop("broadcast (tf.broadcastTo)", shapeArb(1, 4), (to, r) => {
    const from = to.map((d) => (r() < 0.5 ? 1 : d));
    return {
      args: [arg(from, fill(size(from), r, D.range(-3, 3)))],
      ir: (g, [x]) => g.add({ kind: "broadcast" }, [x!], to),
      tf: ([x]) => tf.broadcastTo(x!, to),
      fwd: EXACT,
      grad: sum(size(to) / size(from)), // the gradient sums the copies
    };
  });

  prop("slice", shapeArb(1, 4), (shape, r) => {
    const axis = int(r, 0, shape.length - 1);
    const start = int(r, 0, shape[axis]! - 1);
    const end = int(r, start + 1, shape[axis]!);
    return {
      args: [arg(shape, fill(size(shape), r, D.range(-3, 3)))],
      ir: (g, [x]) => g.add({ kind: "slice", axis, start, end }, [x!]),
      tf: ([x]) =>
        tf.slice(
          x!,
          shape.map((_, i) => (i === axis ? start : 0)),
          shape.map((d, i) => (i === axis ? end - start : d)),
        ),
      fwd: EXACT,
      grad: EXACT,
    };
  });

  prop("concat", fc.record({ shape: shapeArb(1, 4), count: fc.integer({ min: 1, max: 3 }) }), ({ shape, count }, r) => {
    const axis = int(r, 0, shape.length - 1);
    const shapes = Array.from({ length: count }, () => shape.map((d, i) => (i === axis ? int(r, 1, 3) : d)));
    return {
      args: shapes.map((s) => arg(s, fill(size(s), r, D.range(-3, 3)))),
      ir: (g, ids) => g.add({ kind: "concat", axis }, ids),
      tf: (xs) => tf.concat(xs, axis),
      fwd: EXACT,
      grad: EXACT,
    };
  });

  // Widths in [−2, 2]; a negative width crops (TF.js's pad takes none: emulated as tf.slice then tf.pad), and
  // at least one element of each axis is kept.
  prop("pad (negative widths via tf.slice)", shapeArb(1, 4), (shape, r) => {
    const widths = shape.map((d) => {
      const lo = int(r, Math.max(-2, 1 - d), 2);
      const hi = int(r, Math.max(-2, 1 - d - Math.min(lo, 0)), 2);
      return [lo, hi] as const;
    });
    const value = uni(r, -2, 2);
    return {
      args: [arg(shape, fill(size(shape), r, D.range(-3, 3)))],
      ir: (g, [x]) => g.add({ kind: "pad", widths, value }, [x!]),
      tf: ([x]) => {
        const cropped = tf.slice(
          x!,
          widths.map(([lo]) => Math.max(0, -lo)),
          widths.map(([lo, hi], i) => shape[i]! - Math.max(0, -lo) - Math.max(0, -hi)),
        );
        return tf.pad(
          cropped,
          widths.map(([lo, hi]) => [Math.max(0, lo), Math.max(0, hi)] as [number, number]),
          value,
        );
      },
      fwd: EXACT,
      grad: EXACT,
    };
  });
});

// ---------------------------------------------------------------------------------------------------------
// upsample and avg_pool: ours act on the last two dims of any rank ≥ 2; TF.js's take NHWC.

/** avg_pool: rank 4 (NCHW) is transposed to NHWC; other ranks are reshaped to [batch, H, W, 1]. */
function viaNhwc(x: tf.Tensor, op: (x4: tf.Tensor4D) => tf.Tensor4D): tf.Tensor {
  const s = x.shape;
  if (s.length === 4) return tf.transpose(op(tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D), [0, 3, 1, 2]);
  const [h, w] = s.slice(-2) as [number, number];
  const y = op(tf.reshape(x, [size(s.slice(0, -2)), h, w, 1]) as tf.Tensor4D);
  return tf.reshape(y, [...s.slice(0, -2), y.shape[1], y.shape[2]]);
}

/**
 * upsample: every leading dim is folded into the channels of a single NHWC image, [...lead, H, W] →
 * [1, H, W, B], because TF.js 4.22's CPU ResizeNearestNeighborGrad is wrong for a batch > 1: it reads dy at
 * `batchOffset + dyR·dyStrides[1]` with batchOffset = b·imagesStrides[0], the *input's* batch stride, so image
 * b ≥ 1 gets another image's cotangent (tf.grad of Σ c ⊙ resizeNearestNeighbor(x, [2, 2]) for x of shape
 * [2, 1, 1, 1] gives x[1] the sum c[0,0,1] + c[0,1,0] + c[0,1,1] + c[1,0,0] instead of Σ c[1]).
 */
function viaChannels(x: tf.Tensor, op: (x4: tf.Tensor4D) => tf.Tensor4D): tf.Tensor {
  const s = x.shape;
  const [h, w] = s.slice(-2) as [number, number];
  const lead = s.slice(0, -2);
  const img = tf.reshape(tf.transpose(tf.reshape(x, [size(lead), h, w]), [1, 2, 0]), [1, h, w, size(lead)]) as tf.Tensor4D;
  const y = op(img);
  const [, ho, wo] = y.shape;
  return tf.reshape(tf.transpose(tf.reshape(y, [ho, wo, size(lead)]), [2, 0, 1]), [...lead, ho, wo]);
}

describe("window ops", () => {
  // tf.image.resizeNearestNeighbor with alignCorners = false, halfPixelCenters = false picks source index
  // floor(i·(H / (H·f))); `tfForward` checks that this is exactly the repeat floor(i / f) for the factors
  // tested (1–4), before our interpreter is compared with it.
  prop("upsample (tf.image.resizeNearestNeighbor)", fc.record({ shape: shapeArb(2, 4), factor: fc.integer({ min: 1, max: 4 }) }), ({ shape, factor }, r) => ({
    args: [arg(shape, fill(size(shape), r, D.range(-3, 3)))],
    ir: (g, [x]) => g.add({ kind: "upsample", factor }, [x!]),
    tf: ([x]) => viaChannels(x!, (x4) => tf.image.resizeNearestNeighbor(x4, [x4.shape[1] * factor, x4.shape[2] * factor], false, false)),
    fwd: EXACT,
    grad: sum(factor * factor), // each input pixel's gradient sums its f×f copies
    tfForward: ([a]) => {
      const [h, w] = a!.shape.slice(-2) as [number, number];
      const out: number[] = [];
      for (let t = 0; t < size(a!.shape.slice(0, -2)); t++)
        for (let i = 0; i < h * factor; i++) for (let j = 0; j < w * factor; j++) out.push(a!.data[(t * h + Math.floor(i / factor)) * w + Math.floor(j / factor)]!);
      return out;
    },
  }));

  const poolArb = fc
    .record({ shape: shapeArb(2, 4), size: fc.integer({ min: 1, max: 3 }), stride: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 1, max: 6 }), w: fc.integer({ min: 1, max: 6 }) })
    .filter((p) => p.h >= p.size && p.w >= p.size);
  prop("avg_pool (tf.avgPool, valid padding)", poolArb, (p, r) => {
    const shape = [...p.shape.slice(0, -2), p.h, p.w];
    return {
      args: [arg(shape, fill(size(shape), r, D.range(-3, 3)))],
      ir: (g, [x]) => g.add({ kind: "avg_pool", size: p.size, stride: p.stride }, [x!]),
      tf: ([x]) => viaNhwc(x!, (x4) => tf.avgPool(x4, p.size, p.stride, "valid")),
      // a window sum of size² terms and a division; a pixel is in ≤ size² windows
      fwd: sum(p.size * p.size + 1),
      grad: sum(p.size * p.size + 1),
    };
  });
});

// ---------------------------------------------------------------------------------------------------------
// cast. Forward between f32, i32 and bool (f16: TF.js has none). Values within ±100, some integral, some 0:
// float → int32 truncates toward zero on both sides (TF.js: Int32Array.from; ours also saturates, which this
// range does not reach), → bool is x ≠ 0. The gradient is compared for f32 → f32 only: TF.js's Cast gradient
// passes the cotangent through whatever the dtypes (so f32 → i32 → f32 gets gradient 1 there), while ours is 0
// through an integer or bool, the a.e. derivative of truncation.

describe("cast", () => {
  const pairsOf: [DType, DType][] = [
    ["f32", "f32"],
    ["f32", "i32"],
    ["f32", "bool"],
    ["i32", "f32"],
    ["i32", "bool"],
    ["bool", "f32"],
    ["bool", "i32"],
  ];
  const value: Record<DType, Gen> = {
    f32: (r) => [0, int(r, -100, 100), f32(int(r, -100, 100) + 0.5), uni(r, -100, 100)][int(r, 0, 3)]!,
    f16: (r) => r(),
    i32: (r) => (r() < 0.2 ? 0 : int(r, -100, 100)),
    bool: (r) => (r() < 0.5 ? 1 : 0),
  };
  for (const [from, to] of pairsOf) {
    prop(`${from} → ${to}`, shapeArb(0, 4), (shape, r) => ({
      args: [{ dtype: from, shape, data: fill(size(shape), r, value[from]), diff: from === "f32" && to === "f32" }],
      ir: (g, [x]) => g.add({ kind: "cast" }, [x!], undefined, to),
      tf: ([x]) => tf.cast(x!, TF_DTYPE[to]),
      fwd: EXACT,
      grad: EXACT,
    }));
  }
});

test("TF.js made no network request", () => {
  expect(network).toEqual([]);
});
