// The native targets' test suites: the CPU target (test/cpu.test.ts), and the CUDA target on its CPU emulation
// (test/cuda-emulated.test.ts) and on a GPU (test/cuda-gpu.test.ts, by `npm run test:gpu`): fused graphs and
// every kernel of the models, through the native session and host runtime, against the reference interpreter in
// float32.
import { readdirSync } from "node:fs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GraphBuilder, type Graph } from "../../compiler/ir.js";
import { lowerProgram, type Program } from "../../compiler/lower.js";
import { ROUNDING_OF, type ContractionPrecision } from "../../compiler/passes/precision.js";
import { memoryStats } from "../../compiler/memory.js";
import { HostProcess } from "../../runtime/native/host.js";
import type { NativeSession } from "../../runtime/native/session.js";
import { interpret } from "../../runtime/interpreter.js";
import { randomNormal, randomUniform } from "../../runtime/random.js";
import { ReferenceSession } from "../../runtime/reference.js";
import type { InputTensor } from "../../runtime/session.js";
import { convolutionGraph, elementwiseStepArb, randomElementwiseGraph } from "./graphs.js";
import { BF16_CASES } from "./bf16.js";
import { sameTf32, TF32_CASES } from "./tf32.js";

/** Graphs as the plain entries of one program: one build runs them all. */
export function programOf(graphs: ReadonlyMap<string, Graph>, precision: ContractionPrecision = "fp32"): Program {
  const empty = new GraphBuilder().build([]);
  return {
    model: "graphs",
    bindings: {},
    precision,
    params: [],
    hypers: [],
    init: empty,
    ema: empty,
    entries: [...graphs].map(([name, graph]) => ({
      name,
      kind: "plain" as const,
      graph,
      tracedNodes: graph.nodes.length,
      memory: memoryStats(graph),
      inputs: graph.nodes.flatMap((n) => (n.op.kind === "input" ? [{ name: n.op.name, dtype: n.dtype, shape: n.shape }] : [])),
      results: graph.outputs.map((o) => o.name),
    })),
  };
}

/**
 * |got − want| ≤ bound(want) elementwise; NaN and infinities must match. One expect per failure, not per
 * element: a million expect calls take half a minute.
 */
export function near(got: ArrayLike<number>, want: ArrayLike<number>, bound: (w: number) => number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const [g, w] = [got[i]!, want[i]!];
    const ok = Number.isNaN(w) ? Number.isNaN(g) : Number.isFinite(w) ? Math.abs(g - w) <= bound(w) : g === w;
    if (!ok) expect(g, `${what}[${i}], within ${bound(w)}`).toBe(w);
  }
}

/** Equal as float32 values (−0 and +0 alike), NaN included. */
function sameF32(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  near(got, Float32Array.from(want), () => 0, what);
}

/** Inputs for an entry: images and latents as smooth deterministic patterns, times t = 0.6 > s = 0.4, one-hot labels. */
export function entryInputs(program: Program, name: string): Map<string, InputTensor> {
  const entry = program.entries.find((e) => e.name === name)!;
  return new Map(
    entry.inputs.map((spec, k) => {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const classes = spec.shape.at(-1)!;
      const data =
        spec.name === "t" ? [0.6] : spec.name === "s" ? [0.4] : spec.name === "y" ? Array.from({ length: n }, (_, i) => (i % classes === Math.floor(i / classes) % classes ? 1 : 0)) : Array.from({ length: n }, (_, i) => Math.tanh(2 * Math.sin((i + 1) / (37 + k))));
      return [spec.name, { dtype: spec.dtype, shape: spec.shape, data }];
    }),
  );
}

export function asF64(inputs: ReadonlyMap<string, InputTensor>) {
  return new Map([...inputs].map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: Float64Array.from(t.data) }]));
}

/**
 * Plain entries that, with the train entries and the init and ema graphs, launch every distinct kernel of
 * the program: entries that add kernels, the most first (sampler steps share most of their network).
 */
