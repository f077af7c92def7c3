// A Program as its kernels, whatever the target: per graph (init, ema, each entry) the buffers that exist
// (inputs, parameters, outputs, intermediates with their shapes), the kernel launches in order with the buffers
// each binds (its inputs, then its output), and the graph's outputs. A target supplies only how one fused kernel
// becomes a dispatch (its source file or function, and its launch size): backends/wgsl/program.ts and
// backends/cuda/program.ts.
import type { Graph } from "../compiler/ir.js";
import { fuse, type FuseOptions } from "../compiler/kernel/fuse.js";
import { partsBuffers, type Batch, type Chain, type Kernel, type LibraryCall } from "../compiler/kernel/ir.js";
import type { Program } from "../compiler/lower.js";
import { memoryStats } from "../compiler/memory.js";
import { MANIFEST_FORMAT, type BufferEntry, type Dispatch, type GraphManifest, type ProgramManifest } from "../runtime/manifest.js";

// The format is the runtime's (runtime/manifest.ts); the targets' backends take it from here.
export { MANIFEST_FORMAT, type BufferEntry, type Dispatch, type EntryManifest, type GraphManifest, type ProgramManifest } from "../runtime/manifest.js";

/** A tensor no target can hold: kernels index with 32-bit integers. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/** A Program past what a target can run, naming the tensor: a build error, not a shader that cannot compile. */
export class TargetLimitError extends Error {}

export interface EmitOptions extends Pick<FuseOptions, "maxInputs" | "tile" | "library" | "siblings" | "chain" | "batch"> {}

/** How a target makes a dispatch of a fused kernel and, for the ops it runs as library calls, of such a call. */
export interface Renderer<D extends Dispatch> {
  kernel(k: Kernel): D;
  /** A library call computing a node of `graph` from its operands' buffers (the ops of EmitOptions.library). */
  library?(call: LibraryCall, graph: Graph): D;
  /** Independent kernels as one launch (EmitOptions.batch), binding partsBinding's buffers. */
  batch?(b: Batch): D;
  /** Kernels the same threads run one after another (EmitOptions.chain), binding partsBinding's buffers. */
  chain?(c: Chain): D;
}

/** Collects kernels by their source, so identical ones share one name; `name(i)` names the i-th distinct one. */
export class KernelFiles {
  readonly files = new Map<string, string>();
  private readonly byCode = new Map<string, string>();

  constructor(private readonly name: (i: number) => string) {}

  add(code: string): string {
    let file = this.byCode.get(code);
    if (!file) {
      file = this.name(this.files.size);
      this.byCode.set(code, file);
      this.files.set(file, code);
    }
    return file;
  }
}

/** The buffers a library call binds: its operands, then its output. */
export function libraryBuffers(call: LibraryCall): number[] {
  return [...call.operands.map((o) => o.node), call.node];
}

/** What a kernel's dispatch binds: its inputs, then its outputs (how many, when more than one). */
export function kernelBinding(k: Kernel): Pick<Dispatch, "buffers" | "outputs"> {
  return partsBinding([k]);
}

/** What a dispatch of kernels (one, a batch or a chain) binds: what they read from outside it, each once, then all their outputs. */
export function partsBinding(parts: readonly Kernel[]): Pick<Dispatch, "buffers" | "outputs"> {
  const { inputs, outputs } = partsBuffers(parts);
  return { buffers: [...inputs, ...outputs], ...(outputs.length > 1 && { outputs: outputs.length }) };
}

/** The buffers a kernel binds: its inputs, then its outputs. */
export function kernelBuffers(k: Kernel): readonly number[] {
  return partsBinding([k]).buffers;
}

/** One graph fused into kernels, each made a dispatch by `render`. */
export function emitGraph<D extends Dispatch>(g: Graph, render: Renderer<D>, options: EmitOptions = {}): GraphManifest<D> {
  const schedule = fuse(g, options);
  const outputs = new Map(g.outputs.map((o) => [o.node, o.name]));
  const buffers: BufferEntry[] = schedule.buffers.map((id) => {
    const n = g.nodes[id]!;
    const role = n.op.kind === "input" ? "input" : n.op.kind === "param" ? "param" : outputs.has(id) ? "output" : "intermediate";
    const name = n.op.kind === "input" || n.op.kind === "param" ? n.op.name : outputs.get(id);
    return { id, dtype: n.dtype, shape: n.shape, role, ...(name !== undefined && { name }) };
  });
  const dispatches = schedule.steps.map((step) => {
    switch (step.kind) {
      case "kernel":
        return render.kernel(step.kernel);
      case "library":
        if (!render.library) throw new Error(`%${step.call.node} needs a library kernel, which this target does not emit`);
        return render.library(step.call, g);
      case "batch":
        if (!render.batch) throw new Error("a batch of kernels, which this target does not launch as one");
        return render.batch(step.batch);
      case "chain":
        if (!render.chain) throw new Error("a chain of kernels, which this target does not run as one");
        return render.chain(step.chain);
    }
  });
  const mem = memoryStats(g);
  return { buffers, dispatches, outputs: g.outputs.map((o) => ({ name: o.name, buffer: o.node })), memory: { intermediates: mem.intermediates, arena: mem.arena } };
}

/** Throws a TargetLimitError naming the first tensor of a graph past MAX_ELEMENTS. */
function checkSizes(g: Graph, name: string): void {
  for (const n of g.nodes) {
    const count = n.shape.reduce((a, b) => a * b, 1);
    if (count > MAX_ELEMENTS)
      throw new TargetLimitError(`graph ${name}: %${n.id} (${n.op.kind}) is ${n.dtype}[${n.shape.join(", ")}], ${count} elements; kernels index with 32-bit integers (at most ${MAX_ELEMENTS}): bind a smaller batch or width`);
  }
}

/** Every graph of a Program fused and rendered. */
export function emitProgram<T extends string, D extends Dispatch>(program: Program, target: T, render: Renderer<D>, options: EmitOptions = {}): ProgramManifest<T, D> {
  checkSizes(program.init, "init");
  checkSizes(program.ema, "ema");
  for (const e of program.entries) for (const g of e.parallel ? [e.parallel.gradients, e.parallel.update] : [e.graph]) checkSizes(g, e.name);
  return {
    format: MANIFEST_FORMAT,
    target,
    model: program.model,
    bindings: program.bindings,
    precision: program.precision,
    params: program.params,
    hypers: program.hypers,
    init: emitGraph(program.init, render, options),
    ema: emitGraph(program.ema, render, options),
    entries: program.entries.map((e) => ({
      name: e.name,
      kind: e.kind,
      inputs: e.inputs,
      results: e.results,
      ...(e.training && { training: e.training }),
      ...(e.parallel
        ? {
            ...emitGraph(e.parallel.update, render, options),
            parallel: { gradients: emitGraph(e.parallel.gradients, render, options), reduced: e.parallel.reduced, carried: e.parallel.carried },
          }
        : emitGraph(e.graph, render, options)),
    })),
  };
}
