// The reference interpreter of the graph IR (compiler/ir.ts): the oracle every backend is compared with.
// It is meant to be obviously right first and fast enough second (plain typed-array loops, no per-element
// allocation); it is never the thing that trains models for real.
//
// What the two precisions mean (this defines "the f64 reference" and "the f32 reference"):
//  - "f64": every floating-point value (f32 and f16 dtypes alike) is a float64; nothing is rounded. This is
//    the idealised real-number reference.
//  - "f32": every node's result is computed in float64 from its (already rounded) inputs and then rounded
//    once, to float32 (round to nearest even) for f32 nodes and to float16 for f16 nodes, and stored in a
//    Float32Array. Element-wise ops are so correctly rounded (add, sub, mul, div, sqrt exactly so; exp, log,
//    ... as far as Math.* is accurate). Reductions, matmul, conv2d and its gradients, and avg_pool accumulate in
//    float64 and round the final sum once: a GPU that accumulates in float32 differs from this by its own
//    accumulation error, which is what tolerances in backend tests are for.
//
// Integer and boolean tensors (the same in both precisions):
//  - i32 values are stored in a Float64Array even in f32 mode (a Float32Array cannot hold every i32).
//    Arithmetic on i32 wraps mod 2^32 (add, sub, neg, abs via ToInt32; mul via Math.imul); div truncates toward
//    zero, and x / 0 = x (WGSL's rule; CUDA leaves it undefined). Float functions of an i32 (exp, ...) are
//    truncated toward zero and wrapped.
//  - cast to i32 truncates toward zero and saturates to [-2^31, 2^31 - 1]; NaN gives 0 (WGSL's and CUDA's
//    __float2int_rz rule).
//  - bool values are 0 or 1 (stored like floats of the precision); cast to bool is x != 0, so NaN gives 1.
//  - cast to f16 rounds to float16 (nearest even, overflow to ±Infinity) in f32 mode; in f64 mode it is the
//    identity, like every other float rounding.
//
// Other semantic choices, which backends must match or tolerate:
//  - maximum, minimum and reduce max propagate NaN (Math.max/Math.min); pow is Math.pow.
//  - sigmoid(x) = 1/(1+e^-x) for x ≥ 0 and e^x/(1+e^x) otherwise; softplus(x) = max(x, 0) + log1p(e^-|x|);
//    rsqrt(x) = 1/sqrt(x). None overflows to NaN for large |x|.
//  - round_tf32(x) rounds x to f32, then to TF32 (10 mantissa bits, ties away from zero; compiler/scalar.ts), in
//    both precisions: a tf32 Program's contractions read such operands, whose products are exact in float32;
//    round_bf16(x) likewise to bfloat16 (7 mantissa bits, ties to even), for a bf16 Program's.
//  - random: element i of the node's stream, as defined in runtime/random.ts, at options.seed/options.step.
//  - all_reduce: the identity (the mean over the one process there is).
//
// `interpret` evaluates only the nodes the outputs need, reads chains of movement ops through one composed view,
// and drops intermediate values after their last use; `evaluate` evaluates every node, one op at a time, and
// keeps every value (autodiff tests need intermediates; view tests compare the two).
import { type BinaryFn, type CompareFn, type DType, type Graph, type Node, type UnaryFn, size, strides, verify, windowOut } from "../compiler/ir.js";
import { roundBf16, roundTf32, saturateToI32, sigmoid, softplus } from "../compiler/scalar.js";
import { movementChains, type View } from "../compiler/view.js";
import { randomNormal, randomUniform } from "./random.js";
import type { Precision, Tensor } from "./tensor.js";

export interface InterpretEnv {
  readonly inputs?: ReadonlyMap<string, Tensor>;
  readonly params?: ReadonlyMap<string, Tensor>;
}

export interface InterpretOptions {
  readonly precision: Precision;
  /** The seed of the random streams (taken mod 2^32). */
  readonly seed: number;
  /** The step of the random streams (taken mod 2^32). */
  readonly step: number;
}

