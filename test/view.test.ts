// Movement ops as views: a random chain of reshape/transpose/broadcast/slice read through its composed view
// (what `interpret` does) equals applying the ops one at a time with copies (what `evaluate` does).
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { GraphBuilder, size } from "../compiler/ir.js";
import { contiguousView, movementChains, reshapeView } from "../compiler/view.js";
import { evaluate, interpret } from "../runtime/interpreter.js";

type Step = { kind: "transpose"; seed: number } | { kind: "reshape"; seed: number } | { kind: "broadcast"; seed: number } | { kind: "slice"; seed: number };

/** Applies a step to `x` in the builder, choosing its attributes from the seed and the current shape. */
function apply(b: GraphBuilder, x: number, step: Step): number {
  const shape = b.node(x).shape;
  const r = shape.length;
  const pick = (n: number) => step.seed % n;
  switch (step.kind) {
    case "transpose": {
      const perm = [...shape.keys()];
      for (let i = r - 1; i > 0; i--) {
        const j = (step.seed >> i) % (i + 1);
        [perm[i], perm[j]] = [perm[j]!, perm[i]!];
      }
      return b.add({ kind: "transpose", perm }, [x]);
    }
    case "reshape": {
      // Merge two adjacent axes, or split one with an even size, or add a leading 1.
      const n = size(shape);
      const choice = pick(3);
      if (choice === 0 && r >= 2) {
        const a = pick(r - 1);
        return b.add({ kind: "reshape" }, [x], [...shape.slice(0, a), shape[a]! * shape[a + 1]!, ...shape.slice(a + 2)]);
      }
      const even = shape.findIndex((d) => d % 2 === 0);
      if (choice === 1 && even >= 0) return b.add({ kind: "reshape" }, [x], [...shape.slice(0, even), 2, shape[even]! / 2, ...shape.slice(even + 1)]);
      return b.add({ kind: "reshape" }, [x], n === 1 ? [1] : [1, ...shape]);
    }
    case "broadcast": {
      const ones = shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
      if (ones.length === 0) return b.add({ kind: "broadcast" }, [b.add({ kind: "reshape" }, [x], [1, ...shape])], [2 + pick(2), ...shape]);
      const axis = ones[pick(ones.length)]!;
      return b.add({ kind: "broadcast" }, [x], shape.map((d, i) => (i === axis ? 2 + pick(3) : d)));
    }
    case "slice": {
      const axis = pick(r);
      const d = shape[axis]!;
      if (d === 1) return x;
      const start = pick(d - 1);
      const end = start + 1 + ((step.seed >> 3) % (d - start));
      return b.add({ kind: "slice", axis, start, end }, [x]);
    }
  }
}

const stepArb: fc.Arbitrary<Step> = fc.record({ kind: fc.constantFrom("transpose", "reshape", "broadcast", "slice"), seed: fc.nat(1 << 20) }) as fc.Arbitrary<Step>;

describe("movement chains read through one view", () => {
  test("interpret (composed views) equals evaluate (one op at a time)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }), fc.array(stepArb, { minLength: 1, maxLength: 8 }), (shape, steps) => {
        const b = new GraphBuilder();
        const x = b.add({ kind: "input", name: "x" }, [], shape);
        // An element-wise op first, so that the chain's source is computed, not an input.
        let y = b.add({ kind: "unary", fn: "neg" }, [x]);
        for (const s of steps) y = apply(b, y, s);
        const g = b.build([{ name: "y", node: y }]);
        const data = Float64Array.from({ length: size(shape) }, (_, i) => i * 1.5 - 3);
        const env = { inputs: new Map([["x", { dtype: "f32" as const, shape, data }]]) };
        const opts = { precision: "f64" as const, seed: 0, step: 0 };
        const viaViews = interpret(g, env, opts).get("y")!;
        const oneByOne = evaluate(g, env, opts)[y]!;
        expect(viaViews.shape).toEqual(oneByOne.shape);
        expect([...viaViews.data]).toEqual([...oneByOne.data]);
      }),
      { numRuns: 400, seed: 42 },
    );
  });

  test("a chain composes back to its first non-movement node", () => {
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "x" }, [], [2, 3, 4]);
    const e = b.add({ kind: "unary", fn: "exp" }, [x]);
    const t = b.add({ kind: "transpose", perm: [2, 0, 1] }, [e]);
    const s = b.add({ kind: "slice", axis: 0, start: 1, end: 3 }, [t]);
    const chains = movementChains(b.build([{ name: "s", node: s }]));
    expect(chains[s]).toEqual({ source: e, view: { shape: [2, 2, 3], strides: [1, 12, 4], offset: 1 } });
    expect(chains[e]).toBeUndefined();
  });

  test("a reshape that strides cannot express breaks the chain", () => {
    // Flattening a transposed matrix needs a copy; reshaping it by splitting an axis does not.
    const t = { shape: [3, 2], strides: [1, 3], offset: 0 };
    expect(reshapeView(t, [6])).toBeUndefined();
    expect(reshapeView(t, [3, 2, 1])).toEqual({ shape: [3, 2, 1], strides: [1, 3, 0], offset: 0 });
    expect(reshapeView(contiguousView([2, 3, 4]), [6, 4])).toEqual({ shape: [6, 4], strides: [4, 1], offset: 0 });
    expect(reshapeView(contiguousView([6, 4]), [2, 3, 2, 2])).toEqual({ shape: [2, 3, 2, 2], strides: [12, 4, 2, 1], offset: 0 });
  });
});
