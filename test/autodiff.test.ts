// Reverse-mode autodiff (compiler/autodiff.ts) against finite differences, in the manner of JAX's check_grads:
//
//   (a) ⟨∇f(x), t⟩ = (f(x + εt) − f(x − εt)) / 2ε       for f(x) = ⟨c, op(x…)⟩, random c and direction t;
//   (b) ⟨t, vjp(c)⟩ = ⟨jvp(t), c⟩                          with jvp(t) = (op(x + εt) − op(x − εt)) / 2ε,
//       where vjp(c) is `vjp` seeded with c on the (non-scalar) output itself.
//
// Everything is evaluated by the reference interpreter in float64. Shapes are random (size-1 dims and odd sizes
// included) and values are drawn from each op's safe domain: positive for log/sqrt/rsqrt and pow's base, away
// from 0 for abs and divisors, away from integers for floor, away from ties for maximum/minimum/compare and
// reduce max; ties and kinks get their own exact tests below.
//
// Tolerance of (a) and (b) (the same): |lhs - rhs| <= 1e-7 * scale, with
//   scale = sum_i <|g_i|, |t_i|> + sum_j |c_j * y_j|        (absolute sums, so cancellation cannot shrink it).
// The central difference has truncation error eps^2/6 * |D^3 f[t, t, t]|, at most ~2e-11 * (|f'''| / |f'|) *
// sum|g t| here (eps = 1e-5, |t| <= 1), and the domains keep |f'''| / |f'| below ~100 (rsqrt at x >= 0.3, a/b at
// |b| >= 0.3, a^e at a >= 0.5), so below ~2e-9 relative; it is zero for the linear and bilinear ops (matmul,
// conv, every data-movement op), whose central differences are exact. The rounding error is
// ~ u * (a few ops) * sum|c y| / eps ~ 1e-16 * 10 / 1e-5 * sum|c y| = 1e-10 * sum|c y|. Measured over many runs,
// the worst relative error is ~1e-9 (pow with a fixed exponent, div, rsqrt: truncation) and ~1e-10 elsewhere,
// so 1e-7 leaves a factor of 100, while a wrong rule (a sign, a factor, a transposed index) is off by O(1).
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { VJP_RULES, vjp } from "../compiler/autodiff.js";
import {
  BINARY_FNS,
  COMPARE_FNS,
  GraphBuilder,
  IrError,
  isRounding,
  OP_KINDS,
  ROUNDING_FNS,
  UNARY_FNS,
  size,
  verify,
  windowOut,
  type BinaryFn,
  type DType,
  type Graph,
  type OpKind,
  type RoundingFn,
  type UnaryFn,
} from "../compiler/ir.js";
import { evaluate } from "../runtime/interpreter.js";
import { tensorOf, type Tensor } from "../runtime/tensor.js";
import { mulberry32, type Rng } from "./support/prng.js";

const EPS = 1e-5;
const RTOL = 1e-7;
const RUNS = 100;
const OPTS = { precision: "f64", seed: 1, step: 0 } as const;

// ---------------------------------------------------------------------------------------------------------
// Random values: a seeded generator (fast-check draws the seed, and the shapes, which it shrinks).

const uni = (r: Rng, lo: number, hi: number) => lo + (hi - lo) * r();
const sign = (r: Rng) => (r() < 0.5 ? -1 : 1);
const D = {
  any: (r: Rng) => uni(r, -2, 2),
  pos: (r: Rng) => uni(r, 0.3, 3),
  awayFromZero: (r: Rng) => sign(r) * uni(r, 0.1, 2),
  awayFromInt: (r: Rng) => Math.floor(uni(r, -3, 3)) + uni(r, 0.1, 0.9),
};
const fill = (shape: readonly number[], r: Rng, gen: (r: Rng) => number) => Array.from({ length: size(shape) }, () => gen(r));

/** Distinct values at least 0.04 apart (no ties for reduce max), in random order. */
function distinct(shape: readonly number[], r: Rng): number[] {
  const n = size(shape);
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.map((k) => (k - n / 2) * 0.05 + uni(r, 0, 0.01));
}

// ---------------------------------------------------------------------------------------------------------
// The checker.

interface Arg {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype?: DType;
  /** Differentiate with respect to it (default true). */
  readonly diff?: boolean;
}

interface Case {
  readonly args: readonly Arg[];
  /** The arguments' values, drawn jointly (so that e.g. b can be kept away from a). */
  readonly values: (r: Rng) => number[][];
  /** Adds the function under test; returns its output. */
  readonly build: (b: GraphBuilder, args: number[]) => number;
}

const b_ = {
  un: (b: GraphBuilder, fn: UnaryFn, x: number) => b.add({ kind: "unary", fn }, [x]),
  bin: (b: GraphBuilder, fn: BinaryFn, x: number, y: number) => b.add({ kind: "binary", fn }, [x, y]),
  sumAll: (b: GraphBuilder, x: number) => {
    const r = b.node(x).shape.length;
    return r === 0 ? x : b.add({ kind: "reduce", fn: "sum", axes: [...Array(r).keys()] }, [x]);
  },
  bcast: (b: GraphBuilder, x: number, shape: readonly number[]) => b.add({ kind: "broadcast" }, [x], shape),
};

function run(g: Graph, inputs: Map<string, Tensor>): Tensor[] {
  return evaluate(g, { inputs }, OPTS);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const absDot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! * b[i]!);
  return s;
};

