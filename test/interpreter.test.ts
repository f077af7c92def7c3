// The reference interpreter (runtime/interpreter.ts), op by op, against computations written independently
// here: closed forms, or naive loops over multi-indices (no strides, no odometers). The convolution and
// pooling gradients are checked as exact adjoints through inner products. Graphs are built with GraphBuilder.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { type DType, GraphBuilder, type Op, windowOut } from "../compiler/ir.js";
import { evaluate, interpret, roundToF16 } from "../runtime/interpreter.js";
import { randomNormal, randomUniform } from "../runtime/random.js";
import { type Precision, type Tensor, tensorOf } from "../runtime/tensor.js";
import { roundBf16, roundTf32 } from "../compiler/scalar.js";
import { BF16_CASES, bf16Oracle } from "./support/bf16.js";
import { mulberry32 } from "./support/prng.js";
import { sameTf32, TF32_CASES } from "./support/tf32.js";

// ------------------------------------------------------------------------------------------ helpers

/** A small seeded generator for tensor contents (fast-check picks the seed and the shapes). */
function values(n: number, seed: number, lo = -2, hi = 2): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out.push(lo + (hi - lo) * u);
  }
  return out;
}

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function rand(shape: readonly number[], seed: number, lo = -2, hi = 2, dtype: DType = "f32"): Tensor {
  return tensorOf(dtype, shape, values(count(shape), seed, lo, hi));
}

/** All multi-indices of a shape, in row-major order. */
function indices(shape: readonly number[]): number[][] {
  let out: number[][] = [[]];
  for (const d of shape) {
    const next: number[][] = [];
    for (const prefix of out) for (let i = 0; i < d; i++) next.push([...prefix, i]);
    out = next;
  }
  return out;
}

/** The flat row-major position of a multi-index (Horner's rule, no stride table). */
function flat(idx: readonly number[], shape: readonly number[]): number {
  let p = 0;
  for (let i = 0; i < shape.length; i++) p = p * shape[i]! + idx[i]!;
  return p;
}

function at(t: Tensor, idx: readonly number[]): number {
  return t.data[flat(idx, t.shape)]!;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** Runs one op on input tensors (named x0, x1, ...) and returns its value. */
function apply(op: Op, inputs: readonly Tensor[], shape?: readonly number[], dtype?: DType, precision: Precision = "f64"): Tensor {
  const b = new GraphBuilder();
  const ids = inputs.map((x, i) => b.add({ kind: "input", name: `x${i}` }, [], x.shape, x.dtype));
  const y = b.add(op, ids, shape, dtype);
  const env = { inputs: new Map(inputs.map((x, i) => [`x${i}`, x] as const)) };
  return interpret(b.build([{ name: "y", node: y }]), env, { precision, seed: 7, step: 3 }).get("y")!;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e)) expect(a).toBeNaN();
    else if (!Number.isFinite(e)) expect(a).toBe(e);
    else if (Math.abs(a - e) > rel * Math.max(1, Math.abs(e))) expect.fail(`element ${i}: ${a} is not within ${rel} of ${e}`);
  }
}

const seedArb = fc.integer({ min: 0, max: 0x7fffffff });
const shapeArb = (maxRank = 4, minRank = 1, maxDim = 4) => fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: minRank, maxLength: maxRank });
const RUNS = { numRuns: 60, seed: 20260101 };

// ------------------------------------------------------------------------------------------ sources

