/// <reference types="@webgpu/types" />
// Runs fused kernels (compiler/kernel) on a GPUDevice: one compute pipeline per kernel (compiled once and cached
// by its WGSL), one bind group per dispatch, every dispatch of a schedule in one command buffer.
import { renderKernelWgsl } from "../../backends/wgsl/kernel.js";
import type { Graph } from "../../compiler/ir.js";
import type { Kernel, Schedule } from "../../compiler/kernel/ir.js";
import { createStorageBuffer, readBuffer, uploadBuffer, uploadUniform } from "./buffers.js";
import { computePipeline } from "./pipelines.js";

export interface DeviceTensor {
  readonly buffer: GPUBuffer;
  readonly dtype: string;
  readonly size: number;
}

/** Host data as the storage a kernel reads: i32 as Int32Array, everything else as Float32Array. */
export function hostToStorage(dtype: string, data: ArrayLike<number>): Float32Array | Int32Array {
  return dtype === "i32" ? Int32Array.from(data) : Float32Array.from(data);
}

/**
 * Runs a schedule made only of kernels; `buffers` holds the graph's inputs and params by node id and receives
 * every kernel's output. Library calls are not run here yet (matmul and convolution templates come next).
 */
export async function runKernels(device: GPUDevice, g: Graph, schedule: Schedule, buffers: Map<number, DeviceTensor>, seed: number, step: number): Promise<void> {
  const params = uploadUniform(device, Uint32Array.of(seed >>> 0, step >>> 0), "params");
  // A validation error (a bad binding, a buffer too large) is thrown here, not left as a console warning.
  device.pushErrorScope("validation");
  const encoder = device.createCommandEncoder({ label: "schedule" });
  for (const s of schedule.steps) {
    if (s.kind !== "kernel") throw new Error(`%${s.call.node} (${g.nodes[s.call.node]!.op.kind}) needs a library kernel, which the WebGPU runtime does not have yet`);
    await dispatch(device, encoder, s.kernel, params, buffers);
  }
  device.queue.submit([encoder.finish()]);
  const error = await device.popErrorScope();
  await device.queue.onSubmittedWorkDone();
  params.destroy();
  if (error) throw new Error(`WebGPU rejected the schedule: ${error.message}`);
}

async function dispatch(device: GPUDevice, encoder: GPUCommandEncoder, k: Kernel, params: GPUBuffer, buffers: Map<number, DeviceTensor>): Promise<void> {
  const { code, workgroups } = renderKernelWgsl(k);
  const pipeline = await computePipeline(device, { code, label: k.name });
  const out = { buffer: createStorageBuffer(device, k.size * 4, k.name), dtype: k.dtype, size: k.size };
  buffers.set(k.node, out);
  const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: params } }];
  k.inputs.forEach((input, i) => {
    const t = buffers.get(input.node);
    if (!t) throw new Error(`${k.name} reads %${input.node}, which has no buffer`);
    entries.push({ binding: i + 1, resource: { buffer: t.buffer } });
  });
  entries.push({ binding: k.inputs.length + 1, resource: { buffer: out.buffer } });
  const pass = encoder.beginComputePass({ label: k.name });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
  pass.dispatchWorkgroups(workgroups[0], workgroups[1]);
  pass.end();
}

export function upload(device: GPUDevice, dtype: string, data: ArrayLike<number>): DeviceTensor {
  return { buffer: uploadBuffer(device, hostToStorage(dtype, data)), dtype, size: data.length };
}

export async function download(device: GPUDevice, t: DeviceTensor): Promise<Float32Array | Int32Array> {
  const bytes = await readBuffer(device, t.buffer, t.size * 4);
  return t.dtype === "i32" ? new Int32Array(bytes) : new Float32Array(bytes);
}
