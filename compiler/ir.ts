// The graph IR: SSA tensor operations with static shapes. Broadcasting is explicit (a `broadcast` node), so
// every element-wise op sees equal shapes, which keeps VJP rules, the interpreter and the kernels simple.
// Nodes are stored in topological order: an input always has a smaller id than its user.

// The dtypes are the runtime's too: defined with the Program format it reads, which needs no compiler.
import type { DType } from "../runtime/manifest.js";
export type { DType };

/**
 * The roundings are internal (no .ul spelling): an f32 rounded to TF32 (`round_tf32`) or to bfloat16
 * (`round_bf16`) as tensor cores read it, which the precision pass (compiler/passes/precision.ts) puts before
 * contractions; compiler/scalar.ts defines them.
 */
export const ROUNDING_FNS = ["round_tf32", "round_bf16"] as const;
export type RoundingFn = (typeof ROUNDING_FNS)[number];
export const UNARY_FNS = ["neg", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "softplus", "abs", "floor", ...ROUNDING_FNS] as const;
export type UnaryFn = (typeof UNARY_FNS)[number];

/** Whether a unary function is one of the internal roundings (ROUNDING_FNS). */
export function isRounding(fn: UnaryFn): fn is RoundingFn {
  return (ROUNDING_FNS as readonly UnaryFn[]).includes(fn);
}

export const BINARY_FNS = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"] as const;
export type BinaryFn = (typeof BINARY_FNS)[number];

export const COMPARE_FNS = ["lt", "le", "gt", "ge", "eq", "ne"] as const;
export type CompareFn = (typeof COMPARE_FNS)[number];

export type Op =
  /** An entry input, a hyperparameter, an optimizer state, or a runtime scalar such as `step`. */
  | { readonly kind: "input"; readonly name: string }
  /** A learnable parameter, by its dotted name (`decoder.blocks.0.conv.weight`). */
  | { readonly kind: "param"; readonly name: string }
  /** Every element equal to `value`. */
  | { readonly kind: "constant"; readonly value: number }
  /** 0, 1, ..., n-1 along the last axis (rank 1). */
  | { readonly kind: "iota" }
  /** Counter-based random numbers: element i of the stream `key` at the current (seed, step). */
  | { readonly kind: "random"; readonly dist: "normal" | "uniform"; readonly key: number }
  | { readonly kind: "unary"; readonly fn: UnaryFn }
  | { readonly kind: "binary"; readonly fn: BinaryFn }
  | { readonly kind: "compare"; readonly fn: CompareFn }
  /** select(cond, a, b): a where cond, else b. */
  | { readonly kind: "select" }
  /** Reduces `axes`, keeping them as size 1. */
  | { readonly kind: "reduce"; readonly fn: "sum" | "max"; readonly axes: readonly number[] }
  /** [..., M, K] x [..., K, N] -> [..., M, N] with equal batch dims. */
  | { readonly kind: "matmul" }
  /** NCHW input, [Cout, Cin/groups, KH, KW] weight. */
  | { readonly kind: "conv2d"; readonly stride: number; readonly padding: number; readonly groups: number }
  /** The gradient of conv2d with respect to its input (a transposed convolution), output shape = node shape. */
  | { readonly kind: "conv2d_grad_input"; readonly stride: number; readonly padding: number; readonly groups: number }
  /** The gradient of conv2d with respect to its weight: inputs (x, dy), output shape = the weight's. */
  | { readonly kind: "conv2d_grad_weight"; readonly stride: number; readonly padding: number; readonly groups: number }
  | { readonly kind: "reshape" }
  | { readonly kind: "transpose"; readonly perm: readonly number[] }
  /** Same rank; size-1 dims repeated to the node's shape. */
  | { readonly kind: "broadcast" }
  | { readonly kind: "slice"; readonly axis: number; readonly start: number; readonly end: number }
  | { readonly kind: "concat"; readonly axis: number }
  | { readonly kind: "pad"; readonly widths: readonly (readonly [number, number])[]; readonly value: number }
  /** Nearest-neighbour upsampling of the last two dims. */
  | { readonly kind: "upsample"; readonly factor: number }
  /** Average pooling of the last two dims. */
  | { readonly kind: "avg_pool"; readonly size: number; readonly stride: number }
  /** The gradient of avg_pool: inputs (dy), output shape = the pooled input's. */
  | { readonly kind: "avg_pool_grad"; readonly size: number; readonly stride: number }
  | { readonly kind: "cast" }
  /** Identity forward, zero gradient. */
  | { readonly kind: "stop_gradient" }
  /**
   * The mean of a value over the ranks of a data-parallel job: each rank holds its shard's value, and all hold
   * the mean after it. compiler/parallel.ts splits a train step at these nodes; in one process it is the identity.
   */
  | { readonly kind: "all_reduce" };