describe("sources", () => {
  test("input and param look-ups", () => {
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "x" }, [], [2, 3]);
    const w = b.add({ kind: "param", name: "layer.w" }, [], [2, 3]);
    const y = b.add({ kind: "binary", fn: "add" }, [x, w]);
    const g = b.build([{ name: "y", node: y }]);
    const xt = tensorOf("f32", [2, 3], [1, 2, 3, 4, 5, 6]);
    const wt = tensorOf("f32", [2, 3], [10, 20, 30, 40, 50, 60]);
    const out = interpret(g, { inputs: new Map([["x", xt]]), params: new Map([["layer.w", wt]]) }, { precision: "f64", seed: 0, step: 0 });
    expect([...out.keys()]).toEqual(["y"]);
    expect(out.get("y")!.shape).toEqual([2, 3]);
    expect([...out.get("y")!.data]).toEqual([11, 22, 33, 44, 55, 66]);
  });

  test("missing inputs and params, wrong shapes and dtypes are named in the error", () => {
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "images" }, [], [2, 3]);
    const w = b.add({ kind: "param", name: "enc.w" }, [], [3]);
    const g = b.build([
      { name: "x", node: x },
      { name: "w", node: w },
    ]);
    const opts = { precision: "f64", seed: 0, step: 0 } as const;
    const good = tensorOf("f32", [2, 3], [1, 2, 3, 4, 5, 6]);
    const wt = tensorOf("f32", [3], [1, 2, 3]);
    expect(() => interpret(g, { params: new Map([["enc.w", wt]]) }, opts)).toThrow(/missing input 'images' \(expected f32\[2, 3\]\)/);
    expect(() => interpret(g, { inputs: new Map([["images", good]]) }, opts)).toThrow(/missing param 'enc.w' \(expected f32\[3\]\)/);
    expect(() => interpret(g, { inputs: new Map([["images", tensorOf("f32", [3, 2], [1, 2, 3, 4, 5, 6])]]), params: new Map([["enc.w", wt]]) }, opts)).toThrow(
      /input 'images': expected f32\[2, 3\], got f32\[3, 2\]/,
    );
    expect(() => interpret(g, { inputs: new Map([["images", good]]), params: new Map([["enc.w", tensorOf("i32", [3], [1, 2, 3])]]) }, opts)).toThrow(
      /param 'enc.w': expected f32\[3\], got i32\[3\]/,
    );
    const broken: Tensor = { dtype: "f32", shape: [2, 3], data: new Float64Array(5) };
    expect(() => interpret(g, { inputs: new Map([["images", broken]]), params: new Map([["enc.w", wt]]) }, opts)).toThrow(/needs 6 values/);
  });

  test("interpret evaluates only what the outputs need; evaluate evaluates every node", () => {
    const b = new GraphBuilder();
    const c = b.add({ kind: "constant", value: 2 }, [], [3]);
    const unused = b.add({ kind: "input", name: "unused" }, [], [3]);
    const y = b.add({ kind: "unary", fn: "exp" }, [c]);
    b.add({ kind: "binary", fn: "mul" }, [unused, y]);
    const g = b.build([{ name: "y", node: y }]);
    const opts = { precision: "f64", seed: 0, step: 0 } as const;
    expect([...interpret(g, {}, opts).get("y")!.data]).toEqual([Math.exp(2), Math.exp(2), Math.exp(2)]);
    expect(() => evaluate(g, {}, opts)).toThrow(/missing input 'unused'/);
    const all = evaluate(g, { inputs: new Map([["unused", tensorOf("f32", [3], [1, 2, 3])]]) }, opts);
    expect(all.length).toBe(4);
    expect([...all[3]!.data]).toEqual([Math.exp(2), 2 * Math.exp(2), 3 * Math.exp(2)]);
    expect(all[1]!.shape).toEqual([3]);
  });

  test("an output that is also an intermediate keeps its value", () => {
    const b = new GraphBuilder();
    const c = b.add({ kind: "iota" }, [], [4]);
    const d = b.add({ kind: "unary", fn: "neg" }, [c]);
    const g = b.build([
      { name: "d", node: d },
      { name: "c", node: c },
    ]);
    const out = interpret(g, {}, { precision: "f32", seed: 0, step: 0 });
    expect([...out.get("c")!.data]).toEqual([0, 1, 2, 3]);
    expect([...out.get("d")!.data]).toEqual([-0, -1, -2, -3]);
  });

  test("constant and iota", () => {
    expect([...apply({ kind: "constant", value: 0.1 }, [], [2, 2]).data]).toEqual([0.1, 0.1, 0.1, 0.1]);
    expect([...apply({ kind: "constant", value: 0.1 }, [], [2], "f32", "f32").data]).toEqual([Math.fround(0.1), Math.fround(0.1)]);
    expect([...apply({ kind: "constant", value: -2.7 }, [], [2], "i32").data]).toEqual([-2, -2]);
    expect([...apply({ kind: "iota" }, [], [5]).data]).toEqual([0, 1, 2, 3, 4]);
    expect([...apply({ kind: "iota" }, [], [1], "i32").data]).toEqual([0]);
  });

  test("random draws element i of stream `key` at (seed, step)", () => {
    const u = apply({ kind: "random", dist: "uniform", key: 4 }, [], [3, 5]);
    expect([...u.data]).toEqual([...randomUniform(7, 3, 4, 15)]);
    const z = apply({ kind: "random", dist: "normal", key: 9 }, [], [2, 2, 2]);
    expect([...z.data]).toEqual([...randomNormal(7, 3, 9, 8)]);
    const z32 = apply({ kind: "random", dist: "normal", key: 9 }, [], [2, 2, 2], "f32", "f32");
    expect(z32.data).toBeInstanceOf(Float32Array);
    expect([...z32.data]).toEqual([...randomNormal(7, 3, 9, 8)].map(Math.fround));
    // Another step gives other numbers.
    const b = new GraphBuilder();
    const r = b.add({ kind: "random", dist: "uniform", key: 4 }, [], [15]);
    const g = b.build([{ name: "r", node: r }]);
    const at4 = interpret(g, {}, { precision: "f64", seed: 7, step: 4 }).get("r")!;
    expect([...at4.data]).toEqual([...randomUniform(7, 4, 4, 15)]);
    expect([...at4.data]).not.toEqual([...u.data]);
  });
});

// ------------------------------------------------------------------------------------------ element-wise