export class InterpretError extends Error {}

type Data = Float64Array | Float32Array;

/** Evaluates the graph and returns its named outputs. */
export function interpret(graph: Graph, env: InterpretEnv, options: InterpretOptions): Map<string, Tensor> {
  verify(graph);
  const n = graph.nodes.length;
  // A movement node reads its chain's source through one composed view (compiler/view.ts), so the movement
  // nodes in between are never materialised.
  const chains = movementChains(graph);
  const deps = (i: number) => {
    const c = chains[i];
    return c ? [c.source] : graph.nodes[i]!.inputs;
  };
  // Which nodes the outputs need, and the last node that reads each one.
  const needed = new Uint8Array(n);
  for (const o of graph.outputs) needed[o.node] = 1;
  for (let i = n - 1; i >= 0; i--) if (needed[i]) for (const x of deps(i)) needed[x] = 1;
  const lastUse = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) if (needed[i]) for (const x of deps(i)) lastUse[x] = i;
  const isOutput = new Uint8Array(n);
  for (const o of graph.outputs) isOutput[o.node] = 1;

  const values: (Tensor | undefined)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if (!needed[i]) continue;
    const node = graph.nodes[i]!;
    const chain = chains[i];
    values[i] = chain ? readView(node, values[chain.source]!, chain.view, options.precision) : evalNode(node, values, env, options);
    for (const x of deps(i)) if (lastUse[x] === i && !isOutput[x]) values[x] = undefined;
  }
  const out = new Map<string, Tensor>();
  for (const o of graph.outputs) out.set(o.name, values[o.node]!);
  return out;
}

/** Evaluates every node of the graph; the result is indexed by node id. */
export function evaluate(graph: Graph, env: InterpretEnv, options: InterpretOptions): Tensor[] {
  verify(graph);
  const values: Tensor[] = [];
  for (const node of graph.nodes) values.push(evalNode(node, values, env, options));
  return values;
}

// ------------------------------------------------------------------------------------------ one node

/** A movement chain's result: one strided gather from its source. */
function readView(node: Node, source: Tensor, view: View, precision: Precision): Tensor {
  const y = alloc(node.dtype, size(node.shape), precision);
  copyStrided(source.data, view.offset, view.strides, y, 0, strides(node.shape), node.shape);
  return { dtype: node.dtype, shape: node.shape, data: y };
}

function evalNode(node: Node, values: readonly (Tensor | undefined)[], env: InterpretEnv, options: InterpretOptions): Tensor {
  const args = node.inputs.map((i) => {
    const v = values[i];
    if (v === undefined) throw new InterpretError(`%${node.id} (${node.op.kind}) reads %${i}, which has no value`);
    return v;
  });
  let raw: Data;
  try {
    raw = compute(node, args, env, options);
  } catch (e) {
    if (e instanceof InterpretError) throw e;
    throw new InterpretError(`%${node.id} (${node.op.kind}): ${e instanceof Error ? e.message : String(e)}`);
  }
  return { dtype: node.dtype, shape: node.shape, data: finish(node.dtype, raw, options.precision) };
}

/**
 * The array an op writes its result into. In f32 mode, f32 and bool results go straight into a Float32Array
 * (storing a float64 there rounds it to nearest even, exactly as Math.fround); f16 results are computed in a
 * Float64Array and rounded to float16 by `finish` (one rounding, not two); i32 results always use a Float64Array.
 */
function alloc(dtype: DType, n: number, precision: Precision): Data {
  return precision === "f32" && (dtype === "f32" || dtype === "bool") ? new Float32Array(n) : new Float64Array(n);
}

