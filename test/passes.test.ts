// The graph-IR passes (compiler/passes/): each pass on hand-built graphs with exactly known results; a property
// test that random well-typed graphs keep their output values (compared with the f64 reference interpreter)
// and stay `verify`-clean under every pass and under `optimize`; and `optimize` on the ul_tiny program.
//
// The property tests are deterministic: a fixed seed (override with PASSES_SEED=n); a failure reports it.
import fc from "fast-check";
import { beforeAll, describe, expect, test } from "vitest";
import { GraphBuilder, IrError, isRounding, printGraph, shapeEquals, size, verify, type DType, type Graph, type Op, type OpKind, type RoundingFn } from "../compiler/ir.js";
import { lowerProgram, type Program } from "../compiler/lower.js";
import { cse } from "../compiler/passes/cse.js";
import { dce } from "../compiler/passes/dce.js";
import { fold } from "../compiler/passes/fold.js";
import { formatStats, optimize, PASSES, type PassStats } from "../compiler/passes/index.js";
import { simplify } from "../compiler/passes/simplify.js";
import { applyPrecision, CONTRACTIONS, ROUNDING_OF } from "../compiler/passes/precision.js";
import { rewrite } from "../compiler/passes/rewrite.js";
import { roundBf16, roundTf32 } from "../compiler/scalar.js";
import { evaluate, interpret, type InterpretEnv } from "../runtime/interpreter.js";
import { tensorOf, type Tensor } from "../runtime/tensor.js";
import { mulberry32 as prng } from "./support/prng.js";

const SEED = process.env.PASSES_SEED ? Number(process.env.PASSES_SEED) : 20251125;
const F64 = { precision: "f64", seed: 7, step: 3 } as const;

// ------------------------------------------------------------------------------------------ helpers

/** A graph in its text form, after dead-code elimination (rewriting passes leave replaced nodes' inputs behind). */
const text = (g: Graph) => printGraph(dce(g), "g");

