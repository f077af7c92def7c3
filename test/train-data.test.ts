// `ulc train` on data that is not one-hot images: integer class labels beside Fashion-MNIST's images, and arrays
// of examples from .npy and safetensors files. Oracles: a linear model fitted by Adam reaches the closed-form
// least-squares weights of noiseless data; a classifier on integer labels learns (its loss falls well below
// chance's ln 10).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../cli/main.js";
import { encodeSafetensors } from "../runtime/safetensors.js";
import { readCheckpoint } from "../train/checkpoint.js";
import { FASHION_MNIST_DIR } from "../train/data.js";
import { npyFloat32 } from "./support/npy.js";

const dir = mkdtempSync(join(tmpdir(), "ulc-train-data-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ulc(argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = "";
  const code = await main(argv, { stdout: { write: () => true }, stderr: { write: (s: string) => ((stderr += s), true) }, env: {} });
  return { code, stderr };
}

const LINEAR = `
from std.layers import Linear
from std.optim import Adam

model Line {
  lin: Linear<3, 1>

  train fit<B>(x: f32[B, 3], y: f32[B, 1]) -> { loss: f32 } minimize loss with Adam(lr = 0.05) {
    let r = lin(x) - y
    { loss: mean(r * r) }
  }
}
`;

const LABELS = `
from std.layers import Linear, cross_entropy, accuracy
from std.optim import Adam

model Labelled {
  head: Linear<784, 10>

  train fit<B>(x: f32[B, 1, 28, 28], label: i32[B]) -> { loss: f32, accuracy: f32 } minimize loss with Adam(lr = 3e-3) {
    let y = one_hot(label, 10)
    let logits = head(reshape(x, [B, 784]))
    { loss: mean(cross_entropy(logits, y)), accuracy: accuracy(logits, y) }
  }
}
`;

/** 256 examples of y = 2·x0 − x1 + 0.5·x2 + 0.3, x fixed pseudo-random numbers in [-1, 1). */
function line(): { x: Float32Array; y: Float32Array } {
  const fract = (v: number) => v - Math.floor(v);
  const x = Float32Array.from({ length: 256 * 3 }, (_, i) => 2 * fract(Math.sin(i + 1) * 43758.5453) - 1);
  const y = Float32Array.from({ length: 256 }, (_, n) => 2 * x[3 * n]! - x[3 * n + 1]! + 0.5 * x[3 * n + 2]! + 0.3);
  return { x, y };
}

describe("ulc train on arrays and integer labels (CPU target)", () => {
  test("a safetensors file of inputs by name: Adam reaches the least-squares weights", async () => {
    const model = join(dir, "line.ul");
    writeFileSync(model, LINEAR);
    const { x, y } = line();
    const data = join(dir, "line.safetensors");
    writeFileSync(data, encodeSafetensors(new Map([["x", { dtype: "f32", shape: [256, 3], data: x }], ["y", { dtype: "f32", shape: [256, 1], data: y }]])));
    const r = await ulc(["train", model, "--data", data, "--batch", "16", "--steps", "600", "--target", "cpu", "--checkpoint-every", "600", "--out", join(dir, "line")]);
    expect(r.code, r.stderr).toBe(0);
    const { tensors } = readCheckpoint(join(dir, "line")).state;
    const w = [...tensors.get("param:lin.weight")!.data];
    const b = tensors.get("param:lin.bias")!.data[0]!;
    [2, -1, 0.5].forEach((want, i) => expect(w[i]!).toBeCloseTo(want, 2));
    expect(b).toBeCloseTo(0.3, 2);
  }, 120_000);

  test("an .npy file feeds an entry with one input; one that does not fit is refused by name", async () => {
    const model = join(dir, "rows.ul");
    writeFileSync(model, LINEAR.replace("(x: f32[B, 3], y: f32[B, 1])", "(xy: f32[B, 4])").replace("let r = lin(x) - y", "let r = lin(slice(xy, 1, 0, 3)) - slice(xy, 1, 3, 4)"));
    const { x, y } = line();
    const rows = Float32Array.from({ length: 256 * 4 }, (_, i) => (i % 4 === 3 ? y[Math.floor(i / 4)]! : x[Math.floor(i / 4) * 3 + (i % 4)]!));
    writeFileSync(join(dir, "rows.npy"), npyFloat32(rows, [256, 4]));
    const r = await ulc(["train", model, "--data", join(dir, "rows.npy"), "--batch", "16", "--steps", "300", "--target", "cpu", "--out", join(dir, "rows")]);
    expect(r.code, r.stderr).toBe(0);
    const losses = readFileSync(join(dir, "rows", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).loss);
    expect(losses.at(-1)).toBeLessThan(losses[0] / 100);
    writeFileSync(join(dir, "short.npy"), npyFloat32(new Float32Array(256 * 3), [256, 3]));
    const bad = await ulc(["train", model, "--data", join(dir, "short.npy"), "--steps", "1", "--target", "cpu", "--out", join(dir, "short")]);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/short.npy: 'xy' holds examples of shape \[3\]; entry fit takes \[4\]/)]);
  }, 120_000);

  test.skipIf(!existsSync(FASHION_MNIST_DIR))("a classifier on integer labels (i32[B]) learns Fashion-MNIST's classes", async () => {
    const model = join(dir, "labelled.ul");
    writeFileSync(model, LABELS);
    const r = await ulc(["train", model, "--batch", "64", "--steps", "150", "--target", "cpu", "--out", join(dir, "labelled")]);
    expect(r.code, r.stderr).toBe(0);
    const rows = readFileSync(join(dir, "labelled", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const late = rows.slice(-20);
    const mean = (k: string) => late.reduce((a, r) => a + r[k], 0) / late.length;
    expect(rows[0].loss).toBeGreaterThan(1.5); // near chance: ln 10 = 2.3
    expect(mean("loss")).toBeLessThan(1.0);
    expect(mean("accuracy")).toBeGreaterThan(0.6);
  }, 120_000);
});
