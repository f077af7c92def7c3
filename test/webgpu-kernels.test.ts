// Fused kernels rendered to WGSL and run on real WebGPU (Dawn; lavapipe on a machine without a GPU), against the
// reference interpreter in float32.
import fc from "fast-check";
import { afterAll, describe as describeAll, expect, test } from "vitest";
import { GraphBuilder, size, type Graph } from "../compiler/ir.js";
import { emitGraph, KernelFiles, type WgslEmitOptions } from "../backends/wgsl/program.js";
import { interpret } from "../runtime/interpreter.js";
import { randomNormal, randomUniform } from "../runtime/random.js";
import type { WebGpu } from "../runtime/webgpu/device.js";
import { tilingFor } from "../runtime/webgpu/compile.js";
import { download, runGraph, upload, type DeviceTensor } from "../runtime/webgpu/kernels.js";
import { randomElementwiseGraph, elementwiseStepArb } from "./support/graphs.js";
import { BF16_CASES } from "./support/bf16.js";
import { sameTf32, TF32_CASES } from "./support/tf32.js";
import { testDevice } from "./support/webgpu.js";

// Skips, saying why, only where no WebGPU adapter exists (test/support/webgpu.ts); CI requires one.
const td = await testDevice();
const gpu = td.gpu as WebGpu;
afterAll(() => gpu?.device.destroy());
const describe = describeAll.skipIf(td.gpu === undefined);

/** Fuses a graph into WGSL kernels (with the device's register tiles, as sessionFromProgram does) and runs them on the device. */
async function runFused(g: Graph, buffers: Map<number, DeviceTensor>, seed: number, step: number, options: WgslEmitOptions = tilingFor(gpu.device)): Promise<void> {
  const files = new KernelFiles();
  await runGraph(gpu.device, emitGraph(g, files, options), files.files, buffers, seed, step);
}