/** How many nodes of each kind (unary/binary/compare by function) the graph has. */
function census(g: Graph): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of g.nodes) {
    const k = n.op.kind === "unary" || n.op.kind === "binary" || n.op.kind === "compare" ? n.op.fn : n.op.kind;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

function lines(...ls: string[]): string {
  return ["g {", ...ls.map((l) => `  ${l}`), "}"].join("\n");
}

/** A small builder shorthand for hand-built graphs. */
function builder() {
  const b = new GraphBuilder();
  const f = {
    b,
    input: (name: string, shape: number[], dtype: DType = "f32") => b.add({ kind: "input", name }, [], shape, dtype),
    param: (name: string, shape: number[]) => b.add({ kind: "param", name }, [], shape, "f32"),
    c: (value: number, shape: number[] = [], dtype: DType = "f32") => b.add({ kind: "constant", value }, [], shape, dtype),
    un: (fn: Extract<Op, { kind: "unary" }>["fn"], x: number) => b.add({ kind: "unary", fn }, [x]),
    bin: (fn: Extract<Op, { kind: "binary" }>["fn"], x: number, y: number) => b.add({ kind: "binary", fn }, [x, y]),
    /** Reshape (leading 1s) and broadcast, as the tracer writes a scalar operand. */
    bc: (x: number, shape: number[]) => {
      const r = b.add({ kind: "reshape" }, [x], shape.map(() => 1));
      return b.add({ kind: "broadcast" }, [r], shape);
    },
    add: (op: Op, inputs: number[], shape?: number[], dtype?: DType) => b.add(op, inputs, shape, dtype),
    build: (...outs: number[]) => b.build(outs.map((node, i) => ({ name: `out${i}`, node }))),
  };
  return f;
}

/** Two zeros are the same value here (see `sameValues`); NaN equals NaN. */
function sameNumber(a: number, b: number): boolean {
  return a === b || (a !== a && b !== b);
}

/**
 * Element-wise equality of two interpreter results, treating +0 and -0 as equal. The one rewrite that changes a
 * zero's sign is x + 0 -> x (and its relatives: a sum over size-1 axes, a 1×1 average pool), which keeps -0 where
 * IEEE gives +0; the random graphs never divide by, take rsqrt of, or raise to a negative power a value that
 * could be zero (see `guard`), which are the only ops that would turn the two zeros into different values.
 */
function sameValues(got: ReadonlyMap<string, Tensor>, want: ReadonlyMap<string, Tensor>): string | undefined {
  for (const [name, w] of want) {
    const g = got.get(name);
    if (!g) return `output ${name} is missing`;
    if (g.dtype !== w.dtype || !shapeEquals(g.shape, w.shape)) return `output ${name}: ${g.dtype}[${g.shape}] vs ${w.dtype}[${w.shape}]`;
    for (let i = 0; i < w.data.length; i++) if (!sameNumber(g.data[i]!, w.data[i]!)) return `output ${name}[${i}]: ${g.data[i]} vs ${w.data[i]}`;
  }
  if (got.size !== want.size) return `${got.size} outputs vs ${want.size}`;
  return undefined;
}

// ------------------------------------------------------------------------------------------ dce

describe("dce", () => {
  test("keeps what the outputs need, drops unused inputs and params, renumbers", () => {
    const f = builder();
    const x = f.input("x", [2, 3]);
    f.input("unused", [2, 3]);
    f.param("w.unused", [3]);
    const e = f.un("exp", x);
    f.un("neg", x); // dead
    const s = f.bin("add", e, e);
    f.bin("mul", s, s); // dead
    const g = dce(f.build(s, e));
    verify(g);
    expect(printGraph(g, "g")).toBe(lines('%0: f32[2, 3] = input{name="x"}()', "%1: f32[2, 3] = exp(%0)", "%2: f32[2, 3] = add(%1, %1)", "return out0: %2, out1: %1"));
  });

  test("an output that is an input keeps it; a graph with no dead code is unchanged", () => {
    const f = builder();
    const x = f.input("x", [2]);
    const y = f.un("abs", x);
    const g = f.build(y, x);
    expect(printGraph(dce(g))).toBe(printGraph(g));
  });
});

// ------------------------------------------------------------------------------------------ cse

describe("cse", () => {
  test("merges equal subexpressions, transitively, and commutative operands in either order", () => {
    const f = builder();
    const x = f.input("x", [2, 3]);
    const y = f.input("y", [2, 3]);
    const e1 = f.un("exp", x);
    const e2 = f.un("exp", x);
    const a1 = f.bin("add", e1, y);
    const a2 = f.bin("add", y, e2); // the same as a1 once e2 = e1
    const m1 = f.bin("maximum", a1, x);
    const m2 = f.bin("maximum", x, a2);
    const s1 = f.bin("sub", a1, x);
    const s2 = f.bin("sub", x, a2); // not commutative: stays
    const g = cse(f.build(m1, m2, s1, s2));
    verify(g);
    expect(census(g)).toEqual({ input: 2, exp: 1, add: 1, maximum: 1, sub: 2 });
    expect(g.outputs[0]!.node).toBe(g.outputs[1]!.node);
  });

  test("never merges inputs or params of different names, nor different random streams", () => {
    const f = builder();
    const r = [f.input("a", [2]), f.input("b", [2]), f.param("a", [2]), f.param("p", [2])];
    r.push(f.add({ kind: "random", dist: "normal", key: 0 }, [], [2]), f.add({ kind: "random", dist: "normal", key: 1 }, [], [2]), f.add({ kind: "random", dist: "uniform", key: 0 }, [], [2]));
    r.push(f.add({ kind: "random", dist: "normal", key: 0 }, [], [2])); // the same stream as r[4]: merges
    const g = cse(f.build(...r));
    expect(g.nodes.length).toBe(7);
    expect(g.outputs[7]!.node).toBe(g.outputs[4]!.node);
  });

  test("constants merge only with the same value, dtype and shape (-0 and 0 differ; NaN is NaN)", () => {
    const f = builder();
    const cs = [f.c(0), f.c(0), f.c(-0), f.c(NaN), f.c(NaN), f.c(0, [2]), f.c(0, [], "i32"), f.c(2.5), f.c(2.5)];
    const g = cse(f.build(...cs));
    expect(printGraph(g, "g")).toBe(
      lines(
        "%0: f32[] = constant{value=0}()",
        "%1: f32[] = constant{value=-0}()",
        "%2: f32[] = constant{value=NaN}()",
        "%3: f32[2] = constant{value=0}()",
        "%4: i32[] = constant{value=0}()",
        "%5: f32[] = constant{value=2.5}()",
        "return out0: %0, out1: %0, out2: %1, out3: %2, out4: %2, out5: %3, out6: %4, out7: %5, out8: %5",
      ),
    );
  });

  test("attributes and shapes are part of the key", () => {
    const f = builder();
    const x = f.input("x", [2, 3]);
    const outs = [
      f.add({ kind: "reduce", fn: "sum", axes: [0] }, [x]),
      f.add({ kind: "reduce", fn: "sum", axes: [1] }, [x]),
      f.add({ kind: "reduce", fn: "max", axes: [1] }, [x]),
      f.add({ kind: "reduce", fn: "max", axes: [1] }, [x]), // merges
      f.add({ kind: "reshape" }, [x], [3, 2]),
      f.add({ kind: "reshape" }, [x], [6]),
      f.add({ kind: "reshape" }, [x], [6]), // merges
      f.add({ kind: "slice", axis: 1, start: 0, end: 1 }, [x]),
      f.add({ kind: "slice", axis: 1, start: 1, end: 2 }, [x]),
    ];
    const g = cse(f.build(...outs));
    expect(census(g)).toEqual({ input: 1, reduce: 3, reshape: 2, slice: 2 });
  });
});

// ------------------------------------------------------------------------------------------ fold

describe("fold", () => {
  test("element-wise ops of constants, through broadcasts, become one constant", () => {
    const f = builder();
    const x = f.input("x", [2, 3]);
    const two = f.bc(f.c(2), [2, 3]);
    const half = f.c(0.5, [2, 3]);
    const k = f.bin("sub", f.un("exp", f.bin("mul", two, half)), f.c(1, [2, 3])); // e - 1
    const y = f.bin("mul", x, k);
    const g = fold(f.build(y));
    verify(g);
    expect(text(g)).toBe(lines('%0: f32[2, 3] = input{name="x"}()', `%1: f32[2, 3] = constant{value=${Math.E - 1}}()`, "%2: f32[2, 3] = mul(%0, %1)", "return out0: %2"));
  });

  test("views, pads with the same value, concats of equal constants and reductions fold; sums are c·n", () => {
    const f = builder();
    const c = f.c(2.5, [2, 3]);
    const outs = [
      f.add({ kind: "transpose", perm: [1, 0] }, [c]),
      f.add({ kind: "slice", axis: 1, start: 1, end: 3 }, [c]),
      f.add({ kind: "pad", widths: [[1, 0], [0, 2]], value: 2.5 }, [c]),
      f.add({ kind: "concat", axis: 0 }, [c, f.c(2.5, [1, 3])]),
      f.add({ kind: "reduce", fn: "sum", axes: [0, 1] }, [c]),
      f.add({ kind: "reduce", fn: "max", axes: [1] }, [c]),
      f.add({ kind: "matmul" }, [c, f.c(-2, [3, 4])]),
      f.add({ kind: "upsample", factor: 2 }, [c]),
      f.add({ kind: "avg_pool", size: 2, stride: 1 }, [c]),
      f.add({ kind: "cast" }, [c], undefined, "i32"),
      f.add({ kind: "compare", fn: "gt" }, [c, f.c(1, [2, 3])]),
    ];
    const g = fold(f.build(...outs));
    verify(g);
    const values = g.outputs.map((o) => {
      const n = g.nodes[o.node]!;
      expect(n.op.kind).toBe("constant");
      return `${n.dtype}[${n.shape}]=${(n.op as { value: number }).value}`;
    });
    expect(values).toEqual(["f32[3,2]=2.5", "f32[2,2]=2.5", "f32[3,5]=2.5", "f32[3,3]=2.5", "f32[1,1]=15", "f32[2,1]=2.5", "f32[2,4]=-15", "f32[4,6]=2.5", "f32[1,2]=2.5", "i32[2,3]=2", "bool[2,3]=1"]);
  });

  test("non-uniform results are never materialised", () => {
    const f = builder();
    const c = f.c(1, [2, 3]);
    const outs = [
      f.add({ kind: "pad", widths: [[1, 0], [0, 0]], value: 0 }, [c]), // a border of zeros
      f.add({ kind: "concat", axis: 0 }, [c, f.c(2, [1, 3])]),
      f.add({ kind: "iota" }, [], [4]),
      f.add({ kind: "random", dist: "uniform", key: 0 }, [], [4]),
      f.add({ kind: "conv2d", stride: 1, padding: 1, groups: 1 }, [f.c(1, [1, 1, 3, 3]), f.c(1, [1, 1, 3, 3])]), // borders see padding
      f.add({ kind: "avg_pool_grad", size: 2, stride: 1 }, [f.c(1, [1, 2])], [2, 3]), // windows overlap
    ];
    const g = fold(f.build(...outs));
    expect(g.outputs.map((o) => g.nodes[o.node]!.op.kind)).toEqual(["pad", "concat", "iota", "random", "conv2d", "avg_pool_grad"]);
  });

  test("convolutions of constants fold where every output sees the same number of terms", () => {
    const f = builder();
    const x = f.c(0.5, [1, 2, 5, 5]);
    const w = f.c(3, [4, 2, 3, 3]);
    const outs = [
      f.add({ kind: "conv2d", stride: 2, padding: 0, groups: 1 }, [x, w]), // 2·9 terms of 1.5
      f.add({ kind: "conv2d", stride: 1, padding: 1, groups: 1 }, [f.c(0, [1, 2, 5, 5]), w]), // zero products: 0 despite the padding
      f.add({ kind: "conv2d_grad_weight", stride: 1, padding: 0, groups: 1 }, [x, f.c(2, [1, 4, 3, 3])], [4, 2, 3, 3]), // 9 terms of 1
      f.add({ kind: "avg_pool_grad", size: 2, stride: 2 }, [f.c(8, [1, 2, 2])], [1, 4, 4]), // windows tile: 8/4
    ];
    const g = fold(f.build(...outs));
    expect(g.outputs.map((o) => (g.nodes[o.node]!.op as { value: number }).value)).toEqual([27, 0, 9, 2]);
  });

  test("i32 and bool follow the interpreter: wrapping, truncating division, x / 0 = x, saturating casts", () => {
    const f = builder();
    const big = f.c(2147483647, [], "i32");
    const outs = [
      f.bin("add", big, f.c(1, [], "i32")),
      f.bin("mul", big, f.c(2, [], "i32")),
      f.bin("div", f.c(-7, [], "i32"), f.c(2, [], "i32")),
      f.bin("div", f.c(5, [], "i32"), f.c(0, [], "i32")),
      f.add({ kind: "cast" }, [f.c(-3.9e10)], undefined, "i32"),
      f.add({ kind: "cast" }, [f.c(NaN)], undefined, "i32"),
      f.add({ kind: "cast" }, [f.c(NaN)], undefined, "bool"),
      f.un("neg", f.c(-2147483648, [], "i32")),
    ];
    const g = fold(f.build(...outs));
    expect(g.outputs.map((o) => (g.nodes[o.node]!.op as { value: number }).value)).toEqual([-2147483648, -2, -3, 5, -2147483648, 0, 1, -2147483648]);
    const before = interpret(f.build(...outs), {}, F64);
    expect(sameValues(interpret(g, {}, F64), before)).toBeUndefined();
  });

  test("a sum of a constant is c·n, where the interpreter's running sum may be an ulp off", () => {
    const f = builder();
    const s = f.add({ kind: "reduce", fn: "sum", axes: [0] }, [f.c(0.1, [10])]);
    const zeros = f.add({ kind: "reduce", fn: "sum", axes: [0] }, [f.c(-0, [3])]);
    const g = fold(f.build(s, zeros));
    expect((g.nodes[g.outputs[0]!.node]!.op as { value: number }).value).toBe(0.1 * 10); // 1 exactly
    expect(Object.is((g.nodes[g.outputs[1]!.node]!.op as { value: number }).value, 0)).toBe(true); // a sum starts at +0
    const want = interpret(f.build(s, zeros), {}, F64).get("out0")!.data[0]!; // 0.1 + ... + 0.1 = 0.9999999999999999
    // Not exact: c·n is rounded once, the running sum n times; they agree to n ulps.
    expect(Math.abs(want - 1)).toBeLessThan(10 * Number.EPSILON);
  });
});

// ------------------------------------------------------------------------------------------ simplify

describe("simplify", () => {
  test("arithmetic identities with constants (also broadcast ones) collapse to the operand", () => {
    const f = builder();
    const x = f.input("x", [2, 3]);
    const zero = f.bc(f.c(0), [2, 3]);
    const one = f.c(1, [2, 3]);
    let y = f.bin("add", x, zero);
    y = f.bin("add", zero, y);
    y = f.bin("sub", y, zero);
    y = f.bin("mul", y, one);
    y = f.bin("mul", one, y);
    y = f.bin("div", y, one);
    y = f.bin("pow", y, f.bc(f.c(1), [2, 3]));
    y = f.un("neg", f.un("neg", y));
    const g = simplify(f.build(y));
    verify(g);
    expect(g.outputs[0]!.node).toBe(0);
    expect(text(g)).toBe(lines('%0: f32[2, 3] = input{name="x"}()', "return out0: %0"));
  });

  test("x · 0, 0 - x, x / x and x - x are left alone (NaN, Inf and -0 make them wrong)", () => {
    const f = builder();
    const x = f.input("x", [2]);
    const zero = f.c(0, [2]);
    const outs = [f.bin("mul", x, zero), f.bin("mul", zero, x), f.bin("sub", zero, x), f.bin("div", x, x), f.bin("sub", x, x), f.bin("div", zero, x)];
    const g = simplify(f.build(...outs));
    expect(census(dce(g))).toEqual({ input: 1, constant: 1, mul: 2, sub: 2, div: 2 });
  });

  test("pow(x, 2) -> x·x for floats only; pow(x, 1) -> x", () => {
    const f = builder();
    const x = f.input("x", [2]);
    const i = f.input("i", [2], "i32");
    const outs = [f.bin("pow", x, f.bc(f.c(2), [2])), f.bin("pow", x, f.c(1, [2])), f.bin("pow", i, f.c(2, [2], "i32")), f.bin("pow", x, f.c(3, [2]))];
    const g = simplify(f.build(...outs));
    expect(text(g)).toBe(
      lines(
        '%0: f32[2] = input{name="x"}()',
        '%1: i32[2] = input{name="i"}()',
        "%2: f32[2] = mul(%0, %0)",
        "%3: i32[2] = constant{value=2}()",
        "%4: i32[2] = pow(%1, %3)",
        "%5: f32[2] = constant{value=3}()",
        "%6: f32[2] = pow(%0, %5)",
        "return out0: %2, out1: %0, out2: %4, out3: %6",
      ),
    );
  });

  test("identity views and casts disappear; chains of views compose", () => {
    const f = builder();
    const x = f.input("x", [2, 3, 4]);
    const outs = [
      f.add({ kind: "reshape" }, [x], [2, 3, 4]),
      f.add({ kind: "broadcast" }, [x], [2, 3, 4]),
      f.add({ kind: "transpose", perm: [0, 1, 2] }, [x]),
      f.add({ kind: "cast" }, [x], undefined, "f32"),
      f.add({ kind: "slice", axis: 1, start: 0, end: 3 }, [x]),
      f.add({ kind: "pad", widths: [[0, 0], [0, 0], [0, 0]], value: 7 }, [x]),
      f.add({ kind: "concat", axis: 2 }, [x]),
      f.add({ kind: "upsample", factor: 1 }, [x]),
      f.add({ kind: "avg_pool", size: 1, stride: 1 }, [x]),
      f.add({ kind: "reshape" }, [f.add({ kind: "reshape" }, [x], [6, 4])], [2, 3, 4]), // back to x
      f.add({ kind: "transpose", perm: [1, 0, 2] }, [f.add({ kind: "transpose", perm: [1, 0, 2] }, [x])]), // back to x
      f.add({ kind: "stop_gradient" }, [f.add({ kind: "stop_gradient" }, [x])]),
    ];
    const g = simplify(f.build(...outs));
    verify(g);
    expect(g.outputs.map((o) => o.node)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, g.outputs[11]!.node]);
    expect(census(dce(g))).toEqual({ input: 1, stop_gradient: 1 });
  });

  test("reshape(reshape), transpose(transpose), broadcast(broadcast) and slice(slice) become one op", () => {
    const f = builder();
    const x = f.input("x", [2, 3, 4]);
    const r = f.add({ kind: "reshape" }, [f.add({ kind: "reshape" }, [x], [6, 4])], [24]);
    const t = f.add({ kind: "transpose", perm: [2, 0, 1] }, [f.add({ kind: "transpose", perm: [1, 2, 0] }, [x])]); // [3,4,2] -> [2,3,4]: identity
    const t2 = f.add({ kind: "transpose", perm: [0, 2, 1] }, [f.add({ kind: "transpose", perm: [1, 0, 2] }, [x])]); // [3,2,4] -> [3,4,2]
    const v = f.input("v", [1, 3, 1]);
    const bb = f.add({ kind: "broadcast" }, [f.add({ kind: "broadcast" }, [v], [1, 3, 4])], [2, 3, 4]);
    const ss = f.add({ kind: "slice", axis: 2, start: 1, end: 2 }, [f.add({ kind: "slice", axis: 2, start: 1, end: 4 }, [x])]);
    const g = simplify(f.build(r, t, t2, bb, ss));
    expect(text(g)).toBe(
      lines(
        '%0: f32[2, 3, 4] = input{name="x"}()',
        "%1: f32[24] = reshape(%0)",
        "%2: f32[3, 4, 2] = transpose{perm=[1,2,0]}(%0)",
        '%3: f32[1, 3, 1] = input{name="v"}()',
        "%4: f32[2, 3, 4] = broadcast(%3)",
        "%5: f32[2, 3, 1] = slice{axis=2, start=2, end=3}(%0)",
        "return out0: %1, out1: %0, out2: %2, out3: %4, out4: %5",
      ),
    );
  });

  test("reductions over size-1 axes vanish; size-1 axes are dropped from other reductions", () => {
    const f = builder();
    const x = f.input("x", [2, 1, 3]);
    const outs = [f.add({ kind: "reduce", fn: "sum", axes: [1] }, [x]), f.add({ kind: "reduce", fn: "max", axes: [] }, [x]), f.add({ kind: "reduce", fn: "sum", axes: [0, 1] }, [x])];
    const g = simplify(f.build(...outs));
    expect(text(g)).toBe(lines('%0: f32[2, 1, 3] = input{name="x"}()', "%1: f32[1, 1, 3] = reduce_sum{axes=[0]}(%0)", "return out0: %0, out1: %0, out2: %1"));
  });

  test("select with a constant condition or equal branches picks a branch", () => {
    const f = builder();
    const x = f.input("x", [2]);
    const y = f.input("y", [2]);
    const t = f.bc(f.c(1, [], "bool"), [2]);
    const outs = [f.add({ kind: "select" }, [t, x, y]), f.add({ kind: "select" }, [f.c(0, [2], "bool"), x, y]), f.add({ kind: "select" }, [f.add({ kind: "compare", fn: "lt" }, [x, y]), y, y])];
    const g = simplify(f.build(...outs));
    expect(g.outputs.map((o) => o.node)).toEqual([0, 1, 1]);
  });

  test("reaches a fixed point: a rewrite whose result matches another rule takes a second sweep", () => {
    const f = builder();
    const x = f.input("x", [3]);
    const one = f.c(1, [3]);
    // pow(1, 2) -> 1 · 1 in the first sweep, and 1 · 1 -> 1 in the second; the odd neg chain goes in the first.
    let y = f.bin("add", x, f.bin("pow", one, f.bc(f.c(2), [3])));
    for (let i = 0; i < 5; i++) y = f.un("neg", y);
    const g = simplify(f.build(y));
    expect(text(g)).toBe(lines('%0: f32[3] = input{name="x"}()', "%1: f32[3] = constant{value=1}()", "%2: f32[3] = add(%0, %1)", "%3: f32[3] = neg(%2)", "return out0: %3"));
  });
});