/** Rounds a freshly computed result to what the node's dtype holds in this precision. */
function finish(dtype: DType, raw: Data, precision: Precision): Data {
  const n = raw.length;
  switch (dtype) {
    case "i32": {
      const out = raw instanceof Float64Array ? raw : new Float64Array(raw);
      for (let i = 0; i < n; i++) out[i] = out[i]! | 0; // ToInt32: truncate toward zero, wrap mod 2^32; NaN -> 0
      return out;
    }
    case "bool":
      for (let i = 0; i < n; i++) raw[i] = raw[i] !== 0 ? 1 : 0;
      return precision === "f32" && raw instanceof Float64Array ? new Float32Array(raw) : raw;
    case "f16":
      if (precision === "f64") return raw;
      for (let i = 0; i < n; i++) raw[i] = roundToF16(raw[i]!);
      return raw instanceof Float32Array ? raw : new Float32Array(raw);
    case "f32":
      return precision === "f32" && raw instanceof Float64Array ? new Float32Array(raw) : raw;
  }
}

/** Rounds a float64 to the nearest float16 value (ties to even; overflow to ±Infinity; subnormals kept). */
export function roundToF16(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  // 65520 is halfway between 65504 (the largest f16) and 65536, and ties go to the even 65536 = overflow.
  if (a >= 65520) return x > 0 ? Infinity : -Infinity;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10); // 10 fraction bits; below 2^-14 the spacing is the subnormal 2^-24
  const q = a / ulp; // exact: a scaling by a power of two
  let r = Math.round(q);
  if (r - q === 0.5 && r % 2 === 1) r -= 1; // Math.round rounds halves up; make ties go to even
  return (x > 0 ? 1 : -1) * r * ulp;
}


function shapeText(dtype: DType, shape: readonly number[]): string {
  return `${dtype}[${shape.join(", ")}]`;
}

function lookup(node: Node, what: "input" | "param", table: ReadonlyMap<string, Tensor> | undefined, precision: Precision): Data {
  const name = (node.op as { name: string }).name;
  const t = table?.get(name);
  const expected = shapeText(node.dtype, node.shape);
  if (t === undefined) throw new InterpretError(`missing ${what} '${name}' (expected ${expected})`);
  if (t.dtype !== node.dtype || t.shape.length !== node.shape.length || t.shape.some((d, i) => d !== node.shape[i])) {
    throw new InterpretError(`${what} '${name}': expected ${expected}, got ${shapeText(t.dtype, t.shape)}`);
  }
  const n = size(node.shape);
  if (t.data.length !== n) throw new InterpretError(`${what} '${name}': ${expected} needs ${n} values, its data has ${t.data.length}`);
  const out = alloc(node.dtype, n, precision);
  out.set(t.data); // a copy: results never alias the caller's tensors
  return out;
}



// The element-wise ops are written as one loop per function (rather than a loop calling a function table)
// because that is about three times faster in V8; the Adam update of a 3M-parameter model is mostly these.

function unary(fn: UnaryFn, x: Data, out: Data): void {
  const n = out.length;
  switch (fn) {
    case "neg":
      for (let i = 0; i < n; i++) out[i] = -x[i]!;
      return;
    case "exp":
      for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]!);
      return;
    case "log":
      for (let i = 0; i < n; i++) out[i] = Math.log(x[i]!);
      return;
    case "sqrt":
      for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]!);
      return;
    case "rsqrt":
      for (let i = 0; i < n; i++) out[i] = 1 / Math.sqrt(x[i]!);
      return;
    case "sin":
      for (let i = 0; i < n; i++) out[i] = Math.sin(x[i]!);
      return;
    case "cos":
      for (let i = 0; i < n; i++) out[i] = Math.cos(x[i]!);
      return;
    case "tanh":
      for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]!);
      return;
    case "sigmoid":
      for (let i = 0; i < n; i++) out[i] = sigmoid(x[i]!);
      return;
    case "softplus":
      for (let i = 0; i < n; i++) out[i] = softplus(x[i]!);
      return;
    case "abs":
      for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]!);
      return;
    case "floor":
      for (let i = 0; i < n; i++) out[i] = Math.floor(x[i]!);
      return;
    case "round_tf32":
      for (let i = 0; i < n; i++) out[i] = roundTf32(x[i]!);
      return;
    case "round_bf16":
      for (let i = 0; i < n; i++) out[i] = roundBf16(x[i]!);
      return;
  }
}

