// `ulc build --target wgsl`: a Program as files. manifest.json says, per graph (init, ema and each entry), which
// buffers exist and which kernels run in which order with which buffers bound (backends/program.ts);
// kernels/*.wgsl hold the shaders. The WebGPU runtime needs nothing else, in Node or in a browser.
import type { Graph } from "../../compiler/ir.js";
import type { Program } from "../../compiler/lower.js";
import type { DispatchEntry, GraphManifest, WgslBuild } from "../../runtime/webgpu/program.js";
import * as P from "../program.js";
import { renderKernelWgsl, type WgslKernelOptions } from "./kernel.js";

/** Kernel files `k0.wgsl`, `k1.wgsl`, ...: one per distinct shader. */
export class KernelFiles extends P.KernelFiles {
  constructor() {
    super((i) => `k${i}.wgsl`);
  }
}

/** How to fuse and render: `tile` bounds the register tiles of matmuls and convolutions, `tileWorkgroup` lays them out. */
export interface WgslEmitOptions extends P.EmitOptions, WgslKernelOptions {}

export type WgslTiling = Pick<WgslEmitOptions, "tile" | "tileWorkgroup">;

/**
 * How to tile matmuls and convolutions, by the kind of device: a rule rather than a tuner (a Program is built
 * once, before any step). The WebGPU runtime picks one per adapter; `ulc build --tile` picks one for a Program
 * built ahead of time.
 * - gpu: 4 × 4 outputs per invocation in workgroups of 64, which keeps a small matmul's grid wide.
 * - cpu (a software adapter, lavapipe): an operand read costs about as much as several multiply-adds and a
 *   workgroup runs on one thread, so 8 × 8 outputs per invocation (a quarter of a read per multiply-add; 4-8x
 *   the speed of one output per invocation) in workgroups of 16, so that even a 64 × 512 output is spread over
 *   both cores. Such a kernel takes LLVM about a second to compile (ten times an untiled one), so only sums of
 *   1M multiply-adds or more are tiled there.
 * - none: one output per invocation.
 */
export const TILINGS: Readonly<Record<"gpu" | "cpu" | "none", WgslTiling>> = {
  gpu: { tile: { rows: 4, cols: 4 }, tileWorkgroup: [16, 4] },
  cpu: { tile: { rows: 8, cols: 8, minProducts: 2 ** 20 }, tileWorkgroup: [4, 4] },
  none: {},
};

function dispatcher(files: KernelFiles, options: WgslKernelOptions): P.Renderer<DispatchEntry> {
  return {
    kernel: (k) => {
      const { code, workgroups } = renderKernelWgsl(k, options);
      return { kernel: files.add(code), workgroups, buffers: P.kernelBuffers(k) };
    },
  };
}

/** One graph fused into kernels, as the runtime runs it. */
export function emitGraph(g: Graph, files: KernelFiles, options: WgslEmitOptions = {}): GraphManifest {
  return P.emitGraph(g, dispatcher(files, options), options);
}

export function emitWgsl(program: Program, options: WgslEmitOptions = {}): WgslBuild {
  const parallel = program.entries.find((e) => e.parallel);
  if (parallel) throw new P.TargetLimitError(`entry ${parallel.name} is lowered for data-parallel training, which runs on the cpu and cuda targets (their host runtimes do the all-reduce), not on WebGPU`);
  const files = new KernelFiles();
  return { manifest: P.emitProgram(program, "wgsl", dispatcher(files, options), options), kernels: files.files };
}