// ------------------------------------------------------------------------------------------ optimize

describe("optimize", () => {
  test("runs the passes in rounds until the graph stops shrinking, and reports per-pass counts", () => {
    const f = builder();
    const x = f.input("x", [2, 3]);
    f.input("dead", [1]);
    const k = f.bin("add", f.bc(f.c(1), [2, 3]), f.bc(f.c(1), [2, 3])); // 2 after folding
    const a = f.bin("mul", f.un("exp", x), k);
    const b = f.bin("mul", f.un("exp", x), f.c(2, [2, 3]));
    const y = f.bin("add", f.bin("add", a, f.c(0, [2, 3])), b);
    const g = f.build(y);
    const { graph, stats } = optimize(g);
    verify(graph);
    expect(printGraph(graph, "g")).toBe(
      lines('%0: f32[2, 3] = input{name="x"}()', "%1: f32[2, 3] = constant{value=2}()", "%2: f32[2, 3] = exp(%0)", "%3: f32[2, 3] = mul(%2, %1)", "%4: f32[2, 3] = add(%3, %3)", "return out0: %4"),
    );
    expect(stats.before).toBe(g.nodes.length);
    expect(stats.after).toBe(5);
    expect(stats.runs.map((r) => r.pass).slice(0, 4)).toEqual(PASSES.map((p) => p.name));
    for (let i = 1; i < stats.runs.length; i++) expect(stats.runs[i]!.before).toBe(stats.runs[i - 1]!.after);
    expect(stats.runs[stats.runs.length - 1]!.after).toBe(stats.after);
    expect(formatStats(stats)).toMatch(/total \d+ -> 5 nodes/);
  });
});

