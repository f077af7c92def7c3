// The CUDA target without a GPU: the generated .cu files and the C++ host runtime, compiled by g++ with
// backends/cuda/cpp/ulc_emulate.h (blocks, threads, warp shuffles and __syncthreads on the CPU), driven through
// the same native session as on a GPU (the suites: test/support/native.ts), against the reference interpreter.
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { GraphBuilder, type Graph } from "../compiler/ir.js";
import { lowerProgram } from "../compiler/lower.js";
import { applyPrecision, CONTRACTIONS } from "../compiler/passes/precision.js";
import { emitCuda } from "../backends/cuda/program.js";
import { openCudaSession } from "../runtime/cuda/session.js";
import { interpret } from "../runtime/interpreter.js";
import { NativeSession } from "../runtime/native/session.js";
import { randomNormal } from "../runtime/random.js";
import { ReferenceSession } from "../runtime/reference.js";
import type { InputTensor } from "../runtime/session.js";
import { cudaTarget } from "./support/cuda.js";
import { convolutionGraph } from "./support/graphs.js";
import { asF64, entryInputs, near, nativeSuites, programOf } from "./support/native.js";

nativeSuites(cudaTarget("emulated"));

describe.each([
  ["tf32", "ulc_mma_tf32", "ulc_mma_bf16"],
  ["bf16", "ulc_mma_bf16", "ulc_mma_tf32"],
] as const)("tensor-core GEMMs (a %s Program, %s) on shapes that cross their blocks' edges", (precision, mma, other) => {
  // Convolutions and both gradients, and batched matmuls (one operand transposed), on shapes whose rows, columns
  // and terms are not multiples of the blocks (16, 32 or 64 rows; 64 or 128 columns; 16 terms a slice), and with
  // long sums over few blocks (split-K: the blocks of a tile run on several OS threads, so its arrival protocol is
  // exercised for real), and strided input gradients (a GEMM per parity class of the output positions).
  const convs = fc.sample(
    fc.record({ n: fc.integer({ min: 1, max: 2 }), groups: fc.integer({ min: 1, max: 2 }), cinG: fc.integer({ min: 1, max: 5 }), coutG: fc.integer({ min: 1, max: 40 }), h: fc.integer({ min: 3, max: 13 }), w: fc.integer({ min: 3, max: 13 }), k: fc.integer({ min: 1, max: 3 }), stride: fc.integer({ min: 1, max: 2 }), padding: fc.integer({ min: 0, max: 1 }) }),
    { numRuns: 12, seed: 17 },
  );
  const matmuls = [
    ...fc.sample(fc.record({ b: fc.integer({ min: 1, max: 3 }), m: fc.integer({ min: 1, max: 80 }), k: fc.integer({ min: 1, max: 40 }), n: fc.integer({ min: 1, max: 150 }), transposed: fc.boolean() }), { numRuns: 12, seed: 19 }),
    // Few output blocks and long sums: their terms split among blocks (split-K), 600 into 4 and 1000 into 7.
    { b: 1, m: 20, k: 600, n: 30, transposed: false },
    { b: 2, m: 70, k: 1000, n: 9, transposed: true },
  ];
  const graphs = new Map<string, Graph>();
  const inputs = new Map<string, Map<string, InputTensor>>();
  /** Terms per output of each graph's contractions: the f32 summation-order bound needs them. */
  const terms = new Map<string, number>();
  const size = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);
  const normal = (key: number, i: number, shape: readonly number[]): InputTensor => ({ dtype: "f32", shape, data: randomNormal(key, 0, i, size(shape)) });
  convs.forEach((c, i) => {
    const { graph, xShape, wShape } = convolutionGraph(c);
    graphs.set(`conv${i}`, applyPrecision(graph, precision));
    inputs.set(`conv${i}`, new Map([["x", normal(3, i, xShape)], ["w", normal(4, i, wShape)]]));
    const y = graph.outputs.find((o) => o.name === "y")!.node;
    terms.set(`conv${i}`, Math.max(c.cinG * c.k * c.k, c.coutG * c.k * c.k, c.n * size(graph.nodes[y]!.shape.slice(2))));
  });
  matmuls.forEach((c, i) => {
    const b = new GraphBuilder();
    const a = b.add({ kind: "input", name: "a" }, [], [c.b, c.m, c.k]);
    const rhs = c.transposed ? b.add({ kind: "transpose", perm: [0, 2, 1] }, [b.add({ kind: "input", name: "bt" }, [], [c.b, c.n, c.k])]) : b.add({ kind: "input", name: "b" }, [], [c.b, c.k, c.n]);
    const y = b.add({ kind: "unary", fn: "tanh" }, [b.add({ kind: "matmul" }, [a, rhs])]);
    graphs.set(`matmul${i}`, applyPrecision(b.build([{ name: "y", node: y }]), precision));
    inputs.set(`matmul${i}`, new Map([["a", normal(5, i, [c.b, c.m, c.k])], c.transposed ? ["bt", normal(6, i, [c.b, c.n, c.k])] : ["b", normal(6, i, [c.b, c.k, c.n])]]));
    terms.set(`matmul${i}`, c.k);
  });
  const program = programOf(graphs, precision);

  test("every contraction is a GEMM on mma.sync, and each matches the f32 interpreter of the same graph", async () => {
    const contractions = [...graphs.values()].flatMap((g) => g.nodes.filter((n) => CONTRACTIONS.has(n.op.kind)));
    const cu = emitCuda(program).files.get("program.cu")!;
    const gemms = (cu.match(new RegExp(`${mma}\\(acc`, "g")) ?? []).length;
    expect(gemms).toBeGreaterThan(0);
    expect(cu, "only the precision's own mma").not.toContain(`${other}(acc`);
    expect((cu.match(/__device__ unsigned k\d+_arrivals/g) ?? []).length, "split-K GEMMs").toBeGreaterThanOrEqual(2);
    // Every strided input gradient runs per parity class, with only the taps each class meets.
    const strided = convs.filter((c) => c.stride > 1).length;
    expect(strided).toBeGreaterThan(2);
    expect((cu.match(/auto position = /g) ?? []).length, "parity-class GEMMs").toBeGreaterThanOrEqual(Math.min(strided, 2));
    // Identical GEMMs share a function, so at most as many as the contractions, and most of them distinct here.
    expect(gemms).toBeGreaterThanOrEqual(contractions.length / 2);
    const session = await openCudaSession(program, { seed: 1, flavour: "emulated" });
    try {
      for (const [name, graph] of graphs) {
        const got = await session.run(name, inputs.get(name)!);
        const want = interpret(graph, { inputs: new Map([...inputs.get(name)!].map(([k, t]) => [k, { ...t, data: Float64Array.from(t.data) }])) }, { precision: "f32", seed: 1, step: 0 });
        for (const [output, w] of want) {
          // Products of TF32 values, and of bfloat16 values, are exact in f32 on both sides; only the order of the
          // f32 sums differs, by at most (K − 1)·2^-24 of the sum of the terms' magnitudes, K terms below 5 (normal
          // operands, sin): 25·K². (A gradient's dy = sin(y) near a rounding boundary may round to the neighbouring
          // value on the two sides, 2^-11 or 2^-8 of that one term: well within the bound, whose K is the largest
          // of the graph's three sums.)
          const K = terms.get(name)!;
          near(got.get(output)!.data, w.data, () => 25 * K * K * 2 ** -24, `${name}.${output}`);
        }
      }
      // Operands k/16 with |k| ≤ 8 are TF32 and bfloat16 values whose products (multiples of 2^-8) and sums (below
      // 2^14 here) are exact in f32 in any order: every matmul, split-K ones included, then equals the interpreter's
      // but for tanh (glibc's tanhf against float64 rounded once: 2 ulp seen, 2^-21 relative allowed), so a
      // misplaced fragment shows.
      for (const name of [...graphs.keys()].filter((n) => n.startsWith("matmul"))) {
        const exact = new Map([...inputs.get(name)!].map(([k, t]) => [k, { ...t, data: Float64Array.from(t.data, (v) => Math.max(-8, Math.min(8, Math.round(4 * v))) / 16) }]));
        const got = (await session.run(name, exact)).get("y")!.data;
        const want = interpret(graphs.get(name)!, { inputs: exact }, { precision: "f32", seed: 1, step: 0 }).get("y")!.data;
        near(got, want, (w) => 2 ** -21 * Math.abs(w), `${name}.y, exact sums`);
      }
    } finally {
      session.dispose();
    }
  }, 600_000);
});

