// `ulc build --target wgsl`: a Program as files. manifest.json says, per graph (init and each entry), which
// buffers exist (inputs, parameters, outputs, intermediates with their sizes), and which kernels run in which
// order with which buffers bound; kernels/*.wgsl hold the shaders. A runtime needs nothing else.
import type { Graph } from "../../compiler/ir.js";
import { fuse } from "../../compiler/kernel/fuse.js";
import type { Program } from "../../compiler/lower.js";
import { memoryStats } from "../../compiler/memory.js";
import { renderKernelWgsl } from "./kernel.js";

export const MANIFEST_FORMAT = "ulc-program/1";

export interface BufferEntry {
  readonly id: number;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly role: "input" | "param" | "output" | "intermediate";
  /** Inputs and params: their name; outputs: the output's name. */
  readonly name?: string;
}

export interface DispatchEntry {
  readonly kernel: string;
  readonly workgroups: readonly [number, number];
  /** Binding 0 is the {seed, step} uniform; bindings 1.. are these buffers, inputs then the output. */
  readonly buffers: readonly number[];
}

export interface GraphManifest {
  readonly buffers: readonly BufferEntry[];
  readonly dispatches: readonly DispatchEntry[];
  readonly outputs: readonly { readonly name: string; readonly buffer: number }[];
  readonly memory: { readonly intermediates: number; readonly arena: number };
}

export interface WgslBuild {
  readonly manifest: object;
  /** Kernel file name -> WGSL source. Identical kernels (same WGSL) share one file. */
  readonly kernels: ReadonlyMap<string, string>;
}

export function emitWgsl(program: Program, options: { maxInputs?: number } = {}): WgslBuild {
  const kernels = new Map<string, string>();
  const fileOf = new Map<string, string>();
  const graph = (g: Graph): GraphManifest => {
    const schedule = fuse(g, { ...(options.maxInputs !== undefined && { maxInputs: options.maxInputs }) });
    const outputs = new Map(g.outputs.map((o) => [o.node, o.name]));
    const buffers: BufferEntry[] = schedule.buffers.map((id) => {
      const n = g.nodes[id]!;
      const role = n.op.kind === "input" ? "input" : n.op.kind === "param" ? "param" : outputs.has(id) ? "output" : "intermediate";
      const name = n.op.kind === "input" || n.op.kind === "param" ? n.op.name : outputs.get(id);
      return { id, dtype: n.dtype, shape: n.shape, role, ...(name !== undefined && { name }) };
    });
    const dispatches = schedule.steps.map((step): DispatchEntry => {
      if (step.kind !== "kernel") throw new Error(`%${step.call.node} needs a library kernel, which the WGSL target does not emit`);
      const { code, workgroups } = renderKernelWgsl(step.kernel);
      let file = fileOf.get(code);
      if (!file) {
        file = `k${kernels.size}.wgsl`;
        fileOf.set(code, file);
        kernels.set(file, code);
      }
      return { kernel: file, workgroups, buffers: [...step.kernel.inputs.map((i) => i.node), step.kernel.node] };
    });
    const mem = memoryStats(g);
    return { buffers, dispatches, outputs: g.outputs.map((o) => ({ name: o.name, buffer: o.node })), memory: { intermediates: mem.intermediates, arena: mem.arena } };
  };
  const manifest = {
    format: MANIFEST_FORMAT,
    target: "wgsl",
    model: program.model,
    bindings: program.bindings,
    params: program.params,
    hypers: program.hypers,
    init: graph(program.init),
    entries: program.entries.map((e) => ({
      name: e.name,
      kind: e.kind,
      inputs: e.inputs,
      results: e.results,
      ...(e.training && { training: e.training }),
      ...graph(e.graph),
    })),
  };
  return { manifest, kernels };
}