// ------------------------------------------------------------------------------------------ precision

/** `g` without any `fn` node (each read as its input), for comparing a rounded graph with its source. */
const unrounded = (g: Graph, fn: RoundingFn) => rewrite(g, (n) => (n.op.kind === "unary" && n.op.fn === fn ? n.inputs[0] : undefined)).graph;
const isRoundBy = (fn: RoundingFn) => (n: Graph["nodes"][number]) => n.op.kind === "unary" && n.op.fn === fn;

/**
 * What roundContractions(before, fn) must give: the same graph once the roundings are read through; every f32
 * contraction operand an `fn` node; exactly one new rounding per distinct operand that was not one.
 */
function expectRounded(before: Graph, after: Graph, fn: RoundingFn, what: string): void {
  const isRound = isRoundBy(fn);
  verify(after);
  expect(printGraph(unrounded(after, fn)), what).toBe(printGraph(unrounded(before, fn)));
  const operands = new Set<number>();
  for (const n of before.nodes) if (CONTRACTIONS.has(n.op.kind)) for (const x of n.inputs) if (before.nodes[x]!.dtype === "f32" && !isRound(before.nodes[x]!)) operands.add(x);
  expect(after.nodes.filter(isRound).length - before.nodes.filter(isRound).length, what).toBe(operands.size);
  for (const n of after.nodes) if (CONTRACTIONS.has(n.op.kind)) for (const x of n.inputs) if (after.nodes[x]!.dtype === "f32") expect(isRound(after.nodes[x]!), `${what}: %${n.id} ${n.op.kind} reads %${x}`).toBe(true);
}

