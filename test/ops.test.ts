// The operations the tracer composes from IR primitives (compiler/trace.ts): relu, leaky_relu, gelu, flatten,
// min, one_hot, argmax and gather. They have no VJP rule or kernel of their own, so this checks the
// compositions, traced from the .ul model below (one entry per case):
//  - forward values against TF.js's CPU backend, our interpreter in f64 and in f32 (gelu against tfjs-layers'
//    `gelu_new`, the tanh approximation);
//  - the gradient of f = Σ c ⊙ op(x), appended by `vjp`, against TF.js's tf.grads and against a central
//    difference in float64 (as test/autodiff.test.ts does for each primitive);
//  - every entry, and a train step through all of them, on the CPU target, the CUDA target's CPU emulation and
//    WebGPU against the f32 interpreter.
// Values stay away from kinks and ties where conventions differ (relu and leaky_relu at 0, min at ties, whose
// gradients TF.js gives to every tied element); argmax's ties are kept, since both take the first maximum, and
// gather's repeated indices too.
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { GeluNew } from "@tensorflow/tfjs-layers/dist/activations.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { vjp } from "../compiler/autodiff.js";
import { GraphBuilder, size, type DType, type Graph } from "../compiler/ir.js";
import { lowerProgram } from "../compiler/lower.js";
import type { SourceHost } from "../dsl/loader.js";
import { openCpuSession } from "../runtime/cpu/session.js";
import { openCudaSession } from "../runtime/cuda/session.js";
import { interpret } from "../runtime/interpreter.js";
import { ReferenceSession } from "../runtime/reference.js";
import type { Session } from "../runtime/session.js";
import { tensorOf, type Precision, type Tensor } from "../runtime/tensor.js";
import { sessionFromProgram } from "../runtime/webgpu/compile.js";
import type { WebGpu } from "../runtime/webgpu/device.js";
import { near } from "./support/native.js";
import { mulberry32, type Rng } from "./support/prng.js";
import { testDevice } from "./support/webgpu.js";

const f32 = Math.fround;
type Gen = (n: number, r: Rng) => number[];
const uniform =
  (lo: number, hi: number, away = 0): Gen =>
  (n, r) =>
    Array.from({ length: n }, () => {
      const v = f32(lo + (hi - lo) * r());
      return Math.abs(v) < away ? f32(v < 0 ? v - away : v + away) : v;
    });
/** Distinct values at least 0.04 apart, shuffled: no ties for min. */
const distinct: Gen = (n, r) => {
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.map((k) => f32((k - n / 2) * 0.05 + 0.01 * r()));
};
/** Integers in [lo, hi]: many ties among a few values. */
const integers =
  (lo: number, hi: number): Gen =>
  (n, r) =>
    Array.from({ length: n }, () => lo + Math.floor((hi - lo + 1) * r()));
/** i32 values with both extremes, where a min written as −max(−x) would overflow. */
const i32Extremes: Gen = (n, r) =>
  Array.from({ length: n }, () => {
    const k = r();
    return k < 0.25 ? -(2 ** 31) : k < 0.5 ? 2 ** 31 - 1 : Math.floor(2 ** 32 * r()) - 2 ** 31;
  });

interface OpCase {
  readonly entry: string;
  readonly x: { readonly dtype: DType; readonly shape: readonly number[] };
  /** The entry's body, of its input `x` (and `indices`), and its result type. */
  readonly body: string;
  readonly result: string;
  readonly values: Gen;
  /** A second input, i32 `indices`, not differentiated. */
  readonly indices?: { readonly shape: readonly number[]; readonly values: Gen };
  readonly tf: (x: tf.Tensor, indices?: tf.Tensor) => tf.Tensor;
  /** The largest relative difference from TF.js allowed, forward and gradient: 0 is bitwise (as float32). */
  readonly tolerance: number;
}

