// Symbolic checking agrees with concrete checking: an entry's type checked with B symbolic, then B replaced by
// a number, equals the type checked with `--bind B=n`. The oracle is the checker run on concrete dims, which
// needs no symbolic algebra at all.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { checkFiles } from "../dsl/check.js";
import { Dim } from "../dsl/dims.js";

const MODELS = ["models/ul_tiny.ul", "models/ul_small.ul", "models/classifier.ul"];

describe("symbolic dims", () => {
  const symbolic = checkFiles(MODELS);

  test("the models check clean with B symbolic", () => {
    expect(symbolic.diagnostics).toEqual([]);
    expect(symbolic.entries.length).toBeGreaterThan(10);
  });

  test("substituting B in the symbolic entry types gives the types checked with B bound", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 512 }), (b) => {
        const bound = checkFiles(MODELS, { bindings: { B: b } });
        expect(bound.diagnostics).toEqual([]);
        const substitute = (text: string) => text.replace(/\bB\b/g, String(b));
        const expected = symbolic.entries.map((e) => ({ ...e, inputs: e.inputs.map((i) => ({ ...i, type: substitute(i.type) })), output: substitute(e.output) }));
        expect(bound.entries).toEqual(expected);
      }),
      { numRuns: 8, seed: 20261125 },
    );
  });
});

describe("Dim algebra against plain integer arithmetic", () => {
  // Random expressions over two symbols, built both as Dims and as functions of the symbols' values.
  type Expr = { dim: Dim; at: (h: number, w: number) => number };
  const leaf: fc.Arbitrary<Expr> = fc.oneof(
    fc.integer({ min: -6, max: 6 }).map((n) => ({ dim: Dim.const(n), at: () => n })),
    fc.constant({ dim: Dim.symbol("H"), at: (h: number) => h }),
    fc.constant({ dim: Dim.symbol("W"), at: (_h: number, w: number) => w }),
  );
  const expr: fc.Arbitrary<Expr> = fc.letrec<{ e: Expr }>((tie) => ({
    e: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      leaf,
      fc.tuple(tie("e"), tie("e")).map(([a, b]) => ({ dim: a.dim.add(b.dim), at: (h: number, w: number) => a.at(h, w) + b.at(h, w) })),
      fc.tuple(tie("e"), tie("e")).map(([a, b]) => ({ dim: a.dim.sub(b.dim), at: (h: number, w: number) => a.at(h, w) - b.at(h, w) })),
      fc.tuple(tie("e"), tie("e")).map(([a, b]) => ({ dim: a.dim.mul(b.dim), at: (h: number, w: number) => a.at(h, w) * b.at(h, w) })),
    ),
  })).e;

  test("equal as polynomials exactly when equal at many points", () => {
    fc.assert(
      fc.property(expr, expr, (a, b) => {
        const verdict = a.dim.compare(b.dim);
        const points = [
          [2, 3],
          [5, 7],
          [11, 4],
          [13, 17],
          [1, 19],
          [23, 2],
        ] as const;
        const agree = points.every(([h, w]) => a.at(h, w) === b.at(h, w));
        // Two polynomials of degree ≤ 8 in two variables that agree on these points are not necessarily
        // equal, but ones that differ at a point are surely different: check that direction strictly.
        if (!agree) expect(verdict).toBe("different");
        if (verdict === "equal") expect(agree).toBe(true);
      }),
      { numRuns: 500, seed: 7 },
    );
  });

  test("constants fold to their value", () => {
    fc.assert(
      fc.property(fc.integer({ min: -50, max: 50 }), fc.integer({ min: 1, max: 9 }), (n, d) => {
        expect(Dim.const(n).add(Dim.const(d)).value).toBe(n + d);
        expect(Dim.const(n).mul(Dim.const(d)).value).toBe(n * d);
        expect(Dim.const(n).floorDiv(Dim.const(d))?.value).toBe(Math.floor(n / d));
        expect(Dim.const(n).mod(Dim.const(d))?.value).toBe(((n % d) + d) % d);
        expect(Dim.const(n * d).divExact(Dim.const(d))?.value).toBe(n);
        if (n % d !== 0) expect(Dim.const(n).divExact(Dim.const(d))).toBeUndefined();
      }),
      { numRuns: 300, seed: 3 },
    );
  });

  test("exact division of a multiple, and opaque quotients compare as unknown", () => {
    const h = Dim.symbol("H");
    expect(h.mul(Dim.const(6)).divExact(Dim.const(3))!.compare(h.mul(Dim.const(2)))).toBe("equal");
    expect(h.mul(Dim.symbol("C")).divExact(Dim.symbol("C"))!.compare(h)).toBe("equal");
    const q = h.add(Dim.const(1)).divExact(Dim.const(2))!;
    expect(q.compare(h)).toBe("unknown");
    expect(q.toString()).toBe("(H + 1)/(2)");
  });
});