/** Checks (a) and (b) for one case at values drawn from `seed`; throws with the numbers when either fails. */
function checkCase(cs: Case, seed: number): void {
  const r = mulberry32(seed);
  const b = new GraphBuilder();
  const ids = cs.args.map((a) => b.add({ kind: "input", name: a.name }, [], a.shape, a.dtype ?? "f32"));
  const y = cs.build(b, ids);
  const yNode = b.node(y);
  const c = b.add({ kind: "input", name: "__c" }, [], yNode.shape, yNode.dtype);
  const f = b_.sumAll(b, b_.bin(b, "mul", y, c));
  const wrt = ids.filter((_, i) => cs.args[i]!.diff !== false);
  const gradA = vjp(b, f, wrt);
  const gradB = vjp(b, y, wrt, c);
  const graph = b.build([]);
  verify(graph);

  const xs = cs.values(r);
  const cs_ = fill(yNode.shape, r, (r) => uni(r, -1, 1));
  const ts = cs.args.map((a) => (a.diff === false ? undefined : fill(a.shape, r, (r) => uni(r, -1, 1))));
  const inputs = (h: number) => {
    const m = new Map<string, Tensor>();
    cs.args.forEach((a, i) => {
      const t = ts[i];
      m.set(a.name, tensorOf(a.dtype ?? "f32", a.shape, t ? xs[i]!.map((v, k) => v + h * t[k]!) : xs[i]!));
    });
    m.set("__c", tensorOf(yNode.dtype, yNode.shape, cs_));
    return m;
  };

  const full = run(graph, inputs(0));
  const forward: Graph = { nodes: b.nodes.slice(0, f + 1), outputs: [] };
  const plus = run(forward, inputs(EPS));
  const minus = run(forward, inputs(-EPS));

  const tWrt = ts.filter((t): t is number[] => t !== undefined);
  const scale = tWrt.reduce((s, t, i) => s + absDot(full[gradA[i]!]!.data, t), 0) + absDot(full[y]!.data, cs_);
  const tol = RTOL * scale + 1e-300;

  // (a) reverse mode against a central difference of f along t
  const lhsA = tWrt.reduce((s, t, i) => s + dot(full[gradA[i]!]!.data, t), 0);
  const rhsA = (plus[f]!.data[0]! - minus[f]!.data[0]!) / (2 * EPS);
  // (b) ⟨t, vjp(c)⟩ = ⟨jvp(t), c⟩
  const lhsB = tWrt.reduce((s, t, i) => s + dot(t, full[gradB[i]!]!.data), 0);
  const jvp = Array.from(plus[y]!.data, (p, k) => (p - minus[y]!.data[k]!) / (2 * EPS));
  const rhsB = dot(jvp, cs_);
  for (const [what, lhs, rhs] of [
    ["(a) <grad f, t> vs central difference", lhsA, rhsA],
    ["(b) <t, vjp(c)> vs <jvp(t), c>", lhsB, rhsB],
  ] as const) {
    if (!(Math.abs(lhs - rhs) <= tol)) {
      throw new Error(`${what}: ${lhs} vs ${rhs} (difference ${Math.abs(lhs - rhs)}, tolerance ${tol})\nshapes: ${cs.args.map((a) => `${a.name}[${a.shape}]`).join(", ")}`);
    }
  }
}

/** Every property test, so that the coverage test can list what they differentiate through. */
const PROPERTIES: { readonly name: string; readonly arb: fc.Arbitrary<Case> }[] = [];

/** Declares a property test: `checkCase` on `runs` random cases of `arb`. */
function prop(name: string, arb: fc.Arbitrary<Case>, runs = RUNS): void {
  PROPERTIES.push({ name, arb });
  test(name, () =>
    fc.assert(
      fc.property(arb, fc.integer({ min: 0, max: 2 ** 31 - 1 }), (cs, seed) => checkCase(cs, seed)),
      { numRuns: runs },
    ),
  );
}