const X = { dtype: "f32", shape: [2, 3, 4] } as const;
const CASES: readonly OpCase[] = [
  { entry: "relu_", x: X, body: "relu(x)", result: "f32[2, 3, 4]", values: uniform(-3, 3, 0.1), tf: tf.relu, tolerance: 0 },
  // slope·x: one rounding of a product of doubles on both sides, but our f32 mode rounds 0.01 first
  { entry: "leaky_relu_", x: X, body: "leaky_relu(x)", result: "f32[2, 3, 4]", values: uniform(-3, 3, 0.1), tf: (x) => tf.leakyRelu(x, 0.01), tolerance: 2 ** -23 },
  { entry: "leaky_relu_steep", x: X, body: "leaky_relu(x, slope = 0.2)", result: "f32[2, 3, 4]", values: uniform(-3, 3, 0.1), tf: (x) => tf.leakyRelu(x, 0.2), tolerance: 2 ** -23 },
  // TF.js computes 1 + tanh(u) in float32, which cancels by up to ~20x for x ≥ −2 (ours does not: x·σ(2u))
  { entry: "gelu_", x: X, body: "gelu(x)", result: "f32[2, 3, 4]", values: uniform(-2, 3), tf: (x) => new GeluNew().apply(x), tolerance: 1e-5 },
  { entry: "flatten_", x: X, body: "flatten(x)", result: "f32[2, 12]", values: uniform(-3, 3), tf: (x) => tf.reshape(x, [2, 12]), tolerance: 0 },
  { entry: "flatten_all", x: X, body: "flatten(x, start = 0)", result: "f32[24]", values: uniform(-3, 3), tf: (x) => tf.reshape(x, [24]), tolerance: 0 },
  { entry: "flatten_last_two", x: { dtype: "f32", shape: [2, 3, 2, 2] }, body: "flatten(x, start = -2)", result: "f32[2, 3, 4]", values: uniform(-3, 3), tf: (x) => tf.reshape(x, [2, 3, 4]), tolerance: 0 },
  { entry: "min_axis", x: X, body: "min(x, axis = 1)", result: "f32[2, 4]", values: distinct, tf: (x) => tf.min(x, 1), tolerance: 0 },
  { entry: "min_all", x: X, body: "min(x)", result: "f32", values: distinct, tf: (x) => tf.min(x), tolerance: 0 },
  { entry: "min_keepdims", x: X, body: "min(x, axis = [0, -1], keepdims = true)", result: "f32[1, 3, 1]", values: distinct, tf: (x) => tf.min(x, [0, 2], true), tolerance: 0 },
  { entry: "min_i32", x: { dtype: "i32", shape: [2, 3, 4] }, body: "min(x, axis = 2)", result: "i32[2, 3]", values: i32Extremes, tf: (x) => tf.min(x, 2), tolerance: 0 },
  // labels out of range (−1, 5, 6) give rows of zeros on both sides
  { entry: "one_hot_", x: { dtype: "i32", shape: [2, 3] }, body: "one_hot(x, 5)", result: "f32[2, 3, 5]", values: integers(-1, 6), tf: (x) => tf.oneHot(x, 5), tolerance: 0 },
  { entry: "argmax_", x: X, body: "argmax(x, axis = 1)", result: "i32[2, 4]", values: integers(-2, 2), tf: (x) => tf.argMax(x, 1), tolerance: 0 },
  { entry: "argmax_last", x: X, body: "argmax(x, axis = -1)", result: "i32[2, 3]", values: integers(-2, 2), tf: (x) => tf.argMax(x, -1), tolerance: 0 },
  { entry: "argmax_i32", x: { dtype: "i32", shape: [2, 3, 4] }, body: "argmax(x, axis = 0)", result: "i32[3, 4]", values: i32Extremes, tf: (x) => tf.argMax(x, 0), tolerance: 0 },
  // Repeated indices: their gradients add up, in another order in TF.js (unsortedSegmentSum), hence 2^-22
  { entry: "gather_rows", x: { dtype: "f32", shape: [5, 3] }, indices: { shape: [2, 3], values: integers(0, 4) }, body: "gather(x, indices)", result: "f32[2, 3, 3]", values: uniform(-3, 3), tf: (x, i) => tf.gather(x, i!), tolerance: 2 ** -22 },
  { entry: "gather_axis", x: X, indices: { shape: [5], values: integers(0, 2) }, body: "gather(x, indices, axis = -2)", result: "f32[2, 5, 4]", values: uniform(-3, 3), tf: (x, i) => tf.gather(x, i!, 1), tolerance: 2 ** -22 },
  { entry: "gather_i32", x: { dtype: "i32", shape: [2, 3, 4] }, indices: { shape: [2, 2], values: integers(0, 3) }, body: "gather(x, indices, axis = 2)", result: "i32[2, 3, 2, 2]", values: i32Extremes, tf: (x, i) => tf.gather(x, i!, 2), tolerance: 0 },
];