describe("a sticky device error", () => {
  test("ends the host program with the error, instead of a server that fails every later request", async () => {
    const program = lowerProgram("models/classifier.ul", { bindings: { B: 1 } });
    // The emulator's second graph launch faults (the first is the parameters' init), as an illegal access would.
    process.env.ULC_EMULATE_FAULT = "2";
    let session: NativeSession;
    try {
      session = await openCudaSession(program, { seed: 1, flavour: "emulated" });
    } finally {
      delete process.env.ULC_EMULATE_FAULT;
    }
    try {
      const x = entryInputs(program, "logits");
      await expect(session.run("logits", x)).rejects.toThrow(/an illegal memory access was encountered; the device can run nothing more after this error, so the program has ended/);
      await expect(session.run("logits", x)).rejects.toThrow(/the host runtime .* stopped/);
    } finally {
      session.dispose();
    }
  }, 300_000);
});

describe("ulc build --target cuda", () => {
  test("writes a directory whose Makefile builds the emulated program, which computes what the reference does", async () => {
    const { mkdtempSync, readFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const path = await import("node:path");
    const { main } = await import("../cli/main.js");
    const dir = mkdtempSync(path.join(tmpdir(), "ulc-cuda-"));
    try {
      let stderr = "";
      const io = { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) }, env: {} };
      expect(await main(["build", "models/classifier.ul", "--target", "cuda", "--bind", "B=1", "-o", dir], io), stderr).toBe(0);
      expect(stderr).toMatch(/make -C .* emulate/);
      const make = spawnSync("make", ["-C", dir, "-j2", "emulate"], { encoding: "utf8" });
      expect(make.status, make.stderr).toBe(0);
      const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8"));
      // --target cuda builds in tf32 unless --precision says otherwise; the reference lowers the same Program.
      expect(manifest.precision).toBe("tf32");
      const session = await NativeSession.start(path.join(dir, "ulc_program_emulated"), dir, manifest, { seed: 6 });
      try {
        const program = lowerProgram("models/classifier.ul", { bindings: { B: 1 }, precision: "tf32" });
        const x = entryInputs(program, "logits");
        const want = new ReferenceSession(program, { precision: "f32", seed: 6 }).run("logits", asF64(x)).get("result")!.data;
        // f32 on both sides, sums of up to 3136 terms in another order.
        near((await session.run("logits", x)).get("result")!.data, want, (w) => 1e-4 * (1 + Math.abs(w)), "logits");
      } finally {
        session.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