/** The op kinds (and `unary:fn`, `binary:fn`, `reduce:fn`) that a case's function differentiates through. */
function differentiated(cs: Case): Set<string> {
  const b = new GraphBuilder();
  const ids = cs.args.map((a) => b.add({ kind: "input", name: a.name }, [], a.shape, a.dtype ?? "f32"));
  const first = b.nodes.length;
  const y = cs.build(b, ids);
  const out = new Set<string>();
  for (let i = first; i <= y; i++) {
    const op = b.node(i).op;
    if (VJP_RULES[op.kind] === "leaf") continue;
    out.add(op.kind);
    if (op.kind === "unary" || op.kind === "binary" || op.kind === "reduce") out.add(`${op.kind}:${op.fn}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Shapes.

/** A dim: often 1, otherwise 1..5 (odd sizes included). */
const dim = fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 5 }));
const shapeArb = (minRank: number, maxRank: number) => fc.array(dim, { minLength: minRank, maxLength: maxRank });

/**
 * The roundings (round_tf32, round_bf16) are piecewise constant, and their rule straight-through (the precision
 * pass adds them after differentiation): no finite difference checks them; "conventions" below checks their rule.
 */
const DIFFERENTIABLE_UNARY = UNARY_FNS.filter((f): f is Exclude<UnaryFn, RoundingFn> => !isRounding(f));

const unaryDomain: Record<Exclude<UnaryFn, RoundingFn>, (r: Rng) => number> = {
  neg: D.any,
  exp: D.any,
  log: D.pos,
  sqrt: D.pos,
  rsqrt: D.pos,
  sin: (r) => uni(r, -3, 3),
  cos: (r) => uni(r, -3, 3),
  tanh: D.any,
  sigmoid: (r) => uni(r, -4, 4),
  softplus: (r) => uni(r, -4, 4),
  abs: D.awayFromZero,
  floor: D.awayFromInt,
};

/**
 * Values of (a, b) for each binary fn: divisors away from 0, pow's base positive, max/min away from ties. The
 * bounds (|divisor| >= 0.3, base >= 0.5) keep |f'''| / |f'| below ~100 (for a/b in b it is 6/b^2, for a^e in a
 * it is (e-1)(e-2)/a^2), which the tolerance assumes.
 */
const binaryDomain: Record<BinaryFn, (r: Rng) => [number, number]> = {
  add: (r) => [D.any(r), D.any(r)],
  sub: (r) => [D.any(r), D.any(r)],
  mul: (r) => [D.any(r), D.any(r)],
  div: (r) => [D.any(r), sign(r) * uni(r, 0.3, 2)],
  pow: (r) => [uni(r, 0.5, 2.5), uni(r, -2, 2)],
  maximum: (r) => {
    const a = D.any(r);
    return [a, a + sign(r) * uni(r, 0.05, 1)];
  },
  minimum: (r) => {
    const a = D.any(r);
    return [a, a + sign(r) * uni(r, 0.05, 1)];
  },
};
/** For f(x, x): the domain of x. maximum(x, x) and minimum(x, x) are a tie everywhere, yet smooth (= x). */
const sameDomain: Record<BinaryFn, (r: Rng) => number> = {
  add: D.any,
  sub: D.any,
  mul: D.any,
  div: D.awayFromZero,
  pow: (r) => uni(r, 0.5, 2.5),
  maximum: D.any,
  minimum: D.any,
};

const one = (shape: readonly number[], diff = true): Arg => ({ name: "x", shape, diff });

// ---------------------------------------------------------------------------------------------------------

describe("VJP rules against finite differences (float64)", () => {
  describe.each(DIFFERENTIABLE_UNARY)("unary %s", (fn) => {
    prop(
      "(a) and (b)",
      shapeArb(0, 4).map(
        (shape): Case => ({
          args: [one(shape)],
          values: (r) => [fill(shape, r, unaryDomain[fn])],
          build: (b, [x]) => b_.un(b, fn, x!),
        }),
      ),
    );
  });

  describe.each(BINARY_FNS)("binary %s", (fn) => {
    prop(
      "(a) and (b), distinct operands",
      shapeArb(0, 4).map(
        (shape): Case => ({
          args: [
            { name: "a", shape },
            { name: "b", shape },
          ],
          values: (r) => {
            const pairs = Array.from({ length: size(shape) }, () => binaryDomain[fn](r));
            return [pairs.map((p) => p[0]), pairs.map((p) => p[1])];
          },
          build: (b, [x, y]) => b_.bin(b, fn, x!, y!),
        }),
      ),
    );
    prop(
      "(a) and (b), the same node as both operands",
      shapeArb(0, 3).map(
        (shape): Case => ({
          args: [one(shape)],
          values: (r) => [fill(shape, r, sameDomain[fn])],
          build: (b, [x]) => b_.bin(b, fn, x!, x!),
        }),
      ),
    );
  });

  prop(
    "binary pow with the exponent held fixed (only the base differentiated)",
    shapeArb(0, 3).map(
      (shape): Case => ({
        args: [
          { name: "a", shape },
          { name: "e", shape, diff: false },
        ],
        values: (r) => [fill(shape, r, (r) => uni(r, 0.5, 2.5)), fill(shape, r, (r) => uni(r, -3, 3))],
        build: (b, [x, e]) => b_.bin(b, "pow", x!, e!),
      }),
    ),
  );

  prop(
    "compare: no gradient through the condition (zero, as the finite difference away from ties)",
    fc.tuple(shapeArb(0, 3), fc.constantFrom(...COMPARE_FNS)).map(
      ([shape, fn]): Case => ({
        args: [
          { name: "a", shape },
          { name: "b", shape },
        ],
        values: (r) => {
          const a = fill(shape, r, D.any);
          return [a, a.map((v) => v + sign(r) * uni(r, 0.05, 1))];
        },
        build: (b, [x, y]) => {
          const cond = b.add({ kind: "compare", fn }, [x!, y!]);
          const one = b.add({ kind: "constant", value: 1.5 }, [], shape);
          const two = b.add({ kind: "constant", value: -0.5 }, [], shape);
          return b.add({ kind: "select" }, [cond, one, two]);
        },
      }),
    ),
  );

  prop(
    "select",
    fc.tuple(shapeArb(0, 4), fc.boolean()).map(
      ([shape, same]): Case => ({
        args: [{ name: "cond", shape, dtype: "bool", diff: false }, { name: "a", shape }, ...(same ? [] : [{ name: "b", shape }])],
        values: (r) => [fill(shape, r, (r) => (r() < 0.5 ? 1 : 0)), fill(shape, r, D.any), fill(shape, r, D.any)].slice(0, same ? 2 : 3),
        build: (b, [c, x, y]) => b.add({ kind: "select" }, [c!, x!, same ? x! : y!]),
      }),
    ),
  );

  for (const fn of ["sum", "max"] as const) prop(
    "reduce %s over random axes".replace("%s", fn),
    shapeArb(1, 4)
      .chain((shape) => fc.tuple(fc.constant(shape), fc.subarray([...shape.keys()])))
      .map(
        ([shape, axes]): Case => ({
          args: [one(shape)],
          values: (r) => [fn === "max" ? distinct(shape, r) : fill(shape, r, D.any)],
          build: (b, [x]) => b.add({ kind: "reduce", fn, axes }, [x!]),
        }),
      ),
  );

  prop(
    "matmul with batch dims",
    fc.tuple(shapeArb(0, 2), dim, dim, dim).map(
      ([batch, m, k, n]): Case => ({
        args: [
          { name: "a", shape: [...batch, m, k] },
          { name: "b", shape: [...batch, k, n] },
        ],
        values: (r) => [fill([...batch, m, k], r, D.any), fill([...batch, k, n], r, D.any)],
        build: (b, [x, y]) => b.add({ kind: "matmul" }, [x!, y!]),
      }),
    ),
  );

  /** conv2d geometry: stride up to 3 (so some input rows are never read), padding up to 2, groups 1 or 2. */
  const convArb = fc
    .record({
      n: fc.integer({ min: 1, max: 2 }),
      groups: fc.integer({ min: 1, max: 2 }),
      cinG: fc.integer({ min: 1, max: 2 }),
      coutG: fc.integer({ min: 1, max: 3 }),
      kh: fc.integer({ min: 1, max: 3 }),
      kw: fc.integer({ min: 1, max: 3 }),
      stride: fc.integer({ min: 1, max: 3 }),
      padding: fc.integer({ min: 0, max: 2 }),
      extraH: fc.integer({ min: 0, max: 4 }),
      extraW: fc.integer({ min: 0, max: 4 }),
    })
    .map((p) => {
      const h = Math.max(1, p.kh - 2 * p.padding) + p.extraH;
      const w = Math.max(1, p.kw - 2 * p.padding) + p.extraW;
      const cin = p.cinG * p.groups;
      const cout = p.coutG * p.groups;
      const ho = windowOut(h, p.kh, p.stride, p.padding);
      const wo = windowOut(w, p.kw, p.stride, p.padding);
      return {
        op: { stride: p.stride, padding: p.padding, groups: p.groups },
        x: [p.n, cin, h, w],
        w: [cout, p.cinG, p.kh, p.kw],
        y: [p.n, cout, ho, wo],
      };
    });

  prop(
    "conv2d",
    convArb.map(
      (g): Case => ({
        args: [
          { name: "x", shape: g.x },
          { name: "w", shape: g.w },
        ],
        values: (r) => [fill(g.x, r, D.any), fill(g.w, r, D.any)],
        build: (b, [x, w]) => b.add({ kind: "conv2d", ...g.op }, [x!, w!]),
      }),
    ),
  );

  prop(
    "conv2d_grad_input (as a function of dy and w)",
    convArb.map(
      (g): Case => ({
        args: [
          { name: "dy", shape: g.y },
          { name: "w", shape: g.w },
        ],
        values: (r) => [fill(g.y, r, D.any), fill(g.w, r, D.any)],
        build: (b, [dy, w]) => b.add({ kind: "conv2d_grad_input", ...g.op }, [dy!, w!], g.x),
      }),
    ),
  );

  prop(
    "conv2d_grad_weight (as a function of x and dy)",
    convArb.map(
      (g): Case => ({
        args: [
          { name: "x", shape: g.x },
          { name: "dy", shape: g.y },
        ],
        values: (r) => [fill(g.x, r, D.any), fill(g.y, r, D.any)],
        build: (b, [x, dy]) => b.add({ kind: "conv2d_grad_weight", ...g.op }, [x!, dy!], g.w),
      }),
    ),
  );

  prop(
    "reshape",
    fc.tuple(shapeArb(0, 4), fc.constantFrom("flat", "reverse", "insert1", "merge"), fc.nat()).map(([shape, mode, k]): Case => {
      const target =
        mode === "flat"
          ? [size(shape)]
          : mode === "reverse"
            ? [...shape].reverse()
            : mode === "insert1"
              ? [...shape.slice(0, k % (shape.length + 1)), 1, ...shape.slice(k % (shape.length + 1))]
              : shape.length >= 2
                ? [shape[0]! * shape[1]!, ...shape.slice(2)]
                : [];
      const to = size(target) === size(shape) ? target : [size(shape)];
      return {
        args: [one(shape)],
        values: (r) => [fill(shape, r, D.any)],
        build: (b, [x]) => b.add({ kind: "reshape" }, [x!], to),
      };
    }),
  );

  prop(
    "transpose",
    shapeArb(1, 4)
      .chain((shape) => fc.tuple(fc.constant(shape), fc.shuffledSubarray([...shape.keys()], { minLength: shape.length, maxLength: shape.length })))
      .map(
        ([shape, perm]): Case => ({
          args: [one(shape)],
          values: (r) => [fill(shape, r, D.any)],
          build: (b, [x]) => b.add({ kind: "transpose", perm }, [x!]),
        }),
      ),
  );

  prop(
    "broadcast (size-1 dims repeated)",
    shapeArb(0, 4)
      .chain((shape) => fc.tuple(fc.constant(shape), fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length })))
      .map(([shape, ones]): Case => {
        const from = shape.map((d, i) => (ones[i] ? 1 : d));
        return {
          args: [one(from)],
          values: (r) => [fill(from, r, D.any)],
          build: (b, [x]) => b.add({ kind: "broadcast" }, [x!], shape),
        };
      }),
  );

  prop(
    "slice",
    shapeArb(1, 4)
      .chain((shape) =>
        fc.integer({ min: 0, max: shape.length - 1 }).chain((axis) =>
          fc
            .integer({ min: 0, max: shape[axis]! - 1 })
            .chain((start) => fc.integer({ min: start + 1, max: shape[axis]! }).map((end) => ({ shape, axis, start, end }))),
        ),
      )
      .map(
        ({ shape, axis, start, end }): Case => ({
          args: [one(shape)],
          values: (r) => [fill(shape, r, D.any)],
          build: (b, [x]) => b.add({ kind: "slice", axis, start, end }, [x!]),
        }),
      ),
  );

  prop(
    "concat of 1 to 3 tensors (one of them possibly repeated)",
    shapeArb(1, 3)
      .chain((shape) =>
        fc.tuple(
          fc.constant(shape),
          fc.integer({ min: 0, max: shape.length - 1 }),
          fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
          fc.boolean(),
        ),
      )
      .map(([shape, axis, sizes, repeat]): Case => {
        const shapes = sizes.map((d) => shape.map((x, i) => (i === axis ? d : x)));
        return {
          args: shapes.map((s, i) => ({ name: `x${i}`, shape: s })),
          values: (r) => shapes.map((s) => fill(s, r, D.any)),
          build: (b, xs) => b.add({ kind: "concat", axis }, repeat ? [...xs, xs[0]!] : xs),
        };
      }),
  );

  prop(
    "pad (negative widths crop, as the interpreter defines)",
    shapeArb(0, 3)
      .chain((shape) =>
        fc.tuple(
          fc.constant(shape),
          fc.array(fc.tuple(fc.integer({ min: -2, max: 2 }), fc.integer({ min: -2, max: 2 })), { minLength: shape.length, maxLength: shape.length }),
          fc.double({ min: -2, max: 2, noNaN: true }),
        ),
      )
      .map(([shape, raw, value]): Case => {
        // Crop at most d - 1 in all, so that at least one input element survives on every axis.
        const widths = raw.map(([lo, hi], i) => {
          const l = Math.max(lo, -(shape[i]! - 1));
          return [l, Math.max(hi, -(shape[i]! - 1 + Math.min(l, 0)))] as const;
        });
        return {
          args: [one(shape)],
          values: (r) => [fill(shape, r, D.any)],
          build: (b, [x]) => b.add({ kind: "pad", widths, value }, [x!]),
        };
      }),
  );

  prop(
    "upsample",
    fc.tuple(shapeArb(2, 4), fc.integer({ min: 1, max: 3 })).map(
      ([shape, factor]): Case => ({
        args: [one(shape)],
        values: (r) => [fill(shape, r, D.any)],
        build: (b, [x]) => b.add({ kind: "upsample", factor }, [x!]),
      }),
    ),
  );

  /** avg_pool geometry: window 1..3, stride 1..3 (overlapping windows and skipped rows both occur). */
  const poolArb = fc
    .tuple(shapeArb(0, 2), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 }))
    .map(([lead, sz, stride, eh, ew]) => {
      const x = [...lead, sz + eh, sz + ew];
      const y = [...lead, windowOut(sz + eh, sz, stride, 0), windowOut(sz + ew, sz, stride, 0)];
      return { size: sz, stride, x, y };
    });

  prop(
    "avg_pool",
    poolArb.map(
      (p): Case => ({
        args: [one(p.x)],
        values: (r) => [fill(p.x, r, D.any)],
        build: (b, [x]) => b.add({ kind: "avg_pool", size: p.size, stride: p.stride }, [x!]),
      }),
    ),
  );

  prop(
    "avg_pool_grad",
    poolArb.map(
      (p): Case => ({
        args: [one(p.y)],
        values: (r) => [fill(p.y, r, D.any)],
        build: (b, [dy]) => b.add({ kind: "avg_pool_grad", size: p.size, stride: p.stride }, [dy!], p.x),
      }),
    ),
  );

  prop(
    "cast between float dtypes (f32 -> f16 -> f32 is the identity in the f64 interpreter)",
    shapeArb(0, 3).map(
      (shape): Case => ({
        args: [one(shape)],
        values: (r) => [fill(shape, r, D.any)],
        build: (b, [x]) => {
          const h = b.add({ kind: "cast" }, [x!], undefined, "f16");
          return b.add({ kind: "cast" }, [b_.un(b, "sin", h)], undefined, "f32");
        },
      }),
    ),
  );

  prop(
    "all_reduce (the identity in one process)",
    shapeArb(0, 3).map(
      (shape): Case => ({
        args: [one(shape)],
        values: (r) => [fill(shape, r, D.any)],
        build: (b, [x]) => b.add({ kind: "all_reduce" }, [b_.un(b, "sin", x!)]),
      }),
    ),
  );

  prop(
    "cast through i32: zero gradient, as the finite difference away from integers",
    shapeArb(0, 3).map(
      (shape): Case => ({
        args: [one(shape)],
        values: (r) => [fill(shape, r, D.awayFromInt)],
        build: (b, [x]) => {
          const i = b.add({ kind: "cast" }, [x!], undefined, "i32");
          return b.add({ kind: "cast" }, [i], undefined, "f32");
        },
      }),
    ),
  );
});

// ---------------------------------------------------------------------------------------------------------

describe("composite functions against finite differences (float64)", () => {
  prop(
    "a two-layer MLP: matmul + broadcast bias + tanh, matmul + bias + sigmoid, reduce sum",
    fc.tuple(dim, dim, dim, dim).map(([batch, din, hidden, dout]): Case => {
      const shapes = { x: [batch, din], w1: [din, hidden], b1: [1, hidden], w2: [hidden, dout], b2: [1, dout] };
      return {
        args: Object.entries(shapes).map(([name, shape]) => ({ name, shape })),
        values: (r) => Object.values(shapes).map((s) => fill(s, r, D.any)),
        build: (b, [x, w1, b1, w2, b2]) => {
          const h = b_.un(b, "tanh", b_.bin(b, "add", b.add({ kind: "matmul" }, [x!, w1!]), b_.bcast(b, b1!, [batch, hidden])));
          const o = b_.un(b, "sigmoid", b_.bin(b, "add", b.add({ kind: "matmul" }, [h, w2!]), b_.bcast(b, b2!, [batch, dout])));
          return b.add({ kind: "reduce", fn: "sum", axes: [1] }, [o]);
        },
      };
    }),
    25,
  );

  prop(
    "conv2d -> avg_pool -> upsample -> concat with the conv output -> softplus",
    fc
      .record({ n: fc.integer({ min: 1, max: 2 }), cin: fc.integer({ min: 1, max: 3 }), cout: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 1, max: 3 }), w: fc.integer({ min: 1, max: 3 }) })
      .map(({ n, cin, cout, h, w }): Case => {
        // 3x3, padding 1 keeps the size; H and W even, so pool-2 then upsample-2 gives the size back.
        const xs = [n, cin, 2 * h, 2 * w];
        const ws = [cout, cin, 3, 3];
        return {
          args: [
            { name: "x", shape: xs },
            { name: "w", shape: ws },
          ],
          values: (r) => [fill(xs, r, D.any), fill(ws, r, D.any)],
          build: (b, [x, wt]) => {
            const y = b.add({ kind: "conv2d", stride: 1, padding: 1, groups: 1 }, [x!, wt!]);
            const p = b.add({ kind: "avg_pool", size: 2, stride: 2 }, [y]);
            const u = b.add({ kind: "upsample", factor: 2 }, [p]);
            return b_.un(b, "softplus", b.add({ kind: "concat", axis: 1 }, [u, y]));
          },
        };
      }),
    25,
  );

  prop(
    "second order: the gradient of ⟨∇f, u⟩ for f = ⟨c, conv2d(x, w)²⟩ (through the grad ops' own rules)",
    fc
      .record({ n: fc.integer({ min: 1, max: 2 }), cin: fc.integer({ min: 1, max: 2 }), cout: fc.integer({ min: 1, max: 2 }), h: fc.integer({ min: 2, max: 5 }), stride: fc.integer({ min: 1, max: 2 }) })
      .map(({ n, cin, cout, h, stride }): Case => {
        const op = { stride, padding: 1, groups: 1 };
        const xs = [n, cin, h, h + 1];
        const ws = [cout, cin, 2, 3];
        const ys = [n, cout, windowOut(h, 2, stride, 1), windowOut(h + 1, 3, stride, 1)];
        return {
          args: [
            { name: "x", shape: xs },
            { name: "w", shape: ws },
            { name: "c1", shape: ys, diff: false },
            { name: "ux", shape: xs, diff: false },
            { name: "uw", shape: ws, diff: false },
          ],
          values: (r) => [xs, ws, ys, xs, ws].map((s) => fill(s, r, D.any)),
          build: (b, [x, w, c1, ux, uw]) => {
            const y = b.add({ kind: "conv2d", ...op }, [x!, w!]);
            const f = b_.sumAll(b, b_.bin(b, "mul", c1!, b_.bin(b, "mul", y, y)));
            const [gx, gw] = vjp(b, f, [x!, w!]);
            return b_.bin(b, "add", b_.sumAll(b, b_.bin(b, "mul", gx!, ux!)), b_.sumAll(b, b_.bin(b, "mul", gw!, uw!)));
          },
        };
      }),
    20,
  );

  prop(
    "second order: avg_pool, upsample and reduce max inside a gradient",
    fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })).map(([c, h, w]): Case => {
      const xs = [c, 2 * h, 2 * w];
      return {
        args: [
          { name: "x", shape: xs },
          { name: "u", shape: xs, diff: false },
        ],
        values: (r) => [distinct(xs, r), fill(xs, r, D.any)],
        build: (b, [x, u]) => {
          const p = b.add({ kind: "avg_pool", size: 2, stride: 2 }, [b_.un(b, "sin", x!)]);
          const up = b.add({ kind: "upsample", factor: 2 }, [b_.bin(b, "mul", p, p)]);
          const m = b.add({ kind: "reduce", fn: "max", axes: [1] }, [b_.bin(b, "mul", up, x!)]);
          const f = b_.sumAll(b, b_.un(b, "exp", m));
          const [gx] = vjp(b, f, [x!]);
          return b_.sumAll(b, b_.bin(b, "mul", gx!, u!));
        },
      };
    }),
    20,
  );
});

// ---------------------------------------------------------------------------------------------------------
// The conventions at ties and kinks, which finite differences cannot check, checked exactly.

/** Builds with `build`, differentiates the scalar `sum(out)` and returns the gradients' values and every node's. */
function gradients(
  build: (b: GraphBuilder) => { out: number; wrt: number[]; inputs: Map<string, Tensor>; params?: Map<string, Tensor> },
): { grads: number[][]; all: Tensor[]; graph: Graph } {
  const b = new GraphBuilder();
  const { out, wrt, inputs, params } = build(b);
  const g = vjp(b, b_.sumAll(b, out), wrt);
  const graph = b.build([]);
  verify(graph);
  const all = evaluate(graph, { inputs, params: params ?? new Map() }, OPTS);
  return { grads: g.map((id) => Array.from(all[id]!.data)), all, graph };
}

const input = (b: GraphBuilder, name: string, shape: number[], dtype: DType = "f32") => b.add({ kind: "input", name }, [], shape, dtype);
const T = (shape: number[], data: number[], dtype: DType = "f32") => tensorOf(dtype, shape, data);

describe("conventions at ties and kinks", () => {
  test("maximum and minimum split a tie equally (distinct nodes with equal values)", () => {
    for (const fn of ["maximum", "minimum"] as const) {
      const { grads } = gradients((b) => {
        const a = input(b, "a", [4]);
        const c = input(b, "b", [4]);
        return { out: b_.bin(b, fn, a, c), wrt: [a, c], inputs: new Map([["a", T([4], [1, 2, 3, 4])], ["b", T([4], [1, 5, 3, 0])]]) };
      });
      const win = fn === "maximum" ? [0.5, 0, 0.5, 1] : [0.5, 1, 0.5, 0];
      expect(grads[0]).toEqual(win);
      expect(grads[1]).toEqual(win.map((v) => (v === 0.5 ? 0.5 : 1 - v)));
    }
  });

  test("reduce max shares the cotangent equally among tied maxima", () => {
    const { grads } = gradients((b) => {
      const x = input(b, "x", [2, 4]);
      const m = b.add({ kind: "reduce", fn: "max", axes: [1] }, [x]);
      const w = input(b, "w", [2, 1]);
      return { out: b_.bin(b, "mul", m, w), wrt: [x], inputs: new Map([["x", T([2, 4], [3, 1, 3, 3, -1, 2, 0, 2])], ["w", T([2, 1], [6, 10])]]) };
    });
    expect(grads[0]).toEqual([2, 0, 2, 2, 0, 5, 0, 5]);
  });

  test("abs has derivative 0 at 0; floor has derivative 0", () => {
    const { grads } = gradients((b) => {
      const x = input(b, "x", [3]);
      return { out: b_.bin(b, "add", b_.un(b, "abs", x), b_.un(b, "floor", x)), wrt: [x], inputs: new Map([["x", T([3], [-2, 0, 1.5])]]) };
    });
    expect(grads[0]).toEqual([-1, 0, 1]);
  });

  test.each(ROUNDING_FNS)("%s passes its cotangent unchanged (straight-through)", (fn) => {
    const { grads } = gradients((b) => {
      const x = input(b, "x", [3]);
      const w = input(b, "w", [3]);
      return { out: b_.bin(b, "mul", b_.un(b, fn, x), w), wrt: [x], inputs: new Map([["x", T([3], [1 / 3, -2, 1e-3])], ["w", T([3], [0.1, 7, -3])]]) };
    });
    expect(grads[0]).toEqual([0.1, 7, -3]);
  });

  test("pow: with a negative base and an integer exponent, d/da is finite, d/db is 0, and no NaN is computed", () => {
    const { grads, all, graph } = gradients((b) => {
      const a = input(b, "a", [4]);
      const e = input(b, "e", [4]);
      return { out: b_.bin(b, "pow", a, e), wrt: [a, e], inputs: new Map([["a", T([4], [-2, -1.5, 0, 3])], ["e", T([4], [2, 3, 2, 0])]]) };
    });
    expect(grads[0]).toEqual([2 * -2, 3 * 1.5 * 1.5, 0, 0]);
    expect(grads[1]!.slice(0, 3)).toEqual([0, 0, 0]);
    expect(grads[1]![3]).toBeCloseTo(Math.log(3), 14);
    graph.nodes.forEach((n) => expect(Array.from(all[n.id]!.data).some(Number.isNaN), `%${n.id} ${n.op.kind}`).toBe(false));
  });

  test("pow by a constant exponent: d/da = b·a^(b−1), 0 where b = 0", () => {
    const { grads } = gradients((b) => {
      const a = input(b, "a", [3]);
      const two = b.add({ kind: "constant", value: 2 }, [], [3]);
      const zero = b.add({ kind: "constant", value: 0 }, [], [3]);
      return { out: b_.bin(b, "add", b_.bin(b, "pow", a, two), b_.bin(b, "pow", a, zero)), wrt: [a], inputs: new Map([["a", T([3], [-3, 0, 0.5])]]) };
    });
    expect(grads[0]).toEqual([-6, 0, 1]);
  });

  test("stop_gradient passes no gradient: d/dx sum(stop_gradient(x)·x) = x", () => {
    const { grads } = gradients((b) => {
      const x = input(b, "x", [3]);
      return { out: b_.bin(b, "mul", b.add({ kind: "stop_gradient" }, [x]), x), wrt: [x], inputs: new Map([["x", T([3], [1, -2, 3])]]) };
    });
    expect(grads[0]).toEqual([1, -2, 3]);
  });

  test("leaves: inputs, params, constants, iota and random nodes receive their cotangent; no path gives zeros", () => {
    let ids: number[] = [];
    const { grads, all } = gradients((b) => {
      const x = input(b, "x", [3]);
      const p = b.add({ kind: "param", name: "p" }, [], [3]);
      const k = b.add({ kind: "constant", value: 2 }, [], [3]);
      const i = b.add({ kind: "iota" }, [], [3]);
      const r = b.add({ kind: "random", dist: "normal", key: 7 }, [], [3]);
      const unused = input(b, "u", [2, 2]);
      const s = [x, k, i, r].reduce((acc, v) => b_.bin(b, "add", acc, v));
      ids = [x, p, k, i, r, s];
      return { out: b_.bin(b, "mul", s, p), wrt: [x, p, k, i, r, unused], inputs: new Map([["x", T([3], [1, 2, 3])], ["u", T([2, 2], [0, 0, 0, 0])]]), params: new Map([["p", T([3], [0.5, -1, 4])]]) };
    });
    const p = [0.5, -1, 4];
    expect(grads[0]).toEqual(p);
    expect(grads[1]).toEqual(Array.from(all[ids[5]!]!.data));
    expect(grads[2]).toEqual(p);
    expect(grads[3]).toEqual(p);
    expect(grads[4]).toEqual(p);
    expect(grads[5]).toEqual([0, 0, 0, 0]);
  });
});

describe("vjp", () => {
  test("a non-scalar output without a seed is seeded with ones", () => {
    const b = new GraphBuilder();
    const x = input(b, "x", [2, 3]);
    const y = b_.un(b, "sin", x);
    const [g] = vjp(b, y, [x]);
    const xs = [0.1, -0.4, 1.2, 2, -3, 0.7];
    const all = run(b.build([]), new Map([["x", T([2, 3], xs)]]));
    expect(Array.from(all[g!]!.data)).toEqual(xs.map(Math.cos));
  });

  test("only nodes on a path from wrt to the output are differentiated; no path gives zeros of the right shape", () => {
    const b = new GraphBuilder();
    const x = input(b, "x", [3]);
    const z = input(b, "z", [3]);
    const n = input(b, "n", [3], "i32");
    const later = input(b, "later", [2]);
    const out = b_.sumAll(b, b_.bin(b, "mul", b_.un(b, "sin", z), b_.un(b, "exp", x)));
    const before = b.nodes.length;
    const [gx, gn, gl] = vjp(b, out, [x, n, later]);
    const added = b.nodes.slice(before);
    // sin(z) is off the path from x: its derivative (cos) is never built, and z gets no cotangent.
    expect(added.some((m) => m.op.kind === "unary" && m.op.fn === "cos")).toBe(false);
    expect(b.node(gn!)).toMatchObject({ op: { kind: "constant", value: 0 }, shape: [3], dtype: "i32" });
    expect(b.node(gl!)).toMatchObject({ op: { kind: "constant", value: 0 }, shape: [2], dtype: "f32" });
    const all = run(b.build([]), new Map([["x", T([3], [0, 1, 2])], ["z", T([3], [1, 2, 3])], ["n", T([3], [1, 2, 3], "i32")], ["later", T([2], [0, 0])]]));
    expect(Array.from(all[gx!]!.data)).toEqual([0, 1, 2].map((v, i) => Math.sin(i + 1) * Math.exp(v)));
  });

  test("several uses of a node add up, and a wrt node upstream of another gets the full gradient", () => {
    const b = new GraphBuilder();
    const x = input(b, "x", [2]);
    const h = b_.bin(b, "mul", x, x); // h = x²
    const out = b_.sumAll(b, b_.bin(b, "add", b_.bin(b, "mul", h, x), h)); // x³ + x²
    const [gx, gh] = vjp(b, out, [x, h]);
    const all = run(b.build([]), new Map([["x", T([2], [2, -1])]]));
    expect(Array.from(all[gx!]!.data)).toEqual([3 * 4 + 2 * 2, 3 * 1 - 2]);
    expect(Array.from(all[gh!]!.data)).toEqual([2 + 1, -1 + 1]); // ∂/∂h (h·x + h) = x + 1
  });

  test("bad requests are IrErrors", () => {
    const b = new GraphBuilder();
    const x = input(b, "x", [2]);
    const cond = b.add({ kind: "compare", fn: "lt" }, [x, x]);
    const seed = input(b, "s", [3]);
    expect(() => vjp(b, cond, [x])).toThrow(IrError);
    expect(() => vjp(b, x, [x], seed)).toThrow(/seed/);
    expect(() => vjp(b, 99, [x])).toThrow(IrError);
    expect(() => vjp(b, x, [42])).toThrow(IrError);
  });
});

// ---------------------------------------------------------------------------------------------------------

/**
 * How each op kind is tested: "fd" by the finite-difference properties above (and it must have a rule),
 * "zero" by a test that no gradient passes (compare, stop_gradient), "leaf" by the leaves test.
 */
const COVERAGE: Record<OpKind, "fd" | "zero" | "leaf"> = {
  input: "leaf",
  param: "leaf",
  constant: "leaf",
  iota: "leaf",
  random: "leaf",
  unary: "fd",
  binary: "fd",
  compare: "zero",
  select: "fd",
  reduce: "fd",
  matmul: "fd",
  conv2d: "fd",
  conv2d_grad_input: "fd",
  conv2d_grad_weight: "fd",
  reshape: "fd",
  transpose: "fd",
  broadcast: "fd",
  slice: "fd",
  concat: "fd",
  pad: "fd",
  upsample: "fd",
  avg_pool: "fd",
  avg_pool_grad: "fd",
  cast: "fd",
  stop_gradient: "zero",
  all_reduce: "fd",
};

describe("coverage", () => {
  test("every op kind has a VJP_RULES entry and a test; every kind with a rule was checked by finite differences", () => {
    const kinds = [...OP_KINDS].sort();
    expect(Object.keys(VJP_RULES).sort()).toEqual(kinds);
    expect(Object.keys(COVERAGE).sort()).toEqual(kinds);
    for (const k of OP_KINDS) {
      const rule = VJP_RULES[k];
      expect(rule === "leaf" ? "leaf" : typeof rule === "function" ? "fd" : "zero", k).toBe(COVERAGE[k]);
    }
    // What the property tests differentiate through, from 20 sampled cases of each (the graphs are only built).
    const seen = new Set<string>();
    for (const p of PROPERTIES) for (const cs of fc.sample(p.arb, { numRuns: 20, seed: 1 })) for (const k of differentiated(cs)) seen.add(k);
    const fd = OP_KINDS.filter((k) => COVERAGE[k] === "fd");
    const wanted = [...fd, "compare", ...DIFFERENTIABLE_UNARY.map((f) => `unary:${f}`), ...BINARY_FNS.map((f) => `binary:${f}`), "reduce:sum", "reduce:max"];
    expect(wanted.filter((k) => !seen.has(k))).toEqual([]);
  });
});