/** i32 results are wrapped by `finish`; only mul (whose float64 product can lose low bits) and x / 0 need care. */
function binary(fn: BinaryFn, a: Data, b: Data, out: Data, i32: boolean): void {
  const n = out.length;
  switch (fn) {
    case "add":
      for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
      return;
    case "sub":
      for (let i = 0; i < n; i++) out[i] = a[i]! - b[i]!;
      return;
    case "mul":
      if (i32) for (let i = 0; i < n; i++) out[i] = Math.imul(a[i]!, b[i]!);
      else for (let i = 0; i < n; i++) out[i] = a[i]! * b[i]!;
      return;
    case "div":
      // For i32, |a|, |b| < 2^31, so the float64 quotient truncates (in `finish`) to the exact integer quotient.
      if (i32) for (let i = 0; i < n; i++) out[i] = b[i] === 0 ? a[i]! : a[i]! / b[i]!;
      else for (let i = 0; i < n; i++) out[i] = a[i]! / b[i]!;
      return;
    case "pow":
      for (let i = 0; i < n; i++) out[i] = Math.pow(a[i]!, b[i]!);
      return;
    case "maximum":
      for (let i = 0; i < n; i++) out[i] = Math.max(a[i]!, b[i]!);
      return;
    case "minimum":
      for (let i = 0; i < n; i++) out[i] = Math.min(a[i]!, b[i]!);
      return;
  }
}

function compare(fn: CompareFn, a: Data, b: Data, out: Data): void {
  const n = out.length;
  switch (fn) {
    case "lt":
      for (let i = 0; i < n; i++) out[i] = a[i]! < b[i]! ? 1 : 0;
      return;
    case "le":
      for (let i = 0; i < n; i++) out[i] = a[i]! <= b[i]! ? 1 : 0;
      return;
    case "gt":
      for (let i = 0; i < n; i++) out[i] = a[i]! > b[i]! ? 1 : 0;
      return;
    case "ge":
      for (let i = 0; i < n; i++) out[i] = a[i]! >= b[i]! ? 1 : 0;
      return;
    case "eq":
      for (let i = 0; i < n; i++) out[i] = a[i] === b[i] ? 1 : 0;
      return;
    case "ne":
      for (let i = 0; i < n; i++) out[i] = a[i] !== b[i] ? 1 : 0;
      return;
  }
}

