// The CUDA target without a GPU: the generated .cu files and the C++ host runtime, compiled by g++ with
// backends/cuda/cpp/ulc_emulate.h (blocks, threads, warp shuffles and __syncthreads on the CPU), driven through
// the same CudaSession as on a GPU, against the reference interpreter in float32.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GraphBuilder, type Graph } from "../compiler/ir.js";
import { lowerProgram, type Program } from "../compiler/lower.js";
import { memoryStats } from "../compiler/memory.js";
import { interpret } from "../runtime/interpreter.js";
import { randomNormal, randomUniform } from "../runtime/random.js";
import { ReferenceSession } from "../runtime/reference.js";
import { CudaSession } from "../runtime/cuda/session.js";
import type { HostTensor, InputTensor } from "../runtime/session.js";
import { elementwiseStepArb, randomElementwiseGraph } from "./support/graphs.js";

/** Graphs as the plain entries of one program: one build runs them all. */
function programOf(graphs: ReadonlyMap<string, Graph>): Program {
  const empty = new GraphBuilder().build([]);
  return {
    model: "graphs",
    bindings: {},
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

/** Equal as float32 values, NaN included. */
function sameF32(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Object.is(got[i], Math.fround(want[i]!)) || got[i] === Math.fround(want[i]!), `${what}[${i}]: ${got[i]} vs ${want[i]}`).toBe(true);
}

describe("fused kernels on emulated CUDA", () => {
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
  // Reductions a warp and a block of threads share, with NaN in one row of the max. Multiples of 1/16 below
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
  for (const dist of ["uniform", "normal"] as const) {
    const b = new GraphBuilder();
    const r = b.add({ kind: "random", dist, key: 7 }, [], [3000]);
    graphs.set(dist, b.build([{ name: "r", node: r }]));
    inputs.set(dist, new Map());
  }

  let session: CudaSession;
  beforeAll(async () => {
    session = await CudaSession.fromProgram(programOf(graphs), { seed: 12345, flavour: "emulated" });
  }, 180_000);
  afterAll(() => session?.dispose());

  const reference = (name: string, step: number) => interpret(graphs.get(name)!, { inputs: new Map([...inputs.get(name)!].map(([k, t]) => [k, { ...t, data: Float64Array.from(t.data) }])) }, { precision: "f32", seed: 12345, step });

  test("random element-wise, movement and reduction graphs match the f32 interpreter", async () => {
    for (let i = 0; i < samples.length; i++) {
      const got = (await session.run(`random${i}`, inputs.get(`random${i}`)!)).get("y")!.data;
      const want = reference(`random${i}`, 0).get("y")!.data;
      // float32 on both sides; glibc's expf, sinf, tanhf and the interpreter's rounded float64 differ by an
      // ulp or so, and sums of up to 5 such terms add a few more: 1e-5 relative, with a floor near 0.
      want.forEach((w, j) => {
        const v = got[j]!;
        if (Number.isNaN(w)) expect(v, `random${i}[${j}]`).toBeNaN();
        else if (!Number.isFinite(w)) expect(v, `random${i}[${j}]`).toBe(w);
        else expect(Math.abs(v - w), `random${i}[${j}]`).toBeLessThanOrEqual(1e-5 * Math.abs(w) + 1e-6);
      });
    }
  });

  test("warp and block reductions are exact where the sum is, and max propagates NaN", async () => {
    for (const name of ["sum_block", "max_block", "sum_warp", "max_warp"]) sameF32((await session.run(name, inputs.get(name)!)).get("y")!.data, reference(name, 0).get("y")!.data, name);
  });

  test("i32 arithmetic wraps, x / 0 = x, casts saturate (NaN -> 0), pow and max follow the interpreter", async () => {
    const got = await session.run("scalars", inputs.get("scalars")!);
    const want = reference("scalars", 0);
    for (const [name, t] of want) sameF32(got.get(name)!.data, t.data, name);
  });

  test("random streams are bit-exact with runtime/random.ts (uniform) and within f32 rounding (normal)", async () => {
    const uniform = (await session.run("uniform", new Map(), 678)).get("r")!.data;
    sameF32(uniform, randomUniform(12345, 678, 7, 3000), "uniform");
    const normal = (await session.run("normal", new Map(), 678)).get("r")!.data;
    // Box-Muller in float32 (sqrtf, logf, cosf) against float64 rounded once.
    randomNormal(12345, 678, 7, 3000).forEach((w, i) => expect(Math.abs(normal[i]! - w)).toBeLessThan(1e-5 * Math.max(1, Math.abs(w))));
  });
});
