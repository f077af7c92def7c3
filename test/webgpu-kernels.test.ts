// Fused kernels rendered to WGSL and run on real WebGPU (Dawn; lavapipe on a machine without a GPU), against the
// reference interpreter in float32.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GraphBuilder, size, type Graph } from "../compiler/ir.js";
import { fuse } from "../compiler/kernel/fuse.js";
import { interpret } from "../runtime/interpreter.js";
import { randomNormal, randomUniform } from "../runtime/random.js";
import { openDevice, type WebGpu } from "../runtime/webgpu/device.js";
import { download, runKernels, upload, type DeviceTensor } from "../runtime/webgpu/kernels.js";
import { randomElementwiseGraph, elementwiseStepArb } from "./support/graphs.js";

let gpu: WebGpu;

beforeAll(async () => {
  gpu = await openDevice();
});
afterAll(() => gpu?.device.destroy());

/** Runs the fused graph on the device and in the f32 interpreter; returns both outputs. */
async function both(g: Graph, data: Float64Array, seed = 3, step = 1) {
  const inputs = new Map([["x", { dtype: "f32" as const, shape: g.nodes[0]!.shape, data }]]);
  const want = interpret(g, { inputs }, { precision: "f32", seed, step });
  const buffers = new Map<number, DeviceTensor>([[0, upload(gpu.device, "f32", data)]]);
  const schedule = fuse(g);
  await runKernels(gpu.device, g, schedule, buffers, seed, step);
  const out = g.outputs[0]!;
  return { got: await download(gpu.device, buffers.get(out.node)!), want: want.get(out.name)!.data };
}

describe("fused kernels on WebGPU", () => {
  test("random element-wise, movement and reduction graphs match the f32 interpreter", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }), fc.array(elementwiseStepArb, { minLength: 1, maxLength: 8 }), async (shape, steps) => {
        const g = randomElementwiseGraph(shape, steps);
        const data = randomNormal(1, 0, 0, size(shape));
        const { got, want } = await both(g, data);
        // float32 transcendental functions on the GPU are not correctly rounded (a few ulp), and sums of up to
        // 5 terms of such values add a few more: 1e-5 relative, with an absolute floor for values near 0.
        want.forEach((w, i) => {
          const v = got[i]!;
          if (Number.isNaN(w)) expect(Number.isNaN(v)).toBe(true);
          else if (!Number.isFinite(w)) expect(v).toBe(w);
          else expect(Math.abs(v - w)).toBeLessThanOrEqual(1e-5 * Math.abs(w) + 1e-6);
        });
      }),
      { numRuns: 60, seed: 11 },
    );
  }, 120_000);

  test("random streams are bit-exact with runtime/random.ts (uniform) and within f32 rounding (normal)", async () => {
    for (const dist of ["uniform", "normal"] as const) {
      const b = new GraphBuilder();
      b.add({ kind: "input", name: "x" }, [], [1]);
      const r = b.add({ kind: "random", dist, key: 7 }, [], [3000]);
      const g = b.build([{ name: "r", node: r }]);
      const { got } = await both(g, Float64Array.of(0), 12345, 678);
      const ref = (dist === "uniform" ? randomUniform : randomNormal)(12345, 678, 7, 3000);
      if (dist === "uniform") expect([...got]).toEqual([...Float32Array.from(ref)]);
      else ref.forEach((x, i) => expect(Math.abs(got[i]! - x)).toBeLessThan(1e-5 * Math.max(1, Math.abs(x))));
    }
  }, 60_000);

  test("more than 65535 workgroups fold into a 2-D grid", async () => {
    const n = 65536 * 64 + 100;
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "x" }, [], [n]);
    const y = b.add({ kind: "binary", fn: "mul" }, [x, b.add({ kind: "broadcast" }, [b.add({ kind: "constant", value: 2 }, [], [1])], [n])]);
    const data = Float64Array.from({ length: n }, (_, i) => i % 1000);
    const { got } = await both(b.build([{ name: "y", node: y }]), data);
    expect(got[n - 1]).toBe(2 * ((n - 1) % 1000));
    expect(got[65536 * 64]).toBe(2 * ((65536 * 64) % 1000));
  }, 60_000);
});