export type OpKind = Op["kind"];

/** Every primitive, for tests that demand a VJP rule and a property test of each. */
export const OP_KINDS: readonly OpKind[] = [
  "input",
  "param",
  "constant",
  "iota",
  "random",
  "unary",
  "binary",
  "compare",
  "select",
  "reduce",
  "matmul",
  "conv2d",
  "conv2d_grad_input",
  "conv2d_grad_weight",
  "reshape",
  "transpose",
  "broadcast",
  "slice",
  "concat",
  "pad",
  "upsample",
  "avg_pool",
  "avg_pool_grad",
  "cast",
  "stop_gradient",
  "all_reduce",
];

export interface Node {
  readonly id: number;
  readonly op: Op;
  readonly inputs: readonly number[];
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface Graph {
  readonly nodes: readonly Node[];
  /** Named results, in declaration order. */
  readonly outputs: readonly { readonly name: string; readonly node: number }[];
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function shapeEquals(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Row-major strides. */
export function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i]!;
  }
  return out;
}

export class IrError extends Error {}

function fail(message: string): never {
  throw new IrError(message);
}

/** Output spatial size of a strided window. */
export function windowOut(inSize: number, k: number, stride: number, padding: number): number {
  return Math.floor((inSize + 2 * padding - k) / stride) + 1;
}

/** conv2d's output shape for x [N, Cin, H, W] and w [Cout, Cin/groups, KH, KW], checking channels and groups. */
function convOut(x: readonly number[], w: readonly number[], op: { stride: number; padding: number; groups: number }): number[] {
  if (x.length !== 4 || w.length !== 4) fail(`conv2d: NCHW input [${x}] and OIHW weight [${w}]`);
  const [n, cin, h, wd] = x as [number, number, number, number];
  const [cout, cinG, kh, kw] = w as [number, number, number, number];
  if (cin !== cinG * op.groups || cout % op.groups !== 0) fail(`conv2d: ${cin} input and ${cout} output channels do not fit ${op.groups} groups of ${cinG}`);
  const ho = windowOut(h, kh, op.stride, op.padding);
  const wo = windowOut(wd, kw, op.stride, op.padding);
  if (ho < 1 || wo < 1) fail("conv2d: kernel larger than the padded input");
  return [n, cout, ho, wo];
}

/** Computes (and so checks) the dtype and shape an op gives for its inputs. `shape` is required where the op cannot infer it. */
export function inferType(op: Op, inputs: readonly Node[], shape?: readonly number[], dtype?: DType): { dtype: DType; shape: readonly number[] } {
  checkAttrs(op);
  const t = inferOpType(op, inputs, shape, dtype);
  if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`${op.kind} gives the shape [${t.shape}]`);
  return t;
}