function compute(node: Node, args: readonly Tensor[], env: InterpretEnv, options: InterpretOptions): Data {
  const op = node.op;
  const n = size(node.shape);
  const a = args[0]?.data;
  const out = () => alloc(node.dtype, n, options.precision);
  switch (op.kind) {
    case "input":
      return lookup(node, "input", env.inputs, options.precision);
    case "param":
      return lookup(node, "param", env.params, options.precision);
    case "constant":
      return out().fill(op.value);
    case "iota": {
      const y = out();
      for (let i = 0; i < n; i++) y[i] = i;
      return y;
    }
    case "random":
      return op.dist === "uniform" ? randomUniform(options.seed, options.step, op.key, n) : randomNormal(options.seed, options.step, op.key, n);
    case "unary": {
      const y = out();
      unary(op.fn, a!, y);
      return y;
    }
    case "binary": {
      const y = out();
      binary(op.fn, a!, args[1]!.data, y, node.dtype === "i32");
      return y;
    }
    case "compare": {
      const y = out();
      compare(op.fn, a!, args[1]!.data, y);
      return y;
    }
    case "select": {
      const x = args[1]!.data;
      const z = args[2]!.data;
      const y = out();
      for (let i = 0; i < n; i++) y[i] = a![i] !== 0 ? x[i]! : z[i]!;
      return y;
    }
    case "reduce":
      return reduce(a!, args[0]!.shape, op.axes, op.fn, node.shape);
    case "matmul":
      return matmul(a!, args[0]!.shape, args[1]!.data, args[1]!.shape);
    case "conv2d":
    case "conv2d_grad_input":
    case "conv2d_grad_weight":
      return conv(op.kind, args[0]!, args[1]!, node.shape, op.stride, op.padding, op.groups);
    case "reshape":
    case "stop_gradient":
    case "all_reduce": {
      const y = out();
      y.set(a!);
      return y;
    }
    case "transpose": {
      const inStrides = strides(args[0]!.shape);
      const y = out();
      copyStrided(
        a!,
        0,
        op.perm.map((p) => inStrides[p]!),
        y,
        0,
        strides(node.shape),
        node.shape,
      );
      return y;
    }
    case "broadcast": {
      const inShape = args[0]!.shape;
      const inStrides = strides(inShape);
      const y = out();
      copyStrided(
        a!,
        0,
        inShape.map((d, i) => (d === 1 ? 0 : inStrides[i]!)),
        y,
        0,
        strides(node.shape),
        node.shape,
      );
      return y;
    }
    case "slice": {
      const inStrides = strides(args[0]!.shape);
      const y = out();
      copyStrided(a!, op.start * inStrides[op.axis]!, inStrides, y, 0, strides(node.shape), node.shape);
      return y;
    }
    case "concat": {
      const y = out();
      const outStrides = strides(node.shape);
      let offset = 0;
      for (const t of args) {
        copyStrided(t.data, 0, strides(t.shape), y, offset * outStrides[op.axis]!, outStrides, t.shape);
        offset += t.shape[op.axis]!;
      }
      return y;
    }
    case "pad": {
      const y = out().fill(op.value);
      const inShape = args[0]!.shape;
      const inStrides = strides(inShape);
      const outStrides = strides(node.shape);
      // Copy the part of the input that lands inside the output (a negative width crops).
      let srcOff = 0;
      let dstOff = 0;
      const region: number[] = [];
      for (let i = 0; i < inShape.length; i++) {
        const lo = op.widths[i]![0];
        const dst = Math.max(lo, 0);
        const src = Math.max(-lo, 0);
        region.push(Math.max(0, Math.min(inShape[i]! - src, node.shape[i]! - dst)));
        srcOff += src * inStrides[i]!;
        dstOff += dst * outStrides[i]!;
      }
      copyStrided(a!, srcOff, inStrides, y, dstOff, outStrides, region);
      return y;
    }
    case "upsample":
      return upsample(a!, args[0]!.shape, op.factor, out());
    case "avg_pool":
      return avgPool(a!, args[0]!.shape, node.shape, op.size, op.stride);
    case "avg_pool_grad":
      return avgPoolGrad(a!, args[0]!.shape, node.shape, op.size, op.stride);
    case "cast": {
      const y = out();
      if (node.dtype === "i32") for (let i = 0; i < n; i++) y[i] = saturateToI32(a![i]!);
      else if (node.dtype === "bool") for (let i = 0; i < n; i++) y[i] = a![i] !== 0 ? 1 : 0;
      else y.set(a!); // the float roundings happen on the store (f32) or in `finish` (f16)
      return y;
    }
  }
}

// ------------------------------------------------------------------------------------------ kernels

/**
 * dst[dstOff + Σ i_k·dstStrides_k] = src[srcOff + Σ i_k·srcStrides_k] over every index i of `shape`.
 * Adjacent axes that both sides step through contiguously are merged first, so that a broadcast of a scalar
 * becomes one fill and a contiguous block one copy.
 */