describe("element-wise", () => {
  const naiveSigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const naiveSoftplus = (x: number) => Math.log(1 + Math.exp(x));
  const UNARY_CASES: [string, (x: number) => number, number, number][] = [
    ["neg", (x) => -x, -5, 5],
    ["exp", (x) => Math.E ** x, -5, 5],
    ["log", (x) => Math.log(x), 0.01, 10],
    ["sqrt", (x) => x ** 0.5, 0, 10],
    ["rsqrt", (x) => x ** -0.5, 0.01, 10],
    ["sin", Math.sin, -7, 7],
    ["cos", Math.cos, -7, 7],
    ["tanh", (x) => (Math.exp(2 * x) - 1) / (Math.exp(2 * x) + 1), -5, 5],
    ["sigmoid", naiveSigmoid, -20, 20],
    ["softplus", naiveSoftplus, -20, 20],
    ["abs", (x) => (x < 0 ? -x : x), -5, 5],
    ["floor", (x) => x - (((x % 1) + 1) % 1), -5, 5],
  ];

  test.each(UNARY_CASES)("%s against its closed form", (fn, f, lo, hi) => {
    fc.assert(
      fc.property(shapeArb(), seedArb, (shape, seed) => {
        const x = rand(shape, seed, lo, hi);
        const y = apply({ kind: "unary", fn } as Op, [x]);
        expect(y.shape).toEqual(shape);
        expectClose(y.data, [...x.data].map(f), 1e-13);
      }),
      { numRuns: 20, seed: 1 },
    );
  });

  test("sigmoid and softplus are stable at the extremes", () => {
    const x = tensorOf("f32", [6], [-1000, -40, 0, 40, 1000, -745.2]);
    const s = apply({ kind: "unary", fn: "sigmoid" }, [x]);
    expect([...s.data].every(Number.isFinite)).toBe(true);
    expect(s.data[0]).toBe(0);
    expect(s.data[1]).toBeCloseTo(Math.exp(-40), 30);
    expect(s.data[1]! / Math.exp(-40)).toBeCloseTo(1, 12);
    expect(s.data[2]).toBe(0.5);
    expect(s.data[4]).toBe(1);
    const p = apply({ kind: "unary", fn: "softplus" }, [x]);
    expect(p.data[0]).toBe(0);
    expect(p.data[1]! / Math.exp(-40)).toBeCloseTo(1, 12); // log(1 + e^-40) ≈ e^-40, lost by the naive form
    expect(p.data[2]).toBeCloseTo(Math.LN2, 15);
    expect(p.data[3]).toBeCloseTo(40, 12);
    expect(p.data[4]).toBe(1000);
  });

  const BINARY_CASES: [string, (a: number, b: number) => number][] = [
    ["add", (a, b) => a + b],
    ["sub", (a, b) => a - b],
    ["mul", (a, b) => a * b],
    ["div", (a, b) => a / b],
    ["pow", (a, b) => Math.exp(b * Math.log(a))],
    ["maximum", (a, b) => (a > b ? a : b)],
    ["minimum", (a, b) => (a < b ? a : b)],
  ];
  test.each(BINARY_CASES)("%s against its closed form", (fn, f) => {
    fc.assert(
      fc.property(shapeArb(), seedArb, (shape, seed) => {
        const a = rand(shape, seed, 0.1, 3);
        const b = rand(shape, seed + 1, -3, 3);
        const y = apply({ kind: "binary", fn } as Op, [a, b]);
        expectClose(
          y.data,
          [...a.data].map((x, i) => f(x, b.data[i]!)),
          1e-13,
        );
      }),
      { numRuns: 20, seed: 2 },
    );
  });

  test("maximum and minimum propagate NaN", () => {
    const a = tensorOf("f32", [2], [NaN, 1]);
    const b = tensorOf("f32", [2], [0, NaN]);
    expect([...apply({ kind: "binary", fn: "maximum" }, [a, b]).data]).toEqual([NaN, NaN]);
    expect([...apply({ kind: "binary", fn: "minimum" }, [a, b]).data]).toEqual([NaN, NaN]);
  });

  test("i32 arithmetic wraps, divides toward zero, x / 0 = x", () => {
    const i32 = (xs: number[]) => tensorOf("i32", [xs.length], xs);
    const a = i32([2147483647, 65536, -7, 7, 5, -2147483648]);
    const b = i32([1, 65536, 2, -2, 0, -1]);
    expect([...apply({ kind: "binary", fn: "add" }, [a, b]).data]).toEqual([-2147483648, 131072, -5, 5, 5, 2147483647]);
    expect([...apply({ kind: "binary", fn: "mul" }, [a, b]).data]).toEqual([2147483647, 0, -14, -14, 0, -2147483648]);
    expect([...apply({ kind: "binary", fn: "div" }, [a, b]).data]).toEqual([2147483647, 1, -3, -3, 5, -2147483648]);
    expect([...apply({ kind: "unary", fn: "neg" }, [a]).data]).toEqual([-2147483647, -65536, 7, -7, -5, -2147483648]);
    const r = apply({ kind: "binary", fn: "sub" }, [a, b], undefined, undefined, "f32");
    expect(r.dtype).toBe("i32");
    expect([...r.data]).toEqual([2147483646, 0, -9, 9, 5, -2147483647]); // exact even in f32 mode
  });

  test.each(["lt", "le", "gt", "ge", "eq", "ne"] as const)("compare %s gives 0/1 bools", (fn) => {
    const js = { lt: (a: number, b: number) => a < b, le: (a: number, b: number) => a <= b, gt: (a: number, b: number) => a > b, ge: (a: number, b: number) => a >= b, eq: (a: number, b: number) => a === b, ne: (a: number, b: number) => a !== b }[fn];
    fc.assert(
      fc.property(shapeArb(), seedArb, (shape, seed) => {
        // Coarse values so that ties occur.
        const a = tensorOf("f32", shape, values(count(shape), seed, 0, 3).map(Math.floor));
        const b = tensorOf("f32", shape, values(count(shape), seed + 9, 0, 3).map(Math.floor));
        const y = apply({ kind: "compare", fn }, [a, b]);
        expect(y.dtype).toBe("bool");
        expect([...y.data]).toEqual([...a.data].map((x, i) => (js(x, b.data[i]!) ? 1 : 0)));
      }),
      { numRuns: 20, seed: 3 },
    );
    const nan = tensorOf("f32", [1], [NaN]);
    expect(apply({ kind: "compare", fn }, [nan, nan]).data[0]).toBe(fn === "ne" ? 1 : 0);
  });

  test("select picks a where cond, else b", () => {
    fc.assert(
      fc.property(shapeArb(), seedArb, (shape, seed) => {
        const a = rand(shape, seed);
        const b = rand(shape, seed + 1);
        const c = rand(shape, seed + 2);
        const bb = new GraphBuilder();
        const [ia, ib, ic] = ["a", "b", "c"].map((name) => bb.add({ kind: "input", name }, [], shape)) as [number, number, number];
        const cond = bb.add({ kind: "compare", fn: "gt" }, [ic, ia]);
        const y = bb.add({ kind: "select" }, [cond, ia, ib]);
        const out = interpret(bb.build([{ name: "y", node: y }]), { inputs: new Map([["a", a], ["b", b], ["c", c]]) }, { precision: "f64", seed: 0, step: 0 }).get("y")!;
        expect([...out.data]).toEqual([...a.data].map((x, i) => (c.data[i]! > x ? x : b.data[i]!)));
      }),
      { numRuns: 30, seed: 4 },
    );
  });
});

