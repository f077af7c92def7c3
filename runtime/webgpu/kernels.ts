/// <reference types="@webgpu/types" />
// Runs a graph of a WGSL Program (backends/wgsl/program.ts) on a GPUDevice: one compute pipeline per kernel
// file (compiled once and cached by its source), one bind group per dispatch, every dispatch of the graph in
// one command buffer. Validation errors are thrown, not left as console warnings.
import type { GraphManifest, WgslEmitOptions } from "../../backends/wgsl/program.js";
import { createStorageBuffer, readBuffer, uploadBuffer, uploadUniform } from "./buffers.js";
import { summarize } from "./device.js";
import { computePipeline } from "./pipelines.js";

export interface DeviceTensor {
  readonly buffer: GPUBuffer;
  readonly dtype: string;
  readonly size: number;
}

/**
 * How to tile matmuls and convolutions for `device`, a rule rather than a tuner (a Program is built once, before
 * any step). On a CPU adapter (lavapipe) an operand read costs about as much as several multiply-adds and a
 * workgroup runs on one thread: 8 × 8 outputs per invocation (a quarter of a read per multiply-add; 4-8x the
 * speed of one output per invocation) in workgroups of 16, so that even a 64 × 512 output is spread over both
 * cores. Such a kernel takes LLVM about a second to compile (ten times an untiled one), so only sums of 1M
 * multiply-adds or more are tiled there. On a GPU: 4 × 4 per invocation in workgroups of 64, which keeps a
 * small matmul's grid wide.
 */
export function tilingFor(device: GPUDevice): Pick<WgslEmitOptions, "tile" | "tileWorkgroup"> {
  const adapter = summarize(device.adapterInfo);
  const cpu = adapter.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(adapter.name);
  return cpu ? { tile: { rows: 8, cols: 8, minProducts: 2 ** 20 }, tileWorkgroup: [4, 4] } : { tile: { rows: 4, cols: 4 }, tileWorkgroup: [16, 4] };
}

/** Host data as the storage a kernel reads: i32 as Int32Array, everything else as Float32Array. */
export function hostToStorage(dtype: string, data: ArrayLike<number>): Float32Array | Int32Array {
  return dtype === "i32" ? Int32Array.from(data) : Float32Array.from(data);
}

/**
 * Runs `graph`; `buffers` holds its input and parameter buffers by id and receives every dispatch's output.
 * Returns the buffers this call created (the caller frees those it does not keep).
 */
export async function runGraph(device: GPUDevice, graph: GraphManifest, kernels: ReadonlyMap<string, string>, buffers: Map<number, DeviceTensor>, seed: number, step: number): Promise<DeviceTensor[]> {
  const specs = new Map(graph.buffers.map((b) => [b.id, b]));
  const params = uploadUniform(device, Uint32Array.of(seed >>> 0, step >>> 0), "params");
  const created: DeviceTensor[] = [];
  device.pushErrorScope("validation");
  const encoder = device.createCommandEncoder({ label: "graph" });
  for (const d of graph.dispatches) {
    const code = kernels.get(d.kernel);
    if (code === undefined) throw new Error(`the program has no kernel file ${d.kernel}`);
    const pipeline = await computePipeline(device, { code, label: d.kernel });
    const outId = d.buffers[d.buffers.length - 1]!;
    const spec = specs.get(outId)!;
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const out = { buffer: createStorageBuffer(device, size * 4, `%${outId}`), dtype: spec.dtype, size };
    buffers.set(outId, out);
    created.push(out);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: params } }];
    d.buffers.forEach((id, i) => {
      const t = buffers.get(id);
      if (!t) throw new Error(`${d.kernel} reads %${id}, which has no buffer`);
      entries.push({ binding: i + 1, resource: { buffer: t.buffer } });
    });
    const pass = encoder.beginComputePass({ label: d.kernel });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1]);
    pass.end();
  }
  device.queue.submit([encoder.finish()]);
  const error = await device.popErrorScope();
  await device.queue.onSubmittedWorkDone();
  params.destroy();
  if (error) throw new Error(`WebGPU rejected the graph: ${error.message}`);
  return created;
}

export function upload(device: GPUDevice, dtype: string, data: ArrayLike<number>): DeviceTensor {
  return { buffer: uploadBuffer(device, hostToStorage(dtype, data)), dtype, size: data.length };
}

export async function download(device: GPUDevice, t: DeviceTensor): Promise<Float32Array | Int32Array> {
  const bytes = await readBuffer(device, t.buffer, t.size * 4);
  return t.dtype === "i32" ? new Int32Array(bytes) : new Float32Array(bytes);
}
