// std.layers on sequences ([B, T, D]) in the float64 interpreter, against direct computations over the layers'
// own parameters: Linear and LayerNorm on every leading dim, softmax along any axis, Embedding's rows, and
// multi-head attention with and without its causal mask; their gradients against central differences. A width
// that the heads do not divide gets one error.
import { describe, expect, test } from "vitest";
import { checkFiles } from "../dsl/check.js";
import { renderDiagnostic } from "../dsl/diagnostics.js";
import { lowerProgram } from "../compiler/lower.js";
import { diskHost } from "../dsl/loader.js";
import { gradcheck } from "../runtime/gradcheck.js";
import { ReferenceSession } from "../runtime/reference.js";
import { tensorOf, type Tensor } from "../runtime/tensor.js";

const FILE = "/virtual/sequences.ul";
const [B, T, D, H, V] = [2, 3, 4, 2, 6];

const SOURCE = `
from std.layers import Linear, LayerNorm, Embedding, MultiHeadAttention, cross_entropy, softmax
from std.optim import Adam

model Sequences {
  lin: Linear<${D}, 5>
  norm: LayerNorm<${D}>
  emb: Embedding<${V}, ${D}>
  attn: MultiHeadAttention<${D}, ${H}>
  masked: MultiHeadAttention<${D}, ${H}, true>

  entry dense(x: f32[${B}, ${T}, ${D}]) -> { lin: f32[${B}, ${T}, 5], norm: f32[${B}, ${T}, ${D}] } { { lin: lin(x), norm: norm(x) } }
  entry rows(x: f32[${B * T}, ${D}]) -> { lin: f32[${B * T}, 5], norm: f32[${B * T}, ${D}] } { { lin: lin(x), norm: norm(x) } }
  entry probs(x: f32[${B}, ${T}, ${D}]) -> f32[${B}, ${T}, ${D}] { softmax(x, axis = 1) }
  entry embed(tokens: i32[${B}, ${T}]) -> f32[${B}, ${T}, ${D}] { emb(tokens) }
  entry attend(x: f32[${B}, ${T}, ${D}]) -> { plain: f32[${B}, ${T}, ${D}], causal: f32[${B}, ${T}, ${D}] } { { plain: attn(x), causal: masked(x) } }

  train fit(x: f32[${B}, ${T}, ${D}], tokens: i32[${B}, ${T}]) -> { loss: f32 } minimize loss with Adam(lr = 1e-3) {
    let h = masked(attn(norm(x + emb(tokens))))
    { loss: mean(cross_entropy(lin(h), softmax(lin(x), axis = 1))) }
  }
}
`;

const host = { readFile: (p: string) => (p === FILE ? SOURCE : diskHost.readFile(p)) };
const program = lowerProgram(FILE, { bindings: {}, host });
const session = new ReferenceSession(program, { precision: "f64", seed: 3 });
const param = (name: string) => [...session.params.get(name)!.data];
const x = tensorOf("f32", [B, T, D], Array.from({ length: B * T * D }, (_, i) => Math.sin(1.7 * i + 0.3) * 2));
const values = (t: Tensor | undefined) => [...t!.data];

/** Rows [n, In] times W [In, Out] plus b. */
function affine(rows: number[][], w: number[], b: number[]): number[][] {
  const out = b.length;
  return rows.map((r) => b.map((bias, o) => r.reduce((s, v, i) => s + v * w[i * out + o]!, bias)));
}

/** The rows of a flat array, `width` values each. */
function rowsOf(data: readonly number[], width: number): number[][] {
  return Array.from({ length: data.length / width }, (_, i) => data.slice(i * width, (i + 1) * width));
}

