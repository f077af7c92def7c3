// Data parallelism: a train step whose gradients and metrics pass through `all_reduce` nodes becomes two graphs
// with the collective between them, which the host runs: `gradients` (forward and backward, up to every
// all_reduce's operand) and `update` (the optimizer's update and the step's outputs, from the reduced values).
// The reduced values travel as one flat f32 buffer, reduced in place by one call.
import { GraphBuilder, verify, type Graph, type Node } from "./ir.js";

/** How the two graphs hand values over: by graph output/input name, in the flat buffer's order. */
export interface SplitStep {
  /** Forward and backward: outputs each all_reduce's operand (`reduce.I`) and every value the update also needs (`carry.I`). */
  readonly gradients: Graph;
  /** The rest of the step: reads `reduce.I` (reduced) and `carry.I`, outputs what the step outputs. */
  readonly update: Graph;
  /** The reduced values' names, in the order they lie in the flat buffer. */
  readonly reduced: readonly string[];
  /** Values the update reads from the gradients graph as they are (rare: the optimizer reads the forward pass). */
  readonly carried: readonly string[];
}

const REDUCED = (i: number) => `reduce.${i}`;
const CARRIED = (i: number) => `carry.${i}`;

/** Nodes every graph can have its own copy of: they compute nothing from data. */
function isLeaf(n: Node): boolean {
  return n.op.kind === "input" || n.op.kind === "param" || n.op.kind === "constant" || n.op.kind === "iota";
}

/** Splits a step at its all_reduce nodes (one round of collectives: no all_reduce may read another's result). */
export function splitAtAllReduce(g: Graph): SplitStep {
  const reduces = g.nodes.filter((n) => n.op.kind === "all_reduce");
  if (reduces.length === 0) throw new Error("the graph has no all_reduce to split at");
  for (const r of reduces) if (r.dtype !== "f32") throw new Error(`all_reduce %${r.id} is ${r.dtype}; the flat buffer holds f32 values`);

  // What the gradients graph computes: every ancestor of an all_reduce's operand.
  const before = new Set<number>();
  const mark = (id: number) => {
    if (before.has(id)) return;
    const n = g.nodes[id]!;
    if (n.op.kind === "all_reduce") throw new Error(`all_reduce %${id} feeds another: a step reduces once`);
    before.add(id);
    for (const x of n.inputs) mark(x);
  };
  for (const r of reduces) mark(r.inputs[0]!);

  const grads = new GraphBuilder();
  const gradsId = new Map<number, number>();
  for (const n of g.nodes) if (before.has(n.id)) gradsId.set(n.id, grads.add(n.op, n.inputs.map((x) => gradsId.get(x)!), n.shape, n.dtype));
  const gradsOutputs = reduces.map((r, i) => ({ name: REDUCED(i), node: gradsId.get(r.inputs[0]!)! }));

  // The update: what the outputs need, reading reduced values as inputs and carrying computed ones over.
  const update = new GraphBuilder();
  const updateId = new Map<number, number>();
  const carried: string[] = [];
  const take = (id: number): number => {
    const known = updateId.get(id);
    if (known !== undefined) return known;
    const n = g.nodes[id]!;
    let made: number;
    if (n.op.kind === "all_reduce") made = update.add({ kind: "input", name: REDUCED(reduces.indexOf(n)) }, [], n.shape, n.dtype);
    else if (before.has(id) && !isLeaf(n)) {
      const name = CARRIED(carried.length);
      carried.push(name);
      gradsOutputs.push({ name, node: gradsId.get(id)! });
      made = update.add({ kind: "input", name }, [], n.shape, n.dtype);
    } else made = update.add(n.op, n.inputs.map(take), n.shape, n.dtype);
    updateId.set(id, made);
    return made;
  };
  const updateOutputs = g.outputs.map((o) => ({ name: o.name, node: take(o.node) }));
  const split: SplitStep = {
    gradients: grads.build(gradsOutputs),
    update: update.build(updateOutputs),
    reduced: reduces.map((_, i) => REDUCED(i)),
    carried,
  };
  verify(split.gradients);
  verify(split.update);
  return split;
}