// A train step through every differentiable composition (and one_hot), with a plain SGD so that the model needs
// nothing from the standard library.
const SOURCE = `
optimizer Sgd(lr = 0.1) {
  fn update(p, g, step) { { p: p - lr * g } }
}

module Probe {
  param w: f32[2, 3, 4] = 1.0 + 0.1 * randn([2, 3, 4])
  fn forward(x: f32[2, 3, 4], labels: i32[2]) -> f32 {
    let h = w * x
    let y = relu(h) + 2.0 * leaky_relu(h, slope = 0.2) + 3.0 * gelu(h) + min(h, axis = 1, keepdims = true)
    sum(flatten(y) * flatten(h)) + sum(one_hot(labels, 4) * min(h, axis = 1)) + sum(gather(h, labels, axis = 2))
  }
}

model Ops {
  probe: Probe
  train fit(x: f32[2, 3, 4], labels: i32[2]) -> { loss: f32 } minimize loss with Sgd() { { loss: probe(x, labels) } }
${CASES.map((c) => `  entry ${c.entry}(x: ${c.x.dtype}[${c.x.shape.join(", ")}]${c.indices ? `, indices: i32[${c.indices.shape.join(", ")}]` : ""}) -> ${c.result} { ${c.body} }`).join("\n")}
}
`;

const FILE = "/ops/ops.ul";
const HOST: SourceHost = { readFile: (p) => (p === FILE ? SOURCE : undefined) };
const program = lowerProgram(FILE, { bindings: {}, host: HOST });

/** The case's inputs by name, drawn from `seed`. */
function inputsOf(c: OpCase, seed: number): Map<string, Tensor> {
  const r = mulberry32(seed);
  const draw = (dtype: DType, shape: readonly number[], values: Gen) => ({ dtype, shape, data: Float64Array.from(values(size(shape), r)) });
  const inputs = new Map([["x", draw(c.x.dtype, c.x.shape, c.values)]]);
  if (c.indices) inputs.set("indices", draw("i32", c.indices.shape, c.indices.values));
  return inputs;
}

const TF_DTYPE: Record<DType, "float32" | "int32" | "bool"> = { f32: "float32", f16: "float32", i32: "int32", bool: "bool" };
const floats = (c: OpCase) => c.x.dtype === "f32" && c.result.startsWith("f32");

/** The entry's graph with f = Σ c ⊙ y (c an input `c` of y's shape) and ∂f/∂x appended, as outputs y, f and g. */
function withGradient(g: Graph): Graph {
  const b = new GraphBuilder();
  for (const n of g.nodes) b.add(n.op, n.inputs, n.shape, n.dtype);
  const y = g.outputs[0]!.node;
  const x = g.nodes.find((n) => n.op.kind === "input" && n.op.name === "x")!.id;
  const c = b.add({ kind: "input", name: "c" }, [], b.node(y).shape, "f32");
  const prod = b.add({ kind: "binary", fn: "mul" }, [c, y]);
  const f = b.add({ kind: "reduce", fn: "sum", axes: [...b.node(y).shape.keys()] }, [prod]);
  const [grad] = vjp(b, f, [x]);
  return b.build([
    { name: "y", node: y },
    { name: "f", node: f },
    { name: "g", node: grad! },
  ]);
}

/** Within `tolerance` of TF.js, relatively; at 0, equal once stored as TF.js stores it (the sign of a zero aside). */
function close(ours: ArrayLike<number>, theirs: Float32Array | Int32Array | Uint8Array, tolerance: number, what: string): void {
  const stored = tolerance === 0 ? (theirs.constructor as Float32ArrayConstructor).from(ours) : ours;
  near(stored, theirs, (t) => tolerance * Math.abs(t), what);
}

const SEEDS = [1, 2, 3, 4, 5];

