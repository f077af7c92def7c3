// Dead-code elimination: keeps the nodes the outputs need, in their order, renumbered. Inputs and params no
// output depends on disappear with the rest (the runtime binds inputs by name, so a missing one is harmless).
import { GraphBuilder, type Graph } from "../ir.js";
import { copy } from "./rewrite.js";

export function dce(g: Graph): Graph {
  const live = new Uint8Array(g.nodes.length);
  for (const o of g.outputs) live[o.node] = 1;
  for (let i = g.nodes.length - 1; i >= 0; i--) if (live[i]) for (const x of g.nodes[i]!.inputs) live[x] = 1;
  const b = new GraphBuilder();
  const map = new Array<number>(g.nodes.length);
  for (const n of g.nodes) if (live[n.id]) map[n.id] = copy(b, { ...n, inputs: n.inputs.map((i) => map[i]!) });
  return b.build(g.outputs.map((o) => ({ name: o.name, node: map[o.node]! })));
}
