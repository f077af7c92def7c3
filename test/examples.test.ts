// docs/language.md's worked examples train as written: each model is its ```ul block, taken from the page, trained a
// few steps through `ulc train` on the CPU target (and measured by `ulc eval` where the example says so). A few steps
// show that an example runs end to end with finite metrics; a fall of the loss is asserted only where it is large
// (the same seed gives the same batches and draws, so each run repeats itself).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { encodeSafetensors } from "../runtime/safetensors.js";
import { FASHION_MNIST_DIR } from "../train/data.js";
import { decodePng } from "../train/png-decode.js";
import { ulc } from "./support/cli.js";
import { DOC, ulBlocks } from "./support/docs.js";
import { mulberry32 } from "./support/prng.js";

const dir = mkdtempSync(join(tmpdir(), "ulc-examples-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The example declaring `model NAME`, written to DIR/NAME.ul. */
function example(model: string): string {
  const block = ulBlocks(DOC).find((b) => b.text.includes(`model ${model} {`));
  if (!block) throw new Error(`docs/language.md has no ul block declaring model ${model}`);
  const file = join(dir, `${model}.ul`);
  writeFileSync(file, block.text);
  return file;
}

/** Trains `model` for `steps` steps; its metrics.jsonl rows, checked finite and one per step. */
async function train(model: string, steps: number, flags: string[]): Promise<{ run: string; rows: Record<string, number>[] }> {
  const run = join(dir, model);
  const r = await ulc(["train", example(model), "--steps", String(steps), "--target", "cpu", "--out", run, ...flags]);
  expect(r.code, r.stderr).toBe(0);
  const rows = readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, number>);
  expect(rows.map((row) => row.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
  for (const row of rows) for (const v of Object.values(row)) expect(Number.isFinite(v), JSON.stringify(row)).toBe(true);
  return { run, rows };
}

const mean = (rows: Record<string, number>[], key: string) => rows.reduce((a, row) => a + row[key]!, 0) / rows.length;

/** The docs' data for the sequence model: each of `n` sequences of 17 tokens in [0, 16) repeats a pattern of 2 to 4 random tokens. */
function repeatedPatterns(n: number): Int32Array {
  const random = mulberry32(7);
  const seq = new Int32Array(n * 17);
  for (let i = 0; i < n; i++) {
    const pattern = Array.from({ length: 2 + Math.floor(random() * 3) }, () => Math.floor(random() * 16));
    for (let t = 0; t < 17; t++) seq[i * 17 + t] = pattern[t % pattern.length]!;
  }
  return seq;
}

describe("docs/language.md's worked examples train through ulc train (CPU target)", () => {
  test("a transformer on sequences from a safetensors file: the next-token loss falls", async () => {
    const data = join(dir, "sequences.safetensors");
    writeFileSync(data, encodeSafetensors(new Map([["seq", { dtype: "i32", shape: [512, 17], data: repeatedPatterns(512) }]])));
    const { rows } = await train("Sequences", 40, ["--data", data, "--batch", "16"]);
    // From about ln 16 + the untrained head's spread (3.2) to well below chance's ln 16 = 2.77.
    expect(mean(rows.slice(-10), "loss")).toBeLessThan(mean(rows.slice(0, 5), "loss") - 0.5);
  }, 300_000);

  describe.skipIf(!existsSync(FASHION_MNIST_DIR))("on Fashion-MNIST", () => {
    test("a convolutional autoencoder: its loss falls, and ulc eval reports the PSNR of its reconstruct entry with a picture", async () => {
      const { run, rows } = await train("ConvAutoencoder", 40, ["--batch", "32"]);
      expect(mean(rows.slice(-10), "loss")).toBeLessThan(rows[0]!.loss! / 3);
      const r = await ulc(["eval", run, "--recon", "64", "--batch", "32", "--target", "cpu"]);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(readFileSync(join(run, "eval.json"), "utf8"));
      expect(report.psnr).toBeGreaterThan(10);
      expect(report.psnr).toBeLessThan(60);
      expect(decodePng(readFileSync(join(run, "eval-reconstructions.png"))).width).toBeGreaterThan(0);
    }, 300_000);

    test("a classifier on integer labels: its loss falls below chance's, and ulc eval reports test accuracy", async () => {
      const { run, rows } = await train("LabelClassifier", 40, ["--batch", "32"]);
      expect(mean(rows.slice(-10), "loss")).toBeLessThan(1.5); // chance: ln 10 = 2.3
      const r = await ulc(["eval", run, "--n", "256", "--batch", "32", "--target", "cpu"]);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(readFileSync(join(run, "eval.json"), "utf8"));
      expect(report).toMatchObject({ model: "LabelClassifier", examples: 256 });
      expect(report.accuracy).toBeGreaterThan(0.3);
    }, 300_000);
  });
});