function copyStrided(src: Data, srcOff: number, srcStrides: readonly number[], dst: Data, dstOff: number, dstStrides: readonly number[], shape: readonly number[]): void {
  if (shape.some((d) => d === 0)) return;
  // Merge axis k into axis k + 1 (the inner one) when stepping k once is stepping k + 1 through its whole length.
  const dims: number[] = [];
  const ss: number[] = [];
  const ds: number[] = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    if (shape[k] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && srcStrides[k] === ss[last]! * dims[last]! && dstStrides[k] === ds[last]! * dims[last]!) {
      dims[last]! *= shape[k]!;
    } else {
      dims.push(shape[k]!);
      ss.push(srcStrides[k]!);
      ds.push(dstStrides[k]!);
    }
  }
  if (dims.length === 0) {
    dst[dstOff] = src[srcOff]!;
    return;
  }
  dims.reverse();
  ss.reverse();
  ds.reverse();
  const r = dims.length;
  const inner = dims[r - 1]!;
  const si = ss[r - 1]!;
  const di = ds[r - 1]!;
  const idx = new Array<number>(r).fill(0);
  let s = srcOff;
  let d = dstOff;
  for (;;) {
    if (si === 0 && di === 1) dst.fill(src[s]!, d, d + inner);
    else for (let j = 0; j < inner; j++) dst[d + j * di] = src[s + j * si]!;
    let ax = r - 2;
    for (; ax >= 0; ax--) {
      idx[ax]!++;
      s += ss[ax]!;
      d += ds[ax]!;
      if (idx[ax]! < dims[ax]!) break;
      s -= ss[ax]! * dims[ax]!;
      d -= ds[ax]! * dims[ax]!;
      idx[ax] = 0;
    }
    if (ax < 0) return;
  }
}

/** Sum or max over `axes`, in row-major order of the input, accumulated in float64. */
function reduce(x: Data, shape: readonly number[], axes: readonly number[], fn: "sum" | "max", outShape: readonly number[]): Float64Array {
  const out = new Float64Array(size(outShape)).fill(fn === "sum" ? 0 : -Infinity);
  const r = shape.length;
  if (size(shape) === 0) return out;
  if (r === 0) {
    out[0] = x[0]!;
    return out;
  }
  const reduced = new Set(axes);
  const os = strides(outShape).map((s, i) => (reduced.has(i) ? 0 : s));
  const inner = shape[r - 1]!;
  const oi = os[r - 1]!;
  const idx = new Array<number>(r).fill(0);
  let o = 0;
  let p = 0;
  for (;;) {
    if (fn === "sum") {
      for (let j = 0; j < inner; j++) out[o + j * oi] += x[p++]!;
    } else {
      for (let j = 0; j < inner; j++) {
        const v = x[p++]!;
        const m = out[o + j * oi]!;
        if (v > m || v !== v) out[o + j * oi] = v; // once NaN, stays NaN (NaN > v is false)
      }
    }
    let ax = r - 2;
    for (; ax >= 0; ax--) {
      idx[ax]!++;
      o += os[ax]!;
      if (idx[ax]! < shape[ax]!) break;
      o -= os[ax]! * shape[ax]!;
      idx[ax] = 0;
    }
    if (ax < 0) return out;
  }
}

/** The data as a Float64Array (copied from a Float32Array), so that the hot loops below see one array type. */
function f64(d: Data): Float64Array {
  return d instanceof Float64Array ? d : new Float64Array(d);
}

/**
 * [..., M, K] x [..., K, N]: out[i, j] = Σ_k a[i, k]·b[k, j], accumulated in float64 in the order k = 0, 1, ...
 * Rows are taken four at a time so that each loaded b[k, j] serves four outputs (about 3x faster); the
 * summation order of every output element is the same as in the plain loop.
 */
function matmul(aData: Data, aShape: readonly number[], bData: Data, bShape: readonly number[]): Float64Array {
  const a = f64(aData);
  const b = f64(bData);
  const r = aShape.length;
  const M = aShape[r - 2]!;
  const K = aShape[r - 1]!;
  const N = bShape[r - 1]!;
  const batch = size(aShape.slice(0, -2));
  const out = new Float64Array(batch * M * N);
  for (let t = 0; t < batch; t++) {
    const aBase = t * M * K;
    const bBase = t * K * N;
    const oBase = t * M * N;
    let i = 0;
    for (; i + 4 <= M; i += 4) {
      const o0 = oBase + i * N;
      const o1 = o0 + N;
      const o2 = o1 + N;
      const o3 = o2 + N;
      const a0 = aBase + i * K;
      for (let k = 0; k < K; k++) {
        const x0 = a[a0 + k]!;
        const x1 = a[a0 + K + k]!;
        const x2 = a[a0 + 2 * K + k]!;
        const x3 = a[a0 + 3 * K + k]!;
        const bRow = bBase + k * N;
        for (let j = 0; j < N; j++) {
          const y = b[bRow + j]!;
          out[o0 + j] += x0 * y;
          out[o1 + j] += x1 * y;
          out[o2 + j] += x2 * y;
          out[o3 + j] += x3 * y;
        }
      }
    }
    for (; i < M; i++) {
      const oRow = oBase + i * N;
      for (let k = 0; k < K; k++) {
        const x = a[aBase + i * K + k]!;
        const bRow = bBase + k * N;
        for (let j = 0; j < N; j++) out[oRow + j] += x * b[bRow + j]!;
      }
    }
  }
  return out;
}

