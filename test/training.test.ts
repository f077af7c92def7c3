// Training on the reference interpreter: the train-step graph (forward, backward, Adam) really descends.
import { describe, expect, test } from "vitest";
import path from "node:path";
import { lowerProgram } from "../compiler/lower.js";
import { diskHost } from "../dsl/loader.js";
import { ReferenceSession } from "../runtime/reference.js";
import type { Tensor } from "../runtime/tensor.js";

const B = 8;

/** A fixed batch of smooth "images" in [-1, 1], different per example. */
function batch(): Tensor {
  const data = new Float32Array(B * 28 * 28);
  for (let b = 0; b < B; b++)
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) data[(b * 28 + y) * 28 + x] = Math.tanh(2 * Math.sin((x + 3 * b) / 5) * Math.cos((y - b) / 7));
  return { dtype: "f32", shape: [B, 1, 28, 28], data };
}

describe("ul_tiny on the float32 interpreter", () => {
  const program = lowerProgram("models/ul_tiny.ul", { bindings: { B } });

  test("ten Adam steps on one fixed batch lower its loss", () => {
    // Without the prior's warm-up, `evaluate`'s loss is the one `fit` minimises (during it, the prior term that
    // `evaluate` counts in full may grow while the steps barely weigh it).
    const session = new ReferenceSession(program, { precision: "f32", seed: 5, optimizer: { lr: 1e-3 }, hypers: { prior_warmup: 0 } });
    const data = new Map([["x", batch()]]);
    // The loss is stochastic (t and ε); measure it with the same randomness (step 10_000) before and after.
    const lossAt = () => session.run("evaluate", data, 10_000).get("loss")!.data[0]!;
    const before = lossAt();
    const trained: number[] = [];
    for (let i = 0; i < 10; i++) {
      const m = session.trainStep("fit", data);
      for (const v of m.values()) expect(Number.isFinite(v)).toBe(true);
      trained.push(m.get("loss")!);
    }
    const after = lossAt();
    expect(session.step).toBe(10);
    expect(after).toBeLessThan(before);
    // Each step's own loss falls too, on average over the run's two halves.
    const half = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(half(trained.slice(5))).toBeLessThan(half(trained.slice(0, 5)));
    // Parameters stayed float32 and changed.
    for (const t of session.params.values()) expect(t.data).toBeInstanceOf(Float32Array);
  }, 120_000);

  test("the optimizer state and step feed back: two sessions with the same seed agree exactly", () => {
    const run = () => {
      const s = new ReferenceSession(program, { precision: "f32", seed: 9 });
      const data = new Map([["x", batch()]]);
      return [s.trainStep("fit", data).get("loss"), s.trainStep("fit", data).get("loss")];
    };
    expect(run()).toEqual(run());
  }, 120_000);
});

// train_step() is the optimizer's 1-based step count, seen by the forward pass: a loss scaled by
// linear_warmup(4) = min(step/4, 1) must, under plain SGD, move every parameter by exactly that fraction of what
// the unscaled loss moves it (the same seed gives both models the same initial parameters).
describe("train_step() and linear_warmup", () => {
  const PROBE = path.resolve("test/step-probe.ul");
  const source = (scaled: boolean, warmup = "4.0") => `
from std.layers import Linear
from std.optim import Sgd, linear_warmup

model StepProbe {
  net: Linear<3, 3>

  train fit<B>(x: f32[B, 3]) -> { loss: f32, step: f32, weight: f32 } minimize loss with Sgd(lr = 0.1, momentum = 0.0) {
    let e = net(x) - x * 2.0
    let weight = linear_warmup(${warmup})
    { loss: ${scaled ? "weight * " : ""}mean(e * e), step: train_step(), weight: weight }
  }
}
`;
  const session = (scaled: boolean, warmup?: string) =>
    new ReferenceSession(lowerProgram(PROBE, { bindings: { B: 2 }, host: { readFile: (p: string) => (p === PROBE ? source(scaled, warmup) : diskHost.readFile(p)) } }), {
      precision: "f64",
      seed: 4,
    });
  const x: Tensor = { dtype: "f32", shape: [2, 3], data: Float64Array.from([0.5, -1, 0.25, 2, 0.1, -0.3]) };
  const data = new Map([["x", x]]);

  test("the step metric counts 1, 2, 3, ... and the warm-up weight is min(step/4, 1)", () => {
    const s = session(true);
    const seen = Array.from({ length: 6 }, () => s.trainStep("fit", data));
    expect(seen.map((m) => m.get("step"))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen.map((m) => m.get("weight"))).toEqual([0.25, 0.5, 0.75, 1, 1, 1]);
  });

  test("a warm-up of 0 steps is full weight from the first step", () => {
    const s = session(true, "0.0");
    expect([1, 2, 3].map(() => s.trainStep("fit", data).get("weight"))).toEqual([1, 1, 1]);
  });

  test("the weight scales the gradient: each SGD step of the scaled loss is weight × that of the plain loss", () => {
    const scaled = session(true);
    const plain = session(false);
    for (let step = 1; step <= 5; step++) {
      // Both start the step from the same parameters, so the updates compare directly.
      plain.params.forEach((t, name) => scaled.params.get(name)!.data.set(t.data));
      const before = new Map([...plain.params].map(([name, t]) => [name, Float64Array.from(t.data)]));
      scaled.trainStep("fit", data);
      plain.trainStep("fit", data);
      const weight = Math.min(step / 4, 1);
      for (const [name, b] of before) {
        const dPlain = plain.params.get(name)!.data.map((v, i) => v - b[i]!);
        const dScaled = scaled.params.get(name)!.data.map((v, i) => v - b[i]!);
        dScaled.forEach((d, i) => expect(d).toBeCloseTo(weight * dPlain[i]!, 12));
      }
    }
  });
});