// ------------------------------------------------------------------------------------------ reductions, matmul

describe("reduce and matmul", () => {
  test("reduce sum and max over any set of axes, keeping them as size 1", () => {
    fc.assert(
      fc.property(
        shapeArb(4, 1).chain((shape) => fc.tuple(fc.constant(shape), fc.subarray(shape.map((_, i) => i)), seedArb, fc.constantFrom("sum" as const, "max" as const))),
        ([shape, axes, seed, fn]) => {
          const x = rand(shape, seed);
          const y = apply({ kind: "reduce", fn, axes }, [x]);
          const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
          expect(y.shape).toEqual(outShape);
          const expected = new Array<number>(count(outShape)).fill(fn === "sum" ? 0 : -Infinity);
          for (const idx of indices(shape)) {
            const o = flat(
              idx.map((v, i) => (axes.includes(i) ? 0 : v)),
              outShape,
            );
            expected[o] = fn === "sum" ? expected[o]! + at(x, idx) : Math.max(expected[o]!, at(x, idx));
          }
          expectClose(y.data, expected, 1e-12);
        },
      ),
      RUNS,
    );
  });

  test("reduce max propagates NaN; an empty axis list copies", () => {
    const x = tensorOf("f32", [2, 2], [1, NaN, 3, 4]);
    expect([...apply({ kind: "reduce", fn: "max", axes: [1] }, [x]).data]).toEqual([NaN, 4]);
    expect([...apply({ kind: "reduce", fn: "sum", axes: [] }, [x]).data]).toEqual([1, NaN, 3, 4]);
  });

  test("batched matmul against the definition", () => {
    fc.assert(
      fc.property(shapeArb(2, 0, 3), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), seedArb, (batch, m, k, n, seed) => {
        const a = rand([...batch, m, k], seed);
        const b = rand([...batch, k, n], seed + 1);
        const y = apply({ kind: "matmul" }, [a, b]);
        expect(y.shape).toEqual([...batch, m, n]);
        for (const bi of indices(batch))
          for (let i = 0; i < m; i++)
            for (let j = 0; j < n; j++) {
              let s = 0;
              for (let l = 0; l < k; l++) s += at(a, [...bi, i, l]) * at(b, [...bi, l, j]);
              expect(Math.abs(at(y, [...bi, i, j]) - s)).toBeLessThan(1e-12);
            }
      }),
      RUNS,
    );
  });
});

// ------------------------------------------------------------------------------------------ convolution, pooling

interface ConvCase {
  n: number;
  groups: number;
  cinG: number;
  coutG: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  stride: number;
  padding: number;
  seed: number;
}

const convArb: fc.Arbitrary<ConvCase> = fc
  .record({
    n: fc.integer({ min: 1, max: 2 }),
    groups: fc.integer({ min: 1, max: 2 }),
    cinG: fc.integer({ min: 1, max: 3 }),
    coutG: fc.integer({ min: 1, max: 3 }),
    h: fc.integer({ min: 1, max: 7 }),
    w: fc.integer({ min: 1, max: 7 }),
    kh: fc.integer({ min: 1, max: 3 }),
    kw: fc.integer({ min: 1, max: 3 }),
    stride: fc.integer({ min: 1, max: 3 }),
    padding: fc.integer({ min: 0, max: 2 }),
    seed: seedArb,
  })
  .filter((c) => c.h + 2 * c.padding >= c.kh && c.w + 2 * c.padding >= c.kw);

function convShapes(c: ConvCase) {
  const x = [c.n, c.cinG * c.groups, c.h, c.w];
  const w = [c.coutG * c.groups, c.cinG, c.kh, c.kw];
  const y = [c.n, c.coutG * c.groups, windowOut(c.h, c.kh, c.stride, c.padding), windowOut(c.w, c.kw, c.stride, c.padding)];
  return { x, w, y };
}

