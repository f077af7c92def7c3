// `ulc build --target wgsl`: a Program as files. manifest.json says, per graph (init and each entry), which
// buffers exist (inputs, parameters, outputs, intermediates with their sizes), and which kernels run in which
// order with which buffers bound; kernels/*.wgsl hold the shaders. The WebGPU runtime needs nothing else, in
// Node or in a browser.
import type { DType, Graph } from "../../compiler/ir.js";
import { fuse } from "../../compiler/kernel/fuse.js";
import type { Program, ProgramEntry } from "../../compiler/lower.js";
import { memoryStats } from "../../compiler/memory.js";
import { renderKernelWgsl } from "./kernel.js";

export const MANIFEST_FORMAT = "ulc-program/1";

export interface BufferEntry {
  readonly id: number;
  readonly dtype: DType;
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

export type EntryManifest = GraphManifest & Pick<ProgramEntry, "name" | "kind" | "inputs" | "results" | "training">;

/** A Program (compiler/lower.ts) with each graph replaced by its kernels. */
export interface ProgramManifest extends Pick<Program, "model" | "bindings" | "params" | "hypers"> {
  readonly format: typeof MANIFEST_FORMAT;
  readonly target: "wgsl";
  readonly init: GraphManifest;
  readonly ema: GraphManifest;
  readonly entries: readonly EntryManifest[];
}

export interface WgslBuild {
  readonly manifest: ProgramManifest;
  /** Kernel file name -> WGSL source. Identical kernels (same WGSL) share one file. */
  readonly kernels: ReadonlyMap<string, string>;
}

/** Collects kernels by their source, so identical ones share a file. */
export class KernelFiles {
  readonly files = new Map<string, string>();
  private readonly byCode = new Map<string, string>();

  add(code: string): string {
    let file = this.byCode.get(code);
    if (!file) {
      file = `k${this.files.size}.wgsl`;
      this.byCode.set(code, file);
      this.files.set(file, code);
    }
    return file;
  }
}

/** One graph fused into kernels, as the runtime runs it. */
export function emitGraph(g: Graph, files: KernelFiles, options: { maxInputs?: number } = {}): GraphManifest {
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
    return { kernel: files.add(code), workgroups, buffers: [...step.kernel.inputs.map((i) => i.node), step.kernel.node] };
  });
  const mem = memoryStats(g);
  return { buffers, dispatches, outputs: g.outputs.map((o) => ({ name: o.name, buffer: o.node })), memory: { intermediates: mem.intermediates, arena: mem.arena } };
}

export function emitWgsl(program: Program, options: { maxInputs?: number } = {}): WgslBuild {
  const files = new KernelFiles();
  const manifest: ProgramManifest = {
    format: MANIFEST_FORMAT,
    target: "wgsl",
    model: program.model,
    bindings: program.bindings,
    params: program.params,
    hypers: program.hypers,
    init: emitGraph(program.init, files, options),
    ema: emitGraph(program.ema, files, options),
    entries: program.entries.map((e) => ({
      name: e.name,
      kind: e.kind,
      inputs: e.inputs,
      results: e.results,
      ...(e.training && { training: e.training }),
      ...emitGraph(e.graph, files, options),
    })),
  };
  return { manifest, kernels: files.files };
}
