// Fusion: running the fused schedule (kernel IR rendered to JS) gives the reference interpreter's outputs.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { GraphBuilder, size, type Graph } from "../compiler/ir.js";
import { fuse, type FuseOptions } from "../compiler/kernel/fuse.js";
import { kernelOutputs, partsBuffers, type Kernel } from "../compiler/kernel/ir.js";
import { lowerProgram, type Program } from "../compiler/lower.js";
import { interpret } from "../runtime/interpreter.js";
import { runSchedule } from "../runtime/js/schedule.js";
import { randomNormal } from "../runtime/random.js";
import type { Tensor } from "../runtime/tensor.js";
import { addConvolution, elementwiseStepArb, randomElementwiseGraph } from "./support/graphs.js";

/** Random values for every input of a graph (optimizer.step must be a positive count). */
function inputsOf(g: Graph, seed: number): Map<string, Tensor> {
  const inputs = new Map<string, Tensor>();
  for (const n of g.nodes)
    if (n.op.kind === "input") {
      const data = n.op.name === "optimizer.step" ? Float64Array.of(3) : randomNormal(seed, 0, n.id, size(n.shape));
      inputs.set(n.op.name, { dtype: n.dtype, shape: n.shape, data });
    }
  return inputs;
}

/** The interpreter's outputs of a graph, once per graph and seed: several schedules of one graph compare to them. */
const interpreted = new WeakMap<Graph, Map<number, Map<string, Tensor>>>();

/** Fused and unfused execution agree exactly: the kernels do the interpreter's float64 arithmetic in its order. */
function expectSameOutputs(g: Graph, params: Map<string, Tensor>, seed: number, options: FuseOptions = {}): void {
  const env = { inputs: inputsOf(g, seed), params };
  if (!interpreted.has(g)) interpreted.set(g, new Map());
  const bySeed = interpreted.get(g)!;
  if (!bySeed.has(seed)) bySeed.set(seed, interpret(g, env, { precision: "f64", seed, step: 1 }));
  const got = runSchedule(g, fuse(g, options), env, { seed, step: 1 });
  for (const [name, t] of bySeed.get(seed)!) expect([...got.get(name)!.data], name).toEqual([...t.data]);
}

/** A model at B = 2 and its initial parameters, lowered once per model: several tests schedule its graphs. */
const lowered = new Map<string, { entries: Program["entries"]; params: Map<string, Tensor> }>();
function model(path: string) {
  if (!lowered.has(path)) {
    const program = lowerProgram(path, { bindings: { B: 2 } });
    lowered.set(path, { entries: program.entries, params: interpret(program.init, {}, { precision: "f64", seed: 4, step: 0 }) });
  }
  return lowered.get(path)!;
}

/** The tiled kernels of a schedule. */
function tiled(g: Graph, options: FuseOptions) {
  return fuse(g, options).steps.flatMap((s) => (s.kind === "kernel" && s.kernel.tile ? [s.kernel] : []));
}

/** ul_tiny's train step and its initial parameters. */
function ulTinyFit() {
  const { entries, params } = model("models/ul_tiny.ul");
  return { fit: entries.find((e) => e.name === "fit")!, params };
}

