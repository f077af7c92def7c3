// Algebraic simplification: local rewrites applied in sweeps until none fires (a fixed point; sweeps are
// bounded). A "constant" operand below may be a `constant` node seen through broadcasts, reshapes and other
// element-moving views (the tracer writes a scalar `1` as broadcast(reshape(constant 1))).
//
// Arithmetic identities:   x + 0, 0 + x, x - 0, x · 1, 1 · x, x / 1, pow(x, 1) -> x;   pow(x, 2) -> x · x
//                          (floats only: for i32, pow truncates a float64 power while mul wraps);   neg(neg(x)) -> x.
//   Exact in IEEE arithmetic except one corner: x + 0 with x = -0 is +0, and the rewrite keeps -0 (x - (-0)
//   likewise). The two zeros compare equal and differ only through the sign of a later division, rsqrt or
//   negative power of them; XLA and tinygrad make the same rewrite. x · 0 -> 0 is NOT done: it is wrong for
//   x = ±Inf or NaN (the product is NaN) and for negative x (the product is -0). x - x -> 0 likewise.
// Views and casts:         reshape to the same shape, broadcast to the same shape, transpose by the identity,
//                          cast to the same dtype, a full slice, a zero pad, concat of one tensor, upsample by
//                          1, a 1×1 stride-1 avg_pool -> x;   reshape(reshape(x)) -> reshape(x);
//                          transpose(transpose(x)) -> one transpose (the permutations composed);
//                          broadcast(broadcast(x)) -> one broadcast; slice(slice(x)) on one axis -> one slice;
//                          stop_gradient(stop_gradient(x)) -> stop_gradient(x).
// Reductions:              a reduce over size-1 axes only -> x (a reduce keeps its axes as size 1, so this is
//                          the "reshape" to the same shape; a sum's +0 start turns -0 into +0, the x + 0
//                          corner again); size-1 axes are dropped from any other reduce.
// Select:                  select(c, a, b) with a constant c -> a or b;  select(c, x, x) -> x.
import { IrError, shapeEquals, type Graph, type Node } from "../ir.js";
import { rewrite, uniformValue, type RewriteContext } from "./rewrite.js";

/** The most sweeps; each one that changes something makes the graph strictly simpler, so this is never reached in practice. */
const MAX_SWEEPS = 64;

export function simplify(g: Graph): Graph {
  let cur = g;
  for (let i = 0; i < MAX_SWEEPS; i++) {
    const r = rewrite(cur, simplifyNode);
    cur = r.graph;
    if (r.rewrites === 0) break;
  }
  return cur;
}

/** One node's simplification, or undefined when no rule applies. */
export function simplifyNode(n: Node, ctx: RewriteContext): number | undefined {
  const op = n.op;
  const [a, b, c] = n.inputs;
  const x = a === undefined ? undefined : ctx.node(a);
  const is = (id: number, value: number) => uniformValue(ctx, id) === value;
  switch (op.kind) {
    case "binary":
      switch (op.fn) {
        case "add":
          if (is(b!, 0)) return a;
          if (is(a!, 0)) return b;
          return undefined;
        case "sub":
          return is(b!, 0) ? a : undefined;
        case "mul":
          if (is(b!, 1)) return a;
          if (is(a!, 1)) return b;
          return undefined;
        case "div":
          return is(b!, 1) ? a : undefined;
        case "pow":
          if (is(b!, 1)) return a;
          if (is(b!, 2) && (n.dtype === "f32" || n.dtype === "f16")) return ctx.add({ kind: "binary", fn: "mul" }, [a!, a!]);
          return undefined;
        default:
          return undefined;
      }
    case "unary":
      return op.fn === "neg" && x!.op.kind === "unary" && x!.op.fn === "neg" ? x!.inputs[0] : undefined;
    case "reshape": {
      if (shapeEquals(n.shape, x!.shape)) return a;
      if (x!.op.kind !== "reshape") return undefined;
      const inner = x!.inputs[0]!;
      return shapeEquals(ctx.node(inner).shape, n.shape) ? inner : ctx.add({ kind: "reshape" }, [inner], n.shape);
    }
    case "broadcast": {
      if (shapeEquals(n.shape, x!.shape)) return a;
      if (x!.op.kind !== "broadcast") return undefined;
      return tryAdd(() => ctx.add({ kind: "broadcast" }, [x!.inputs[0]!], n.shape));
    }
    case "transpose": {
      if (op.perm.every((p, i) => p === i)) return a;
      if (x!.op.kind !== "transpose") return undefined;
      const inner = x!.op.perm;
      const perm = op.perm.map((q) => inner[q]!);
      return perm.every((p, i) => p === i) ? x!.inputs[0] : ctx.add({ kind: "transpose", perm }, [x!.inputs[0]!]);
    }
    case "stop_gradient":
      return x!.op.kind === "stop_gradient" ? a : undefined;
    case "cast":
      return x!.dtype === n.dtype ? a : undefined;
    case "slice": {
      if (op.start === 0 && op.end === x!.shape[op.axis]) return a;
      if (x!.op.kind !== "slice" || x!.op.axis !== op.axis) return undefined;
      const s = x!.op.start;
      return ctx.add({ kind: "slice", axis: op.axis, start: s + op.start, end: s + op.end }, [x!.inputs[0]!]);
    }
    case "pad":
      return op.widths.every(([lo, hi]) => lo === 0 && hi === 0) ? a : undefined;
    case "concat":
      return n.inputs.length === 1 ? a : undefined;
    case "upsample":
      return op.factor === 1 ? a : undefined;
    case "avg_pool":
      return op.size === 1 && shapeEquals(n.shape, x!.shape) ? a : undefined;
    case "reduce": {
      const axes = op.axes.filter((ax) => x!.shape[ax] !== 1);
      if (axes.length === 0) return a;
      return axes.length < op.axes.length ? ctx.add({ kind: "reduce", fn: op.fn, axes }, [a!]) : undefined;
    }
    case "select": {
      if (b === c) return b;
      const cond = uniformValue(ctx, a!);
      return cond === undefined ? undefined : cond !== 0 ? b : c;
    }
    default:
      return undefined;
  }
}

function tryAdd(f: () => number): number | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof IrError) return undefined;
    throw e;
  }
}