/** Structural attributes (axes, bounds, widths, strides...) are integers, and sizes and strides at least 1. */
function checkAttrs(op: Op): void {
  const ints = (v: unknown): boolean => (typeof v === "number" ? Number.isInteger(v) : Array.isArray(v) ? v.every(ints) : true);
  for (const [k, v] of Object.entries(op)) {
    if (k === "value" || k === "key") continue; // a constant's or a pad's fill value; a random stream's key
    if (!ints(v)) fail(`${op.kind}: ${k} = ${JSON.stringify(v)} is not an integer`);
    if ((k === "factor" || k === "size" || k === "stride" || k === "groups") && (v as number) < 1) fail(`${op.kind}: ${k} = ${v} must be at least 1`);
    if (k === "padding" && (v as number) < 0) fail(`${op.kind}: negative padding`);
  }
}

function inferOpType(op: Op, inputs: readonly Node[], shape?: readonly number[], dtype?: DType): { dtype: DType; shape: readonly number[] } {
  const arity = (n: number) => {
    if (inputs.length !== n) fail(`${op.kind} takes ${n} inputs, got ${inputs.length}`);
  };
  const given = (what: string) => shape ?? fail(`${op.kind} needs an explicit ${what}`);
  const [a, b, c] = inputs;
  const sameDtype = () => {
    if (inputs.some((x) => x.dtype !== a!.dtype)) fail(`${op.kind}: dtypes ${inputs.map((x) => x.dtype).join(" and ")} differ`);
  };
  switch (op.kind) {
    case "input":
    case "param":
    case "constant":
    case "random":
      arity(0);
      return { dtype: dtype ?? "f32", shape: given("shape") };
    case "iota": {
      arity(0);
      const s = given("shape");
      if (s.length !== 1) fail("iota is rank 1");
      return { dtype: dtype ?? "f32", shape: s };
    }
    case "unary":
      arity(1);
      if (a!.dtype === "bool") fail(`${op.fn} of a bool tensor`);
      if (isRounding(op.fn) && a!.dtype !== "f32") fail(`${op.fn} of a ${a!.dtype} tensor (it rounds f32)`);
      return { dtype: a!.dtype, shape: a!.shape };
    case "binary":
    case "compare":
      arity(2);
      if (!shapeEquals(a!.shape, b!.shape)) fail(`${op.fn}: shapes [${a!.shape}] and [${b!.shape}] differ (broadcast explicitly)`);
      if (a!.dtype !== b!.dtype) fail(`${op.fn}: dtypes ${a!.dtype} and ${b!.dtype} differ`);
      return { dtype: op.kind === "compare" ? "bool" : a!.dtype, shape: a!.shape };
    case "select":
      arity(3);
      if (a!.dtype !== "bool") fail("select's condition must be bool");
      if (!shapeEquals(a!.shape, b!.shape) || !shapeEquals(b!.shape, c!.shape)) fail("select: shapes differ (broadcast explicitly)");
      if (b!.dtype !== c!.dtype) fail("select: branch dtypes differ");
      return { dtype: b!.dtype, shape: b!.shape };
    case "reduce": {
      arity(1);
      const axes = new Set(op.axes);
      if (op.axes.some((x) => x < 0 || x >= a!.shape.length) || axes.size !== op.axes.length) fail(`reduce: bad axes [${op.axes}] for rank ${a!.shape.length}`);
      return { dtype: a!.dtype, shape: a!.shape.map((d, i) => (axes.has(i) ? 1 : d)) };
    }
    case "matmul": {
      arity(2);
      sameDtype();
      const r = a!.shape.length;
      if (r < 2 || b!.shape.length !== r) fail("matmul: operands must have the same rank ≥ 2");
      if (!shapeEquals(a!.shape.slice(0, -2), b!.shape.slice(0, -2))) fail("matmul: batch dims differ (broadcast explicitly)");
      if (a!.shape[r - 1] !== b!.shape[r - 2]) fail(`matmul: inner dims ${a!.shape[r - 1]} and ${b!.shape[r - 2]} differ`);
      return { dtype: a!.dtype, shape: [...a!.shape.slice(0, -1), b!.shape[r - 1]!] };
    }
    case "conv2d":
      arity(2);
      sameDtype();
      return { dtype: a!.dtype, shape: convOut(a!.shape, b!.shape, op) };
    case "conv2d_grad_input": {
      arity(2); // (dy, w): the input-shaped adjoint
      sameDtype();
      const s = given("input shape");
      if (!shapeEquals(convOut(s, b!.shape, op), a!.shape)) fail(`conv2d_grad_input: dy [${a!.shape}] is not conv2d's output for x [${s}] and w [${b!.shape}]`);
      return { dtype: a!.dtype, shape: s };
    }
    case "conv2d_grad_weight": {
      arity(2); // (x, dy): the weight-shaped adjoint
      sameDtype();
      const s = given("weight shape");
      if (!shapeEquals(convOut(a!.shape, s, op), b!.shape)) fail(`conv2d_grad_weight: dy [${b!.shape}] is not conv2d's output for x [${a!.shape}] and w [${s}]`);
      return { dtype: a!.dtype, shape: s };
    }
    case "reshape": {
      arity(1);
      const s = given("shape");
      if (size(s) !== size(a!.shape)) fail(`reshape: [${a!.shape}] to [${s}] changes the element count`);
      return { dtype: a!.dtype, shape: s };
    }
    case "transpose": {
      arity(1);
      const sorted = [...op.perm].sort((x, y) => x - y);
      if (op.perm.length !== a!.shape.length || sorted.some((p, i) => p !== i)) fail(`transpose: [${op.perm}] is not a permutation`);
      return { dtype: a!.dtype, shape: op.perm.map((p) => a!.shape[p]!) };
    }
    case "broadcast": {
      arity(1);
      const s = given("shape");
      if (s.length !== a!.shape.length || a!.shape.some((d, i) => d !== 1 && d !== s[i])) fail(`broadcast: [${a!.shape}] to [${s}]`);
      return { dtype: a!.dtype, shape: s };
    }
    case "slice": {
      arity(1);
      const d = a!.shape[op.axis];
      if (d === undefined || op.start < 0 || op.end > d || op.start >= op.end) fail(`slice: [${op.start}, ${op.end}) of axis ${op.axis} in [${a!.shape}]`);
      return { dtype: a!.dtype, shape: a!.shape.map((x, i) => (i === op.axis ? op.end - op.start : x)) };
    }
    case "concat": {
      if (inputs.length < 1) fail("concat of nothing");
      const first = inputs[0]!;
      if (!Number.isInteger(op.axis) || op.axis < 0 || op.axis >= first.shape.length) fail(`concat: axis ${op.axis} for rank ${first.shape.length}`);
      let total = 0;
      for (const x of inputs) {
        if (x.shape.length !== first.shape.length || x.shape.some((d, i) => i !== op.axis && d !== first.shape[i])) fail("concat: shapes differ off the axis");
        total += x.shape[op.axis]!;
      }
      return { dtype: first.dtype, shape: first.shape.map((d, i) => (i === op.axis ? total : d)) };
    }
    case "pad":
      arity(1);
      if (op.widths.length !== a!.shape.length) fail("pad: one [lo, hi] per axis");
      return { dtype: a!.dtype, shape: a!.shape.map((d, i) => d + op.widths[i]![0] + op.widths[i]![1]) };
    case "upsample": {
      arity(1);
      const s = a!.shape;
      if (s.length < 2) fail("upsample needs rank ≥ 2");
      return { dtype: a!.dtype, shape: [...s.slice(0, -2), s[s.length - 2]! * op.factor, s[s.length - 1]! * op.factor] };
    }
    case "avg_pool": {
      arity(1);
      const s = a!.shape;
      if (s.length < 2) fail("avg_pool needs rank ≥ 2");
      const ho = windowOut(s[s.length - 2]!, op.size, op.stride, 0);
      const wo = windowOut(s[s.length - 1]!, op.size, op.stride, 0);
      if (ho < 1 || wo < 1) fail("avg_pool: window larger than the input");
      return { dtype: a!.dtype, shape: [...s.slice(0, -2), ho, wo] };
    }
    case "avg_pool_grad": {
      arity(1);
      const s = given("input shape");
      if (s.length < 2 || a!.shape.length !== s.length) fail("avg_pool_grad: dy and the input must have the same rank ≥ 2");
      const r = s.length;
      const y = a!.shape;
      if (!shapeEquals(y.slice(0, -2), s.slice(0, -2)) || windowOut(s[r - 2]!, op.size, op.stride, 0) !== y[r - 2] || windowOut(s[r - 1]!, op.size, op.stride, 0) !== y[r - 1]) fail("avg_pool_grad: shapes do not match");
      return { dtype: a!.dtype, shape: s };
    }
    case "cast":
      arity(1);
      return { dtype: dtype ?? fail("cast needs a dtype"), shape: a!.shape };
    case "stop_gradient":
    case "all_reduce":
      arity(1);
      return { dtype: a!.dtype, shape: a!.shape };
  }
}