describe.each([
  ["tf32", roundTf32],
  ["bf16", roundBf16],
] as const)("precision %s: roundContractions", (precision, round) => {
  const fn = ROUNDING_OF[precision];
  const isRound = isRoundBy(fn);
  test("one rounding per distinct f32 operand, shared by the contractions that read it; nothing else changes", () => {
    const f = builder();
    const x = f.input("x", [2, 3]);
    const w = f.input("w", [3, 4]);
    const y = f.add({ kind: "matmul" }, [x, w]);
    const e = f.un("exp", x); // an element-wise reader of x keeps reading x
    const z = f.add({ kind: "matmul" }, [y, f.add({ kind: "transpose", perm: [1, 0] }, [w])]);
    const r = f.add({ kind: "matmul" }, [f.un(fn, e), w]); // an operand already rounded is read as it is
    const i = f.input("i", [2, 2], "i32");
    const k = f.add({ kind: "matmul" }, [i, i]); // i32 operands are not rounded
    const g = f.build(z, r, k, e);
    const after = applyPrecision(g, precision);
    expect(printGraph(after, "g")).toBe(
      lines(
        '%0: f32[2, 3] = input{name="x"}()',
        '%1: f32[3, 4] = input{name="w"}()',
        `%2: f32[2, 3] = ${fn}(%0)`,
        `%3: f32[3, 4] = ${fn}(%1)`,
        "%4: f32[2, 4] = matmul(%2, %3)",
        "%5: f32[2, 3] = exp(%0)",
        "%6: f32[4, 3] = transpose{perm=[1,0]}(%1)",
        `%7: f32[2, 4] = ${fn}(%4)`,
        `%8: f32[4, 3] = ${fn}(%6)`,
        "%9: f32[2, 3] = matmul(%7, %8)",
        `%10: f32[2, 3] = ${fn}(%5)`,
        "%11: f32[2, 4] = matmul(%10, %3)",
        '%12: i32[2, 2] = input{name="i"}()',
        "%13: i32[2, 2] = matmul(%12, %12)",
        "return out0: %9, out1: %11, out2: %13, out3: %5",
      ),
    );
    expectRounded(g, after, fn, "hand-built");
    // Idempotent, and a graph without contractions is left as it is.
    expect(printGraph(applyPrecision(after, precision))).toBe(printGraph(after));
    const plain = builder();
    const only = plain.build(plain.un("exp", plain.input("x", [3])));
    expect(printGraph(applyPrecision(only, precision))).toBe(printGraph(only));
  });

  test("a convolution and both its gradients share the roundings of x, w and dy", () => {
    const f = builder();
    const attrs = { stride: 2, padding: 1, groups: 1 };
    const x = f.input("x", [1, 2, 5, 5]);
    const w = f.param("w", [3, 2, 3, 3]);
    const y = f.add({ kind: "conv2d", ...attrs }, [x, w]);
    const dy = f.un("sin", y);
    const dx = f.add({ kind: "conv2d_grad_input", ...attrs }, [dy, w], [1, 2, 5, 5]);
    const dw = f.add({ kind: "conv2d_grad_weight", ...attrs }, [x, dy], [3, 2, 3, 3]);
    const g = f.build(dx, dw);
    const after = applyPrecision(g, precision);
    expectRounded(g, after, fn, "conv");
    expect(census(after)[fn]).toBe(3);
  });

  test(`lowering with precision ${precision} rounds every contraction operand of every graph, backward and update included, and the optimiser keeps them`, () => {
    const path = new URL("../models/classifier.ul", import.meta.url).pathname;
    const fp32 = lowerProgram(path, { bindings: { B: 2 } });
    const rounded = lowerProgram(path, { bindings: { B: 2 }, precision });
    expect([fp32.precision, rounded.precision]).toEqual(["fp32", precision]);
    for (const g of [fp32.init, fp32.ema, ...fp32.entries.map((e) => e.graph)]) expect(g.nodes.some((n) => n.op.kind === "unary" && isRounding(n.op.fn))).toBe(false);
    const fit = rounded.entries.find((e) => e.name === "fit")!.graph;
    // Forward convolutions and matmul, and the backward pass's gradients of them.
    for (const kind of ["matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight"]) expect(fit.nodes.some((n) => n.op.kind === kind), kind).toBe(true);
    for (const [name, g] of [["init", rounded.init], ["ema", rounded.ema], ...rounded.entries.map((e) => [e.name, e.graph] as const)] as const) {
      verify(g);
      for (const n of g.nodes)
        if (CONTRACTIONS.has(n.op.kind))
          for (const x of n.inputs) {
            const operand = g.nodes[x]!;
            // A constant operand is folded with its rounding: it must already be a value of the precision.
            const ok = isRound(operand) || (operand.op.kind === "constant" && Object.is(round(operand.op.value), Math.fround(operand.op.value)));
            expect(ok, `${name}: %${n.id} ${n.op.kind} reads %${x} (${operand.op.kind})`).toBe(true);
          }
      // One rounding per value, and only the Program's: the optimiser's CSE leaves no two of the same node.
      const sources = g.nodes.filter(isRound).map((n) => n.inputs[0]);
      expect(new Set(sources).size, name).toBe(sources.length);
      expect(g.nodes.filter((n) => n.op.kind === "unary" && isRounding(n.op.fn)).length, name).toBe(sources.length);
    }
  }, 60_000);
});

// ------------------------------------------------------------------------------------------ random graphs

/** One step of a random graph: which op to add and the numbers that choose its operands and attributes. */
interface Step {
  readonly op: number;
  readonly a: number;
  readonly b: number;
  readonly k: number;
  readonly m: number;
}

interface Spec {
  readonly steps: readonly Step[];
  readonly outs: readonly number[];
  readonly seed: number;
}

const stepArb: fc.Arbitrary<Step> = fc.record({ op: fc.nat(), a: fc.nat(), b: fc.nat(), k: fc.nat(), m: fc.nat() });
const specArb: fc.Arbitrary<Spec> = fc.record({ steps: fc.array(stepArb, { minLength: 1, maxLength: 28 }), outs: fc.array(fc.nat(), { maxLength: 3 }), seed: fc.nat() });

/** Constants the generator uses: small dyadic numbers, and the ones the simplifier looks for. */
const VALUES = [0, 1, 2, -1, 0.5, 3, -2.5, 0.25, 1, 0];
const EXPONENTS = [1, 2, 0.5, 3, 2];

/**
 * Builds a well-typed graph from a spec: inputs of a few shapes, then each step adds a small group of nodes
 * (adapting operands with reshape + broadcast as the tracer does). A step the builder rejects is skipped.
 */
