// The WebGPU device layer (runtime/webgpu/device.ts, buffers.ts, pipelines.ts) on the machine's adapter: lavapipe
// (llvmpipe) on a machine without a GPU, the GPU where there is one. Skips, saying why, only when no WebGPU
// adapter exists here (see test/support/webgpu.ts).
import { afterAll, describe, expect, test } from "vitest";
import { createStorageBuffer, readBuffer, readF32, uploadBuffer, uploadF32, uploadUniform } from "../runtime/webgpu/buffers.js";
import {
  getGpu,
  OPTIONAL_FEATURES,
  openDevice,
  requireFeatures,
  WebGpuRequirementError,
  type WebGpu,
} from "../runtime/webgpu/device.js";
import { computePipeline, ShaderCompileError } from "../runtime/webgpu/pipelines.js";
import { testDevice } from "./support/webgpu.js";

const td = await testDevice();

describe.skipIf(td.gpu === undefined)("WebGPU device", () => {
  // Collected even when skipped: nothing here may touch the device outside the tests.
  const gpu = td.gpu as WebGpu;
  const device = gpu?.device as GPUDevice;
  afterAll(() => device?.destroy());

  test("opens on the adapter and reports it", () => {
    console.log(`WebGPU adapter: ${gpu.adapterInfo.name} (${gpu.source})`);
    expect(gpu.adapterInfo.name).not.toBe("");
    // The limits compute needs are the adapter's, not WebGPU's defaults (8 storage buffers, 16 KiB workgroup memory).
    const adapterLimits = gpu.adapter.limits;
    expect(device.limits.maxStorageBuffersPerShaderStage).toBe(Math.min(16, adapterLimits.maxStorageBuffersPerShaderStage));
    expect(device.limits.maxComputeWorkgroupStorageSize).toBe(adapterLimits.maxComputeWorkgroupStorageSize);
    expect(device.limits.maxStorageBufferBindingSize).toBe(adapterLimits.maxStorageBufferBindingSize);
    // The optional features the adapter has are on the device.
    for (const f of OPTIONAL_FEATURES) expect(device.features.has(f)).toBe(gpu.adapter.features.has(f));
  });

  test("runs a compute shader: y = 2x + 1", async () => {
    const n = 1000; // not a multiple of the workgroup size
    const x = Float32Array.from({ length: n }, (_, i) => i - 500.25);
    const pipeline = await computePipeline(device, {
      label: "affine",
      code: `
        @group(0) @binding(0) var<uniform> n: u32;
        @group(0) @binding(1) var<storage, read> x: array<f32>;
        @group(0) @binding(2) var<storage, read_write> y: array<f32>;
        @compute @workgroup_size(64)
        fn main(@builtin(global_invocation_id) id: vec3<u32>) {
          if (id.x < n) { y[id.x] = 2.0 * x[id.x] + 1.0; }
        }`,
    });
    const nBuf = uploadUniform(device, Uint32Array.of(n));
    const xBuf = uploadF32(device, x);
    const yBuf = createStorageBuffer(device, n * 4);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [nBuf, xBuf, yBuf].map((buffer, binding) => ({ binding, resource: { buffer } })),
      }),
    );
    pass.dispatchWorkgroups(Math.ceil(n / 64));
    pass.end();
    device.queue.submit([encoder.finish()]);
    const y = await readF32(device, yBuf, n);
    // Exact: 2x is exact and 2x + 1 rounds once, in f32 as here in f64 then Math.fround.
    expect(Array.from(y)).toEqual(Array.from(x, (v) => Math.fround(2 * v + 1)));
    for (const b of [nBuf, xBuf, yBuf]) b.destroy();
  });

  test("pipelines are cached by source", async () => {
    const code = "@compute @workgroup_size(1) fn main() {}";
    const p1 = computePipeline(device, { code });
    expect(computePipeline(device, { code })).toBe(p1);
    await p1;
  });

  test("a WGSL error is a ShaderCompileError with the line and a caret", async () => {
    const code = "@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = undefined_name;\n}";
    const err = await computePipeline(device, { code, label: "broken" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderCompileError);
    const message = (err as Error).message;
    expect(message).toMatch(/^broken: WGSL does not compile/);
    expect(message).toContain("3:");
    expect(message).toContain("let x: f32 = undefined_name;");
    expect(message).toContain("undefined_name");
  });

  test("buffers: upload and read back, odd byte lengths, empty data", async () => {
    const buf = uploadBuffer(device, Uint8Array.of(1, 2, 3, 4, 5, 6, 7)); // padded to 16 bytes
    expect(buf.size).toBe(16);
    expect(new Uint8Array(await readBuffer(device, buf, 7))).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6, 7));
    expect(new Uint8Array(await readBuffer(device, buf, 3, 4))).toEqual(Uint8Array.of(5, 6, 7));
    buf.destroy();
    const empty = uploadF32(device, new Float32Array(0));
    expect(empty.size).toBe(16); // bindings cannot be empty, and a vec4 array needs 16 bytes
    expect(await readF32(device, empty, 0)).toEqual(new Float32Array(0));
    empty.destroy();
    const data = Float32Array.from({ length: 37 }, (_, i) => Math.fround(Math.sin(i)));
    const big = uploadF32(device, data);
    expect(await readF32(device, big)).toEqual(data);
    expect(await readF32(device, big, 5)).toEqual(data.subarray(0, 5));
    big.destroy();
  });

  test("a missing feature: the error names it and lists what the device has", () => {
    let err: unknown;
    try {
      requireFeatures(gpu, { features: ["shader-f16", "no-such-feature"] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WebGpuRequirementError);
    const e = err as WebGpuRequirementError;
    expect(e.missingFeatures).toContain("no-such-feature");
    expect(e.message).toContain(`'${gpu.adapterInfo.name}'`);
    expect(e.message).toContain("missing feature 'no-such-feature'");
    // What the device does have is listed, so the reader can see what they could use instead.
    for (const f of device.features) expect(e.message).toContain(f);
    if (device.features.has("shader-f16")) expect(e.missingFeatures).not.toContain("shader-f16");
  });

  test("a limit beyond the adapter's: the error gives both values", () => {
    const have = device.limits.maxStorageBuffersPerShaderStage;
    expect(() => requireFeatures(gpu, { limits: { maxStorageBuffersPerShaderStage: have + 1000 } })).toThrow(
      new RegExp(`limit maxStorageBuffersPerShaderStage: needs at least ${have + 1000}, the device has ${have}; the adapter's own limit is`),
    );
    // Satisfied requirements (including a `min*Alignment` limit, where smaller is better) pass.
    requireFeatures(gpu, { limits: { maxStorageBuffersPerShaderStage: have, minStorageBufferOffsetAlignment: 256 } });
    requireFeatures(device, { features: [], limits: {} });
  });

  test("a device opened with WebGPU's default limits: the error says the adapter allows more", async () => {
    // Simulates a device opened without asking for limits (8 storage buffers per stage by default).
    const adapter = await (await getGpu()).gpu.requestAdapter({ powerPreference: "high-performance" });
    if (adapter === null) throw new Error("the adapter went away");
    const plain = await adapter.requestDevice();
    try {
      const needed = plain.limits.maxStorageBuffersPerShaderStage + 1;
      if (adapter.limits.maxStorageBuffersPerShaderStage < needed) return; // an adapter at the default: nothing to simulate
      const ctx: WebGpu = { device: plain, adapter, adapterInfo: gpu.adapterInfo, source: "test" };
      expect(() => requireFeatures(ctx, { limits: { maxStorageBuffersPerShaderStage: needed } })).toThrow(
        /the adapter allows \d+: open the device with openDevice, which requests it/,
      );
    } finally {
      plain.destroy();
    }
  });

  test("openDevice refuses up front when the adapter lacks a required feature", async () => {
    await expect(openDevice({ requiredFeatures: ["no-such-feature"] })).rejects.toThrow(
      /WebGPU adapter '.*' cannot run this program:\n {2}- missing feature 'no-such-feature' \(the adapter has: /,
    );
    await expect(openDevice({ requiredLimits: { maxComputeInvocationsPerWorkgroup: 1 << 30 } })).rejects.toThrow(
      /limit maxComputeInvocationsPerWorkgroup: needs at least 1073741824, the adapter has \d+/,
    );
  });
});