/** Builds a graph node by node; each node's type is inferred and checked as it is added. */
export class GraphBuilder {
  readonly nodes: Node[] = [];

  add(op: Op, inputs: readonly number[], shape?: readonly number[], dtype?: DType): number {
    for (const i of inputs) if (i < 0 || i >= this.nodes.length) fail(`${op.kind}: input %${i} does not exist yet`);
    const t = inferType(
      op,
      inputs.map((i) => this.nodes[i]!),
      shape,
      dtype,
    );
    const id = this.nodes.length;
    this.nodes.push({ id, op, inputs: [...inputs], dtype: t.dtype, shape: [...t.shape] });
    return id;
  }

  node(id: number): Node {
    return this.nodes[id]!;
  }

  build(outputs: readonly { name: string; node: number }[]): Graph {
    return { nodes: this.nodes, outputs };
  }
}

/** Checks the invariants every pass must keep: topological order, ids, and types that re-infer the same. */
export function verify(g: Graph): void {
  g.nodes.forEach((n, i) => {
    if (n.id !== i) fail(`node at position ${i} has id %${n.id}`);
    for (const x of n.inputs) if (x >= i) fail(`%${i} uses %${x}, which is not defined before it`);
    const t = inferType(
      n.op,
      n.inputs.map((x) => g.nodes[x]!),
      n.shape,
      n.dtype,
    );
    if (t.dtype !== n.dtype || !shapeEquals(t.shape, n.shape)) fail(`%${i} (${n.op.kind}) is recorded as ${n.dtype}[${n.shape}] but its inputs give ${t.dtype}[${t.shape}]`);
  });
  for (const o of g.outputs) if (o.node < 0 || o.node >= g.nodes.length) fail(`output ${o.name} names missing node %${o.node}`);
}

