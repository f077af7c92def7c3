// `ulc build --target wgsl`: a Program as files. manifest.json says, per graph (init, ema and each entry), which
// buffers exist and which kernels run in which order with which buffers bound (backends/program.ts);
// kernels/*.wgsl hold the shaders. The WebGPU runtime needs nothing else, in Node or in a browser.
import type { Graph } from "../../compiler/ir.js";
import type { Kernel } from "../../compiler/kernel/ir.js";
import type { Program } from "../../compiler/lower.js";
import * as P from "../program.js";
import { renderKernelWgsl, type WgslKernelOptions } from "./kernel.js";

export { MANIFEST_FORMAT, type BufferEntry } from "../program.js";

export interface DispatchEntry extends P.Dispatch {
  readonly workgroups: readonly [number, number];
  /** Binding 0 is the {seed, step} uniform; bindings 1.. are these buffers, inputs then the output. */
  readonly buffers: readonly number[];
}

export type GraphManifest = P.GraphManifest<DispatchEntry>;
export type EntryManifest = P.EntryManifest<DispatchEntry>;
export type ProgramManifest = P.ProgramManifest<"wgsl", DispatchEntry>;

export interface WgslBuild {
  readonly manifest: ProgramManifest;
  /** Kernel file name -> WGSL source. Identical kernels (same WGSL) share one file. */
  readonly kernels: ReadonlyMap<string, string>;
}

/** Kernel files `k0.wgsl`, `k1.wgsl`, ...: one per distinct shader. */
export class KernelFiles extends P.KernelFiles {
  constructor() {
    super((i) => `k${i}.wgsl`);
  }
}

/** How to fuse and render: `tile` bounds the register tiles of matmuls and convolutions, `tileWorkgroup` lays them out. */
export interface WgslEmitOptions extends P.EmitOptions, WgslKernelOptions {}

function dispatcher(files: KernelFiles, options: WgslKernelOptions): (k: Kernel) => DispatchEntry {
  return (k) => {
    const { code, workgroups } = renderKernelWgsl(k, options);
    return { kernel: files.add(code), workgroups, buffers: P.kernelBuffers(k) };
  };
}

/** One graph fused into kernels, as the runtime runs it. */
export function emitGraph(g: Graph, files: KernelFiles, options: WgslEmitOptions = {}): GraphManifest {
  return P.emitGraph(g, dispatcher(files, options), options);
}

export function emitWgsl(program: Program, options: WgslEmitOptions = {}): WgslBuild {
  const files = new KernelFiles();
  return { manifest: P.emitProgram(program, "wgsl", dispatcher(files, options), options), kernels: files.files };
}