/** Runs the fused graph on the device and in the f32 interpreter; returns both outputs. */
async function both(g: Graph, data: Float64Array, seed = 3, step = 1) {
  const inputs = new Map([["x", { dtype: "f32" as const, shape: g.nodes[0]!.shape, data }]]);
  const want = interpret(g, { inputs }, { precision: "f32", seed, step });
  const buffers = new Map<number, DeviceTensor>([[0, upload(gpu.device, "f32", data)]]);
  await runFused(g, buffers, seed, step);
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

  test("matmuls in register tiles of any shape (sizes 1, primes, past the tile; transposed; batched) within f32 accumulation error", async () => {
    const dim = fc.integer({ min: 1, max: 37 });
    const arb = fc.record({
      batch: fc.constantFrom<number[]>([], [3]),
      m: dim,
      n: dim,
      k: dim,
      transposeA: fc.boolean(),
      rows: fc.integer({ min: 1, max: 9 }),
      cols: fc.integer({ min: 1, max: 9 }),
      workgroup: fc.constantFrom<[number, number]>([4, 4], [8, 2], [16, 4]),
    });
    await fc.assert(
      fc.asyncProperty(arb, async (c) => {
        const b = new GraphBuilder();
        const r = c.batch.length;
        const aShape = c.transposeA ? [...c.batch, c.k, c.m] : [...c.batch, c.m, c.k];
        const x = b.add({ kind: "input", name: "x" }, [], aShape);
        const w = b.add({ kind: "input", name: "w" }, [], [...c.batch, c.k, c.n]);
        const a = b.add({ kind: "unary", fn: "tanh" }, [c.transposeA ? b.add({ kind: "transpose", perm: [...Array(r).keys(), r + 1, r] }, [x]) : x]);
        const shape = [...c.batch, c.m, c.n];
        const bias = b.add({ kind: "broadcast" }, [b.add({ kind: "input", name: "bias" }, [], [...c.batch.map(() => 1), 1, c.n])], shape);
        const y = b.add({ kind: "binary", fn: "add" }, [b.add({ kind: "matmul" }, [a, w]), bias]);
        // S = |a|·|w| + |bias|: the scale of the error of an f32 sum of these terms in any order.
        const s = b.add({ kind: "binary", fn: "add" }, [b.add({ kind: "matmul" }, [b.add({ kind: "unary", fn: "abs" }, [a]), b.add({ kind: "unary", fn: "abs" }, [w])]), b.add({ kind: "unary", fn: "abs" }, [bias])]);
        const g = b.build([{ name: "y", node: y }, { name: "s", node: s }]);
        const inputs = new Map(g.nodes.flatMap((n) => (n.op.kind === "input" ? [[n.op.name, { dtype: "f32" as const, shape: n.shape, data: randomNormal(7, 0, n.id, size(n.shape)) }] as const] : [])));
        const want = interpret(g, { inputs }, { precision: "f32", seed: 0, step: 0 });
        const buffers = new Map(g.nodes.flatMap((n) => (n.op.kind === "input" ? [[n.id, upload(gpu.device, "f32", inputs.get(n.op.name)!.data)] as const] : [])));
        await runFused(g, buffers, 0, 0, { tile: { rows: c.rows, cols: c.cols }, tileWorkgroup: c.workgroup });
        const got = await download(gpu.device, buffers.get(y)!);
        const scale = want.get("s")!.data;
        // Sums of K products in f32, one rounding each (γ_K ≤ 2K·u), the bias, and tanh a few ulp off.
        want.get("y")!.data.forEach((v, i) => expect(Math.abs(got[i]! - v)).toBeLessThanOrEqual((2 * c.k + 16) * 2 ** -24 * scale[i]!));
        for (const t of buffers.values()) t.buffer.destroy();
      }),
      { numRuns: 12, seed: 17 },
    );
  }, 300_000);

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

  test.each([
    ["round_tf32", "ties away from zero", TF32_CASES],
    ["round_bf16", "ties to even", BF16_CASES],
  ] as const)("%s is exact: %s, subnormals, overflow to Inf, NaN, signed zeros", async (fn, _ties, cases) => {
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "x" }, [], [cases.length]);
    const g = b.build([{ name: "y", node: b.add({ kind: "unary", fn }, [x]) }]);
    const { got } = await both(g, Float64Array.from(cases, ([v]) => v));
    cases.forEach(([v, want], i) => expect(sameTf32(got[i]!, want), `${fn}(${v}) = ${got[i]}, not ${want}`).toBe(true));
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

describe("the models' fused graphs on WebGPU", () => {
  test.each([
    ["models/ul_tiny.ul", ["fit", "prior_step", "decoder_step"]],
    // Convolutions, their gradients, group norm and pooling, fused.
    ["models/classifier.ul", ["fit"]],
  ] as const)("%s: the entries %j (train steps: forward, backward and Adam) match the f32 interpreter", async (model, names) => {
    const { lowerProgram } = await import("../compiler/lower.js");
    const program = lowerProgram(model, { bindings: { B: 2 } });
    const params = interpret(program.init, {}, { precision: "f32", seed: 2, step: 0 });
    for (const name of names) {
      const entry = program.entries.find((e) => e.name === name)!;
      const g = entry.graph;
      // Optimizer arguments at their defaults, the step count 3, and Adam moments with v large: where v is tiny,
      // m/√v magnifies the last bits of a near-zero gradient, which f32 sums in another order do not share.
      const scalar = new Map([...(entry.training?.args ?? []).map((a) => [`optimizer.${a.name}`, a.default] as const), ["optimizer.step", 3], ["t", 0.7], ["s", 0.6], ...program.hypers.map((h) => [h.name, h.default] as const)]);
      const inputs = new Map<string, { dtype: "f32"; shape: readonly number[]; data: Float64Array }>();
      for (const n of g.nodes) {
        if (n.op.kind !== "input") continue;
        const noise = randomNormal(5, 0, n.id, size(n.shape)).map((v) => 0.5 * v);
        const data = scalar.has(n.op.name) ? Float64Array.of(scalar.get(n.op.name)!) : n.op.name.startsWith("optimizer.v.") ? noise.map((v) => 1 + v * v) : n.op.name.startsWith("optimizer.m.") ? noise.map((v) => 1e-2 * v) : noise;
        inputs.set(n.op.name, { dtype: "f32", shape: n.shape, data });
      }
      const want = interpret(g, { inputs, params }, { precision: "f32", seed: 8, step: 1 });
      const buffers = new Map<number, DeviceTensor>();
      for (const n of g.nodes) {
        if (n.op.kind === "input") buffers.set(n.id, upload(gpu.device, "f32", inputs.get(n.op.name)!.data));
        if (n.op.kind === "param") buffers.set(n.id, upload(gpu.device, "f32", params.get(n.op.name)!.data));
      }
      await runFused(g, buffers, 8, 1);
      for (const o of g.outputs) {
        const got = await download(gpu.device, buffers.get(o.node)!);
        const ref = want.get(o.name)!.data;
        // float32 on both sides; the GPU's exp/log/sqrt are a few ulp off and its sums run in f32 (the
        // interpreter accumulates in f64): a relative 2e-4 of the largest magnitude in the tensor covers the
        // 784-term sums of this model's matmuls (√784·2^-24·few ulp ≈ 1e-5) with margin.
        let scale = 1e-3;
        let worst = 0;
        ref.forEach((r, i) => {
          scale = Math.max(scale, Math.abs(r));
          worst = Math.max(worst, Math.abs(got[i]! - r));
        });
        expect(worst, `${name}.${o.name}`).toBeLessThanOrEqual(2e-4 * scale);
      }
    }
  }, 300_000);
});

describe("a WebGPU session against the reference session", () => {
  test("five Adam steps of ul_tiny: the same losses, and parameters within Adam's sensitivity", async () => {
    const { lowerProgram } = await import("../compiler/lower.js");
    const { ReferenceSession } = await import("../runtime/reference.js");
    const { sessionFromProgram } = await import("../runtime/webgpu/compile.js");
    const B = 4;
    const program = lowerProgram("models/ul_tiny.ul", { bindings: { B } });
    const x = { dtype: "f32" as const, shape: [B, 1, 28, 28], data: Float64Array.from({ length: B * 784 }, (_, i) => Math.tanh(Math.sin(i / 37) * 2)) };
    const data = new Map([["x", x]]);
    const ref = new ReferenceSession(program, { precision: "f32", seed: 21 });
    const gpuSession = await sessionFromProgram(gpu.device, program, { seed: 21 });
    // The initial parameters: the same Philox draws, scaled in f32 on both sides.
    const first = program.params[0]!.name;
    const p0 = await gpuSession.param(first);
    ref.params.get(first)!.data.forEach((v, i) => expect(Math.abs(p0[i]! - v)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(v))));
    for (let step = 1; step <= 5; step++) {
      const want = ref.trainStep("fit", data);
      const got = await gpuSession.trainStep("fit", data);
      // f32 on both sides; sums of ~10^3 terms in another order: 1e-4 relative, for every metric. The terminal
      // KL at λ = -10 is a near-cancelling sum of terms of size ~1e-4 (α² ≈ softplus(λ) ≈ 4.5e-5): an absolute
      // 1e-6 (f32 rounding of those terms, times their count) covers it.
      for (const [name, w] of want) expect(Math.abs(got.get(name)! - w), `${name} at step ${step}`).toBeLessThanOrEqual(1e-4 * Math.abs(w) + 1e-6);
    }
    // Adam divides m by √v: where a gradient is nearly zero its sign (and so ±lr) can differ between two f32
    // summation orders. So: every parameter within 5 steps × 2·lr·√(1/(1−β2)) (Adam's bound on a step's
    // difference) and 99% of them within 1% of lr.
    const lr = program.entries.find((e) => e.name === "fit")!.training!.args.find((a) => a.name === "lr")!.default;
    const diffs: number[] = [];
    for (const p of program.params) {
      const got = await gpuSession.param(p.name);
      ref.params.get(p.name)!.data.forEach((v, i) => diffs.push(Math.abs(got[i]! - v)));
    }
    diffs.sort((a, b) => a - b);
    expect(diffs[diffs.length - 1]).toBeLessThanOrEqual(5 * 2 * lr * Math.sqrt(1 / (1 - 0.999)));
    expect(diffs[Math.floor(0.99 * diffs.length)]).toBeLessThanOrEqual(0.01 * lr);
  }, 600_000);
});

