// Fusion: graph IR -> a schedule of kernels. Element-wise chains fuse into their consumer; movement ops become
// index arithmetic; a reduction absorbs its element-wise prologue and, when its only consumer is element-wise
// on the same shape, that epilogue too. A value with several consumers is materialised rather than recomputed,
// as is every graph output. Ops with dedicated kernels (matmul, convolutions, pooling, pad, concat) run as
// library calls on materialised inputs; folding prologues and epilogues into them comes with their templates.
import { strides, type Graph, type Node } from "../ir.js";
import { GID, R, ixAdd, ixConst, ixDiv, ixMod, ixMul, type Ix, type Kernel, type KernelInput, type Schedule, type Step, type Sx } from "./ir.js";

const LIBRARY = new Set(["matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight", "avg_pool", "avg_pool_grad", "upsample", "pad", "concat"]);
const ELEMENTWISE = new Set(["unary", "binary", "compare", "select", "cast", "stop_gradient"]);
const MOVEMENT = new Set(["reshape", "transpose", "broadcast", "slice"]);

/** The multi-index of a tensor of `shape` at linear position `linear` (< size). */
function unravel(linear: Ix, shape: readonly number[]): Ix[] {
  const st = strides(shape);
  return shape.map((d, i) => ixMod(ixDiv(linear, st[i]!), d, i === 0 ? d : undefined));
}

function ravel(idx: readonly Ix[], shape: readonly number[]): Ix {
  const st = strides(shape);
  return idx.reduce<Ix>((acc, x, i) => ixAdd(acc, ixMul(x, st[i]!)), ixConst(0));
}

export function fuse(g: Graph): Schedule {
  const consumers = new Array<number>(g.nodes.length).fill(0);
  for (const n of g.nodes) for (const x of n.inputs) consumers[x]! += 1;
  // Reads through views count as reads of the viewed node: a value read by two views is read twice.
  const reads = new Array<number>(g.nodes.length).fill(0);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    const own = MOVEMENT.has(n.op.kind) ? reads[i]! : 1;
    for (const x of n.inputs) reads[x]! += own;
  }
  for (const o of g.outputs) reads[o.node]! += 1;
  const outputs = new Set(g.outputs.map((o) => o.node));
  const materialized = new Set<number>();
  for (const n of g.nodes) {
    const kind = n.op.kind;
    if (outputs.has(n.id) || kind === "input" || kind === "param" || LIBRARY.has(kind)) materialized.add(n.id);
    if (LIBRARY.has(kind)) for (const x of n.inputs) if (g.nodes[x]!.op.kind !== "constant") materialized.add(x);
    if ((ELEMENTWISE.has(kind) || kind === "random" || kind === "iota") && reads[n.id]! > 1) materialized.add(n.id);
    if (kind === "reduce" && !fusableReduce(g, n, consumers)) materialized.add(n.id);
  }
  // A kernel holds one reduction: a second fusable one met while building is materialised, and we retry.
  for (;;) {
    const retry = buildSchedule(g, materialized);
    if (typeof retry !== "number") return retry;
    materialized.add(retry);
  }
}

/** A reduction fuses into its consumer when that is its only use, element-wise, and on the same shape. */
function fusableReduce(g: Graph, n: Node, consumers: readonly number[]): boolean {
  if (consumers[n.id] !== 1) return false;
  const user = g.nodes.find((u) => u.inputs.includes(n.id))!;
  return ELEMENTWISE.has(user.op.kind) && user.shape.length === n.shape.length && user.shape.every((d, i) => d === n.shape[i]);
}

/** The schedule, or the id of a reduction that has to be materialised first. */
function buildSchedule(g: Graph, materialized: ReadonlySet<number>): Schedule | number {
  const steps: Step[] = [];
  for (const n of g.nodes) {
    if (!materialized.has(n.id) || n.op.kind === "input" || n.op.kind === "param") continue;
    if (LIBRARY.has(n.op.kind)) {
      steps.push({ kind: "library", call: { node: n.id } });
      continue;
    }
    const k = new KernelBuilder(g, materialized, n);
    const kernel = k.build();
    if (typeof kernel === "number") return kernel;
    steps.push({ kind: "kernel", kernel });
  }
  return { steps, buffers: g.nodes.filter((n) => materialized.has(n.id)).map((n) => n.id) };
}

class SecondReduce {
  constructor(readonly node: number) {}
}

class KernelBuilder {
  private readonly inputs: KernelInput[] = [];
  private readonly inputIndex = new Map<number, number>();
  private readonly fused = new Set<number>();
  private reduce: Kernel["reduce"];
  private reduceNode: number | undefined;
  /** The index the reduction was computed at: reaching it again at another index needs a second one. */
  private reduceAt: string | undefined;

