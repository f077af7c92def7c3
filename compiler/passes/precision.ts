// The precision of contractions (`LowerOptions.precision`). Under "tf32" or "bf16", every f32 operand of a matmul,
// conv2d, conv2d_grad_input or conv2d_grad_weight is read through a rounding node: `round_tf32` (10 mantissa bits)
// or `round_bf16` (7 mantissa bits, bfloat16), compiler/scalar.ts, the value as a tensor core's mma.sync reads it.
// The rounding is so part of the graph, and the reference interpreter stays an exact oracle: a product of two TF32
// values, or of two bfloat16 values, is exact in float32, so a tensor-core kernel differs from the interpreter only
// by the order of its sums.
//
// One rounding per operand node, shared by every contraction that reads it (a weight read by conv2d and by
// conv2d_grad_input is rounded once); an operand that already is the Program's rounding node is read as it is, so
// the pass is idempotent. Nothing else changes. lower.ts runs it after the backward pass and the optimizer update
// are built, and before the optimiser, whose folding turns the rounding of a constant into the rounded constant.
import type { ContractionPrecision } from "../../runtime/manifest.js";
import type { Graph, OpKind, RoundingFn } from "../ir.js";
import { rewrite } from "./rewrite.js";

export type { ContractionPrecision };

/** The ops whose operands tensor cores read. */
export const CONTRACTIONS: ReadonlySet<OpKind> = new Set<OpKind>(["matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight"]);

/** The precisions whose contractions run on tensor cores, and the rounding through which each reads its operands. */
export const ROUNDING_OF: { readonly [P in Exclude<ContractionPrecision, "fp32">]: RoundingFn } = { tf32: "round_tf32", bf16: "round_bf16" };

/** `g` with every f32 contraction operand read through `fn`. */
export function roundContractions(g: Graph, fn: RoundingFn): Graph {
  const rounded = new Map<number, number>();
  return rewrite(g, (n, ctx) => {
    if (!CONTRACTIONS.has(n.op.kind)) return undefined;
    const inputs = n.inputs.map((x) => {
      const operand = ctx.node(x);
      if (operand.dtype !== "f32" || (operand.op.kind === "unary" && operand.op.fn === fn)) return x;
      let r = rounded.get(x);
      if (r === undefined) rounded.set(x, (r = ctx.add({ kind: "unary", fn }, [x])));
      return r;
    });
    return inputs.every((x, i) => x === n.inputs[i]) ? undefined : ctx.add(n.op, inputs, n.shape, n.dtype);
  }).graph;
}

/** The graph a Program of this precision runs: "fp32" leaves it as it is. */
export function applyPrecision(g: Graph, precision: ContractionPrecision): Graph {
  return precision === "fp32" ? g : roundContractions(g, ROUNDING_OF[precision]);
}