function randomGraph(spec: Spec): { graph: Graph; env: InterpretEnv } {
  const b = new GraphBuilder();
  const rnd = prng(spec.seed);
  const inputs = new Map<string, Tensor>();
  const params = new Map<string, Tensor>();
  const data = (shape: readonly number[]) =>
    Array.from({ length: size(shape) }, () => {
      const v = rnd() * 4 - 2;
      return v === 0 ? 1 : v;
    });
  const floats: number[] = [];
  const add = (op: Op, ins: readonly number[], shape?: readonly number[], dtype?: DType) => b.add(op, ins, shape, dtype);
  const leaf = (kind: "input" | "param", name: string, shape: number[]) => {
    const id = add({ kind, name }, [], shape, "f32");
    (kind === "input" ? inputs : params).set(name, tensorOf("f32", shape, data(shape)));
    floats.push(id);
  };
  leaf("input", "x0", [2, 3]);
  leaf("input", "x1", [2, 3]);
  leaf("input", "x2", [3]);
  leaf("input", "x3", [2, 1]);
  leaf("input", "s", []);
  leaf("input", "img", [1, 2, 4, 4]);
  leaf("param", "w", [3, 2]);
  leaf("param", "k", [2, 2, 3, 3]);

  const shapeOf = (id: number) => b.node(id).shape;
  const pick = (i: number) => floats[i % floats.length]!;
  const constant = (value: number, shape: readonly number[], viaScalar: boolean) =>
    viaScalar && shape.length > 0 ? add({ kind: "broadcast" }, [add({ kind: "reshape" }, [add({ kind: "constant", value }, [], [], "f32")], shape.map(() => 1))], shape) : add({ kind: "constant", value }, [], shape, "f32");
  /** numpy-style broadcast of `id` to `shape`, or undefined. */
  const fit = (id: number, shape: readonly number[]): number | undefined => {
    const s = shapeOf(id);
    if (shapeEquals(s, shape)) return id;
    if (s.length > shape.length) return undefined;
    const padded = [...Array<number>(shape.length - s.length).fill(1), ...s];
    if (padded.some((d, i) => d !== 1 && d !== shape[i])) return undefined;
    const x = s.length < shape.length ? add({ kind: "reshape" }, [id], padded) : id;
    return shapeEquals(padded, shape) ? x : add({ kind: "broadcast" }, [x], shape);
  };
  /** Two operands of one shape. */
  const pair = (st: Step): [number, number] => {
    const x = pick(st.a);
    const y = pick(st.b);
    const y2 = fit(y, shapeOf(x));
    if (y2 !== undefined) return [x, y2];
    const x2 = fit(x, shapeOf(y));
    if (x2 !== undefined) return [x2, y];
    return [x, constant(VALUES[st.k % VALUES.length]!, shapeOf(x), st.m % 2 === 0)];
  };
  /** |x| + 1: never zero, so its sign never matters (see `sameValues`). */
  const guard = (x: number) => add({ kind: "binary", fn: "add" }, [add({ kind: "unary", fn: "abs" }, [x]), constant(1, shapeOf(x), true)]);
  const unary = (fn: Extract<Op, { kind: "unary" }>["fn"], x: number) => add({ kind: "unary", fn }, [x]);
  const binary = (fn: Extract<Op, { kind: "binary" }>["fn"], x: number, y: number) => add({ kind: "binary", fn }, [x, y]);

  const UNARIES = ["neg", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "softplus", "abs", "floor"] as const;
  const BINARIES = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"] as const;
  const COMPARES = ["lt", "le", "gt", "ge", "eq", "ne"] as const;

  const steps: ((st: Step) => number | undefined)[] = [
    // a constant shaped like an existing node, direct or broadcast from a scalar
    (st) => constant(VALUES[st.k % VALUES.length]!, shapeOf(pick(st.a)), st.m % 2 === 0),
    (st) => {
      const fn = UNARIES[st.k % UNARIES.length]!;
      const x = pick(st.a);
      return unary(fn, fn === "rsqrt" ? guard(x) : x);
    },
    (st) => {
      const fn = BINARIES[st.k % BINARIES.length]!;
      const [x, y] = pair(st);
      if (fn === "div") return binary(fn, x, guard(y));
      if (fn === "pow") return st.m % 2 === 0 ? binary(fn, x, constant(EXPONENTS[st.m % EXPONENTS.length]!, shapeOf(x), st.m % 3 === 0)) : binary(fn, guard(x), y);
      return binary(fn, x, y);
    },
    // select(compare(x, y), y, x) or of a constant condition
    (st) => {
      const [x, y] = pair(st);
      const cond = st.m % 4 === 0 ? add({ kind: "constant", value: st.k % 2 }, [], shapeOf(x), "bool") : add({ kind: "compare", fn: COMPARES[st.k % COMPARES.length]! }, [x, y]);
      return add({ kind: "select" }, [cond, y, st.m % 5 === 0 ? y : x]);
    },
    // reduce over a subset of axes, sometimes dropping them (keepdims = false)
    (st) => {
      const x = pick(st.a);
      const r = shapeOf(x).length;
      const axes = [...Array(r).keys()].filter((i) => (st.k >> i) & 1);
      const y = add({ kind: "reduce", fn: st.m % 3 === 0 ? "max" : "sum", axes }, [x]);
      return st.m % 2 === 0 ? y : add({ kind: "reshape" }, [y], shapeOf(y).filter((_, i) => !axes.includes(i)));
    },
    // reshape, sometimes twice
    (st) => {
      const x = pick(st.a);
      const s = shapeOf(x);
      const n = size(s);
      const options = [[n], [1, ...s], [...s, 1], [...s].reverse(), [...s], n % 2 === 0 ? [2, n / 2] : [n, 1]];
      const y = add({ kind: "reshape" }, [x], options[st.k % options.length]!);
      return st.m % 3 === 0 ? add({ kind: "reshape" }, [y], options[st.m % options.length]!) : y;
    },
    // transpose, sometimes twice (the identity permutation included)
    (st) => {
      const x = pick(st.a);
      const perm = (seed: number) => {
        const p = [...shapeOf(x).keys()];
        for (let i = p.length - 1; i > 0; i--) {
          const j = (seed >> i) % (i + 1);
          [p[i], p[j]] = [p[j]!, p[i]!];
        }
        return p;
      };
      const y = add({ kind: "transpose", perm: perm(st.k) }, [x]);
      return st.m % 2 === 0 ? add({ kind: "transpose", perm: perm(st.m) }, [y]) : y;
    },
    // broadcast a size-1 dim (via a reshape that adds one), sometimes twice
    (st) => {
      const x = pick(st.a);
      const s = shapeOf(x);
      const r = add({ kind: "reshape" }, [x], [1, ...s]);
      const mid = add({ kind: "broadcast" }, [r], [st.k % 2 === 0 ? 1 : 2, ...s]);
      return st.m % 2 === 0 ? add({ kind: "broadcast" }, [mid], [2, ...s]) : mid;
    },
    // the patterns the simplifier looks for
    (st) => {
      const x = pick(st.a);
      const s = shapeOf(x);
      const c = (v: number) => constant(v, s, st.m % 2 === 0);
      switch (st.k % 16) {
        case 0:
          return binary("add", x, c(0));
        case 1:
          return binary("add", c(0), x);
        case 2:
          return binary("sub", x, c(0));
        case 3:
          return binary("mul", x, c(1));
        case 4:
          return binary("mul", c(1), x);
        case 5:
          return binary("div", x, c(1));
        case 6:
          return binary("pow", x, c(2));
        case 7:
          return binary("pow", x, c(1));
        case 8:
          return unary("neg", unary("neg", x));
        case 9:
          return add({ kind: "stop_gradient" }, [add({ kind: "stop_gradient" }, [x])]);
        case 10:
          return add({ kind: "cast" }, [x], undefined, "f32");
        case 11:
          return binary("mul", x, c(0)); // not simplified
        case 12:
          return add({ kind: "reduce", fn: st.m % 2 === 0 ? "sum" : "max", axes: s.flatMap((d, i) => (d === 1 ? [i] : [])) }, [x]);
        case 13:
          return s.length > 0 ? add({ kind: "slice", axis: st.m % s.length, start: 0, end: s[st.m % s.length]! }, [x]) : undefined;
        case 14:
          return add({ kind: "pad", widths: s.map(() => [0, 0] as const), value: 1 }, [x]);
        default:
          return add({ kind: "concat", axis: 0 }, [x]);
      }
    },
    // slice, pad, concat
    (st) => {
      const x = pick(st.a);
      const s = shapeOf(x);
      if (s.length === 0) return undefined;
      const axis = st.k % s.length;
      const d = s[axis]!;
      switch (st.m % 3) {
        case 0: {
          const start = st.b % d;
          const y = add({ kind: "slice", axis, start, end: start + 1 + ((st.m >> 2) % (d - start)) }, [x]);
          return st.m % 2 === 0 ? add({ kind: "slice", axis, start: 0, end: 1 }, [y]) : y;
        }
        case 1:
          return add({ kind: "pad", widths: s.map((_, i) => (i === axis ? [st.b % 2, 1] : [0, 0])), value: VALUES[st.b % VALUES.length]! }, [x]);
        default: {
          const other = fit(pick(st.b), s) ?? constant(VALUES[st.b % VALUES.length]!, s, false);
          return add({ kind: "concat", axis }, [x, other]);
        }
      }
    },
    // matmul: x @ transpose(y) or x @ a constant
    (st) => {
      const [x, y] = pair(st);
      const s = shapeOf(x);
      const r = s.length;
      if (r < 2) return undefined;
      const perm = [...Array(r).keys()];
      [perm[r - 2], perm[r - 1]] = [r - 1, r - 2];
      const rhs = st.m % 2 === 0 ? add({ kind: "transpose", perm }, [y]) : constant(VALUES[st.k % VALUES.length]!, [...s.slice(0, -2), s[r - 1]!, 2], st.m % 3 === 0);
      return add({ kind: "matmul" }, [x, rhs]);
    },
    // casts: through i32 and back, i32 arithmetic (wrapping, truncating division)
    (st) => {
      const [x, y] = pair(st);
      const toI = (v: number) => add({ kind: "cast" }, [v], undefined, "i32");
      const fn = (["add", "sub", "mul", "div", "maximum"] as const)[st.k % 5]!;
      const z = st.m % 2 === 0 ? toI(x) : binary(fn, toI(x), toI(y));
      return add({ kind: "cast" }, [z], undefined, "f32");
    },
    // upsample, avg_pool, avg_pool_grad on rank ≥ 2
    (st) => {
      const x = pick(st.a);
      const s = shapeOf(x);
      if (s.length < 2) return undefined;
      const size = 1 + (st.k % 2);
      const stride = 1 + (st.m % 2);
      switch (st.b % 3) {
        case 0:
          return add({ kind: "upsample", factor: size }, [x]);
        case 1:
          return add({ kind: "avg_pool", size, stride }, [x]);
        default: {
          const pooled = add({ kind: "avg_pool", size, stride }, [x]);
          return add({ kind: "avg_pool_grad", size, stride }, [pooled], s);
        }
      }
    },
    // iota and random streams
    (st) => {
      const s = shapeOf(pick(st.a));
      if (st.m % 2 === 0) {
        const n = s.length > 0 ? s[s.length - 1]! : 1;
        return fit(add({ kind: "iota" }, [], [n], "f32"), s);
      }
      return add({ kind: "random", dist: st.k % 2 === 0 ? "normal" : "uniform", key: st.k % 3 }, [], s, "f32");
    },
    // convolutions of an image (the input, or a constant) with a weight (the param, or a constant)
    (st) => {
      const img = st.m % 3 === 0 ? constant(VALUES[st.k % VALUES.length]!, [1, 2, 4, 4], false) : pick(5);
      const groups = 1 + (st.k % 2);
      const kk = 1 + (st.b % 3);
      const w = st.m % 2 === 0 && groups === 1 && kk === 3 ? pick(7) : constant(VALUES[st.b % VALUES.length]!, [2, 2 / groups, kk, kk], st.b % 2 === 0);
      const stride = 1 + ((st.m >> 1) % 2);
      const padding = (st.m >> 2) % 2;
      const y = add({ kind: "conv2d", stride, padding, groups }, [img, w]);
      switch ((st.m >> 3) % 3) {
        case 0:
          return y;
        case 1:
          return add({ kind: "conv2d_grad_input", stride, padding, groups }, [y, w], [1, 2, 4, 4]);
        default:
          return add({ kind: "conv2d_grad_weight", stride, padding, groups }, [img, y], shapeOf(w));
      }
    },
  ];

  for (const st of spec.steps) {
    try {
      const id = steps[st.op % steps.length]!(st);
      if (id !== undefined && b.node(id).dtype === "f32") floats.push(id);
    } catch (e) {
      if (!(e instanceof IrError)) throw e;
    }
  }
  const last = b.nodes.length - 1;
  const outputs = [{ name: "last", node: last }, ...spec.outs.map((o, i) => ({ name: `o${i}`, node: o % b.nodes.length }))];
  return { graph: b.build(outputs), env: { inputs, params } };
}

