// The machinery every pass shares: a pass is a rewrite of the graph, node by node in topological order, into a
// fresh GraphBuilder (so every node it emits is type-checked as it is added and the result is renumbered).
//
// `rewrite(g, rule)` offers each node, with its inputs already mapped into the new graph, to `rule`. The rule
// either declines (the node is copied) or returns the id of a node of the new graph that computes the same
// value: an earlier node (x + 0 -> x), or one it adds through the context (pow(x, 2) -> x * x). Because the
// inputs the rule sees are already rewritten, a chain (neg(neg(neg(x)))) collapses in one sweep. Nodes that a
// replacement leaves without users stay in the graph: removing them is dead-code elimination's job.
import { GraphBuilder, IrError, shapeEquals, type DType, type Graph, type Node, type Op } from "../ir.js";

export interface RewriteContext {
  /** A node of the graph being built. */
  node(id: number): Node;
  /** Adds a node to the graph being built (type-checked), returning its id. */
  add(op: Op, inputs: readonly number[], shape?: readonly number[], dtype?: DType): number;
}

/**
 * A rewrite rule. `node` is the old node with its inputs mapped into the new graph (its id is the old one and
 * means nothing there). Returns the replacement's id in the new graph, or undefined to keep the node.
 */
export type Rule = (node: Node, ctx: RewriteContext) => number | undefined;

export interface RewriteResult {
  readonly graph: Graph;
  /** How many nodes the rule replaced. */
  readonly rewrites: number;
}

export function rewrite(g: Graph, rule: Rule): RewriteResult {
  const b = new GraphBuilder();
  const ctx: RewriteContext = {
    node: (id) => b.node(id),
    add: (op, inputs, shape, dtype) => b.add(op, inputs, shape, dtype),
  };
  const map = new Array<number>(g.nodes.length);
  let rewrites = 0;
  for (const n of g.nodes) {
    const candidate: Node = { ...n, inputs: n.inputs.map((i) => map[i]!) };
    const r = rule(candidate, ctx);
    if (r === undefined) {
      map[n.id] = copy(b, candidate);
      continue;
    }
    const got = b.node(r);
    if (got.dtype !== n.dtype || !shapeEquals(got.shape, n.shape)) {
      throw new IrError(`a rewrite replaced %${n.id} (${n.op.kind}, ${n.dtype}[${n.shape}]) by a ${got.dtype}[${got.shape}] node`);
    }
    map[n.id] = r;
    rewrites++;
  }
  return { graph: b.build(g.outputs.map((o) => ({ name: o.name, node: map[o.node]! }))), rewrites };
}

/** Adds `n` (inputs already in the builder's numbering) unchanged. */
export function copy(b: GraphBuilder, n: Node): number {
  return b.add(n.op, n.inputs, n.shape, n.dtype);
}

/** A value as a tensor of `dtype` holds it (the interpreter's rounding of results; floats are kept as float64). */
export function normalize(value: number, dtype: DType): number {
  switch (dtype) {
    case "i32":
      return value | 0;
    case "bool":
      return value !== 0 ? 1 : 0;
    default:
      return value;
  }
}

/** The value of a `constant` node as its dtype holds it, or undefined for any other node. */
export function constantValue(n: Node): number | undefined {
  return n.op.kind === "constant" ? normalize(n.op.value, n.dtype) : undefined;
}

/**
 * The value every element of node `id` has when the node is a constant seen through ops that only move or
 * repeat elements (broadcast, reshape, transpose, slice, upsample, stop_gradient); undefined otherwise.
 */
export function uniformValue(ctx: Pick<RewriteContext, "node">, id: number): number | undefined {
  let n = ctx.node(id);
  for (;;) {
    switch (n.op.kind) {
      case "constant":
        return constantValue(n);
      case "broadcast":
      case "reshape":
      case "transpose":
      case "slice":
      case "upsample":
      case "stop_gradient":
        n = ctx.node(n.inputs[0]!);
        break;
      default:
        return undefined;
    }
  }
}
