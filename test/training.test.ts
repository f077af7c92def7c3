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

/** A Program of `source` (standard library from disk), lowered at batch B. */
function lowerSource(name: string, source: string, B = 2) {
  const file = path.resolve(`test/${name}.ul`);
  return lowerProgram(file, { bindings: { B }, host: { readFile: (p: string) => (p === file ? source : diskHost.readFile(p)) } });
}

/** A zero batch for an entry whose one input `x` the loss does not read. */
const unread = (shape: [number, number]) => new Map([["x", { dtype: "f32" as const, shape, data: new Float64Array(shape[0] * shape[1]) }]]);


// std.optim's schedules, given as an optimizer's learning rate: loss = Σ w·c has gradient c whatever w is, so under
// SGD without momentum each step moves w by −lr·c, and the learning rate each step used is read back exactly.
describe("std.optim: learning-rate schedules as optimizer arguments", () => {
  const lrs = (schedule: string, steps: number) => {
    const program = lowerSource("schedule-probe", `
from std.optim import Sgd, warmup, cosine_decay, step_decay, warmup_cosine
model Schedule {
  hyper base_lr = 0.5
  param w: f32[2] = 0.0
  train fit<B>(x: f32[B, 2]) -> { loss: f32 } minimize loss with Sgd(lr = base_lr * ${schedule}, momentum = 0.0) {
    { loss: sum(w * (arange(2) + 1.0)) }
  }
}
`);
    const s = new ReferenceSession(program, { precision: "f64", seed: 1 });
    const x = unread([2, 2]);
    return Array.from({ length: steps }, () => {
      const before = Float64Array.from(s.params.get("w")!.data);
      s.trainStep("fit", x);
      const after = s.params.get("w")!.data;
      expect(before[1]! - after[1]!).toBeCloseTo(2 * (before[0]! - after[0]!), 14);
      return (before[0]! - after[0]!) / 0.5;
    });
  };
  const close = (got: number[], want: number[]) => got.forEach((g, i) => expect(g, `step ${i + 1}`).toBeCloseTo(want[i]!, 12));
  const steps = Array.from({ length: 10 }, (_, i) => i + 1);
  // PyTorch's CosineAnnealingLR at epoch t = k − 1 of T: η_min + (1 − η_min)(1 + cos(πt/T))/2, then η_min.
  const cosine = (k: number, T: number, floor: number) => floor + ((1 - floor) * (1 + Math.cos((Math.PI * Math.min(Math.max(k - 1, 0), T)) / T))) / 2;

  test("warmup: k/n up to 1", () => close(lrs("warmup(train_step(), 4.0)", 10), steps.map((k) => Math.min(k / 4, 1))));
  test("cosine_decay: PyTorch's CosineAnnealingLR, then its floor", () => close(lrs("cosine_decay(train_step(), 6.0, 0.1)", 10), steps.map((k) => cosine(k, 6, 0.1))));
  test("step_decay: PyTorch's StepLR", () => close(lrs("step_decay(train_step(), 3.0, 0.5)", 10), steps.map((k) => 0.5 ** Math.floor((k - 1) / 3))));
  test("warmup_cosine: a linear warm-up, then the cosine from 1 to its floor", () =>
    close(lrs("warmup_cosine(train_step(), 3.0, 9.0, 0.0)", 10), steps.map((k) => (k <= 3 ? k / 3 : cosine(k - 3, 6, 0)))));
});

// Two parameters whose gradients are fixed (c₁ = [3, 0], c₂ = [4]): their global norm is 5, so clipping at 1 scales
// both by 1/(5 + 1e-6), as PyTorch's clip_grad_norm_ does, and clipping at 10 leaves them alone.
describe("std.optim: gradient clipping by global norm", () => {
  const moves = (optimizer: string) => {
    const program = lowerSource("clip-probe", `
from std.optim import Adam, AdamW, Sgd
model Clip {
  param a: f32[2] = 0.0
  param b: f32[1] = 0.0
  train fit<B>(x: f32[B, 1]) -> { loss: f32 } minimize loss with ${optimizer} {
    { loss: sum(a * (arange(2) * -3.0 + 3.0)) + sum(b * 4.0) }
  }
}
`);
    const s = new ReferenceSession(program, { precision: "f64", seed: 1 });
    s.trainStep("fit", unread([2, 1]));
    return [...s.params.get("a")!.data, ...s.params.get("b")!.data];
  };

  test("SGD: the step is −lr·g·min(1, max/(‖g‖ + 1e-6)), one factor for all parameters", () => {
    const scale = 1 / (5 + 1e-6);
    const clipped = moves("Sgd(lr = 1.0, momentum = 0.0, max_grad_norm = 1.0)");
    [-3 * scale, 0, -4 * scale].forEach((want, i) => expect(clipped[i]).toBeCloseTo(want, 14));
    expect(moves("Sgd(lr = 1.0, momentum = 0.0, max_grad_norm = 10.0)")).toEqual([-3, 0, -4]);
    expect(moves("Sgd(lr = 1.0, momentum = 0.0)")).toEqual([-3, 0, -4]);
  });

  test("Adam: the clipped gradient feeds the moments (its first step is −lr·sign(g) either way; its second moment is not)", () => {
    // Adam's first step is lr·ĝ/(|ĝ| + eps): clipping changes it only through eps, by a relative 1e-8·(5 − 1).
    const plain = moves("Adam(lr = 1.0, eps = 0.1)");
    const clipped = moves("Adam(lr = 1.0, eps = 0.1, max_grad_norm = 1.0)");
    const g = [3, 0, 4].map((v) => v / (5 + 1e-6));
    g.forEach((gi, i) => expect(clipped[i]).toBeCloseTo(-gi / (gi + 0.1), 12));
    [3, 0, 4].forEach((gi, i) => expect(plain[i]).toBeCloseTo(-gi / (gi + 0.1), 12));
  });
});