describe("conv2d", () => {
  const conv = (c: ConvCase) => ({ stride: c.stride, padding: c.padding, groups: c.groups });

  test("conv2d against the definition (zero padding, strides, groups)", () => {
    fc.assert(
      fc.property(convArb, (c) => {
        const s = convShapes(c);
        const x = rand(s.x, c.seed);
        const w = rand(s.w, c.seed + 1);
        const y = apply({ kind: "conv2d", ...conv(c) }, [x, w]);
        expect(y.shape).toEqual(s.y);
        for (const [n, o, oh, ow] of indices(s.y) as [number, number, number, number][]) {
          const g = Math.floor(o / c.coutG);
          let sum = 0;
          for (let ci = 0; ci < c.cinG; ci++)
            for (let ky = 0; ky < c.kh; ky++)
              for (let kx = 0; kx < c.kw; kx++) {
                const ih = oh * c.stride + ky - c.padding;
                const iw = ow * c.stride + kx - c.padding;
                if (ih < 0 || iw < 0 || ih >= c.h || iw >= c.w) continue;
                sum += at(w, [o, ci, ky, kx]) * at(x, [n, g * c.cinG + ci, ih, iw]);
              }
          expect(Math.abs(at(y, [n, o, oh, ow]) - sum)).toBeLessThan(1e-12);
        }
      }),
      RUNS,
    );
  });

  test("a worked example: 3x3 image, 2x2 ones kernel, padding 1, stride 2", () => {
    const x = tensorOf("f32", [1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const w = tensorOf("f32", [1, 1, 2, 2], [1, 1, 1, 1]);
    const y = apply({ kind: "conv2d", stride: 2, padding: 1, groups: 1 }, [x, w]);
    expect(y.shape).toEqual([1, 1, 2, 2]);
    expect([...y.data]).toEqual([1, 2 + 3, 4 + 7, 5 + 6 + 8 + 9]);
  });

  test("conv2d_grad_input and conv2d_grad_weight are exact adjoints: ⟨conv(x, w), dy⟩ = ⟨x, gi(dy, w)⟩ = ⟨w, gw(x, dy)⟩", () => {
    fc.assert(
      fc.property(convArb, (c) => {
        const s = convShapes(c);
        const x = rand(s.x, c.seed);
        const w = rand(s.w, c.seed + 1);
        const dy = rand(s.y, c.seed + 2);
        const y = apply({ kind: "conv2d", ...conv(c) }, [x, w]);
        const gi = apply({ kind: "conv2d_grad_input", ...conv(c) }, [dy, w], s.x);
        const gw = apply({ kind: "conv2d_grad_weight", ...conv(c) }, [x, dy], s.w);
        expect(gi.shape).toEqual(s.x);
        expect(gw.shape).toEqual(s.w);
        const lhs = dot(y.data, dy.data);
        const scale = 1 + Math.abs(lhs);
        expect(Math.abs(dot(x.data, gi.data) - lhs) / scale).toBeLessThan(1e-12);
        expect(Math.abs(dot(w.data, gw.data) - lhs) / scale).toBeLessThan(1e-12);
      }),
      { numRuns: 150, seed: 5 },
    );
  });

  test("conv2d_grad_input leaves input pixels no window reads at zero", () => {
    // H = 6, kernel 3, stride 2, no padding: outputs read rows 0..4, so row 5 gets nothing.
    const dy = rand([1, 1, 2, 2], 3);
    const w = rand([1, 1, 3, 3], 4);
    const gi = apply({ kind: "conv2d_grad_input", stride: 2, padding: 0, groups: 1 }, [dy, w], [1, 1, 6, 6]);
    for (let i = 0; i < 6; i++) {
      expect(at(gi, [0, 0, 5, i])).toBe(0);
      expect(at(gi, [0, 0, i, 5])).toBe(0);
    }
  });
});

describe("pooling and upsampling", () => {
  const poolArb = fc
    .record({ lead: shapeArb(2, 0, 3), h: fc.integer({ min: 1, max: 8 }), w: fc.integer({ min: 1, max: 8 }), size: fc.integer({ min: 1, max: 3 }), stride: fc.integer({ min: 1, max: 3 }), seed: seedArb })
    .filter((c) => c.h >= c.size && c.w >= c.size);

  test("avg_pool against the definition", () => {
    fc.assert(
      fc.property(poolArb, (c) => {
        const x = rand([...c.lead, c.h, c.w], c.seed);
        const y = apply({ kind: "avg_pool", size: c.size, stride: c.stride }, [x]);
        for (const idx of indices(y.shape)) {
          const oh = idx[idx.length - 2]!;
          const ow = idx[idx.length - 1]!;
          let s = 0;
          for (let i = 0; i < c.size; i++) for (let j = 0; j < c.size; j++) s += at(x, [...idx.slice(0, -2), oh * c.stride + i, ow * c.stride + j]);
          expect(Math.abs(at(y, idx) - s / (c.size * c.size))).toBeLessThan(1e-13);
        }
      }),
      RUNS,
    );
  });

  test("avg_pool_grad is the exact adjoint of avg_pool", () => {
    fc.assert(
      fc.property(poolArb, (c) => {
        const xShape = [...c.lead, c.h, c.w];
        const x = rand(xShape, c.seed);
        const y = apply({ kind: "avg_pool", size: c.size, stride: c.stride }, [x]);
        const dy = rand(y.shape, c.seed + 1);
        const dx = apply({ kind: "avg_pool_grad", size: c.size, stride: c.stride }, [dy], xShape);
        expect(dx.shape).toEqual(xShape);
        const lhs = dot(y.data, dy.data);
        expect(Math.abs(dot(x.data, dx.data) - lhs)).toBeLessThan(1e-12 * (1 + Math.abs(lhs)));
      }),
      { numRuns: 100, seed: 6 },
    );
  });

  test("upsample repeats each pixel factor x factor times", () => {
    fc.assert(
      fc.property(shapeArb(4, 2, 3), fc.integer({ min: 1, max: 3 }), seedArb, (shape, f, seed) => {
        const x = rand(shape, seed);
        const y = apply({ kind: "upsample", factor: f }, [x]);
        const r = shape.length;
        expect(y.shape).toEqual([...shape.slice(0, -2), shape[r - 2]! * f, shape[r - 1]! * f]);
        for (const idx of indices(y.shape)) {
          const src = [...idx.slice(0, -2), Math.floor(idx[r - 2]! / f), Math.floor(idx[r - 1]! / f)];
          expect(at(y, idx)).toBe(at(x, src));
        }
      }),
      RUNS,
    );
  });
});

// ------------------------------------------------------------------------------------------ data movement

describe("data movement", () => {
  test("reshape keeps the row-major data", () => {
    const x = rand([2, 3, 4], 1);
    const y = apply({ kind: "reshape" }, [x], [4, 1, 6]);
    expect(y.shape).toEqual([4, 1, 6]);
    expect([...y.data]).toEqual([...x.data]);
  });

  test("transpose moves axis perm[i] to position i", () => {
    fc.assert(
      fc.property(
        shapeArb(5, 1).chain((shape) => fc.tuple(fc.constant(shape), fc.shuffledSubarray(shape.map((_, i) => i), { minLength: shape.length, maxLength: shape.length }), seedArb)),
        ([shape, perm, seed]) => {
          const x = rand(shape, seed);
          const y = apply({ kind: "transpose", perm }, [x]);
          expect(y.shape).toEqual(perm.map((p) => shape[p]));
          for (const j of indices(y.shape)) {
            const i = new Array<number>(shape.length);
            perm.forEach((p, k) => (i[p] = j[k]!));
            expect(at(y, j)).toBe(at(x, i));
          }
        },
      ),
      RUNS,
    );
  });

  test("broadcast repeats size-1 dims", () => {
    fc.assert(
      fc.property(
        shapeArb(4, 1).chain((shape) => fc.tuple(fc.constant(shape), fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }), seedArb)),
        ([shape, ones, seed]) => {
          const inShape = shape.map((d, i) => (ones[i] ? 1 : d));
          const x = rand(inShape, seed);
          const y = apply({ kind: "broadcast" }, [x], shape);
          for (const j of indices(shape))
            expect(at(y, j)).toBe(
              at(
                x,
                j.map((v, i) => (inShape[i] === 1 ? 0 : v)),
              ),
            );
        },
      ),
      RUNS,
    );
  });

  test("broadcast of a rank-0 tensor", () => {
    const x = tensorOf("f32", [], [4.5]);
    expect([...apply({ kind: "broadcast" }, [x], []).data]).toEqual([4.5]);
    expect([...apply({ kind: "reshape" }, [x], [1, 1]).data]).toEqual([4.5]);
    expect([...apply({ kind: "reduce", fn: "sum", axes: [] }, [x]).data]).toEqual([4.5]);
  });

  test("slice takes [start, end) of one axis", () => {
    fc.assert(
      fc.property(
        shapeArb(4, 1, 5).chain((shape) =>
          fc.integer({ min: 0, max: shape.length - 1 }).chain((axis) =>
            fc
              .tuple(fc.integer({ min: 0, max: shape[axis]! - 1 }), fc.integer({ min: 1, max: shape[axis]! }))
              .filter(([s, e]) => s < e)
              .map(([start, end]) => ({ shape, axis, start, end })),
          ),
        ),
        seedArb,
        ({ shape, axis, start, end }, seed) => {
          const x = rand(shape, seed);
          const y = apply({ kind: "slice", axis, start, end }, [x]);
          for (const j of indices(y.shape)) expect(at(y, j)).toBe(at(x, j.map((v, i) => (i === axis ? v + start : v))));
        },
      ),
      RUNS,
    );
  });

  test("concat joins along an axis", () => {
    fc.assert(
      fc.property(
        shapeArb(4, 1).chain((shape) => fc.tuple(fc.constant(shape), fc.integer({ min: 0, max: shape.length - 1 }), fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }), seedArb)),
        ([shape, axis, sizes, seed]) => {
          const parts = sizes.map((d, k) => rand(shape.map((x, i) => (i === axis ? d : x)), seed + k));
          const y = apply({ kind: "concat", axis }, parts);
          for (const j of indices(y.shape)) {
            let pos = j[axis]!;
            let k = 0;
            while (pos >= sizes[k]!) pos -= sizes[k++]!;
            expect(at(y, j)).toBe(at(parts[k]!, j.map((v, i) => (i === axis ? pos : v))));
          }
        },
      ),
      RUNS,
    );
  });

  test("pad with a constant value", () => {
    fc.assert(
      fc.property(
        shapeArb(4, 1).chain((shape) => fc.tuple(fc.constant(shape), fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })), { minLength: shape.length, maxLength: shape.length }), seedArb)),
        fc.double({ min: -3, max: 3, noNaN: true }),
        ([shape, widths, seed], value) => {
          const x = rand(shape, seed);
          const y = apply({ kind: "pad", widths, value }, [x]);
          expect(y.shape).toEqual(shape.map((d, i) => d + widths[i]![0] + widths[i]![1]));
          for (const j of indices(y.shape)) {
            const src = j.map((v, i) => v - widths[i]![0]);
            const inside = src.every((v, i) => v >= 0 && v < shape[i]!);
            expect(at(y, j)).toBe(inside ? at(x, src) : value);
          }
        },
      ),
      RUNS,
    );
  });

  test("a negative pad width crops", () => {
    const x = tensorOf("f32", [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
    const y = apply({ kind: "pad", widths: [[0, -1], [-1, 2]], value: 9 }, [x]);
    expect(y.shape).toEqual([1, 5]);
    expect([...y.data]).toEqual([2, 3, 4, 9, 9]);
  });

  test("stop_gradient is the identity", () => {
    const x = rand([3, 1, 2], 8);
    expect([...apply({ kind: "stop_gradient" }, [x]).data]).toEqual([...x.data]);
  });
});

