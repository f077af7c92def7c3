// The entries `ulc sample` and `ulc eval` rely on (train/conventions.ts): checked before any work, a model that lacks
// one or has one of another signature gets exit 2 naming the entry, its conventional signature and what it has.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { lowerProgram } from "../compiler/lower.js";
import { FASHION_MNIST_DIR } from "../train/data.js";
import { CONVENTIONS, requireEntries } from "../train/conventions.js";
import { existsSync } from "node:fs";
import { ulc } from "./support/cli.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ulc-conventions-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A model with a prior and a decoder over 4-dim latents of 1×28×28 images; `prior` replaces its prior step. */
const model = (prior = "entry prior_step<B>(z: f32[B, 4], t: f32, s: f32) -> f32[B, 4] { z * (1.0 - t + s) }") => `
from std.layers import Linear
from std.optim import Adam
model Tiny {
  enc: Linear<784, 4>
  dec: Linear<4, 784>
  train fit<B>(x: f32[B, 1, 28, 28]) -> { loss: f32 } minimize loss with Adam(lr = 1e-3) {
    let r = dec(enc(reshape(x, [B, 784]))) - reshape(x, [B, 784])
    { loss: mean(r * r) }
  }
  ${prior}
  entry decoder_step<B>(x_t: f32[B, 1, 28, 28], z0: f32[B, 4], t: f32, s: f32) -> f32[B, 1, 28, 28] { reshape(dec(z0), [B, 1, 28, 28]) * (1.0 - s) + x_t * s }
}
`;
const lower = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return lowerProgram(path, { bindings: { B: 4 } });
};

describe("requireEntries", () => {
  test("passes the models in models/ for what each is used for", () => {
    const tiny = lowerProgram("models/ul_tiny.ul", { bindings: { B: 2 } });
    expect(() => requireEntries(tiny, ["prior_step", "prior_ddim_step", "decoder_step", "decoder_ddim_step", "decoder_x_hat", "noise_latent", "encode", "evaluate"], "everything")).not.toThrow();
    const classifier = lowerProgram("models/classifier.ul", { bindings: { B: 2 } });
    expect(() => requireEntries(classifier, ["evaluate", "features"], "the Fréchet distance")).not.toThrow();
  });

  test("a missing entry is named with its signature, and the entries the model has are listed", () => {
    const program = lower("missing.ul", model());
    expect(() => requireEntries(program, ["prior_step", "decoder_step", "decoder_x_hat"], "sampling")).toThrow(
      `sampling needs an entry that model Tiny lacks: ${CONVENTIONS.decoder_x_hat.signature} is missing (it has fit, prior_step, decoder_step; docs/language.md, "Entries the commands rely on")`,
    );
    expect(() => requireEntries(program, [], "eval", ["noise_latent"])).not.toThrow();
  });

  test("an entry of another signature is shown as it is, with what is wrong", () => {
    const cases: [string, string][] = [
      ["entry prior_step<B>(z: f32[B, 4], t: f32) -> f32[B, 4] { z * t }", "prior_step(z: f32[4, 4], t: f32) -> f32[4, 4], not prior_step(z: f32[B, ...Z], t: f32, s: f32) -> f32[B, ...Z]: it takes 2 inputs, not 3"],
      ["entry prior_step<B>(z: f32[B, 4], t: f32[B], s: f32) -> f32[B, 4] { z }", "its input t is not a scalar"],
      ["entry prior_step<B>(z: f32[B, 4], t: f32, s: f32) -> f32[B, 2] { slice(z, 1, 0, 2) }", "its result is not one tensor shaped like its input z"],
      ["entry prior_step<B>(z: f32[B, 4], t: f32, s: f32) -> { z: f32[B, 4] } { { z: z } }", "prior_step(z: f32[4, 4], t: f32, s: f32) -> { z: f32[4, 4] }, not"],
    ];
    cases.forEach(([prior, why], i) => {
      const program = lower(`wrong${i}.ul`, model(prior));
      expect(() => requireEntries(program, ["prior_step"], "sampling")).toThrow(why);
    });
  });
});

describe.skipIf(!existsSync(FASHION_MNIST_DIR))("sample and eval check the entries they need before any work", () => {
  let run: string;
  beforeAll(async () => {
    const file = join(dir, "two-input-prior.ul");
    writeFileSync(file, model("entry prior_step<B>(z: f32[B, 4], t: f32) -> f32[B, 4] { z * t }"));
    run = join(dir, "run");
    const r = await ulc(["train", file, "--batch", "4", "--steps", "1", "--out", run]);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);

  test("ulc sample: a prior step of another signature, and a missing decoder_x_hat, are exit 2 naming both", async () => {
    const r = await ulc(["sample", run, "--n", "4", "--steps", "2", "-o", join(dir, "grid.png")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `ulc sample: sampling ${run} (--sampler ddpm) needs entries that model Tiny lacks: prior_step is prior_step(z: f32[4, 4], t: f32) -> f32[4, 4], not ${CONVENTIONS.prior_step.signature}: it takes 2 inputs, not 3; ${CONVENTIONS.decoder_x_hat.signature} is missing (it has fit, prior_step, decoder_step; docs/language.md, "Entries the commands rely on")\n`,
    );
  }, 60_000);

  test("ulc eval --classifier: a classifier run without evaluate and features is refused before anything is measured", async () => {
    const r = await ulc(["eval", run, "--classifier", run, "--n", "8", "--batch", "4", "--steps", "2"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ulc eval: --classifier .*run \(the Fréchet distance's classifier\) needs entries that model Tiny lacks: evaluate\(x: f32\[B, C, H, W\]\[, y: f32\[B, K\]\]\) -> \{ NAME: f32, \.\.\. \} is missing; features\(x: f32\[B, C, H, W\]\) -> f32\[B, F\] is missing/);
    // Nothing was measured before the refusal.
    expect(r.stderr).not.toMatch(/held-out|reconstructing/);
  }, 60_000);
});