describe("against TF.js", () => {
  beforeAll(async () => {
    // tfjs-core's Node entry registers no gradient (see test/tfjs-oracle.test.ts): these are the ones f needs.
    const names = ["Add", "GatherV2", "LeakyRelu", "Min", "Multiply", "Pow", "Relu", "Reshape", "Sum", "Tanh"];
    const modules = await Promise.all(names.map((n) => import(/* @vite-ignore */ `@tensorflow/tfjs-core/dist/gradients/${n}_grad.js`) as Promise<Record<string, unknown>>));
    for (const m of modules) for (const [k, v] of Object.entries(m)) if (k.endsWith("GradConfig")) tf.registerGradient(v as tf.GradConfig);
    tf.env().set("PROD", true);
    expect(await tf.setBackend("cpu")).toBe(true);
  }, 60_000);

  test.each(CASES.map((c) => [c.entry, c] as const))("%s: forward (f64 and f32) and the gradient of Σ c ⊙ y", (_, c) => {
    const entry = program.entries.find((e) => e.name === c.entry)!;
    const differentiable = floats(c);
    const graph = differentiable ? withGradient(entry.graph) : entry.graph;
    const yShape = entry.graph.nodes[entry.graph.outputs[0]!.node]!.shape;
    for (const seed of SEEDS) {
      const given = inputsOf(c, seed);
      const ct = uniform(-1, 1)(size(yShape), mulberry32(seed + 100));
      const [tfY, tfG] = tf.tidy(() => {
        const [xt, it] = ["x", "indices"].map((name) => {
          const t = given.get(name);
          return t && tf.tensor(Array.from(t.data), t.shape as number[], TF_DTYPE[t.dtype]);
        });
        const y = c.tf(xt!, it);
        const g = differentiable ? tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.tensor(ct, y.shape), c.tf(v, it))))(xt!).dataSync() : [];
        return [y.dataSync(), g] as const;
      });
      for (const precision of ["f64", "f32"] as Precision[]) {
        // i32 values stay in a Float64Array in both modes (the interpreter's contract)
        const inputs = new Map([...given].map(([name, t]) => [name, tensorOf(t.dtype, t.shape, t.data, t.dtype === "i32" ? "f64" : precision)]));
        inputs.set("c", tensorOf("f32", yShape, ct, precision));
        const out = interpret(graph, { inputs }, { precision, seed: 0, step: 0 });
        close(out.get(differentiable ? "y" : "result")!.data, tfY, c.tolerance, `${c.entry} forward (${precision}, seed ${seed})`);
        if (differentiable) close(out.get("g")!.data, tfG as Float32Array, c.tolerance, `${c.entry} gradient (${precision}, seed ${seed})`);
      }
    }
  });
});

// ⟨∇f, t⟩ against (f(x + εt) − f(x − εt)) / 2ε in float64, within 1e-7 of Σ|∇f ⊙ t| + Σ|c ⊙ y| (test/autodiff.test.ts
// explains the bound; the values keep x ± ε on one side of every kink and tie).
describe("gradients against central differences", () => {
  const EPS = 1e-5;
  test.each(CASES.filter(floats).map((c) => [c.entry, c] as const))("%s", (_, c) => {
    const graph = withGradient(program.entries.find((e) => e.name === c.entry)!.graph);
    const yShape = graph.nodes[graph.outputs[0]!.node]!.shape;
    for (const seed of SEEDS) {
      const r = mulberry32(seed + 200);
      const given = inputsOf(c, seed);
      const x = given.get("x")!.data;
      const t = uniform(-1, 1)(x.length, r);
      const ct = uniform(-1, 1)(size(yShape), r);
      const at = (h: number) => {
        const inputs = new Map(given);
        inputs.set("x", tensorOf("f32", c.x.shape, x.map((v, i) => v + h * t[i]!), "f64"));
        inputs.set("c", tensorOf("f32", yShape, ct, "f64"));
        return interpret(graph, { inputs }, { precision: "f64", seed: 0, step: 0 });
      };
      const here = at(0);
      const g = here.get("g")!.data;
      const y = here.get("y")!.data;
      let analytic = 0;
      let scale = 0;
      t.forEach((ti, i) => ((analytic += g[i]! * ti), (scale += Math.abs(g[i]! * ti))));
      ct.forEach((ci, i) => (scale += Math.abs(ci * y[i]!)));
      const numeric = (at(EPS).get("f")!.data[0]! - at(-EPS).get("f")!.data[0]!) / (2 * EPS);
      expect(Math.abs(analytic - numeric), `seed ${seed}: ${analytic} vs ${numeric}`).toBeLessThanOrEqual(1e-7 * scale);
    }
  });
});

