// Movement ops as index views. reshape, transpose, broadcast and slice move no data: each maps an output index
// to an input index. A chain of them composes into one strided view of its source (shape, strides, offset),
// so an executor reads the source through the view instead of materialising every step, and a kernel folds
// the view into its index arithmetic. A reshape that cannot be expressed as strides of the current view (a
// transposed tensor flattened, say) ends the chain: its input must then be materialised.
import { strides, type Graph, type Node, type Op } from "./ir.js";

export interface View {
  readonly shape: readonly number[];
  /** Elements, not bytes; 0 for a broadcast axis. */
  readonly strides: readonly number[];
  readonly offset: number;
}

export function contiguousView(shape: readonly number[]): View {
  return { shape, strides: strides(shape), offset: 0 };
}

export function isMovement(op: Op): op is Extract<Op, { kind: "reshape" | "transpose" | "broadcast" | "slice" }> {
  return op.kind === "reshape" || op.kind === "transpose" || op.kind === "broadcast" || op.kind === "slice";
}

/** The view after one movement op producing `out`; undefined when a reshape cannot keep it strided. */
export function applyMovement(v: View, op: Extract<Op, { kind: "reshape" | "transpose" | "broadcast" | "slice" }>, out: readonly number[]): View | undefined {
  switch (op.kind) {
    case "transpose":
      return { shape: out, strides: op.perm.map((p) => v.strides[p]!), offset: v.offset };
    case "broadcast":
      return { shape: out, strides: v.shape.map((d, i) => (d === 1 && out[i] !== 1 ? 0 : v.strides[i]!)), offset: v.offset };
    case "slice":
      return { shape: out, strides: v.strides, offset: v.offset + op.start * v.strides[op.axis]! };
    case "reshape":
      return reshapeView(v, out);
  }
}

/**
 * Reshape without copying, when possible: the old dims are grouped into runs whose product matches a run of
 * new dims; each old run must be contiguous in itself, and the new run gets strides from its innermost old dim.
 */
export function reshapeView(v: View, shape: readonly number[]): View | undefined {
  const oldShape: number[] = [];
  const oldStrides: number[] = [];
  v.shape.forEach((d, i) => {
    if (d !== 1) {
      oldShape.push(d);
      oldStrides.push(v.strides[i]!);
    }
  });
  const out = new Array<number>(shape.length).fill(0);
  let ni = 0;
  let oi = 0;
  while (oi < oldShape.length) {
    // Size-1 new dims before the next run take any stride.
    while (ni < shape.length && shape[ni] === 1) out[ni++] = 0;
    if (ni >= shape.length) return undefined;
    let np = shape[ni]!;
    let op = oldShape[oi]!;
    let nj = ni + 1;
    let oj = oi + 1;
    while (np !== op) {
      if (np < op) {
        if (nj >= shape.length) return undefined;
        np *= shape[nj++]!;
      } else {
        if (oj >= oldShape.length) return undefined;
        op *= oldShape[oj++]!;
      }
    }
    for (let k = oi; k < oj - 1; k++) if (oldStrides[k] !== oldStrides[k + 1]! * oldShape[k + 1]!) return undefined;
    out[nj - 1] = oldStrides[oj - 1]!;
    for (let k = nj - 1; k > ni; k--) out[k - 1] = out[k]! * shape[k]!;
    ni = nj;
    oi = oj;
  }
  while (ni < shape.length) {
    if (shape[ni] !== 1) return undefined;
    out[ni++] = 0;
  }
  return { shape, strides: out, offset: v.offset };
}

export interface Chain {
  /** The node whose data the view reads: the first non-movement node up the chain, or where a reshape broke it. */
  readonly source: number;
  readonly view: View;
}

/** For every movement node, the composed view of its whole chain; undefined for other nodes. */
export function movementChains(g: Graph): (Chain | undefined)[] {
  const chains: (Chain | undefined)[] = new Array(g.nodes.length);
  g.nodes.forEach((n: Node) => {
    if (!isMovement(n.op)) return;
    const x = n.inputs[0]!;
    const base = chains[x] ?? { source: x, view: contiguousView(g.nodes[x]!.shape) };
    const composed = applyMovement(base.view, n.op, n.shape);
    chains[n.id] = composed ? { source: base.source, view: composed } : { source: x, view: applyMovement(contiguousView(g.nodes[x]!.shape), n.op, n.shape)! };
  });
  return chains;
}