// ------------------------------------------------------------------------------------------ casts, precision

describe("casts and precision", () => {
  test("cast to i32 truncates toward zero and saturates; to bool is x != 0; from bool/i32 to f32 is the value", () => {
    const x = tensorOf("f32", [8], [2.7, -2.7, 0.5, -0.5, 3e9, -3e9, NaN, 0]);
    expect([...apply({ kind: "cast" }, [x], undefined, "i32").data]).toEqual([2, -2, 0, -0, 2147483647, -2147483648, 0, 0].map((v) => v | 0));
    expect([...apply({ kind: "cast" }, [x], undefined, "bool").data]).toEqual([1, 1, 1, 1, 1, 1, 1, 0]);
    const i = tensorOf("i32", [3], [-4, 0, 16777217]);
    const f = apply({ kind: "cast" }, [i], undefined, "f32", "f32");
    expect([...f.data]).toEqual([-4, 0, 16777216]); // 2^24 + 1 is not a float32
  });

  test("f16: roundToF16 rounds to nearest even with float16's range and subnormals", () => {
    const cases: [number, number][] = [
      [1, 1],
      [1 + 2 ** -11, 1], // a tie, to the even 1
      [1 + 3 * 2 ** -11, 1 + 2 ** -9], // a tie, to the even 1 + 2^-9
      [1 + 2 ** -11 + 2 ** -30, 1 + 2 ** -10],
      [0.1, 0.0999755859375],
      [1 / 3, 0.333251953125],
      [65504, 65504],
      [65519.99, 65504],
      [65520, Infinity],
      [-1e6, -Infinity],
      [2 ** -24, 2 ** -24],
      [2 ** -25, 0], // a tie between 0 and the smallest subnormal, to the even 0
      [1.5 * 2 ** -24, 2 ** -23], // a tie, to the even 2 ulp
      [2 ** -14 * (1 - 2 ** -11), 2 ** -14], // halfway between the largest subnormal (odd) and 2^-14: to 2^-14
      [2 ** -14 - 2 ** -24, 2 ** -14 - 2 ** -24], // the largest subnormal itself
      [-0, -0],
      [2 ** 15 - 1, 32768], // the ulp in [2^14, 2^15) is 16 and 32767 / 16 = 2047.94
      [2 ** 14 + 24, 2 ** 14 + 32], // 1.5 ulp: a tie, to the even 2 ulp
      [2 ** 14 + 8, 2 ** 14], // 0.5 ulp: a tie, to the even 0 ulp
    ];
    for (const [x, y] of cases) expect(roundToF16(x)).toBe(y);
    const x = tensorOf("f32", [3], [0.1, 1 / 3, 70000]);
    expect([...apply({ kind: "cast" }, [x], undefined, "f16", "f32").data]).toEqual([0.0999755859375, 0.333251953125, Infinity]);
    expect([...apply({ kind: "cast" }, [x], undefined, "f16", "f64").data]).toEqual([0.1, 1 / 3, 70000]);
  });

  test("f32 mode: every float result is a float32, correctly rounded from float64", () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        // A small network: conv, bias, activation, pooling, matmul, reduction.
        const b = new GraphBuilder();
        const x = b.add({ kind: "input", name: "x" }, [], [2, 2, 6, 6]);
        const w = b.add({ kind: "param", name: "w" }, [], [4, 2, 3, 3]);
        const bias = b.add({ kind: "param", name: "b" }, [], [1, 4, 1, 1]);
        const c = b.add({ kind: "conv2d", stride: 1, padding: 1, groups: 1 }, [x, w]);
        const cb = b.add({ kind: "binary", fn: "add" }, [c, b.add({ kind: "broadcast" }, [bias], [2, 4, 6, 6])]);
        const act = b.add({ kind: "binary", fn: "mul" }, [cb, b.add({ kind: "unary", fn: "sigmoid" }, [cb])]);
        const p = b.add({ kind: "avg_pool", size: 2, stride: 2 }, [act]);
        const flatP = b.add({ kind: "reshape" }, [p], [2, 36]);
        const m = b.add({ kind: "param", name: "m" }, [], [36, 3]);
        const logits = b.add({ kind: "matmul" }, [flatP, m]);
        const lse = b.add({ kind: "unary", fn: "log" }, [b.add({ kind: "reduce", fn: "sum", axes: [1] }, [b.add({ kind: "unary", fn: "exp" }, [logits])])]);
        const noise = b.add({ kind: "random", dist: "normal", key: 1 }, [], [2, 1]);
        const out = b.add({ kind: "binary", fn: "add" }, [lse, noise]);
        const g = b.build([{ name: "out", node: out }]);
        const env = {
          inputs: new Map([["x", rand([2, 2, 6, 6], seed)]]),
          params: new Map([
            ["w", rand([4, 2, 3, 3], seed + 1, -0.5, 0.5)],
            ["b", rand([1, 4, 1, 1], seed + 2)],
            ["m", rand([36, 3], seed + 3, -0.5, 0.5)],
          ]),
        };
        const v32 = evaluate(g, env, { precision: "f32", seed: 1, step: 2 });
        const v64 = evaluate(g, env, { precision: "f64", seed: 1, step: 2 });
        for (let i = 0; i < g.nodes.length; i++) {
          expect(v32[i]!.data).toBeInstanceOf(Float32Array);
          expect(v64[i]!.data).toBeInstanceOf(Float64Array);
          expectClose(v32[i]!.data, v64[i]!.data, 1e-5);
        }
        // Element-wise results are the float32 rounding of the float64 result of the float32 inputs.
        const cbv = v32[cb]!.data;
        const actv = v32[act]!.data;
        for (let i = 0; i < cbv.length; i++) {
          const s = Math.fround(1 / (1 + Math.exp(-cbv[i]!)));
          expect(actv[i]).toBe(Math.fround(cbv[i]! * s));
        }
      }),
      { numRuns: 10, seed: 7 },
    );
  });

  test.each([
    ["round_tf32", "to TF32 as cvt.rna.tf32.f32 does", roundTf32, TF32_CASES],
    ["round_bf16", "to bfloat16 as cvt.rn.bf16.f32 does (ties to even)", roundBf16, BF16_CASES],
  ] as const)("%s rounds %s, in both precisions (hand-derived cases: ties, subnormals, overflow, NaN)", (fn, _what, round, cases) => {
    for (const [x, want] of cases) expect(sameTf32(round(x), want), `${fn}(${x}) = ${round(x)}, not ${want}`).toBe(true);
    const x = tensorOf("f32", [cases.length], cases.map(([v]) => v));
    for (const precision of ["f32", "f64"] as const) {
      const y = apply({ kind: "unary", fn }, [x], undefined, undefined, precision);
      cases.forEach(([v, want], i) => expect(sameTf32(y.data[i]!, want), `${precision}: ${fn}(${v}) = ${y.data[i]}, not ${want}`).toBe(true));
    }
    // It rounds f32 only.
    expect(() => apply({ kind: "unary", fn }, [tensorOf("i32", [1], [3])])).toThrow(new RegExp(`${fn} of a i32 tensor`));
  });

  test("round_bf16 agrees with a float64 oracle (nearest multiple of the binade's ulp, ties to even) on random f32 bit patterns and on values near ties", () => {
    const rng = mulberry32(41);
    const f32 = new Float32Array(1);
    const bits = new Uint32Array(f32.buffer);
    for (let i = 0; i < 200_000; i++) {
      // Every exponent (subnormals, the top binade, NaN and Inf too), and one in four a tie or a neighbour of one.
      bits[0] = Math.floor(rng() * 2 ** 32);
      if (i % 4 === 0) bits[0] = ((bits[0]! & 0xffff0000) | 0x8000) + Math.floor(rng() * 3) - 1;
      const f = f32[0]!;
      const want = bf16Oracle(f);
      expect(sameTf32(roundBf16(f), want), `0x${bits[0]!.toString(16)}: ${roundBf16(f)}, not ${want}`).toBe(true);
    }
  });

  test.each([
    ["TF32", "tf32", roundTf32],
    ["bfloat16", "bf16", roundBf16],
  ] as const)("a product of two %s values is exact in float32 (why a %s Program's interpreter is exact up to summation order)", (_name, _precision, round) => {
    const xs = values(2000, 5, -1e3, 1e3).map(round);
    for (let i = 0; i + 1 < xs.length; i += 2) {
      const p = xs[i]! * xs[i + 1]!;
      expect(Math.fround(p)).toBe(p);
    }
  });

  test("f32 inputs given as float64 are rounded on the way in", () => {
    const x = tensorOf("f32", [2], [0.1, 1 / 3]);
    const y = apply({ kind: "stop_gradient" }, [x], undefined, undefined, "f32");
    expect([...y.data]).toEqual([Math.fround(0.1), Math.fround(1 / 3)]);
  });
});
