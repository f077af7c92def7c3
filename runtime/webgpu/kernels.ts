/// <reference types="@webgpu/types" />
// Runs a graph of a WGSL Program (runtime/webgpu/program.ts) on a GPUDevice: one compute pipeline per kernel
// file (compiled once and cached by its source), intermediates in buffers planned once, bind groups kept, every
// dispatch of the graph in one command buffer. Validation errors are thrown, not left as console warnings.
import { lifetimes } from "../liveness.js";
import type { BufferEntry } from "../manifest.js";
import { createStorageBuffer, planBuffers, readBuffer, uploadBuffer, uploadUniform } from "./buffers.js";
import { computePipeline } from "./pipelines.js";
import type { GraphManifest } from "./program.js";

export interface DeviceTensor {
  readonly buffer: GPUBuffer;
  readonly dtype: string;
  readonly size: number;
}

/** Host data as the storage a kernel reads: i32 as Int32Array, everything else as Float32Array. */
export function hostToStorage(dtype: string, data: ArrayLike<number>): Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> {
  return dtype === "i32" ? Int32Array.from(data) : Float32Array.from(data);
}

const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 0;

/** A stable small number per buffer, for keying bind groups. */
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = nextBufferId++));
  return id;
}

/**
 * A graph of a WGSL Program bound to a device, to run many times: its intermediates live in storage buffers
 * planned once over its dispatches (`planBuffers`), its pipelines are compiled once, and a dispatch keeps its
 * bind group for as long as the buffers it binds stay the same (parameters alternate between two buffers from
 * step to step, so two are kept). A run records every dispatch in one command buffer.
 */
export class GraphRunner {
  private readonly specs: ReadonlyMap<number, BufferEntry>;
  /** Each intermediate's buffer. */
  private readonly intermediates = new Map<number, GPUBuffer>();
  private readonly owned: GPUBuffer[] = [];
  private readonly uniform: GPUBuffer;
  private pipelines: GPUComputePipeline[] | undefined;
  private readonly groups: Map<string, GPUBindGroup>[];

  constructor(
    readonly device: GPUDevice,
    readonly graph: GraphManifest,
    private readonly kernels: ReadonlyMap<string, string>,
  ) {
    this.specs = new Map(graph.buffers.map((b) => [b.id, b]));
    const pinned = new Set(graph.buffers.filter((b) => b.role !== "intermediate").map((b) => b.id));
    const steps = graph.dispatches.map((d) => ({ produces: [{ id: d.buffers[d.buffers.length - 1]!, bytes: this.bytes(d.buffers[d.buffers.length - 1]!) }], reads: d.buffers.slice(0, -1) }));
    for (const b of planBuffers(lifetimes(steps, pinned).lifetimes)) {
      const buffer = createStorageBuffer(device, b.bytes, `%${b.holds.join(" %")}`);
      this.owned.push(buffer);
      for (const id of b.holds) this.intermediates.set(id, buffer);
    }
    this.uniform = uploadUniform(device, Uint32Array.of(0, 0), "params");
    this.owned.push(this.uniform);
    this.groups = graph.dispatches.map(() => new Map());
  }

  private bytes(id: number): number {
    return 4 * this.specs.get(id)!.shape.reduce((a, b) => a * b, 1);
  }

  /**
   * Runs the graph. `bound` holds its inputs and parameters by buffer id; each output is written into the
   * buffer `into` holds for it when there is one of its size, else into a new buffer. Returns the outputs by
   * buffer id (an output that is an input or parameter is that buffer).
   */
  async run(bound: ReadonlyMap<number, DeviceTensor>, seed: number, step: number, into?: ReadonlyMap<number, DeviceTensor>): Promise<Map<number, DeviceTensor>> {
    const { device, graph } = this;
    this.pipelines ??= await Promise.all(
      graph.dispatches.map((d) => {
        const code = this.kernels.get(d.kernel);
        if (code === undefined) throw new Error(`the program has no kernel file ${d.kernel}`);
        return computePipeline(device, { code, label: d.kernel });
      }),
    );
    const outputs = new Map<number, DeviceTensor>();
    for (const { buffer: id } of graph.outputs) {
      if (outputs.has(id)) continue;
      const spec = this.specs.get(id)!;
      const size = this.bytes(id) / 4;
      const given = bound.get(id) ?? into?.get(id);
      outputs.set(id, given && given.size === size ? given : { buffer: createStorageBuffer(device, 4 * size, `%${id}`), dtype: spec.dtype, size });
    }
    const bufferOf = (id: number): GPUBuffer => {
      const b = bound.get(id)?.buffer ?? outputs.get(id)?.buffer ?? this.intermediates.get(id);
      if (!b) throw new Error(`the graph reads %${id}, which has no buffer`);
      return b;
    };
    device.queue.writeBuffer(this.uniform, 0, Uint32Array.of(seed >>> 0, step >>> 0));
    device.pushErrorScope("validation");
    const encoder = device.createCommandEncoder({ label: "graph" });
    const pass = encoder.beginComputePass();
    graph.dispatches.forEach((d, i) => {
      const pipeline = this.pipelines![i]!;
      const buffers = d.buffers.map(bufferOf);
      const key = buffers.map(bufferId).join(",");
      const cache = this.groups[i]!;
      let group = cache.get(key);
      if (!group) {
        if (cache.size >= 2) cache.clear();
        const entries = [this.uniform, ...buffers].map((buffer, binding) => ({ binding, resource: { buffer } }));
        group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
        cache.set(key, group);
      }
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1]);
    });
    pass.end();
    device.queue.submit([encoder.finish()]);
    const error = await device.popErrorScope();
    await device.queue.onSubmittedWorkDone();
    if (error) throw new Error(`WebGPU rejected the graph: ${error.message}`);
    return outputs;
  }

  /** Frees the graph's intermediates (not its outputs, which belong to the caller). */
  destroy(): void {
    for (const b of this.owned) b.destroy();
  }
}

/**
 * Runs `graph` once; `buffers` holds its input and parameter buffers by id and receives its outputs' buffers.
 * Returns the buffers this call created (the caller frees those it does not keep).
 */
export async function runGraph(device: GPUDevice, graph: GraphManifest, kernels: ReadonlyMap<string, string>, buffers: Map<number, DeviceTensor>, seed: number, step: number): Promise<DeviceTensor[]> {
  const runner = new GraphRunner(device, graph, kernels);
  try {
    const outputs = await runner.run(buffers, seed, step);
    const created = [...outputs].filter(([id]) => !buffers.has(id));
    for (const [id, t] of created) buffers.set(id, t);
    return created.map(([, t]) => t);
  } finally {
    runner.destroy();
  }
}

export function upload(device: GPUDevice, dtype: string, data: ArrayLike<number>): DeviceTensor {
  return { buffer: uploadBuffer(device, hostToStorage(dtype, data)), dtype, size: data.length };
}

export async function download(device: GPUDevice, t: DeviceTensor): Promise<Float32Array | Int32Array> {
  const bytes = await readBuffer(device, t.buffer, t.size * 4);
  return t.dtype === "i32" ? new Int32Array(bytes) : new Float32Array(bytes);
}
