// Constant folding: a node whose inputs are all `constant` nodes, and whose value is then uniform (every
// element equal), becomes a `constant` node. Folding runs in topological order, so a whole constant
// subexpression collapses in one sweep; the constants it no longer reads are left for dead-code elimination.
//
// Only uniform results fold: a `constant` node is one number, so nothing here ever materialises a tensor of
// distinct values (iota, random, a pad with a different fill value, a convolution whose borders see the
// padding: these stay as they are).
//
// Values are computed in float64 with the scalar semantics of the reference interpreter (runtime/interpreter.ts:
// compiler/scalar.ts's UNARY, BINARY, BINARY_I32 and COMPARE tables, ToInt32 wrapping of i32 results, bool = x != 0, cast to i32
// truncating and saturating), so a folded element-wise op gives the f64 reference's value exactly. Where a sum
// is involved the folded value is the exact product, which the interpreter's float64 running sum may miss by
// its rounding error:
//   - reduce sum of c over n elements: c·n; matmul of constants c, d with inner dim K: (c·d)·K; conv2d
//     (no padding) and conv2d_grad_weight (no padding) likewise with their term counts;
//   - avg_pool of c: c, the exact mean (the interpreter computes (c + ... + c)/k², which can be an ulp off);
//   - avg_pool_grad of dy = c where the windows tile the input: c/k².
// A sum is `+ 0` at the end, as the interpreter's accumulator starts at +0 (so a sum of -0s is +0).
import type { DType, Graph, Node } from "../ir.js";
import { size } from "../ir.js";
import { BINARY, BINARY_I32, COMPARE, UNARY, saturateToI32 } from "../scalar.js";
import { constantValue, normalize, rewrite } from "./rewrite.js";

export function fold(g: Graph): Graph {
  return rewrite(g, (n, ctx) => {
    if (n.op.kind === "constant") return undefined;
    const values: number[] = [];
    for (const i of n.inputs) {
      const v = constantValue(ctx.node(i));
      if (v === undefined) return undefined;
      values.push(v);
    }
    const v = foldValue(
      n,
      values,
      n.inputs.map((i) => ctx.node(i)),
    );
    return v === undefined ? undefined : ctx.add({ kind: "constant", value: normalize(v, n.dtype) }, [], n.shape, n.dtype);
  }).graph;
}

function castTo(x: number, dtype: DType): number {
  // bool is x != 0 (normalize); float roundings are the identity in float64
  return dtype === "i32" ? saturateToI32(x) : x;
}

/** c·n summed from a +0 accumulator; n = 0 gives the empty sum. */
function sumOf(c: number, n: number): number {
  return n === 0 ? 0 : c * n + 0;
}

/** Both factors finite and their product zero: every sum of products is +0, whatever the term counts. */
function zeroProduct(a: number, b: number): boolean {
  return Number.isFinite(a) && Number.isFinite(b) && a * b === 0;
}

/** The uniform value of `n` given its inputs' uniform values, or undefined when it is not uniform (or not folded). */
function foldValue(n: Node, v: readonly number[], inputs: readonly Node[]): number | undefined {
  const op = n.op;
  const [a, b, c] = v;
  switch (op.kind) {
    case "input":
    case "param":
    case "constant":
    case "random":
      return undefined;
    case "iota":
      return size(n.shape) === 1 ? 0 : undefined;
    case "unary": {
      const r = UNARY[op.fn]!(a!);
      return n.dtype === "i32" ? Math.trunc(r) : r;
    }
    case "binary":
      return ((n.dtype === "i32" ? BINARY_I32[op.fn] : undefined) ?? BINARY[op.fn]!)(a!, b!);
    case "compare":
      return COMPARE[op.fn]!(a!, b!) ? 1 : 0;
    case "select":
      return a !== 0 ? b : c;
    case "reduce": {
      const x = inputs[0]!;
      if (x.shape.length === 0) return a; // the interpreter copies a rank-0 input
      const count = op.axes.reduce((p, ax) => p * x.shape[ax]!, 1);
      if (op.fn === "max") return count === 0 ? -Infinity : a;
      return sumOf(a!, count);
    }
    case "matmul": {
      const x = inputs[0]!;
      const k = x.shape[x.shape.length - 1]!;
      return sumOf(a! * b!, k);
    }
    case "conv2d": {
      if (zeroProduct(a!, b!)) return 0;
      if (op.padding !== 0) return undefined; // border outputs see fewer terms
      const w = inputs[1]!.shape;
      return sumOf(a! * b!, w[1]! * w[2]! * w[3]!);
    }
    case "conv2d_grad_input":
      // Each input position collects a number of terms that depends on where it lies.
      return zeroProduct(a!, b!) ? 0 : undefined;
    case "conv2d_grad_weight": {
      if (zeroProduct(a!, b!)) return 0;
      if (op.padding !== 0) return undefined;
      // Without padding every (ky, kx) pairs each of the N·HO·WO outputs with an in-bounds input.
      const dy = inputs[1]!.shape;
      return sumOf(a! * b!, dy[0]! * dy[2]! * dy[3]!);
    }
    case "reshape":
    case "transpose":
    case "broadcast":
    case "slice":
    case "upsample":
    case "stop_gradient":
    case "all_reduce": // every rank holds the same constant, so its mean is that constant
      return a;
    case "concat":
      return v.every((x) => Object.is(x, a)) ? a : undefined;
    case "pad": {
      const crops = op.widths.every(([lo, hi]) => lo <= 0 && hi <= 0);
      return crops || Object.is(normalize(op.value, n.dtype), a) ? a : undefined;
    }
    case "avg_pool":
      return a! + 0; // the window's sum starts at +0
    case "avg_pool_grad": {
      const area = op.size * op.size;
      if (Number.isFinite(a!) && a! / area === 0) return 0;
      // Uniform when the windows tile the input exactly: every element is in exactly one window.
      const x = n.shape;
      const y = inputs[0]!.shape;
      const r = x.length;
      const tiles = op.stride === op.size && y[r - 2]! * op.size === x[r - 2]! && y[r - 1]! * op.size === x[r - 1]!;
      return tiles ? a! / area + 0 : undefined;
    }
    case "cast":
      return castTo(a!, n.dtype);
  }
}