function covering(session: NativeSession): string[] {
  const m = session.manifest;
  const seen = new Set([m.init, m.ema, ...m.entries.filter((e) => e.kind === "train")].flatMap((g) => g.dispatches.map((d) => d.kernel)));
  const chosen: string[] = [];
  for (;;) {
    const gain = (e: (typeof m.entries)[number]) => new Set(e.dispatches.map((d) => d.kernel).filter((k) => !seen.has(k))).size;
    const best = m.entries.filter((e) => e.kind === "plain").sort((a, b) => gain(b) - gain(a))[0];
    if (!best || gain(best) === 0) return chosen;
    chosen.push(best.name);
    for (const d of best.dispatches) seen.add(d.kernel);
  }
}

/**
 * Every distinct kernel once: the initial parameters, the plain entries that cover the rest (covering; or every
 * plain entry), a
 * train step, and the moving average, against the reference session. f32 on both sides, sums of up to ~10^3
 * terms in another order (warps and blocks), ulp-level differences in exp, log and tanh: 1e-4 relative to the
 * tensor's largest magnitude (at least 1) for outputs, 1e-4 relative plus 1e-6 absolute for metrics (the
 * terminal KL at λ = -10 is a near-cancelling sum of ~1e-4 terms).
 */
export async function everyKernel(session: NativeSession, ref: ReferenceSession, program: Program, entries: "covering" | "all" = "covering"): Promise<void> {
  const init = await session.exportState();
  // The initial parameters: the same Philox draws, scaled in f32 on both sides.
  for (const p of program.params) near(init.tensors.get(`param:${p.name}`)!.data, ref.params.get(p.name)!.data, (v) => 1e-6 * Math.max(1, Math.abs(v)), p.name);
  const plain = entries === "all" ? program.entries.filter((e) => e.kind === "plain").map((e) => e.name) : covering(session);
  for (const name of plain) {
    const data = entryInputs(program, name);
    const got = await session.run(name, data);
    for (const [output, want] of ref.run(name, asF64(data))) {
      let scale = 1;
      for (const w of want.data) scale = Math.max(scale, Math.abs(w));
      near(got.get(output)!.data, want.data, () => 1e-4 * scale, `${name}.${output}`);
    }
  }
  for (const e of program.entries.filter((x) => x.kind === "train")) {
    const data = entryInputs(program, e.name);
    const got = await session.trainStep(e.name, data);
    for (const [name, w] of ref.trainStep(e.name, asF64(data))) expect(Math.abs(got.get(name)! - w), `${e.name}.${name}`).toBeLessThanOrEqual(1e-4 * Math.abs(w) + 1e-6);
  }
  // The average starts at the parameters, and p + d·(p − p) is p exactly (−0 becomes +0).
  await session.updateEma(0.5);
  const state = await session.exportState();
  for (const p of program.params) {
    const [ema, param] = [state.tensors.get(`ema:${p.name}`)!.data, state.tensors.get(`param:${p.name}`)!.data];
    near(ema, param, () => 0, `ema:${p.name}`);
  }
}

/** A native target as the suites use it. */
export interface NativeTarget {
  /** In the suites' names: "the CPU", "emulated CUDA", ... */
  readonly name: string;
  open(program: Program, seed: number): Promise<NativeSession>;
  /** What the host runtime says when the arena does not fit. */
  readonly outOfMemory: RegExp;
  /** The precision the models' suites lower with: the target's default (CUDA's is tf32, its tensor-core GEMMs). */
  readonly precision: ContractionPrecision;
}