/** An input with NaNs: along axis 1, x[0] is [[0, NaN, 2, 3], [4, 0, 1, 2], [NaN, 4, 0, 1]] and x[1] [[2, 3, 4, NaN], [1, 2, 3, 4], [0, 1, NaN, 3]]. */
const WITH_NAN = { dtype: "f32" as const, shape: [2, 3, 4], data: Float64Array.from({ length: 24 }, (_, i) => (i % 7 === 1 ? NaN : i % 5)) };

test("NaN: relu and leaky_relu pass it, min and max propagate it, argmax takes the first NaN (as numpy)", () => {
  const ref = new ReferenceSession(program, { precision: "f64", seed: 1 });
  const run = (entry: string) => Array.from(ref.run(entry, new Map([["x", WITH_NAN]])).get("result")!.data);
  expect(run("relu_").filter(Number.isNaN)).toHaveLength(4);
  expect(run("leaky_relu_").filter(Number.isNaN)).toHaveLength(4);
  expect(run("min_axis")).toEqual([NaN, NaN, 0, 1, 0, 1, NaN, NaN]);
  expect(run("argmax_")).toEqual([2, 0, 0, 0, 0, 0, 2, 0]);
});

test("gather: an index outside [0, n) gives zeros", () => {
  const ref = new ReferenceSession(program, { precision: "f64", seed: 1 });
  const inputs = new Map<string, Tensor>([
    ["x", { dtype: "f32", shape: [5, 3], data: Float64Array.from({ length: 15 }, (_, i) => i + 1) }],
    ["indices", { dtype: "i32", shape: [2, 3], data: Float64Array.of(-1, 4, 5, 0, 2147483647, -2147483648) }],
  ]);
  const got = ref.run("gather_rows", inputs).get("result")!.data;
  expect(Array.from(got)).toEqual([0, 0, 0, 13, 14, 15, 0, 0, 0, 1, 2, 3, ...Array(6).fill(0)]);
});

// ---------------------------------------------------------------------------------------------------------
// The targets: every entry and a train step, against the reference session in f32.

/** Inputs of the train step: `fit`'s x and labels. */
const FIT = new Map([
  ["x", { dtype: "f32" as const, shape: [2, 3, 4], data: Float64Array.from(uniform(-2, 2, 0.05)(24, mulberry32(9))) }],
  ["labels", { dtype: "i32" as const, shape: [2], data: Float64Array.of(3, 1) }],
]);

interface Target {
  readonly name: string;
  open(seed: number): Promise<Session>;
  /** Whether NaN inputs are checked too: WGSL lets an implementation assume there are none. */
  readonly nan: boolean;
}

async function againstReference(target: Target): Promise<void> {
  const session = await target.open(7);
  const ref = new ReferenceSession(program, { precision: "f32", seed: 7 });
  // f32 on both sides; exp (in gelu's sigmoid) and sums in another order: a few ulp
  const bound = (w: number) => 1e-6 * Math.max(1, Math.abs(w));
  try {
    for (const c of CASES) {
      const given = inputsOf(c, 11);
      for (const inputs of [given, ...(target.nan && c.x === X ? [new Map(given).set("x", WITH_NAN)] : [])]) {
        const got = await session.run(c.entry, inputs);
        near(got.get("result")!.data, ref.run(c.entry, inputs).get("result")!.data, bound, c.entry);
      }
    }
    const loss = await session.trainStep("fit", FIT);
    const want = ref.trainStep("fit", FIT);
    expect(Math.abs(loss.get("loss")! - want.get("loss")!)).toBeLessThanOrEqual(1e-5 * Math.abs(want.get("loss")!));
    const w = (await session.exportState()).tensors.get("param:probe.w")!.data;
    near(w, ref.params.get("probe.w")!.data, bound, "probe.w after a step");
  } finally {
    session.dispose();
  }
}

const td = await testDevice();
afterAll(() => td.gpu?.device.destroy());
const TARGETS: readonly Target[] = [
  { name: "the CPU", open: (seed) => openCpuSession(program, { seed }), nan: true },
  { name: "emulated CUDA", open: (seed) => openCudaSession(program, { seed, flavour: "emulated" }), nan: true },
  ...(td.gpu ? [{ name: "WebGPU", open: (seed: number) => sessionFromProgram((td.gpu as WebGpu).device, program, { seed }), nan: false }] : []),
];

test.each(TARGETS.map((t) => [t.name, t] as const))("%s matches the interpreter", (_, target) => againstReference(target), 300_000);
