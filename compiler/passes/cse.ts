// Common-subexpression elimination by structural hashing: two nodes with the same op (kind and every
// attribute), the same inputs (after earlier merges), dtype and shape compute the same value, so the later one
// is replaced by the earlier. The key covers everything that distinguishes nodes: an `input` or `param` keeps
// its name (two names never merge), a `random` its dist and key (two streams never merge; the same stream
// twice is the same numbers), a `constant` its value with -0 and NaN told apart from 0 and null.
//
// Inputs of commutative ops (add, mul, maximum, minimum, eq, ne) are sorted in the key, so a+b and b+a merge.
// This is exact under the interpreter's semantics: IEEE addition and multiplication commute, and maximum and
// minimum are Math.max/Math.min, which are symmetric (NaN wins either way; +0 > -0 either way).
import type { Graph, Node } from "../ir.js";
import { rewrite } from "./rewrite.js";

const COMMUTATIVE = new Set(["add", "mul", "maximum", "minimum", "eq", "ne"]);

export function cse(g: Graph): Graph {
  const seen = new Map<string, number>();
  return rewrite(g, (n, ctx) => {
    const k = nodeKey(n);
    const hit = seen.get(k);
    if (hit !== undefined) return hit;
    const id = ctx.add(n.op, n.inputs, n.shape, n.dtype);
    seen.set(k, id);
    return id;
  }).graph;
}

/** The structural identity of a node (its id aside). */
export function nodeKey(n: Node): string {
  const op = n.op;
  let inputs = n.inputs;
  if ((op.kind === "binary" || op.kind === "compare") && COMMUTATIVE.has(op.fn)) inputs = [...inputs].sort((a, b) => a - b);
  return `${canonical(op)}(${inputs.join(",")}):${n.dtype}[${n.shape.join(",")}]`;
}

/** A canonical text of a JSON-like value: object keys sorted, numbers exact (-0, NaN and ±Infinity kept). */
function canonical(v: unknown): string {
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${k}:${canonical(o[k])}`)
      .join(",")}}`;
  }
  return String(v);
}