  constructor(
    private readonly g: Graph,
    private readonly materialized: ReadonlySet<number>,
    private readonly root: Node,
  ) {}

  build(): Kernel | number {
    try {
      const body = this.root.op.kind === "reduce" ? this.reduction(this.root, unravel(GID, this.root.shape)) : this.at(this.root, unravel(GID, this.root.shape), true);
      return {
        name: `k${this.root.id}_${this.root.op.kind}`,
        node: this.root.id,
        dtype: this.root.dtype,
        size: this.root.shape.reduce((a, b) => a * b, 1),
        inputs: this.inputs,
        ...(this.reduce && { reduce: this.reduce }),
        body,
        fused: [...this.fused].sort((a, b) => a - b),
      };
    } catch (e) {
      if (e instanceof SecondReduce) return e.node;
      throw e;
    }
  }

  private load(n: Node, idx: readonly Ix[]): Sx {
    let i = this.inputIndex.get(n.id);
    if (i === undefined) {
      i = this.inputs.length;
      this.inputIndex.set(n.id, i);
      this.inputs.push({ node: n.id, dtype: n.dtype, size: n.shape.reduce((a, b) => a * b, 1) });
    }
    return { k: "load", t: n.dtype, buffer: i, at: ravel(idx, n.shape) };
  }

  /** The reduction of `n` (its input's prologue inlined) for the output element at `idx`; yields `acc`. */
  private reduction(n: Node, idx: readonly Ix[]): Sx {
    if (n.op.kind !== "reduce") throw new Error("not a reduction");
    if (this.reduce) throw new SecondReduce(n.id);
    const x = this.g.nodes[n.inputs[0]!]!;
    const axes = n.op.axes;
    const sub = axes.map((a) => x.shape[a]!);
    const r = unravel(R, sub);
    const xIdx = x.shape.map((_, d) => (axes.includes(d) ? r[axes.indexOf(d)]! : idx[d]!));
    this.fused.add(n.id);
    this.reduceNode = n.id;
    this.reduceAt = JSON.stringify(idx);
    // Placeholder first, so a nested reduction in the prologue is detected as a second one.
    this.reduce = { fn: n.op.fn, count: sub.reduce((a, b) => a * b, 1), body: { k: "const", t: n.dtype, v: 0 } };
    this.reduce = { ...this.reduce, body: this.at(x, xIdx) };
    return { k: "acc", t: n.dtype };
  }

  /** The value of node `n` at multi-index `idx`, inlining everything not materialised. */
  private at(n: Node, idx: readonly Ix[], isRoot = false): Sx {
    if (!isRoot && this.materialized.has(n.id)) return this.load(n, idx);
    const op = n.op;
    const t = n.dtype;
    const input = (i: number) => this.g.nodes[n.inputs[i]!]!;
    if (op.kind !== "constant") this.fused.add(n.id);
    switch (op.kind) {
      case "constant":
        return { k: "const", t, v: op.value };
      case "iota":
        return { k: "index", t, at: idx[0]! };
      case "random":
        return { k: "random", t, dist: op.dist, key: op.key, at: ravel(idx, n.shape) };
      case "unary":
        return { k: "unary", t, fn: op.fn, x: this.at(input(0), idx) };
      case "binary":
        return { k: "binary", t, fn: op.fn, a: this.at(input(0), idx), b: this.at(input(1), idx) };
      case "compare":
        return { k: "compare", t, fn: op.fn, a: this.at(input(0), idx), b: this.at(input(1), idx) };
      case "select":
        return { k: "select", t, c: this.at(input(0), idx), a: this.at(input(1), idx), b: this.at(input(2), idx) };
      case "cast":
        return { k: "cast", t, x: this.at(input(0), idx) };
      case "stop_gradient":
        return this.at(input(0), idx);
      case "reduce":
        if (this.reduceNode === n.id) {
          if (this.reduceAt !== JSON.stringify(idx)) throw new SecondReduce(n.id);
          return { k: "acc", t };
        }
        return this.reduction(n, idx);
      case "transpose": {
        const inIdx = new Array<Ix>(n.shape.length);
        op.perm.forEach((p, d) => (inIdx[p] = idx[d]!));
        return this.at(input(0), inIdx);
      }
      case "broadcast": {
        const x = input(0);
        return this.at(
          x,
          x.shape.map((d, i) => (d === 1 ? ixConst(0) : idx[i]!)),
        );
      }
      case "slice":
        return this.at(
          input(0),
          idx.map((x, i) => (i === op.axis ? ixAdd(x, ixConst(op.start)) : x)),
        );
      case "reshape": {
        const x = input(0);
        return this.at(x, unravel(ravel(idx, n.shape), x.shape));
      }
      default:
        throw new Error(`${op.kind} cannot be fused (it should have been materialised)`);
    }
  }
}