const SUM_LIKE = new Set<OpKind>(["reduce", "matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight", "avg_pool", "avg_pool_grad"]);

/**
 * Whether folding gives some sum of constants a value other than the interpreter's running sum. Folding
 * computes c·n (and the exact mean c of an average pool), rounded once; the interpreter adds n terms one by
 * one, rounding each time, so the two can differ in the last bits (the `fold` unit tests check this with a
 * tolerance). Such a difference can turn into any difference later (a floor, a compare, a cast to i32), so the
 * exact properties below discard the few graphs that have one. A difference bigger than rounding is a bug.
 */
function hasInexactSumFold(g: Graph, env: InterpretEnv): boolean {
  const values = evaluate(g, env, F64);
  for (const n of g.nodes) {
    if (!SUM_LIKE.has(n.op.kind) || (n.op.kind === "reduce" && n.op.fn === "max")) continue;
    const folded = fold({ nodes: g.nodes.slice(0, n.id + 1), outputs: [{ name: "v", node: n.id }] });
    const f = folded.nodes[folded.outputs[0]!.node]!;
    if (f.op.kind !== "constant") continue;
    const c = f.op.value;
    for (const v of values[n.id]!.data) {
      if (sameNumber(v, c)) continue;
      if (!(Math.abs(v - c) <= 1e-12 * Math.abs(c))) throw new Error(`fold gives %${n.id} (${n.op.kind}) the value ${c}, the interpreter ${v}`);
      return true;
    }
  }
  return false;
}

/** Asserts a property over random graphs with a fixed seed, reporting the seed on failure. */
function check(name: string, numRuns: number, body: (spec: Spec) => void): void {
  const seed = SEED + name.length * 7919;
  try {
    fc.assert(fc.property(specArb, body), { seed, numRuns, endOnFailure: false });
  } catch (e) {
    const cause = (e as Error).cause;
    throw new Error(
      `"${name}" failed with seed ${seed} (base seed ${SEED}; rerun with PASSES_SEED=${SEED}):\n${(e as Error).message}` +
        (cause ? `\ncaused by: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}` : ""),
    );
  }
}

