// Runs a fused schedule (compiler/kernel) on the CPU: kernels through the JS renderer, library calls through the
// reference interpreter. Float64 only: it exists to check fusion against the interpreter, not to be fast.
import { renderKernel } from "../../backends/js/render.js";
import { GraphBuilder, type Graph } from "../../compiler/ir.js";
import { kernelOutputs, type Kernel, type LibraryCall, type Schedule } from "../../compiler/kernel/ir.js";
import { BINARY, BINARY_I32, UNARY, saturateToI32 } from "../../compiler/scalar.js";
import { interpret, type InterpretEnv } from "../interpreter.js";
import { normalAt, uniformAt } from "../random.js";
import type { Tensor } from "../tensor.js";

type KernelFn = (ins: Float64Array[], outs: Float64Array[], seed: number, step: number, ...lib: unknown[]) => void;

const compiled = new WeakMap<Kernel, KernelFn>();

function compile(k: Kernel): KernelFn {
  let f = compiled.get(k);
  if (!f) {
    f = new Function("ins", "outs", "seed", "step", "U", "B", "BI", "toI32", "uniformAt", "normalAt", renderKernel(k)) as KernelFn;
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
  const run = (k: Kernel) => {
    const outputs = kernelOutputs(k);
    const outs = outputs.map(() => new Float64Array(k.size));
    compile(k)(
      k.inputs.map((i) => buffers.get(i.node)!),
      outs,
      options.seed,
      options.step,
      UNARY,
      BINARY,
      BINARY_I32,
      saturateToI32,
      uniformAt,
      normalAt,
    );
    outputs.forEach((o, i) => buffers.set(o.node, outs[i]!));
  };
  for (const step of schedule.steps) {
    if (step.kind === "kernel") run(step.kernel);
    // A batch's parts are independent (any order is theirs); a chain's run in order.
    else if (step.kind === "batch") step.batch.parts.forEach(run);
    else if (step.kind === "chain") step.chain.parts.forEach(run);
    else buffers.set(step.call.node, library(g, step.call, buffers, options));
  }
  return new Map(g.outputs.map((o) => [o.name, { dtype: g.nodes[o.node]!.dtype, shape: g.nodes[o.node]!.shape, data: buffers.get(o.node)! }]));
}

/** A library op: the interpreter runs it alone, on its materialised operands (transposed where it reads them so). */
function library(g: Graph, call: LibraryCall, buffers: ReadonlyMap<number, Float64Array>, options: { seed: number; step: number }): Float64Array {
  const n = g.nodes[call.node]!;
  const b = new GraphBuilder();
  const ins = call.operands.map(({ node, transposed }, i) => {
    const x = b.add({ kind: "input", name: `x${i}` }, [], g.nodes[node]!.shape, g.nodes[node]!.dtype);
    const r = g.nodes[node]!.shape.length;
    return transposed ? b.add({ kind: "transpose", perm: [...Array(r - 2).keys(), r - 1, r - 2] }, [x]) : x;
  });
  const y = b.add(n.op, ins, n.shape, n.dtype);
  const inputs = new Map(call.operands.map(({ node }, i) => [`x${i}`, { dtype: g.nodes[node]!.dtype, shape: g.nodes[node]!.shape, data: buffers.get(node)! }]));
  return Float64Array.from(interpret(b.build([{ name: "y", node: y }]), { inputs }, { precision: "f64", ...options }).get("y")!.data);
}