export function nativeSuites(target: NativeTarget): void {
  const { name: on, open, precision } = target;
  describe(`fused kernels on ${on}`, () => {
    const graphs = new Map<string, Graph>();
    const inputs = new Map<string, Map<string, InputTensor>>();
    const add = (name: string, g: Graph, x: InputTensor) => {
      graphs.set(name, g);
      inputs.set(name, new Map([["x", x]]));
    };
    // Random element-wise, movement and reduction chains (reductions of up to 5 terms: a thread per output).
    const samples = fc.sample(fc.tuple(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }), fc.array(elementwiseStepArb, { minLength: 1, maxLength: 8 })), { numRuns: 40, seed: 11 });
    samples.forEach(([shape, steps], i) => {
      const n = shape.reduce((a, b) => a * b, 1);
      add(`random${i}`, randomElementwiseGraph(shape, steps), { dtype: "f32", shape, data: randomNormal(1, 0, i, n) });
    });
    // Long reductions (CUDA shares them among a warp or a block of threads, a CPU among its threads or vector
    // lanes), with NaN in one row of the max. Multiples of 1/16 below
    // 2^9 add exactly in float32 in any order, so the sums must equal the interpreter's to the bit.
    const sixteenths = (n: number) => Float64Array.from(randomUniform(2, 0, n, n), (u) => Math.round(32 * u - 16) / 16);
    for (const [name, fn, rows, cols] of [
      ["sum_block", "sum", 3, 5000],
      ["max_block", "max", 2, 4200],
      ["sum_warp", "sum", 40, 300],
      ["max_warp", "max", 40, 300],
    ] as const) {
      const b = new GraphBuilder();
      const x = b.add({ kind: "input", name: "x" }, [], [rows, cols]);
      const y = b.add({ kind: "reduce", fn, axes: [1] }, [x]);
      const data = sixteenths(rows * cols);
      if (fn === "max") data[cols + 7] = NaN;
      add(name, b.build([{ name: "y", node: y }]), { dtype: "f32", shape: [rows, cols], data });
    }
    // i32 arithmetic (wrapping, x / 0 = x, saturating casts) and pow's special cases, exactly.
    {
      const b = new GraphBuilder();
      const x = b.add({ kind: "input", name: "x" }, [], [2, 8]);
      const half = (start: number) => b.add({ kind: "reshape" }, [b.add({ kind: "slice", axis: 0, start, end: start + 1 }, [x])], [8]);
      const [a, c] = [half(0), half(1)];
      const ia = b.add({ kind: "cast" }, [a], undefined, "i32");
      const ic = b.add({ kind: "cast" }, [c], undefined, "i32");
      const outputs: { name: string; node: number }[] = (["add", "sub", "mul", "div", "maximum", "minimum"] as const).map((fn) => ({ name: fn, node: b.add({ kind: "cast" }, [b.add({ kind: "binary", fn }, [ia, ic])], undefined, "f32") }));
      outputs.push({ name: "pow", node: b.add({ kind: "binary", fn: "pow" }, [a, c]) });
      outputs.push({ name: "fmax", node: b.add({ kind: "binary", fn: "maximum" }, [a, c]) });
      graphs.set("scalars", b.build(outputs));
      const data = [-3.7, 0, 2.5, 3e9, -3e9, NaN, 1, -1, 2, 0, -1.5, 2e9, 2e9, 1, Infinity, NaN];
      inputs.set("scalars", new Map([["x", { dtype: "f32", shape: [2, 8], data }]]));
    }
    // Convolutions and both gradients on random shapes: strides, paddings past the kernel, groups.
    const convs = fc.sample(
      fc.record({ n: fc.integer({ min: 1, max: 3 }), groups: fc.integer({ min: 1, max: 2 }), cinG: fc.integer({ min: 1, max: 4 }), coutG: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 1, max: 9 }), w: fc.integer({ min: 1, max: 9 }), k: fc.integer({ min: 1, max: 4 }), stride: fc.integer({ min: 1, max: 3 }), padding: fc.integer({ min: 0, max: 2 }) }),
      { numRuns: 60, seed: 13 },
    ).filter((c) => c.h + 2 * c.padding >= c.k && c.w + 2 * c.padding >= c.k);
    convs.forEach((c, i) => {
      const { graph, xShape, wShape } = convolutionGraph(c);
      graphs.set(`conv${i}`, graph);
      const size = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);
      inputs.set(`conv${i}`, new Map([
        ["x", { dtype: "f32", shape: xShape, data: randomNormal(3, 0, i, size(xShape)) }],
        ["w", { dtype: "f32", shape: wShape, data: randomNormal(4, 0, i, size(wShape)) }],
      ]));
    });
    // round_tf32 and round_bf16 (ulc_scalar.h's ulc_round_tf32, ulc_round_bf16) on the hand-derived cases: ties,
    // subnormals, overflow, NaN, zeros.
    for (const [name, cases] of [["tf32", TF32_CASES], ["bf16", BF16_CASES]] as const) {
      const b = new GraphBuilder();
      const x = b.add({ kind: "input", name: "x" }, [], [cases.length]);
      add(name, b.build([{ name: "y", node: b.add({ kind: "unary", fn: ROUNDING_OF[name] }, [x]) }]), { dtype: "f32", shape: [cases.length], data: cases.map(([v]) => v) });
    }
    for (const dist of ["uniform", "normal"] as const) {
      const b = new GraphBuilder();
      const r = b.add({ kind: "random", dist, key: 7 }, [], [3000]);
      graphs.set(dist, b.build([{ name: "r", node: r }]));
      inputs.set(dist, new Map());
    }

    let session: NativeSession;
    beforeAll(async () => {
      session = await open(programOf(graphs), 12345);
    }, 180_000);
    afterAll(() => session?.dispose());

    const reference = (name: string, step: number) => interpret(graphs.get(name)!, { inputs: new Map([...inputs.get(name)!].map(([k, t]) => [k, { ...t, data: Float64Array.from(t.data) }])) }, { precision: "f32", seed: 12345, step });

    test("random element-wise, movement and reduction graphs match the f32 interpreter", async () => {
      for (let i = 0; i < samples.length; i++) {
        const got = (await session.run(`random${i}`, inputs.get(`random${i}`)!)).get("y")!.data;
        const want = reference(`random${i}`, 0).get("y")!.data;
        // float32 on both sides; glibc's expf, sinf, tanhf and the interpreter's rounded float64 differ by an
        // ulp or so, and sums of up to 5 such terms add a few more: 1e-5 relative, with a floor near 0.
        near(got, want, (w) => 1e-5 * Math.abs(w) + 1e-6, `random${i}`);
      }
    });

    test("convolutions and both their gradients on random shapes (strides, paddings past the kernel, groups) match the f32 interpreter", async () => {
      expect(convs.length).toBeGreaterThan(40);
      for (let i = 0; i < convs.length; i++) {
        const got = await session.run(`conv${i}`, inputs.get(`conv${i}`)!);
        for (const [name, want] of reference(`conv${i}`, 0)) {
          // Sums of up to 36 products of unit normals (and sines) in another order: 1e-5 of the largest magnitude.
          let scale = 1;
          for (const v of want.data) scale = Math.max(scale, Math.abs(v));
          near(got.get(name)!.data, want.data, () => 1e-5 * scale, `conv${i}.${name} (${JSON.stringify(convs[i])})`);
        }
      }
    });

    test("long reductions are exact where the sum is, and max propagates NaN", async () => {
      for (const name of ["sum_block", "max_block", "sum_warp", "max_warp"]) sameF32((await session.run(name, inputs.get(name)!)).get("y")!.data, reference(name, 0).get("y")!.data, name);
    });

    test("i32 arithmetic wraps, x / 0 = x, casts saturate (NaN -> 0), pow and max follow the interpreter", async () => {
      const got = await session.run("scalars", inputs.get("scalars")!);
      const want = reference("scalars", 0);
      // powf is correctly rounded in glibc but within 4 ulp on a GPU: 1e-6 relative; the rest is exact.
      for (const [name, t] of want) near(got.get(name)!.data, Float32Array.from(t.data), (w) => (name === "pow" ? 1e-6 * Math.abs(w) : 0), name);
    });

    test.each([
      ["tf32", "ties away from zero", TF32_CASES],
      ["bf16", "ties to even", BF16_CASES],
    ] as const)("round_%s is exact: %s, subnormals, overflow to Inf, NaN, signed zeros", async (name, _ties, cases) => {
      const got = (await session.run(name, inputs.get(name)!)).get("y")!.data;
      cases.forEach(([x, want], i) => expect(sameTf32(got[i]!, want), `round_${name}(${x}) = ${got[i]}, not ${want}`).toBe(true));
    });

    test("an arena larger than the device's memory is a plain error, and the runtime lives on", async () => {
      const host = new HostProcess(session.binary, session.dir);
      try {
        await expect(host.alloc(2 ** 50)).rejects.toThrow(target.outOfMemory);
        await host.alloc(1024);
        await host.write(0, Uint8Array.of(1, 2, 3));
        expect([...(await host.read({ offset: 0, bytes: 3 }))]).toEqual([1, 2, 3]);
      } finally {
        host.close();
      }
    });

    test("random streams are bit-exact with runtime/random.ts (uniform) and within f32 rounding (normal)", async () => {
      const uniform = (await session.run("uniform", new Map(), 678)).get("r")!.data;
      sameF32(uniform, randomUniform(12345, 678, 7, 3000), "uniform");
      const normal = (await session.run("normal", new Map(), 678)).get("r")!.data;
      // Box-Muller in float32 (sqrtf, logf, cosf) against float64 rounded once.
      near(normal, randomNormal(12345, 678, 7, 3000), (w) => 1e-5 * Math.max(1, Math.abs(w)), "normal");
    });
  });

  describe(`models on ${on} through the host runtime (precision ${precision})`, () => {
    test("ul_tiny: every kernel, 3 Adam steps, the moving average, and the state round trip", async () => {
      const program = lowerProgram("models/ul_tiny.ul", { bindings: { B: 2 }, precision });
      const session = await open(program, 21);
      try {
        const ref = new ReferenceSession(program, { precision: "f32", seed: 21 });
        await everyKernel(session, ref, program);
        const data = entryInputs(program, "fit");
        // Once the parameters have been updated the two sides hold them a few f32 ulps apart, and under tf32 an
        // operand at a rounding boundary then rounds to neighbouring TF32 values on the two sides: 2^-11 relative
        // in that operand, so the metrics' bound grows from 1e-4 to 5e-4 relative.
        const relative = precision === "tf32" ? 5e-4 : 1e-4;
        for (let step = 2; step <= 3; step++) {
          const got = await session.trainStep("fit", data);
          for (const [name, w] of ref.trainStep("fit", asF64(data))) expect(Math.abs(got.get(name)! - w), `${name} at step ${step}`).toBeLessThanOrEqual(relative * Math.abs(w) + 1e-6);
        }
        // Adam divides m by √v: where a gradient is nearly zero its sign (and so ±lr) can differ between two f32
        // summation orders. So every parameter within 3 steps × 2·lr·√(1/(1−β2)) (Adam's bound on a step's
        // difference), and 99% of them within 1% of lr.
        const lr = program.entries.find((e) => e.name === "fit")!.training!.args.find((a) => a.name === "lr")!.default;
        const state = await session.exportState();
        const diffs = program.params.flatMap((p) => Array.from(ref.params.get(p.name)!.data, (v, i) => Math.abs(state.tensors.get(`param:${p.name}`)!.data[i]! - v)));
        diffs.sort((a, b) => a - b);
        expect(diffs.at(-1)).toBeLessThanOrEqual(3 * 2 * lr * Math.sqrt(1 / (1 - 0.999)));
        expect(diffs[Math.floor(0.99 * diffs.length)]).toBeLessThanOrEqual(0.01 * lr);

        // One more step and update of the moving average (kept since everyKernel): ema + 0.1·(new − ema).
        const before = await session.exportState();
        await session.trainStep("fit", data);
        await session.updateEma(0.9);
        const after = await session.exportState();
        for (const p of program.params) {
          const [old, now] = [before.tensors.get(`ema:${p.name}`)!.data, after.tensors.get(`param:${p.name}`)!.data];
          // In f32 against float64: a few ulp of the parameters' magnitude.
          near(after.tensors.get(`ema:${p.name}`)!.data, old.map((o, i) => o + 0.1 * (now[i]! - o)), (w) => 1e-6 * Math.max(1, Math.abs(w)), `ema:${p.name}`);
        }

        // Sampling with the average equals sampling with the average imported as the parameters.
        const z = entryInputs(program, "decoder_step");
        session.useEma(true);
        const withEma = (await session.run("decoder_step", z)).get("result")!.data;
        session.useEma(false);
        const averaged = [...after.tensors].filter(([k]) => !k.startsWith("ema:")).map(([k, t]) => [k, k.startsWith("param:") ? after.tensors.get(`ema:${k.slice(6)}`)! : t] as const);
        await session.importState({ step: after.step, tensors: new Map(averaged) });
        expect(Array.from((await session.run("decoder_step", z)).get("result")!.data)).toEqual(Array.from(withEma));

        // A state exported, then imported after another step, replays that step to the bit.
        await session.importState(after);
        const first = await session.trainStep("fit", data);
        await session.importState(after);
        expect(await session.trainStep("fit", data)).toEqual(first);
      } finally {
        session.dispose();
      }
    }, 300_000);

    // A tf32 (bf16) Program: every contraction reads operands rounded to TF32 (bfloat16), whose products are exact
    // in f32, so the target matches the f32 interpreter of the same Program as closely as an fp32 one does
    // (everyKernel's tolerances); the fp32 Program's values differ from it by more than those tolerances, so the
    // rounding is seen.
    test.each(["tf32", "bf16"] as const)("classifier with precision %s: every kernel against the f32 interpreter of the same Program, B = 2", async (lowered) => {
      const program = lowerProgram("models/classifier.ul", { bindings: { B: 2 }, precision: lowered });
      const session = await open(program, 5);
      try {
        expect(session.manifest.precision).toBe(lowered);
        await everyKernel(session, new ReferenceSession(program, { precision: "f32", seed: 5 }), program, "all");
        // (Under tf32 by 2.7x for logits and 4.6x for features.)
        const fp32 = lowerProgram("models/classifier.ul", { bindings: { B: 2 } });
        for (const entry of ["logits", "features"]) {
          const data = asF64(entryInputs(program, entry));
          const [rounded, exact] = [program, fp32].map((p) => new ReferenceSession(p, { precision: "f32", seed: 5 }).run(entry, data).get("result")!.data);
          let [scale, diff] = [1, 0];
          for (let i = 0; i < exact!.length; i++) [scale, diff] = [Math.max(scale, Math.abs(exact![i]!)), Math.max(diff, Math.abs(rounded![i]! - exact![i]!))];
          expect(diff, entry).toBeGreaterThan(1e-4 * scale);
        }
      } finally {
        session.dispose();
      }
    }, 300_000);

    // Every other model in models/ (ul_tiny's test is above). ul_small at B = 1: the emulated warps of its weight
    // gradients are the slowest part of the suite.
    const others = readdirSync("models").flatMap((f) => (f.endsWith(".ul") && f !== "ul_tiny.ul" ? [f.slice(0, -".ul".length)] : []));
    test.each(others.map((model) => [model, model === "ul_small" ? 1 : 2] as const))("%s: every kernel (its init, ema and train graphs, and the plain entries that cover the rest), B = %i", async (model, B) => {
      const program = lowerProgram(`models/${model}.ul`, { bindings: { B }, precision });
      const session = await open(program, 5);
      try {
        await everyKernel(session, new ReferenceSession(program, { precision: "f32", seed: 5 }), program);
      } finally {
        session.dispose();
      }
    }, 300_000);
  });
}