describe("ulc build --target wgsl", () => {
  test("writes a manifest and kernels that compile on the device; the runtime loads them and matches the reference", async () => {
    const { mkdtempSync, readFileSync, readdirSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const path = await import("node:path");
    const { main } = await import("../cli/main.js");
    const { computePipeline } = await import("../runtime/webgpu/pipelines.js");
    const dir = mkdtempSync(path.join(tmpdir(), "ulc-wgsl-"));
    try {
      let stderr = "";
      const io = { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) }, env: {} };
      expect(await main(["build", "models/classifier.ul", "--target", "wgsl", "--bind", "B=4", "-o", dir, "--stats"], io)).toBe(0);
      expect(stderr).toMatch(/^fit\s+\d+\s+\d+\s+\d+/m);
      const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8"));
      expect(manifest.format).toBe("ulc-program/1");
      expect(manifest.entries.map((e: { name: string }) => e.name)).toEqual(["fit", "evaluate", "logits", "features"]);
      for (const e of [manifest.init, ...manifest.entries]) {
        const ids = new Set(e.buffers.map((b: { id: number }) => b.id));
        for (const d of e.dispatches) for (const id of d.buffers) expect(ids.has(id)).toBe(true);
        for (const o of e.outputs) expect(ids.has(o.buffer)).toBe(true);
      }
      const files = readdirSync(path.join(dir, "kernels"));
      expect(files.length).toBeGreaterThan(10);
      // Built for a GPU by default (TILINGS.gpu): the matmuls and convolutions hold 4 × 4 outputs per invocation,
      // and this very build runs on the software adapter below.
      const tiled = files.filter((f) => readFileSync(path.join(dir, "kernels", f), "utf8").includes("acc3_3 += a3 * b3;"));
      expect(tiled.length).toBeGreaterThan(0);
      for (const f of files) await computePipeline(gpu.device, { code: readFileSync(path.join(dir, "kernels", f), "utf8"), label: f });

      // The runtime loads the files as a browser would, and the built program computes what the reference does.
      const { WebGpuSession } = await import("../runtime/webgpu/session.js");
      const { ReferenceSession } = await import("../runtime/reference.js");
      const { lowerProgram } = await import("../compiler/lower.js");
      const kernels = new Map(files.map((f) => [f, readFileSync(path.join(dir, "kernels", f), "utf8")]));
      const loaded = await WebGpuSession.create(gpu.device, { manifest, kernels }, { seed: 6 });
      const ref = new ReferenceSession(lowerProgram("models/classifier.ul", { bindings: { B: 4 } }), { precision: "f32", seed: 6 });
      const x = new Map([["x", { dtype: "f32" as const, shape: [4, 1, 28, 28], data: randomUniform(1, 0, 0, 4 * 784).map((v) => 2 * v - 1) }]]);
      const got = (await loaded.run("logits", x)).get("result")!.data;
      const want = ref.run("logits", x).get("result")!.data;
      // f32 on both sides, sums of up to 3136 terms in another order.
      want.forEach((w, i) => expect(Math.abs(got[i]! - w)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(w))));
      // The train step too (the convolutions' tiled gradients): the same metrics.
      const oneHot = Float64Array.from({ length: 40 }, (_, i) => (i % 10 === [3, 1, 4, 1][Math.floor(i / 10)] ? 1 : 0));
      const labels = new Map([...x, ["y", { dtype: "f32" as const, shape: [4, 10], data: oneHot }]]);
      const step = await loaded.trainStep("fit", labels);
      for (const [name, w] of ref.trainStep("fit", labels)) expect(Math.abs(step.get(name)! - w), name).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(w)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