// AdamW against torch.optim.AdamW's update, written out: p ← p·(1 − lr·wd), then Adam's bias-corrected step with
// the gradient taken before the decay. loss = Σ c·w²/2 has gradient c·w, so the decay's order matters.
describe("std.optim.AdamW is PyTorch's AdamW", () => {
  test("five steps agree in float64", () => {
    const [lr, b1, b2, eps, wd] = [0.1, 0.8, 0.9, 1e-3, 0.3];
    const program = lowerSource("adamw-probe", `
from std.optim import AdamW
model Decay {
  param w: f32[3] = arange(3) - 1.5
  train fit<B>(x: f32[B, 1]) -> { loss: f32 } minimize loss with AdamW(lr = ${lr}, beta1 = ${b1}, beta2 = ${b2}, eps = ${eps}, weight_decay = ${wd}) {
    { loss: sum((arange(3) + 1.0) * w * w) / 2.0 }
  }
}
`);
    const s = new ReferenceSession(program, { precision: "f64", seed: 1 });
    const x = unread([2, 1]);
    const p = [-1.5, -0.5, 0.5];
    const m = [0, 0, 0], v = [0, 0, 0];
    for (let t = 1; t <= 5; t++) {
      s.trainStep("fit", x);
      for (let i = 0; i < 3; i++) {
        const g = (i + 1) * p[i]!;
        p[i] = p[i]! * (1 - lr * wd);
        m[i] = b1 * m[i]! + (1 - b1) * g;
        v[i] = b2 * v[i]! + (1 - b2) * g * g;
        p[i] = p[i]! - (lr * (m[i]! / (1 - b1 ** t))) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + eps);
      }
      [...s.params.get("w")!.data].forEach((got, i) => expect(got, `step ${t}, w[${i}]`).toBeCloseTo(p[i]!, 13));
    }
  });
});

// std.layers.dropout reads training(): in a train entry it zeroes about `rate` of the elements and scales the rest
// by 1/(1 − rate); in a plain entry it is the identity.
describe("training() and std.layers.dropout", () => {
  const program = lowerSource("dropout-probe", `
from std.layers import dropout
from std.optim import Sgd
model Drop {
  param w: f32[1] = 1.0
  train fit<B>(x: f32[B, 64]) -> { loss: f32, dropped: f32, off_scale: f32, mode: f32 } minimize loss with Sgd(lr = 0.1) {
    let d = dropout(x * w, 0.25)
    { loss: mean(d * d), dropped: mean(select(d == 0.0, 1.0, 0.0)), off_scale: max(abs(select(d == 0.0, 0.0, d - x * w / 0.75))), mode: training() }
  }
  entry apply<B>(x: f32[B, 64]) -> f32[B, 64] { dropout(x, 0.25) }
  entry mode() -> f32 { training() }
}
`, 8);
  const x: Tensor = { dtype: "f32", shape: [8, 64], data: Float64Array.from({ length: 512 }, (_, i) => 1 + (i % 7)) };

  test("in a train entry: training() is 1, a quarter of the elements dropped, the rest scaled by 4/3", () => {
    const s = new ReferenceSession(program, { precision: "f64", seed: 3 });
    const m = s.trainStep("fit", new Map([["x", x]]));
    expect(m.get("mode")).toBe(1);
    // 512 draws: the fraction's standard deviation is 0.019.
    expect(m.get("dropped")).toBeGreaterThan(0.25 - 0.08);
    expect(m.get("dropped")).toBeLessThan(0.25 + 0.08);
    expect(m.get("off_scale")).toBeLessThan(1e-12);
  });

  test("in a plain entry: training() is 0 and dropout is the identity, with no random draw left in the graph", () => {
    const s = new ReferenceSession(program, { precision: "f64", seed: 3 });
    expect(s.run("mode", new Map(), 1).get("result")!.data[0]).toBe(0);
    expect([...s.run("apply", new Map([["x", x]]), 1).get("result")!.data]).toEqual([...x.data]);
    expect(program.entries.find((e) => e.name === "apply")!.graph.nodes.some((n) => n.op.kind === "random")).toBe(false);
  });
});