function opText(op: Op): string {
  switch (op.kind) {
    case "unary":
    case "binary":
    case "compare":
      return op.fn;
    case "reduce":
      return `reduce_${op.fn}{axes=${JSON.stringify(op.axes)}}`;
    default: {
      const { kind, ...rest } = op;
      const parts = Object.entries(rest).map(([k, v]) => `${k}=${attrText(v)}`);
      return parts.length ? `${kind}{${parts.join(", ")}}` : kind;
    }
  }
}

/** An attribute as JSON, except that a number JSON cannot spell keeps its value: -0, NaN, Infinity, -Infinity. */
function attrText(v: unknown): string {
  return typeof v === "number" ? (Object.is(v, -0) ? "-0" : String(v)) : JSON.stringify(v);
}

/** The readable text form (`ulc build --emit ir`). */
export function printGraph(g: Graph, name = "graph"): string {
  const lines = [`${name} {`];
  for (const n of g.nodes) lines.push(`  %${n.id}: ${n.dtype}[${n.shape.join(", ")}] = ${opText(n.op)}(${n.inputs.map((i) => `%${i}`).join(", ")})`);
  lines.push(`  return ${g.outputs.map((o) => `${o.name}: %${o.node}`).join(", ")}`, "}");
  return lines.join("\n");
}