/**
 * conv2d and its two adjoints, which share one loop nest. With x [N, C, H, W], w [O, C/G, KH, KW] and
 * y [N, O, HO, WO]:  y[n, o, oh, ow] = Σ_{c, ky, kx} w[o, c, ky, kx] · x[n, g·C/G + c, oh·s − p + ky, ow·s − p + kx]
 * (g = the group of o, x = 0 outside the image). conv2d_grad_input scatters dy back along the same pairs;
 * conv2d_grad_weight sums dy·x over n, oh, ow.
 */
function conv(kind: "conv2d" | "conv2d_grad_input" | "conv2d_grad_weight", first: Tensor, second: Tensor, outShape: readonly number[], s: number, p: number, groups: number): Float64Array {
  const xShape = kind === "conv2d" || kind === "conv2d_grad_weight" ? first.shape : outShape;
  const wShape = kind === "conv2d_grad_weight" ? outShape : second.shape;
  const yShape = kind === "conv2d" ? outShape : kind === "conv2d_grad_input" ? first.shape : second.shape;
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, Cg, KH, KW] = wShape as [number, number, number, number];
  const [yN, yO, HO, WO] = yShape as [number, number, number, number];
  if (xShape.length !== 4 || wShape.length !== 4 || yShape.length !== 4) throw new InterpretError(`${kind}: operands must be rank 4`);
  if (C !== Cg * groups || O % groups !== 0 || yO !== O || yN !== N || windowOut(H, KH, s, p) !== HO || windowOut(W, KW, s, p) !== WO) {
    throw new InterpretError(`${kind}: x [${xShape}], w [${wShape}] and y [${yShape}] do not fit stride ${s}, padding ${p}, groups ${groups}`);
  }
  const Og = O / groups;
  const mode = kind === "conv2d" ? 0 : kind === "conv2d_grad_input" ? 1 : 2;
  const out = new Float64Array(size(outShape));
  // The output columns ow whose input column ow·s − p + kx lies inside [0, W), for each kx.
  const owLo = new Int32Array(KW);
  const owHi = new Int32Array(KW);
  for (let kx = 0; kx < KW; kx++) {
    owLo[kx] = Math.max(0, Math.ceil((p - kx) / s));
    owHi[kx] = Math.min(WO - 1, Math.floor((W - 1 + p - kx) / s));
  }
  const x = kind === "conv2d_grad_input" ? out : f64(first.data);
  const w = kind === "conv2d_grad_weight" ? out : f64(second.data);
  const y = kind === "conv2d" ? out : kind === "conv2d_grad_input" ? f64(first.data) : f64(second.data);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      const yBase = (n * O + o) * HO * WO;
      for (let c = 0; c < Cg; c++) {
        const xBase = (n * C + g * Cg + c) * H * W;
        for (let ky = 0; ky < KH; ky++) {
          for (let kx = 0; kx < KW; kx++) {
            const wi = ((o * Cg + c) * KH + ky) * KW + kx;
            const lo = owLo[kx]!;
            const hi = owHi[kx]!;
            const shift = kx - p;
            // conv2d_grad_weight: one running sum over (n, oh, ow) in that order, as the fused kernel sums.
            let acc = mode === 2 ? out[wi]! : 0;
            const wv = w[wi]!;
            for (let oh = 0; oh < HO; oh++) {
              const ih = oh * s - p + ky;
              if (ih < 0 || ih >= H) continue;
              const xRow = xBase + ih * W + shift;
              const yRow = yBase + oh * WO;
              if (mode === 0) {
                for (let ow = lo; ow <= hi; ow++) out[yRow + ow] += wv * x[xRow + ow * s]!;
              } else if (mode === 1) {
                for (let ow = lo; ow <= hi; ow++) out[xRow + ow * s] += wv * y[yRow + ow]!;
              } else {
                for (let ow = lo; ow <= hi; ow++) acc += y[yRow + ow]! * x[xRow + ow * s]!;
              }
            }
            if (mode === 2) out[wi] = acc;
          }
        }
      }
    }
  }
  return out;
}

