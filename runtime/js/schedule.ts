// Runs a fused schedule (compiler/kernel) on the CPU: kernels through the JS renderer, library calls through the
// reference interpreter. Float64 only: it exists to check fusion against the interpreter, not to be fast.
import { renderKernel } from "../../backends/js/render.js";
import { GraphBuilder, type Graph } from "../../compiler/ir.js";
import type { Kernel, Schedule } from "../../compiler/kernel/ir.js";
import { BINARY, BINARY_I32, UNARY, saturateToI32 } from "../../compiler/scalar.js";
import { interpret, type InterpretEnv } from "../interpreter.js";
import { normalAt, uniformAt } from "../random.js";
import type { Tensor } from "../tensor.js";

type KernelFn = (ins: Float64Array[], out: Float64Array, seed: number, step: number, ...lib: unknown[]) => void;

const compiled = new WeakMap<Kernel, KernelFn>();

function compile(k: Kernel): KernelFn {
  let f = compiled.get(k);
  if (!f) {
    f = new Function("ins", "out", "seed", "step", "U", "B", "BI", "toI32", "uniformAt", "normalAt", renderKernel(k)) as KernelFn;
    compiled.set(k, f);
  }
  return f;
}

export function runSchedule(g: Graph, schedule: Schedule, env: InterpretEnv, options: { seed: number; step: number }): Map<string, Tensor> {
  const buffers = new Map<number, Float64Array>();
  for (const n of g.nodes) {
    if (n.op.kind !== "input" && n.op.kind !== "param") continue;
    const t = (n.op.kind === "input" ? env.inputs : env.params)?.get(n.op.name);
    if (!t) throw new Error(`missing ${n.op.kind} '${n.op.name}'`);
    buffers.set(n.id, Float64Array.from(t.data));
  }
  for (const step of schedule.steps) {
    if (step.kind === "kernel") {
      const k = step.kernel;
      const out = new Float64Array(k.size);
      compile(k)(
        k.inputs.map((i) => buffers.get(i.node)!),
        out,
        options.seed,
        options.step,
        UNARY,
        BINARY,
        BINARY_I32,
        saturateToI32,
        uniformAt,
        normalAt,
      );
      buffers.set(k.node, out);
      continue;
    }
    // A library op: the interpreter runs it alone, on its materialised inputs.
    const n = g.nodes[step.call.node]!;
    const b = new GraphBuilder();
    const ins = n.inputs.map((x, i) => b.add({ kind: "input", name: `x${i}` }, [], g.nodes[x]!.shape, g.nodes[x]!.dtype));
    const y = b.add(n.op, ins, n.shape, n.dtype);
    const inputs = new Map(n.inputs.map((x, i) => [`x${i}`, { dtype: g.nodes[x]!.dtype, shape: g.nodes[x]!.shape, data: buffers.get(x) ?? constantData(g, x) }]));
    buffers.set(n.id, Float64Array.from(interpret(b.build([{ name: "y", node: y }]), { inputs }, { precision: "f64", ...options }).get("y")!.data));
  }
  return new Map(g.outputs.map((o) => [o.name, { dtype: g.nodes[o.node]!.dtype, shape: g.nodes[o.node]!.shape, data: buffers.get(o.node)! }]));
}

/** A constant read by a library op (constants are inlined into kernels and have no buffer). */
function constantData(g: Graph, id: number): Float64Array {
  const n = g.nodes[id]!;
  if (n.op.kind !== "constant") throw new Error(`%${id} has no buffer`);
  return new Float64Array(n.shape.reduce((a, b) => a * b, 1)).fill(n.op.value);
}