describe("random graphs keep their values", () => {
  const passes: [string, (g: Graph) => Graph, boolean][] = [
    ["dce", dce, false],
    ["cse", cse, false],
    ["simplify", simplify, false],
    ["fold", fold, true],
    ["optimize", (g) => optimize(g).graph, true],
  ];

  test("the generator makes varied, verify-clean graphs", () => {
    const seen = new Map<string, number>();
    let nodes = 0;
    fc.assert(
      fc.property(specArb, (spec) => {
        const { graph, env } = randomGraph(spec);
        verify(graph);
        interpret(graph, env, F64);
        nodes += graph.nodes.length;
        for (const [k, v] of Object.entries(census(graph))) seen.set(k, (seen.get(k) ?? 0) + v);
      }),
      { seed: SEED, numRuns: 200 },
    );
    // Every kind of op, and every pattern the passes look for, shows up.
    for (const kind of ["constant", "random", "iota", "select", "reduce", "matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight", "reshape", "transpose", "broadcast", "slice", "concat", "pad", "upsample", "avg_pool", "avg_pool_grad", "cast", "stop_gradient", "pow", "neg", "div", "lt"]) {
      expect(seen.get(kind) ?? 0, kind).toBeGreaterThan(0);
    }
    expect(nodes / 200).toBeGreaterThan(20);
  });

  test("the discard rule recognises a sum of a constant that the running sum rounds differently, and only that", () => {
    const sumOf = (c: number) => {
      const f = builder();
      return f.build(f.add({ kind: "reduce", fn: "sum", axes: [0] }, [f.c(c, [10])]));
    };
    expect(hasInexactSumFold(sumOf(0.1), {})).toBe(true); // c·n = 1, the running sum 0.9999999999999999
    expect(hasInexactSumFold(sumOf(0.5), {})).toBe(false);
  });

  for (const [name, pass, folds] of passes) {
    test(`${name}: verify-clean, same outputs, same values (f64 interpreter)`, () => {
      let discarded = 0;
      let changed = 0;
      check(name, 400, (spec) => {
        const { graph, env } = randomGraph(spec);
        const want = interpret(graph, env, F64);
        const out = pass(graph);
        verify(out);
        expect(out.outputs.map((o) => o.name)).toEqual(graph.outputs.map((o) => o.name));
        if (printGraph(out) !== printGraph(graph)) changed++;
        const diff = sameValues(interpret(out, env, F64), want);
        if (diff !== undefined && folds && hasInexactSumFold(graph, env)) {
          discarded++;
          return;
        }
        expect(diff).toBeUndefined();
      });
      if (process.env.PASSES_REPORT) console.log(`${name}: ${changed} of 400 graphs changed, ${discarded} discarded`);
      // The property is not vacuous: most graphs change, and few are discarded.
      expect(changed).toBeGreaterThan(name === "cse" || name === "dce" ? 50 : 200);
      expect(discarded).toBeLessThan(20);
    });
  }

  test("passes compose in any order and are idempotent after optimize", () => {
    check("compose", 150, (spec) => {
      const { graph, env } = randomGraph(spec);
      const want = interpret(graph, env, F64);
      let g = graph;
      for (const i of [spec.seed % 4, (spec.seed >> 2) % 4, (spec.seed >> 4) % 4, (spec.seed >> 6) % 4]) {
        g = PASSES[i]!.run(g);
        verify(g);
      }
      const diff = sameValues(interpret(g, env, F64), want);
      if (diff !== undefined && hasInexactSumFold(graph, env)) return;
      expect(diff).toBeUndefined();
      const o = optimize(graph).graph;
      const again = optimize(o);
      expect(printGraph(again.graph)).toBe(printGraph(o));
    });
  });
});

// ------------------------------------------------------------------------------------------ ul_tiny

describe("optimize on models/ul_tiny.ul (B = 2)", () => {
  let program: Program;
  const results = new Map<string, { before: Graph; after: Graph; stats: PassStats }>();

  beforeAll(() => {
    program = lowerProgram(new URL("../models/ul_tiny.ul", import.meta.url).pathname, { bindings: { B: 2 }, optimize: false });
    for (const [name, g] of [["init", program.init] as const, ...program.entries.map((e) => [e.name, e.graph] as const)]) {
      const r = optimize(g);
      results.set(name, { before: g, after: r.graph, stats: r.stats });
    }
  }, 120_000);

  test("every graph stays verify-clean, keeps its outputs, and shrinks", () => {
    expect(results.size).toBe(program.entries.length + 1);
    const table: string[] = [];
    for (const [name, { before, after, stats }] of results) {
      verify(after);
      expect(after.outputs.map((o) => o.name)).toEqual(before.outputs.map((o) => o.name));
      expect(after.nodes.length, name).toBeLessThan(before.nodes.length);
      table.push(`${name.padEnd(18)} ${String(stats.before).padStart(5)} -> ${String(stats.after).padStart(5)}  (${stats.rounds} rounds)`);
    }
    if (process.env.PASSES_REPORT) console.log(table.join("\n"));
  });

  test("lowering optimises by default, giving exactly these graphs", () => {
    const optimised = lowerProgram(new URL("../models/ul_tiny.ul", import.meta.url).pathname, { bindings: { B: 2 } });
    expect(printGraph(optimised.init)).toBe(printGraph(results.get("init")!.after));
    for (const e of optimised.entries) expect(printGraph(e.graph), e.name).toBe(printGraph(results.get(e.name)!.after));
  }, 60_000);

  /**
   * Random values for every input and param of a graph: data ~ U(-1, 1), sampler times t ~ U(0.6, 0.9) > s ~
   * U(0.1, 0.5), params ~ U(-0.2, 0.2), optimizer states ~ U(0, 0.01) (Adam's v must be ≥ 0), and hypers,
   * optimizer arguments and the step at their defaults.
   */
  function randomEnv(name: string, g: Graph, seed: number): InterpretEnv {
    const rnd = prng(seed);
    const fixed = new Map(program.hypers.map((h) => [h.name, h.default]));
    for (const a of program.entries.find((e) => e.name === name)?.training?.args ?? []) fixed.set(`optimizer.${a.name}`, a.default);
    fixed.set("optimizer.step", 3);
    const inputs = new Map<string, Tensor>();
    const params = new Map<string, Tensor>();
    for (const n of g.nodes) {
      if (n.op.kind !== "input" && n.op.kind !== "param") continue;
      const kind = n.op.kind;
      const id = n.op.name;
      const h = fixed.get(id);
      const one = () =>
        h !== undefined ? h : kind === "param" ? 0.4 * rnd() - 0.2 : id.startsWith("optimizer.") ? 0.01 * rnd() : id === "t" ? 0.6 + 0.3 * rnd() : id === "s" ? 0.1 + 0.4 * rnd() : 2 * rnd() - 1;
      (kind === "input" ? inputs : params).set(id, tensorOf(n.dtype, n.shape, Array.from({ length: size(n.shape) }, one)));
    }
    return { inputs, params };
  }

  // encode and prior_step on two draws; the init graph (random initialisers), the loss entry `evaluate`, two
  // more sampler steps and the train step `fit` (forward, backward, Adam) on one. The values agree exactly:
  // on these graphs the passes only remove, merge and fold (no sum of a constant appears).
  for (const [name, seeds] of [["encode", [1, 2]], ["prior_step", [1, 2]], ["noise_latent", [1]], ["decoder_step", [1]], ["evaluate", [1]], ["init", [1]], ["fit", [1]]] as const) {
    test(`${name}: the optimised graph gives the unoptimised graph's outputs (f64, fixed seed)`, () => {
      const { before, after } = results.get(name)!;
      for (const seed of seeds) {
        const env = randomEnv(name, before, seed);
        const want = interpret(before, env, F64);
        const got = interpret(after, env, F64);
        expect(sameValues(got, want)).toBeUndefined();
        for (const t of want.values()) expect(t.data.every((v) => Number.isFinite(v))).toBe(true);
      }
    });
  }
});