function upsample(x: Data, shape: readonly number[], f: number, out: Data): Data {
  const r = shape.length;
  const H = shape[r - 2]!;
  const W = shape[r - 1]!;
  const batch = size(shape.slice(0, -2));
  const HO = H * f;
  const WO = W * f;
  for (let t = 0; t < batch; t++) {
    for (let oh = 0; oh < HO; oh++) {
      const src = (t * H + Math.floor(oh / f)) * W;
      const dst = (t * HO + oh) * WO;
      for (let ow = 0; ow < WO; ow++) out[dst + ow] = x[src + Math.floor(ow / f)]!;
    }
  }
  return out;
}

function poolShapes(xShape: readonly number[], yShape: readonly number[], k: number, s: number): [number, number, number, number, number] {
  const r = xShape.length;
  const H = xShape[r - 2]!;
  const W = xShape[r - 1]!;
  const HO = yShape[r - 2]!;
  const WO = yShape[r - 1]!;
  const lead = xShape.slice(0, -2);
  if (r < 2 || yShape.length !== r || lead.some((d, i) => d !== yShape[i]) || windowOut(H, k, s, 0) !== HO || windowOut(W, k, s, 0) !== WO) {
    throw new InterpretError(`avg_pool: input [${xShape}] and output [${yShape}] do not fit size ${k}, stride ${s}`);
  }
  return [size(lead), H, W, HO, WO];
}

/** Mean over each k×k window (stride s, no padding) of the last two dims: the window's float64 sum / k². */
function avgPool(x: Data, xShape: readonly number[], yShape: readonly number[], k: number, s: number): Float64Array {
  const [batch, H, W, HO, WO] = poolShapes(xShape, yShape, k, s);
  const out = new Float64Array(batch * HO * WO);
  const area = k * k;
  for (let t = 0; t < batch; t++) {
    for (let oh = 0; oh < HO; oh++) {
      for (let ow = 0; ow < WO; ow++) {
        let acc = 0;
        for (let dy = 0; dy < k; dy++) {
          const row = (t * H + oh * s + dy) * W + ow * s;
          for (let dx = 0; dx < k; dx++) acc += x[row + dx]!;
        }
        out[(t * HO + oh) * WO + ow] = acc / area;
      }
    }
  }
  return out;
}

/** The adjoint of avgPool: each dy / k² is added to every element of its window. */
function avgPoolGrad(dy: Data, dyShape: readonly number[], xShape: readonly number[], k: number, s: number): Float64Array {
  const [batch, H, W, HO, WO] = poolShapes(xShape, dyShape, k, s);
  const out = new Float64Array(batch * H * W);
  const area = k * k;
  for (let t = 0; t < batch; t++) {
    for (let oh = 0; oh < HO; oh++) {
      for (let ow = 0; ow < WO; ow++) {
        const v = dy[(t * HO + oh) * WO + ow]! / area;
        for (let ky = 0; ky < k; ky++) {
          const row = (t * H + oh * s + ky) * W + ow * s;
          for (let kx = 0; kx < k; kx++) out[row + kx] += v;
        }
      }
    }
  }
  return out;
}
