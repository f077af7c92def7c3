/// <reference types="@webgpu/types" />
// A Program compiled in memory (compiler/lower.ts) run on a WebGPU device, as the CLI and the tests do: rendered
// to WGSL as `ulc build --target wgsl` would, with the tiling the device wants, then loaded like a built one.
// Apart from the session so that the runtime itself holds no compiler: an app loads built Programs, and only
// what compiles imports this file.
import { emitWgsl, TILINGS, type WgslTiling } from "../../backends/wgsl/program.js";
import type { Program } from "../../compiler/lower.js";
import { summarize } from "./device.js";
import { WebGpuSession, type WebGpuSessionOptions } from "./session.js";

/** The tiling for `device` (backends/wgsl/program.ts, TILINGS): "cpu" on a software adapter, else "gpu". */
export function tilingFor(device: GPUDevice): WgslTiling {
  const adapter = summarize(device.adapterInfo);
  const cpu = adapter.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(adapter.name);
  return TILINGS[cpu ? "cpu" : "gpu"];
}

/** A session on an in-memory Program, compiled for `device`. */
export function sessionFromProgram(device: GPUDevice, program: Program, options: WebGpuSessionOptions): Promise<WebGpuSession> {
  return WebGpuSession.create(device, emitWgsl(program, tilingFor(device)), options);
}