describe("fused schedules of the models", () => {
  for (const [path, entries] of [
    ["models/ul_tiny.ul", undefined],
    // The convolutional models' other entries add run time, not coverage: these hold every forward op they
    // use; the gradient ops are covered on random shapes below.
    ["models/classifier.ul", ["evaluate"]],
    ["models/ul_small.ul", ["decoder_step"]],
  ] as const) {
    // In register tiles, as the WebGPU runtime runs them (one output per invocation: the random graphs below).
    test(`${path}: every fused entry gives the interpreter's outputs`, () => {
      const { entries: all, params } = model(path);
      for (const e of all) if (!entries || (entries as readonly string[]).includes(e.name)) expectSameOutputs(e.graph, params, 9, { tile: { rows: 5, cols: 3 } });
    }, 120_000);
  }

  test("ul_tiny's train step with matmuls as library calls (as the CPU target runs it): transposed operands read in place, outputs equal", () => {
    const { fit, params } = ulTinyFit();
    const library = new Set(["matmul"]);
    const calls = fuse(fit.graph, { library }).steps.flatMap((s) => (s.kind === "library" ? [s.call] : []));
    // The backward pass multiplies by Wᵀ and xᵀ: those operands are the parameters and activations themselves.
    const transposed = calls.flatMap((c) => c.operands.filter((o) => o.transposed));
    expect(transposed.length).toBeGreaterThan(0);
    for (const o of transposed) expect(fit.graph.nodes[o.node]!.op.kind).not.toBe("transpose");
    expectSameOutputs(fit.graph, params, 9, { library });
  }, 120_000);

  test("ul_tiny's train step with sibling outputs (as the native targets run it): the optimizer's updates share kernels, outputs equal", () => {
    const { fit, params } = ulTinyFit();
    const options = { library: new Set(["matmul"]), maxInputs: 32 };
    const kernels = (siblings: boolean) => fuse(fit.graph, { ...options, siblings }).steps.flatMap((s) => (s.kind === "kernel" ? [s.kernel] : []));
    const state = new Set(fit.graph.outputs.filter((o) => /^(param:|optimizer\.)/.test(o.name)).map((o) => o.node));
    // Three outputs per parameter (it, Adam's m and v): without siblings a kernel each, with them a few kernels in all.
    const updating = (ks: Kernel[]) => ks.filter((k) => kernelOutputs(k).some((o) => state.has(o.node))).length;
    expect(updating(kernels(false))).toBe(3 * fit.training!.params.length);
    expect(updating(kernels(true))).toBeLessThanOrEqual(fit.training!.params.length / 2);
    expectSameOutputs(fit.graph, params, 9, { ...options, siblings: true });
  }, 120_000);

  test("ul_tiny's train step with batches (as the CUDA target launches it): Adam's updates in one launch of independent parts, outputs equal", () => {
    const { fit, params } = ulTinyFit();
    const options = { maxInputs: 32, siblings: true, chain: true, batch: { maxBuffers: 1000, maxTiled: 3 } };
    const steps = fuse(fit.graph, options).steps;
    const batches = steps.flatMap((s) => (s.kind === "batch" ? [s.batch] : []));
    for (const b of batches) {
      const { inputs, outputs } = partsBuffers(b.parts);
      expect(inputs.length + outputs.length).toBeLessThanOrEqual(options.batch.maxBuffers);
      // No part reads what another writes.
      expect(inputs.filter((n) => outputs.includes(n))).toEqual([]);
    }
    // Every parameter's new value, m and v in one batch; a parameter's three in one part, which reads its gradient once.
    const state = fit.graph.outputs.filter((o) => /^(param:|optimizer\.[mv]\.)/.test(o.name)).map((o) => o.node);
    expect(state).toHaveLength(3 * fit.training!.params.length);
    const holder = batches.find((b) => partsBuffers(b.parts).outputs.includes(state[0]!))!;
    expect(state.filter((n) => !partsBuffers(holder.parts).outputs.includes(n))).toEqual([]);
    const partOf = (name: string) => holder.parts.findIndex((k) => kernelOutputs(k).some((o) => o.node === fit.graph.outputs.find((x) => x.name === name)!.node));
    for (const p of fit.training!.params) expect([partOf(`optimizer.m.${p}`), partOf(`optimizer.v.${p}`)], p).toEqual([partOf(`param:${p}`), partOf(`param:${p}`)]);
    expectSameOutputs(fit.graph, params, 9, options);
  }, 120_000);

  test("a norm's statistics as a chain: the variance's sum runs after the mean's in the same threads, reading it at its own index; outputs equal", () => {
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "x" }, [], [6, 40]);
    const constant = (value: number, shape: number[]) => b.add({ kind: "constant", value }, [], shape);
    const mean = b.add({ kind: "binary", fn: "div" }, [b.add({ kind: "reduce", fn: "sum", axes: [1] }, [x]), constant(40, [6, 1])]);
    const centred = b.add({ kind: "binary", fn: "sub" }, [x, b.add({ kind: "broadcast" }, [mean], [6, 40])]);
    const variance = b.add({ kind: "binary", fn: "div" }, [b.add({ kind: "reduce", fn: "sum", axes: [1] }, [b.add({ kind: "binary", fn: "mul" }, [centred, centred])]), constant(40, [6, 1])]);
    const rstd = b.add({ kind: "unary", fn: "rsqrt" }, [b.add({ kind: "binary", fn: "add" }, [variance, constant(1e-5, [6, 1])])]);
    const y = b.add({ kind: "binary", fn: "mul" }, [centred, b.add({ kind: "broadcast" }, [rstd], [6, 40])]);
    const g = b.build([{ name: "y", node: y }]);
    const steps = fuse(g, { chain: true }).steps;
    expect(steps.map((st) => st.kind)).toEqual(["chain", "kernel"]);
    const chain = steps[0]!.kind === "chain" ? steps[0]!.chain : undefined;
    // The two sums (the mean's division and the variance's epilogue inline into their readers).
    const [first, second] = chain!.parts;
    expect([first!.reduce?.count, second!.reduce?.count]).toEqual([40, 40]);
    expect(second!.inputs.map((i) => i.node)).toContain(first!.node);
    expectSameOutputs(g, new Map(), 3, { chain: true });
  });

  test("ul_small's train step runs in fewer kernels than half its primitive ops", () => {
    const program = lowerProgram("models/ul_small.ul", { bindings: { B: 2 } });
    const fit = program.entries.find((e) => e.name === "fit")!;
    const steps = fuse(fit.graph).steps.length;
    expect(steps).toBeLessThan(fit.tracedNodes / 2);
    expect(steps).toBeLessThan(fit.graph.nodes.length / 2);
  }, 60_000);
});

