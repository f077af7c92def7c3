// Data parallelism against one big batch. The oracle is the reference interpreter in float64: the shards' steps
// (each its gradients graph, the mean of what they reduce, then the update) must give what one process gives
// for the whole batch, to rounding, which holds only if every example sees the same noise and the same
// diffusion time in both (random draws split by rows, low-discrepancy times over the global batch).
import { describe, expect, test } from "vitest";
import { lowerProgram, type Program } from "../compiler/lower.js";
import { splitAtAllReduce } from "../compiler/parallel.js";
import { GraphBuilder } from "../compiler/ir.js";
import { diskHost, type SourceHost } from "../dsl/loader.js";
import { ReferenceSession } from "../runtime/reference.js";
import type { Tensor } from "../runtime/tensor.js";

const SMALL = { Width: 16, PriorWidth: 8 };

/** Deterministic pseudo-random images in [-1, 1] for an entry's first input at `rows` rows. */
function images(program: Program, entry: string, rows: number, seed: number): Map<string, Tensor> {
  const spec = program.entries.find((e) => e.name === entry)!.inputs[0]!;
  const shape = [rows, ...spec.shape.slice(1)];
  const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
  let s = seed;
  for (let i = 0; i < data.length; i++) data[i] = ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  return new Map([[spec.name, { dtype: "f32", shape, data }]]);
}

function rows(t: Tensor, start: number, count: number): Tensor {
  const per = t.data.length / t.shape[0]!;
  return { ...t, shape: [count, ...t.shape.slice(1)], data: t.data.slice(start * per, (start + count) * per) };
}

function mean(ts: readonly Tensor[]): Tensor {
  const data = new Float64Array(ts[0]!.data.length);
  for (const t of ts) t.data.forEach((v, i) => (data[i]! += v / ts.length));
  return { ...ts[0]!, data };
}

function maxRelativeDifference(a: Tensor, b: Tensor): number {
  let worst = 0;
  a.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b.data[i]!) / Math.max(1e-3, Math.abs(b.data[i]!)))));
  return worst;
}

// Clipping by global norm in a data-parallel step must use the norm of the averaged gradients, not a shard's own.
const CLIPPED = "test/clipped.ul";
const clipped: SourceHost = {
  ...diskHost,
  readFile: (p) =>
    p.endsWith(CLIPPED)
      ? `from std.layers import Linear, silu
from std.optim import AdamW
model Clipped {
  first: Linear<784, 16>
  second: Linear<16, 784>
  train fit<B>(x: f32[B, 1, 28, 28]) -> { loss: f32 } minimize loss with AdamW(lr = 1e-2, max_grad_norm = 0.01) {
    let r = second(silu(first(reshape(x, [B, 784])))) - reshape(x, [B, 784])
    { loss: mean(r * r) }
  }
}
`
      : diskHost.readFile(p),
};

describe("a data-parallel step equals one big batch (float64 reference)", () => {
  for (const [path, entry, host] of [
    ["models/ul_tiny.ul", "fit", diskHost],
    ["models/vae_tiny.ul", "fit", diskHost],
    [CLIPPED, "fit", clipped],
  ] as const) {
    test(`${path}, ${entry}: 2 shards of 2 and 1 process of 4, two steps`, () => {
      const whole = new ReferenceSession(lowerProgram(path, { bindings: { ...SMALL, B: 4 }, host }), { precision: "f64", seed: 7 });
      const shards = [0, 1].map((index) => new ReferenceSession(lowerProgram(path, { bindings: { ...SMALL, B: 2 }, host, shard: { index, count: 2, batch: "B" } }), { precision: "f64", seed: 7 }));
      for (const [name, p] of whole.params) for (const s of shards) expect(maxRelativeDifference(s.params.get(name)!, p), name).toBe(0);
      for (let step = 1; step <= 2; step++) {
        const batch = images(whole.program, entry, 4, step);
        const metrics = whole.trainStep(entry, batch);
        const halves = shards.map((s, i) => s.trainGradients(entry, new Map([...batch].map(([k, t]) => [k, rows(t, 2 * i, 2)]))));
        const reduced = new Map([...halves[0]!.keys()].map((k) => [k, k.startsWith("reduce.") ? mean(halves.map((h) => h.get(k)!)) : halves[0]!.get(k)!]));
        const got = shards.map((s) => s.trainUpdate(entry, reduced));
        for (const [name, value] of metrics) for (const g of got) expect(Math.abs(g.get(name)! - value), `${name} at step ${step}`).toBeLessThan(1e-12 * Math.max(1, Math.abs(value)));
        for (const [name, p] of whole.params) for (const s of shards) expect(maxRelativeDifference(s.params.get(name)!, p), `${name} at step ${step}`).toBeLessThan(1e-9);
      }
    });
  }

  test("a shard's random draws that follow the batch are its rows of the global draw; the others are shared", () => {
    const path = "models/ul_tiny.ul";
    const whole = lowerProgram(path, { bindings: { ...SMALL, B: 4 } });
    const shard = lowerProgram(path, { bindings: { ...SMALL, B: 2 }, shard: { index: 1, count: 2, batch: "B" } });
    const draws = (p: Program) => p.entries.find((e) => e.name === "fit")!.graph.nodes.filter((n) => n.op.kind === "random");
    const global = new Map(draws(whole).map((n) => [(n.op as { key: number }).key, n.shape]));
    const local = draws(shard);
    expect(local.length).toBe(global.size);
    const split = local.filter((n) => n.shape[0] === 4 && global.get((n.op as { key: number }).key)![0] === 4);
    const shared = local.filter((n) => n.shape.length === 1 && n.shape[0] === 1);
    expect(split.length).toBeGreaterThan(0); // the noise of every example
    expect(shared.length).toBeGreaterThan(0); // rand([1]): the low-discrepancy offset, one for the whole batch
    expect(split.length + shared.length).toBe(local.length);
  });
});

describe("splitAtAllReduce", () => {
  test("hands the reduced values and the values both halves need across, and refuses a second round", () => {
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "x" }, [], [3]);
    const w = b.add({ kind: "param", name: "w" }, [], [3]);
    const prod = b.add({ kind: "binary", fn: "mul" }, [x, w]);
    const g = b.add({ kind: "all_reduce" }, [prod]);
    const out = b.add({ kind: "binary", fn: "sub" }, [w, b.add({ kind: "binary", fn: "mul" }, [g, prod])]);
    const split = splitAtAllReduce(b.build([{ name: "w", node: out }]));
    expect(split.reduced).toEqual(["reduce.0"]);
    expect(split.carried).toEqual(["carry.0"]); // prod, read by the update as computed
    expect(split.gradients.outputs.map((o) => o.name)).toEqual(["reduce.0", "carry.0"]);
    expect(split.update.nodes.filter((n) => n.op.kind === "input").map((n) => (n.op as { name: string }).name).sort()).toEqual(["carry.0", "reduce.0"]);

    const c = new GraphBuilder();
    const y = c.add({ kind: "input", name: "y" }, [], [2]);
    const twice = c.add({ kind: "all_reduce" }, [c.add({ kind: "all_reduce" }, [y])]);
    expect(() => splitAtAllReduce(c.build([{ name: "y", node: twice }]))).toThrow(/feeds another/);
  });
});