function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((a) => Math.exp(a - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((a) => a / s);
}

/** Multi-head self-attention of one sequence [T, D] with the parameters of component `name`. */
function attention(seq: number[][], name: string, causal: boolean): number[][] {
  const project = (p: string, rows: number[][]) => affine(rows, param(`${name}.${p}.weight`), param(`${name}.${p}.bias`));
  const [q, k, v] = ["query", "key", "value"].map((p) => project(p, seq)) as [number[][], number[][], number[][]];
  const e = D / H;
  const heads = seq.map(() => new Array<number>(D).fill(0));
  for (let h = 0; h < H; h++)
    for (let i = 0; i < T; i++) {
      const dot = (j: number) => Array.from({ length: e }, (_, c) => q[i]![h * e + c]! * k[j]![h * e + c]!).reduce((a, b) => a + b, 0) / Math.sqrt(e);
      const visible = causal ? i + 1 : T;
      const p = softmax(Array.from({ length: visible }, (_, j) => dot(j)));
      for (let c = 0; c < e; c++) heads[i]![h * e + c] = p.reduce((s, pj, j) => s + pj * v[j]![h * e + c]!, 0);
    }
  return project("out", heads);
}

function expectClose(actual: readonly number[], expected: readonly number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(a).toBeCloseTo(expected[i]!, 12));
}

describe("std.layers on sequences (float64 interpreter)", () => {
  test("Linear and LayerNorm on [B, T, D] are the same layers on the B·T rows", () => {
    const dense = session.run("dense", new Map([["x", x]]));
    const rows = session.run("rows", new Map([["x", { ...x, shape: [B * T, D] }]]));
    for (const out of ["lin", "norm"]) expect(values(dense.get(out))).toEqual(values(rows.get(out)));
    expectClose(values(dense.get("lin")), affine(rowsOf(values(x), D), param("lin.weight"), param("lin.bias")).flat());
    const normed = rowsOf(values(x), D).map((r) => {
      const mean = r.reduce((a, b) => a + b, 0) / D;
      const variance = r.reduce((a, b) => a + (b - mean) ** 2, 0) / D;
      return r.map((v) => (v - mean) / Math.sqrt(variance + 1e-5));
    });
    expectClose(values(dense.get("norm")), normed.flat());
  });

  test("softmax along axis 1 (the sequence) of [B, T, D]", () => {
    const got = values(session.run("probs", new Map([["x", x]])).get("result"));
    const at = (b: number, t: number, d: number) => (b * T + t) * D + d;
    for (let b = 0; b < B; b++)
      for (let d = 0; d < D; d++) {
        const want = softmax(Array.from({ length: T }, (_, t) => x.data[at(b, t, d)]!));
        expectClose(Array.from({ length: T }, (_, t) => got[at(b, t, d)]!), want);
      }
  });

  test("Embedding gives the table's rows, and zeros for an index outside [0, V)", () => {
    const tokens = [0, 5, 2, 2, V, -1];
    const got = values(session.run("embed", new Map([["tokens", tensorOf("i32", [B, T], tokens)]])).get("result"));
    const table = rowsOf(param("emb.table"), D);
    expect(rowsOf(got, D)).toEqual(tokens.map((i) => table[i] ?? new Array<number>(D).fill(0)));
  });

  test("MultiHeadAttention: softmax(q·kᵀ/√(D/H))·v per head, projected; causal: each position sees itself and those before", () => {
    const out = session.run("attend", new Map([["x", x]]));
    const sequences = Array.from({ length: B }, (_, b) => rowsOf(values(x).slice(b * T * D, (b + 1) * T * D), D));
    expectClose(values(out.get("plain")), sequences.flatMap((s) => attention(s, "attn", false)).flat());
    expectClose(values(out.get("causal")), sequences.flatMap((s) => attention(s, "masked", true)).flat());
  });

  test("every layer's gradients agree with central differences", () => {
    const report = gradcheck(program, { runs: 2, seed: 0 });
    expect(report.params.map((p) => p.name).sort()).toEqual([...session.params.keys()].sort());
    expect(report.ok, JSON.stringify(report.params.filter((p) => p.maxScore > 1))).toBe(true);
  });

  test("a width D that is not a multiple of the head count H gets one error: the assertion, at the call", () => {
    const file = "/virtual/heads.ul";
    const source = `from std.layers import MultiHeadAttention

model Heads {
  attn: MultiHeadAttention<6, 4>
  entry run<B>(x: f32[B, 5, 6]) -> f32[B, 5, 6] { attn(x) }
}
`;
    const r = checkFiles([file], { host: { readFile: (p) => (p === file ? source : diskHost.readFile(p)) } });
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E0312"]);
    const text = renderDiagnostic(r.diagnostics[0]!);
    expect(text).toContain("assertion failed: MultiHeadAttention: the width D must be a multiple of the head count H");
    expect(text).toMatch(/heads\.ul:5:51: note: while checking this call of forward/);
  });
});