describe("fusion rules", () => {
  test("a softmax: the row max is materialised (read through a broadcast), the sum fuses its exp prologue and its division epilogue", () => {
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "x" }, [], [3, 5]);
    const m = b.add({ kind: "reduce", fn: "max", axes: [1] }, [x]);
    const centred = b.add({ kind: "binary", fn: "sub" }, [x, b.add({ kind: "broadcast" }, [m], [3, 5])]);
    const e = b.add({ kind: "unary", fn: "exp" }, [centred]);
    const s = b.add({ kind: "reduce", fn: "sum", axes: [1] }, [e]);
    const logS = b.add({ kind: "unary", fn: "log" }, [s]);
    const g = b.build([{ name: "lse", node: logS }]);
    const schedule = fuse(g);
    const kernels = schedule.steps.map((st) => (st.kind === "kernel" ? st.kernel : undefined)).filter((k) => k !== undefined);
    expect(kernels).toHaveLength(2);
    // The second kernel: sum over exp(x - max) with log as its epilogue.
    const last = kernels[1]!;
    expect(last.reduce?.fn).toBe("sum");
    expect(last.body.k).toBe("unary");
    expect(last.fused).toEqual([centred, e, s, logS].concat(b.nodes.filter((n) => n.op.kind === "broadcast").map((n) => n.id)).sort((p, q) => p - q));
    expectSameOutputs(g, new Map(), 1);
  });

  test("a kernel that would read more buffers than the device binds is split", () => {
    const b = new GraphBuilder();
    const xs = Array.from({ length: 12 }, (_, i) => b.add({ kind: "input", name: `x${i}` }, [], [5]));
    let sum = xs[0]!;
    for (const x of xs.slice(1)) sum = b.add({ kind: "binary", fn: "add" }, [sum, b.add({ kind: "unary", fn: "exp" }, [x])]);
    const g = b.build([{ name: "sum", node: sum }]);
    for (const maxInputs of [3, 7, 16]) {
      const kernels = fuse(g, { maxInputs }).steps.map((s) => (s.kind === "kernel" ? s.kernel : undefined)).filter((k) => k !== undefined);
      for (const k of kernels) expect(k.inputs.length).toBeLessThanOrEqual(maxInputs);
      expect(kernels.length).toBe(maxInputs >= 12 ? 1 : Math.ceil((12 - 1) / (maxInputs - 1)));
    }
    const env = new Map(xs.map((_, i) => [`x${i}`, { dtype: "f32" as const, shape: [5], data: Float64Array.from({ length: 5 }, (_, j) => i - j / 3) }]));
    const want = interpret(g, { inputs: env }, { precision: "f64", seed: 0, step: 0 }).get("sum")!;
    expect([...runSchedule(g, fuse(g, { maxInputs: 3 }), { inputs: env }, { seed: 0, step: 0 }).get("sum")!.data]).toEqual([...want.data]);
  });

  test("a short expression read several times is recomputed by its readers where that moves no more memory, else materialised once", () => {
    const b = new GraphBuilder();
    const [x, y, w] = ["x", "y", "w"].map((name) => b.add({ kind: "input", name }, [], [4]));
    // One full-size load read twice: recomputed, one kernel.
    const e = b.add({ kind: "unary", fn: "exp" }, [x!]);
    const square = b.add({ kind: "binary", fn: "mul" }, [e, e]);
    // Three loads read three times: stored once (4 transfers and a launch against 9).
    const s = b.add({ kind: "binary", fn: "add" }, [b.add({ kind: "binary", fn: "add" }, [x!, y!]), w!]);
    const cube = b.add({ kind: "binary", fn: "mul" }, [b.add({ kind: "binary", fn: "mul" }, [s, s]), s]);
    const g = b.build([
      { name: "square", node: square },
      { name: "cube", node: cube },
    ]);
    expect(fuse(g).steps.map((st) => (st.kind === "kernel" ? st.kernel.node : -1))).toEqual([square, s, cube]);
    expectSameOutputs(g, new Map(), 2);
  });

  test("a value read through a broadcast, or holding a sum, is materialised, not recomputed", () => {
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "x" }, [], [3, 4]);
    const e = b.add({ kind: "unary", fn: "exp" }, [b.add({ kind: "slice", axis: 0, start: 0, end: 1 }, [x])]);
    // e is read by a product at its own index and through a broadcast by another.
    const wide = b.add({ kind: "binary", fn: "mul" }, [b.add({ kind: "broadcast" }, [e], [3, 4]), x]);
    const near = b.add({ kind: "binary", fn: "add" }, [e, e]);
    // A row sum's epilogue read twice would sum the row again per read.
    const mean = b.add({ kind: "binary", fn: "mul" }, [b.add({ kind: "reduce", fn: "sum", axes: [1] }, [x]), b.add({ kind: "constant", value: 0.25 }, [], [3, 1])]);
    const twice = b.add({ kind: "binary", fn: "add" }, [mean, mean]);
    const g = b.build([
      { name: "wide", node: wide },
      { name: "near", node: near },
      { name: "twice", node: twice },
    ]);
    const written = fuse(g).steps.map((st) => (st.kind === "kernel" ? st.kernel.node : -1));
    expect(written).toContain(e);
    expect(written).toContain(mean);
    expectSameOutputs(g, new Map(), 2);
  });

  test("convolutions, their gradients, pooling, pad, concat and upsample on random shapes: fused equals unfused", () => {
    const conv = fc.record({
      n: fc.integer({ min: 1, max: 2 }),
      groups: fc.integer({ min: 1, max: 2 }),
      cinG: fc.integer({ min: 1, max: 3 }),
      coutG: fc.integer({ min: 1, max: 2 }),
      h: fc.integer({ min: 1, max: 6 }),
      w: fc.integer({ min: 1, max: 6 }),
      k: fc.integer({ min: 1, max: 3 }),
      stride: fc.integer({ min: 1, max: 3 }),
      padding: fc.integer({ min: 0, max: 2 }),
      pool: fc.integer({ min: 1, max: 2 }),
      tile: fc.option(fc.record({ rows: fc.integer({ min: 1, max: 5 }), cols: fc.integer({ min: 1, max: 5 }) }), { nil: undefined }),
    });
    fc.assert(
      fc.property(conv, (c) => {
        const ho = Math.floor((c.h + 2 * c.padding - c.k) / c.stride) + 1;
        const wo = Math.floor((c.w + 2 * c.padding - c.k) / c.stride) + 1;
        fc.pre(ho >= 1 && wo >= 1);
        const b = new GraphBuilder();
        const { dx, dw } = addConvolution(b, c);
        const up = b.add({ kind: "upsample", factor: 2 }, [dx]);
        const padded = b.add({ kind: "pad", widths: [[0, 0], [0, 0], [1, 0], [0, 2]], value: 0.5 }, [up]);
        const joined = b.add({ kind: "concat", axis: 1 }, [padded, b.add({ kind: "unary", fn: "exp" }, [padded])]);
        const outs = [
          { name: "dx", node: dx },
          { name: "dw", node: dw },
          { name: "joined", node: joined },
        ];
        const ph = c.h * 2 + 1;
        const pw = c.w * 2 + 2;
        if (ph >= c.pool && pw >= c.pool) {
          const pooled = b.add({ kind: "avg_pool", size: c.pool, stride: c.pool }, [joined]);
          outs.push({ name: "pooled", node: pooled });
          outs.push({ name: "pool_grad", node: b.add({ kind: "avg_pool_grad", size: c.pool, stride: c.pool }, [b.add({ kind: "unary", fn: "cos" }, [pooled])], b.node(joined).shape) });
        }
        const g = b.build(outs);
        if (c.tile) expect(tiled(g, { tile: c.tile }).map((k) => k.node)).toEqual(expect.arrayContaining([dx, dw]));
        expectSameOutputs(g, new Map(), 13, c.tile && { tile: c.tile });
      }),
      { numRuns: 150, seed: 21 },
    );
  });

  test("matmuls as autodiff makes them (transposed operands, batches, fused prologues and epilogues) in register tiles of any shape: fused equals unfused", () => {
    // Sizes around and below the tile (1, primes), size-1 dims, batches broadcast to one operand.
    const dim = fc.integer({ min: 1, max: 11 });
    const arb = fc.record({
      batch: fc.constantFrom<number[]>([], [2], [1, 3]),
      m: dim,
      n: dim,
      k: dim,
      transposeA: fc.boolean(),
      transposeB: fc.boolean(),
      broadcastB: fc.boolean(),
      tile: fc.option(fc.record({ rows: fc.integer({ min: 1, max: 6 }), cols: fc.integer({ min: 1, max: 6 }) }), { nil: undefined }),
    });
    fc.assert(
      fc.property(arb, (c) => {
        const b = new GraphBuilder();
        const r = c.batch.length;
        const swap = (shape: number[], t: boolean) => (t ? [...shape.slice(0, -2), shape[r + 1]!, shape[r]!] : shape);
        const perm = [...Array(r).keys(), r + 1, r];
        // A stored transposed and read through a transpose, with an element-wise prologue (tanh).
        let a = b.add({ kind: "input", name: "a" }, [], swap([...c.batch, c.m, c.k], c.transposeA));
        if (c.transposeA) a = b.add({ kind: "transpose", perm }, [a]);
        a = b.add({ kind: "unary", fn: "tanh" }, [a]);
        // B: one matrix broadcast over the batch, or a batch of its own; maybe transposed.
        const bBatch = c.broadcastB ? c.batch.map(() => 1) : c.batch;
        let w = b.add({ kind: "input", name: "b" }, [], swap([...bBatch, c.k, c.n], c.transposeB));
        if (c.transposeB) w = b.add({ kind: "transpose", perm }, [w]);
        if (c.broadcastB && r > 0) w = b.add({ kind: "broadcast" }, [w], [...c.batch, c.k, c.n]);
        const y = b.add({ kind: "matmul" }, [a, w]);
        // Epilogue: bias broadcast along rows, an activation, a residual, a scale.
        const shape = [...c.batch, c.m, c.n];
        const bias = b.add({ kind: "broadcast" }, [b.add({ kind: "input", name: "bias" }, [], [...c.batch.map(() => 1), 1, c.n])], shape);
        const act = b.add({ kind: "unary", fn: "sigmoid" }, [b.add({ kind: "binary", fn: "add" }, [y, bias])]);
        const res = b.add({ kind: "binary", fn: "add" }, [act, b.add({ kind: "input", name: "res" }, [], shape)]);
        const out = b.add({ kind: "binary", fn: "mul" }, [res, b.add({ kind: "broadcast" }, [b.add({ kind: "constant", value: 0.75 }, [], shape.map(() => 1))], shape)]);
        const g = b.build([{ name: "out", node: out }]);
        const { tile } = c;
        if (tile) {
          const kernels = tiled(g, { tile });
          expect(kernels.map((k) => k.node)).toEqual([out]);
          expect(kernels[0]!.tile!.rows).toBeLessThanOrEqual(Math.min(tile.rows, c.m));
          expect(kernels[0]!.tile!.cols).toBeLessThanOrEqual(Math.min(tile.cols, c.n));
        }
        expectSameOutputs(g, new Map(), 3, tile && { tile });
      }),
      { numRuns: 200, seed: 5 },
    );
  });

  test("random element-wise / movement / reduce graphs: fused equals unfused", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }), fc.array(elementwiseStepArb, { minLength: 1, maxLength: 10 }), (shape, steps) => {
        const g = randomElementwiseGraph(shape, steps);
        expectSameOutputs(g, new Map(), 5);
        expectSameOutputs(g, new Map(), 5, { siblings: true, maxInputs: 3 });
      }),
      { numRuns: 300, seed: 77 },
    );
  });
});
