// Typing rules of the primitive operations: given argument values, the result value or a diagnostic.
// Shapes are symbolic (dims.ts); a rule reports an error only when dims differ for sure.
import type { UnaryFn } from "../compiler/ir.js";
import { isRounding, UNARY_FNS } from "../compiler/ir.js";
import { UNARY } from "../compiler/scalar.js";
import { Dim } from "./dims.js";
import type { ErrorCode, Note } from "./diagnostics.js";
import type { Span } from "./source.js";
import { DTYPES, ERROR, describe, intValue, shapeText, tensor, tensorText, type DType, type TensorValue, type Value } from "./values.js";

export interface OpContext {
  /** The whole call (or operator expression). */
  readonly span: Span;
  /** The span of a named argument, or the call's span when it was defaulted. */
  argSpan(name: string): Span;
  error(code: ErrorCode, span: Span, message: string, notes?: Note[]): Value;
}

interface Param {
  readonly name: string;
  /** Absent: required. */
  readonly default?: Value;
}

export interface Builtin {
  readonly params: readonly Param[];
  run(args: ReadonlyMap<string, Value>, ctx: OpContext): Value;
}

// ---------------------------------------------------------------- argument coercions

class Args {
  constructor(
    private readonly args: ReadonlyMap<string, Value>,
    private readonly ctx: OpContext,
    private readonly op: string,
  ) {}

  value(name: string): Value {
    return this.args.get(name)!;
  }

  fail(name: string, message: string, code: ErrorCode = "E0401"): never {
    throw new OpFailure(this.ctx.error(code, this.ctx.argSpan(name), message));
  }

  tensor(name: string, like?: TensorValue): TensorValue {
    const v = this.value(name);
    const t = toTensor(v, like?.dtype ?? "f32", this.ctx.argSpan(name));
    if (!t) this.fail(name, `${this.op} needs a tensor for '${name}', but got ${describe(v)}`);
    return t;
  }

  float(name: string): TensorValue {
    const t = this.tensor(name);
    if (t.dtype === "bool" || t.dtype === "i32") this.fail(name, `${this.op} needs a floating-point tensor for '${name}', but got ${tensorText(t)}`);
    return t;
  }

  int(name: string): Dim {
    const v = this.value(name);
    if (v.k !== "int") this.fail(name, `${this.op} needs a compile-time integer for '${name}', but got ${describe(v)}`);
    return v.value;
  }

  constInt(name: string): number {
    const d = this.int(name);
    if (d.value === undefined) this.fail(name, `${this.op} needs '${name}' to be known at compile time, but it is ${d}`, "E0310");
    return d.value;
  }

  positive(name: string): number {
    const n = this.constInt(name);
    if (n < 1) this.fail(name, `${this.op} needs '${name}' ≥ 1, got ${n}`, "E0409");
    return n;
  }

  /** An int or a list of ints. */
  ints(name: string): number[] {
    const v = this.value(name);
    if (v.k === "int") return [this.constInt(name)];
    if (v.k !== "list") this.fail(name, `${this.op} needs an integer or a list of integers for '${name}', but got ${describe(v)}`);
    return v.items.map((it) => {
      if (it.k !== "int" || it.value.value === undefined) this.fail(name, `${this.op} needs '${name}' to list compile-time integers, but it holds ${describe(it)}`, it.k === "int" ? "E0310" : "E0401");
      return it.value.value;
    });
  }

  /** A shape: a list of positive dims (a `-1` entry allowed when `hole` is set). */
  shape(name: string, hole = false): Dim[] {
    const v = this.value(name);
    if (v.k !== "list") this.fail(name, `${this.op} needs a shape like [B, 16] for '${name}', but got ${describe(v)}`);
    return v.items.map((it) => {
      if (it.k !== "int") this.fail(name, `a shape lists compile-time integers, but '${name}' holds ${describe(it)}`);
      const c = it.value.value;
      if (c !== undefined && c < 1 && !(hole && c === -1)) this.fail(name, `dims must be ≥ 1, but '${name}' has ${c}${hole ? " (only one -1 may be inferred)" : ""}`, "E0407");
      return it.value;
    });
  }

  /** A compile-time number (an int or a float), known. */
  number(name: string): number {
    const v = this.value(name);
    if (v.k !== "int" && v.k !== "float") this.fail(name, `${this.op} needs a compile-time number for '${name}', but got ${describe(v)}`);
    const n = v.k === "int" ? v.value.value : v.value;
    if (n === undefined) this.fail(name, `${this.op} needs '${name}' to be known at compile time`, "E0310");
    return n;
  }

  /** A tensor of numbers: not bool. */
  numeric(name: string): TensorValue {
    const t = this.tensor(name);
    if (t.dtype === "bool") this.fail(name, `${this.op} needs a numeric tensor, not ${tensorText(t)}`);
    return t;
  }

  /** A tensor of indices: i32. */
  indices(name: string): TensorValue {
    const t = this.tensor(name);
    if (t.dtype !== "i32") this.fail(name, `${this.op} needs i32 indices for '${name}', but got ${tensorText(t)}; convert them with cast(${name}, i32)`);
    return t;
  }

  /** An axis of `x`, normalised (negative counts from the end). */
  axis(name: string, x: TensorValue): number {
    const ax = this.constInt(name);
    const axis = normalizeAxis(ax, x.shape.length);
    if (axis === undefined) this.fail(name, `${this.op}: axis ${ax} is out of range for ${tensorText(x)} (rank ${x.shape.length})`, "E0405");
    return axis;
  }

  bool(name: string): boolean {
    const v = this.value(name);
    if (v.k !== "bool" || v.value === undefined) this.fail(name, `${this.op} needs a compile-time bool for '${name}', but got ${describe(v)}`);
    return v.value;
  }
}

class OpFailure {
  constructor(readonly value: Value) {}
}

/** A compile-time number or bool becomes a scalar constant; tensors pass through. */
export function toTensor(v: Value, weakDtype: DType, span: Span): TensorValue | undefined {
  if (v.k === "tensor") return v;
  if (v.k === "int" || v.k === "float") return tensor(weakDtype === "bool" ? "f32" : weakDtype, [], span);
  if (v.k === "bool") return tensor("bool", [], span);
  return undefined;
}

export function normalizeAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}

/** numpy broadcasting over symbolic dims; `undefined` plus the offending pair when impossible. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): { shape: Dim[] } | { bad: [Dim, Dim, number] } {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? Dim.const(1);
    const db = b[b.length - rank + i] ?? Dim.const(1);
    if (da.value === 1) out.push(db);
    else if (db.value === 1) out.push(da);
    else if (da.differs(db)) return { bad: [da, db, i - rank] };
    else out.push(da);
  }
  return { shape: out };
}

function broadcastOrFail(ctx: OpContext, op: string, operands: { name: string; t: TensorValue }[]): Dim[] {
  let shape: Dim[] = [];
  let from = operands[0]!;
  for (const o of operands) {
    const r = broadcastShapes(shape, o.t.shape);
    if ("bad" in r) {
      const [da, db, axis] = r.bad;
      throw new OpFailure(
        ctx.error("E0403", ctx.span, `${op}: cannot broadcast ${tensorText(from.t)} with ${tensorText(o.t)}: dim ${da} vs ${db} at axis ${axis}`, [
          { span: from.t.origin, message: `${from.name} is ${tensorText(from.t)}, from here` },
          { span: o.t.origin, message: `${o.name} is ${tensorText(o.t)}, from here` },
        ]),
      );
    }
    shape = r.shape;
    if (o.t.shape.length >= from.t.shape.length) from = o;
  }
  return shape;
}

function sameDtype(ctx: OpContext, op: string, ts: { name: string; t: TensorValue }[]): DType {
  const d = ts[0]!.t.dtype;
  for (const o of ts)
    if (o.t.dtype !== d)
      throw new OpFailure(
        ctx.error("E0401", ctx.span, `${op}: dtypes differ: ${tensorText(ts[0]!.t)} and ${tensorText(o.t)}; convert one with cast(x, ${d})`, [
          { span: ts[0]!.t.origin, message: `${ts[0]!.name} is ${ts[0]!.t.dtype}` },
          { span: o.t.origin, message: `${o.name} is ${o.t.dtype}` },
        ]),
      );
  return d;
}

// ---------------------------------------------------------------- shared rules used by operators too

export type ElementwiseKind = "arith" | "compare";

/** Typing of `a OP b` once at least one side is a tensor. */
export function elementwiseBinary(op: string, a: Value, b: Value, aSpan: Span, bSpan: Span, ctx: OpContext, kind: ElementwiseKind): Value {
  return guard(() => {
    const ta = a.k === "tensor" ? a : undefined;
    const tb = b.k === "tensor" ? b : undefined;
    const like = ta ?? tb;
    // A number takes the tensor's dtype, which must be able to hold it: 1.5 is no i32.
    for (const [v, span] of [
      [a, aSpan],
      [b, bSpan],
    ] as const)
      if (like?.dtype === "i32" && v.k === "float" && !Number.isInteger(v.value))
        throw new OpFailure(ctx.error("E0401", span, `'${op}' mixes an i32 tensor with ${v.value === undefined ? "a compile-time float" : `the float ${v.value}`}; convert the tensor with cast(x, f32)`));
    const x = toTensor(a, like?.dtype ?? "f32", aSpan);
    const y = toTensor(b, like?.dtype ?? "f32", bSpan);
    if (!x) throw new OpFailure(ctx.error("E0401", aSpan, `'${op}' needs tensors or numbers, but the left operand is ${describe(a)}`));
    if (!y) throw new OpFailure(ctx.error("E0401", bSpan, `'${op}' needs tensors or numbers, but the right operand is ${describe(b)}`));
    const operands = [
      { name: "the left operand", t: x },
      { name: "the right operand", t: y },
    ];
    const dtype = sameDtype(ctx, `'${op}'`, operands);
    if (kind === "arith" && dtype === "bool") throw new OpFailure(ctx.error("E0401", ctx.span, `'${op}' needs numeric tensors, not bool; use select(c, a, b) to choose between values`));
    const shape = broadcastOrFail(ctx, `'${op}'`, operands);
    return tensor(kind === "compare" ? "bool" : dtype, shape, ctx.span);
  });
}

export function matmul(a: Value, b: Value, aSpan: Span, bSpan: Span, ctx: OpContext): Value {
  return guard(() => {
    const x = a.k === "tensor" ? a : undefined;
    const y = b.k === "tensor" ? b : undefined;
    if (!x) throw new OpFailure(ctx.error("E0401", aSpan, `'@' needs a tensor on the left, but got ${describe(a)}`));
    if (!y) throw new OpFailure(ctx.error("E0401", bSpan, `'@' needs a tensor on the right, but got ${describe(b)}`));
    const dtype = sameDtype(ctx, "'@'", [
      { name: "the left operand", t: x },
      { name: "the right operand", t: y },
    ]);
    if (x.shape.length < 2 || y.shape.length < 2) {
      const which = x.shape.length < 2 ? x : y;
      throw new OpFailure(ctx.error("E0404", ctx.span, `'@' multiplies matrices ([..., M, K] @ [..., K, N]), but one operand is ${tensorText(which)}; reshape a vector to [1, K] or [K, 1]`, [{ span: which.origin, message: `${tensorText(which)} from here` }]));
    }
    const k1 = x.shape[x.shape.length - 1]!;
    const k2 = y.shape[y.shape.length - 2]!;
    if (k1.differs(k2))
      throw new OpFailure(
        ctx.error("E0406", ctx.span, `'@': inner dims differ: ${tensorText(x)} @ ${tensorText(y)} (${k1} vs ${k2})`, [
          { span: x.origin, message: `the left operand is ${tensorText(x)}, from here` },
          { span: y.origin, message: `the right operand is ${tensorText(y)}, from here` },
        ]),
      );
    const batch = broadcastShapes(x.shape.slice(0, -2), y.shape.slice(0, -2));
    if ("bad" in batch) throw new OpFailure(ctx.error("E0403", ctx.span, `'@': batch dims ${shapeText(x.shape.slice(0, -2))} and ${shapeText(y.shape.slice(0, -2))} cannot be broadcast`));
    return tensor(dtype, [...batch.shape, x.shape[x.shape.length - 2]!, y.shape[y.shape.length - 1]!], ctx.span);
  });
}

function guard(f: () => Value): Value {
  try {
    return f();
  } catch (e) {
    if (e instanceof OpFailure) return e.value;
    throw e;
  }
}

// ---------------------------------------------------------------- the table

const none = (name: string, def: Value): Param => ({ name, default: def });
const req = (name: string): Param => ({ name });
const F = (v: number): Value => ({ k: "float", value: v });
const B = (v: boolean): Value => ({ k: "bool", value: v });
const I = (v: number): Value => intValue(v);
const ALL_AXES: Value = { k: "list", items: [] };
const UNSET: Value = { k: "string", value: "<unset>" };

function def(params: Param[], run: (a: Args, ctx: OpContext) => Value, op: string): Builtin {
  return { params, run: (args, ctx) => guard(() => run(new Args(args, ctx, op), ctx)) };
}

function unary(name: UnaryFn): Builtin {
  const f = UNARY[name];
  return def(
    [req("x")],
    (a: Args, ctx: OpContext) => {
      const v = a.value("x");
      // Compile-time numbers fold: `1.0 / sqrt(In)` is a constant.
      if (v.k === "int") {
        const n = v.value.value;
        if (name === "abs" || name === "floor") return n === undefined ? v : intValue(name === "abs" ? Math.abs(n) : n);
        return { k: "float", value: n === undefined ? undefined : f(n) };
      }
      if (v.k === "float") return { k: "float", value: v.value === undefined ? undefined : f(v.value) };
      const t = a.float("x");
      return tensor(t.dtype, t.shape, ctx.span);
    },
    name,
  );
}

function binaryNumeric(name: "maximum" | "minimum"): Builtin {
  const f = name === "maximum" ? Math.max : Math.min;
  return def(
    [req("a"), req("b")],
    (a: Args, ctx: OpContext) => {
      const x = a.value("a");
      const y = a.value("b");
      if ((x.k === "int" || x.k === "float") && (y.k === "int" || y.k === "float")) {
        const xv = x.k === "int" ? x.value.value : x.value;
        const yv = y.k === "int" ? y.value.value : y.value;
        const known = xv !== undefined && yv !== undefined;
        if (x.k === "int" && y.k === "int") return known ? intValue(f(xv, yv)) : { k: "int", value: x.value.compare(y.value) === "equal" ? x.value : Dim.symbol(`${name}(${x.value}, ${y.value})`) };
        return { k: "float", value: known ? f(xv, yv) : undefined };
      }
      return elementwiseBinary(name, x, y, ctx.argSpan("a"), ctx.argSpan("b"), ctx, "arith");
    },
    name,
  );
}

function reduction(name: string): Builtin {
  return def(
    [req("x"), none("axis", ALL_AXES), none("keepdims", B(false))],
    (a: Args, ctx: OpContext) => {
      const x = a.numeric("x");
      const rank = x.shape.length;
      const given = a.ints("axis");
      const axes = new Set<number>();
      for (const ax of given.length === 0 ? x.shape.map((_, i) => i) : given) {
        const n = normalizeAxis(ax, rank);
        if (n === undefined) a.fail("axis", `${name}: axis ${ax} is out of range for ${tensorText(x)} (rank ${rank})`, "E0405");
        if (axes.has(n)) a.fail("axis", `${name}: axis ${ax} is listed twice`, "E0409");
        axes.add(n);
      }
      const keep = a.bool("keepdims");
      const shape = x.shape.flatMap((d, i) => (axes.has(i) ? (keep ? [Dim.const(1)] : []) : [d]));
      return tensor(x.dtype, shape, ctx.span);
    },
    name,
  );
}

/**
 * An element-wise function of a floating-point tensor that the tracer composes from primitives (relu, gelu, ...);
 * `numbers` are its compile-time parameters.
 */
function composite(name: string, numbers: Param[] = []): Builtin {
  return def(
    [req("x"), ...numbers],
    (a: Args, ctx: OpContext) => {
      for (const p of numbers) a.number(p.name);
      const x = a.float("x");
      return tensor(x.dtype, x.shape, ctx.span);
    },
    name,
  );
}

function creation(name: string, withValue: boolean): Builtin {
  return def(
    withValue ? [req("shape"), req("value")] : [req("shape")],
    (a: Args, ctx: OpContext) => {
      const shape = a.shape("shape");
      if (withValue) {
        const v = a.value("value");
        if (v.k !== "int" && v.k !== "float") a.fail("value", `full needs a compile-time number for 'value', but got ${describe(v)}`);
      }
      return tensor("f32", shape, ctx.span);
    },
    name,
  );
}

/** Product of dims, for reshape. */
function product(ds: readonly Dim[]): Dim {
  return ds.reduce((p, d) => p.mul(d), Dim.const(1));
}

export const BUILTINS: ReadonlyMap<string, Builtin> = new Map<string, Builtin>([
  // neg is the `-` operator; the roundings are internal to the compiler (the precision pass adds them).
  ...UNARY_FNS.filter((n) => n !== "neg" && !isRounding(n)).map((n) => [n, unary(n)] as [string, Builtin]),
  ["maximum", binaryNumeric("maximum")],
  ["minimum", binaryNumeric("minimum")],
  ["sum", reduction("sum")],
  ["mean", reduction("mean")],
  ["max", reduction("max")],
  ["min", reduction("min")],
  ["relu", composite("relu")],
  ["leaky_relu", composite("leaky_relu", [none("slope", F(0.01))])],
  ["gelu", composite("gelu")],
  [
    "flatten",
    def(
      [req("x"), none("start", I(1))],
      (a: Args, ctx: OpContext) => {
        const x = a.tensor("x");
        const start = a.axis("start", x);
        return tensor(x.dtype, [...x.shape.slice(0, start), product(x.shape.slice(start))], ctx.span);
      },
      "flatten",
    ),
  ],
  [
    "one_hot",
    def(
      [req("labels"), req("classes")],
      (a: Args, ctx: OpContext) => {
        const labels = a.indices("labels");
        const classes = a.int("classes");
        if (classes.value !== undefined && classes.value < 1) a.fail("classes", `one_hot needs classes ≥ 1, got ${classes}`, "E0407");
        return tensor("f32", [...labels.shape, classes], ctx.span);
      },
      "one_hot",
    ),
  ],
  [
    "argmax",
    def(
      [req("x"), req("axis")],
      (a: Args, ctx: OpContext) => {
        const x = a.numeric("x");
        const axis = a.axis("axis", x);
        return tensor("i32", x.shape.toSpliced(axis, 1), ctx.span);
      },
      "argmax",
    ),
  ],
  [
    "gather",
    def(
      [req("x"), req("indices"), none("axis", I(0))],
      (a: Args, ctx: OpContext) => {
        const x = a.numeric("x");
        const indices = a.indices("indices");
        const axis = a.axis("axis", x);
        return tensor(x.dtype, x.shape.toSpliced(axis, 1, ...indices.shape), ctx.span);
      },
      "gather",
    ),
  ],
  [
    "matmul",
    def([req("a"), req("b")], (a: Args, ctx: OpContext) => matmul(a.value("a"), a.value("b"), ctx.argSpan("a"), ctx.argSpan("b"), ctx), "matmul"),
  ],
  [
    "select",
    def(
      [req("cond"), req("a"), req("b")],
      (a: Args, ctx: OpContext) => {
        const c = a.tensor("cond");
        if (c.dtype !== "bool") a.fail("cond", `select needs a bool tensor as its condition (from a comparison like x > 0.0), but got ${tensorText(c)}`);
        const x = a.value("a");
        const y = a.value("b");
        const like = x.k === "tensor" ? x : y.k === "tensor" ? y : undefined;
        const tx = a.tensor("a", like);
        const ty = a.tensor("b", like);
        const operands = [
          { name: "the condition", t: c },
          { name: "a", t: tx },
          { name: "b", t: ty },
        ];
        const dtype = sameDtype(ctx, "select", operands.slice(1));
        return tensor(dtype, broadcastOrFail(ctx, "select", operands), ctx.span);
      },
      "select",
    ),
  ],
  [
    "conv2d",
    def(
      [req("x"), req("w"), none("stride", I(1)), none("padding", I(0)), none("groups", I(1))],
      (a: Args, ctx: OpContext) => {
        const x = a.float("x");
        const w = a.tensor("w", x);
        if (x.shape.length !== 4) a.fail("x", `conv2d takes x as [N, C, H, W], but got ${tensorText(x)}`, "E0404");
        if (w.shape.length !== 4) a.fail("w", `conv2d takes the weight as [Cout, Cin/groups, KH, KW], but got ${tensorText(w)}`, "E0404");
        sameDtype(ctx, "conv2d", [
          { name: "x", t: x },
          { name: "w", t: w },
        ]);
        const stride = a.positive("stride");
        const padding = a.constInt("padding");
        if (padding < 0) a.fail("padding", `conv2d: padding must be ≥ 0, got ${padding}`, "E0409");
        const groups = a.positive("groups");
        const [n, cin, h, wd] = x.shape as [Dim, Dim, Dim, Dim];
        const [cout, cinG, kh, kw] = w.shape as [Dim, Dim, Dim, Dim];
        const perGroup = cin.divExact(Dim.const(groups));
        if (!perGroup) a.fail("groups", `conv2d: ${cin} input channels cannot be split into ${groups} groups`, "E0409");
        if (perGroup.differs(cinG))
          throw new OpFailure(
            ctx.error("E0402", ctx.span, `conv2d: the weight expects ${cinG} input channels per group, but x has ${cin} channels${groups > 1 ? ` in ${groups} groups (${perGroup} each)` : ""}`, [
              { span: x.origin, message: `x is ${tensorText(x)}, from here` },
              { span: w.origin, message: `w is ${tensorText(w)}, from here` },
            ]),
          );
        if (cout.value !== undefined && cout.value % groups !== 0) a.fail("groups", `conv2d: ${cout} output channels cannot be split into ${groups} groups`, "E0409");
        const out = (size: Dim, k: Dim, axis: string) => {
          const span = size.add(Dim.const(2 * padding)).sub(k);
          if (span.value !== undefined && span.value < 0) a.fail("w", `conv2d: the ${k}-wide kernel is larger than the padded ${axis} (${size} + 2*${padding})`, "E0407");
          return span.floorDiv(Dim.const(stride))!.add(Dim.const(1));
        };
        return tensor(x.dtype, [n, cout, out(h, kh, "height"), out(wd, kw, "width")], ctx.span);
      },
      "conv2d",
    ),
  ],
  [
    "upsample_nearest",
    def(
      [req("x"), req("factor")],
      (a: Args, ctx: OpContext) => {
        const x = a.tensor("x");
        if (x.shape.length < 2) a.fail("x", `upsample_nearest scales the last two dims, but x is ${tensorText(x)}`, "E0404");
        const f = Dim.const(a.positive("factor"));
        const s = x.shape;
        return tensor(x.dtype, [...s.slice(0, -2), s[s.length - 2]!.mul(f), s[s.length - 1]!.mul(f)], ctx.span);
      },
      "upsample_nearest",
    ),
  ],
  [
    "avg_pool",
    def(
      [req("x"), req("size"), none("stride", UNSET)],
      (a: Args, ctx: OpContext) => {
        const x = a.float("x");
        if (x.shape.length < 2) a.fail("x", `avg_pool pools the last two dims, but x is ${tensorText(x)}`, "E0404");
        const size = a.positive("size");
        const stride = a.value("stride") === UNSET ? size : a.positive("stride");
        const s = x.shape;
        const out = (d: Dim) => {
          const rest = d.sub(Dim.const(size));
          if (rest.value !== undefined && rest.value < 0) a.fail("size", `avg_pool: window ${size} is larger than the dim ${d}`, "E0407");
          return rest.floorDiv(Dim.const(stride))!.add(Dim.const(1));
        };
        return tensor(x.dtype, [...s.slice(0, -2), out(s[s.length - 2]!), out(s[s.length - 1]!)], ctx.span);
      },
      "avg_pool",
    ),
  ],
  [
    "reshape",
    def(
      [req("x"), req("shape")],
      (a: Args, ctx: OpContext) => {
        const x = a.tensor("x");
        const shape = a.shape("shape", true);
        const holes = shape.filter((d) => d.value === -1).length;
        if (holes > 1) a.fail("shape", "reshape: only one dim may be -1", "E0409");
        const total = product(x.shape);
        if (holes === 1) {
          const known = product(shape.filter((d) => d.value !== -1));
          const inferred = total.divExact(known);
          if (!inferred) a.fail("shape", `reshape: ${tensorText(x)} has ${total} elements, which ${shapeText(shape)} cannot hold`, "E0409");
          return tensor(
            x.dtype,
            shape.map((d) => (d.value === -1 ? inferred : d)),
            ctx.span,
          );
        }
        if (product(shape).differs(total))
          throw new OpFailure(
            ctx.error("E0409", ctx.argSpan("shape"), `reshape: ${tensorText(x)} has ${total} elements but the new shape ${shapeText(shape)} has ${product(shape)}`, [
              { span: x.origin, message: `x is ${tensorText(x)}, from here` },
            ]),
          );
        return tensor(x.dtype, shape, ctx.span);
      },
      "reshape",
    ),
  ],
  [
    "transpose",
    def(
      [req("x"), req("perm")],
      (a: Args, ctx: OpContext) => {
        const x = a.tensor("x");
        const perm = a.ints("perm");
        const rank = x.shape.length;
        const sorted = [...perm].sort((p, q) => p - q);
        if (perm.length !== rank || sorted.some((p, i) => p !== i)) a.fail("perm", `transpose: [${perm.join(", ")}] is not a permutation of the ${rank} axes of ${tensorText(x)}`, "E0409");
        return tensor(
          x.dtype,
          perm.map((p) => x.shape[p]!),
          ctx.span,
        );
      },
      "transpose",
    ),
  ],
  [
    "broadcast_to",
    def(
      [req("x"), req("shape")],
      (a: Args, ctx: OpContext) => {
        const x = a.tensor("x");
        const shape = a.shape("shape");
        const r = broadcastShapes(x.shape, shape);
        if ("bad" in r || r.shape.length !== shape.length || r.shape.some((d, i) => d.differs(shape[i]!)))
          a.fail("shape", `broadcast_to: ${tensorText(x)} cannot be broadcast to ${shapeText(shape)}`, "E0403");
        return tensor(x.dtype, shape, ctx.span);
      },
      "broadcast_to",
    ),
  ],
  [
    "slice",
    def(
      [req("x"), req("axis"), req("start"), req("end")],
      (a: Args, ctx: OpContext) => {
        const x = a.tensor("x");
        const axis = a.axis("axis", x);
        const start = a.int("start");
        const end = a.int("end");
        const len = end.sub(start);
        const dim = x.shape[axis]!;
        if ((start.value !== undefined && start.value < 0) || (len.value !== undefined && len.value < 1)) a.fail("end", `slice: [${start}, ${end}) is empty or negative`, "E0409");
        const past = end.sub(dim).value;
        if (past !== undefined && past > 0) a.fail("end", `slice: end ${end} is past the dim ${dim} of axis ${axis}`, "E0409");
        return tensor(
          x.dtype,
          x.shape.map((d, i) => (i === axis ? len : d)),
          ctx.span,
        );
      },
      "slice",
    ),
  ],
  [
    "concat",
    def(
      [req("xs"), req("axis")],
      (a: Args, ctx: OpContext) => {
        const xs = a.value("xs");
        if (xs.k !== "list" || xs.items.length === 0) a.fail("xs", `concat takes a non-empty list of tensors: concat([a, b], axis)`);
        const ts = xs.items.map((it, i) => {
          if (it.k !== "tensor") a.fail("xs", `concat: element ${i} is ${describe(it)}, not a tensor`);
          return it;
        });
        const first = ts[0]!;
        const axis = a.axis("axis", first);
        let total = Dim.const(0);
        ts.forEach((t, i) => {
          if (t.dtype !== first.dtype) a.fail("xs", `concat: element ${i} is ${tensorText(t)} but element 0 is ${tensorText(first)}`);
          if (t.shape.length !== first.shape.length) a.fail("xs", `concat: element ${i} is ${tensorText(t)} but element 0 is ${tensorText(first)}`, "E0404");
          t.shape.forEach((d, j) => {
            if (j !== axis && d.differs(first.shape[j]!))
              throw new OpFailure(
                ctx.error("E0402", ctx.argSpan("xs"), `concat: element ${i} is ${tensorText(t)} but element 0 is ${tensorText(first)}; they may differ only on axis ${axis}`, [
                  { span: first.origin, message: `element 0 is ${tensorText(first)}, from here` },
                  { span: t.origin, message: `element ${i} is ${tensorText(t)}, from here` },
                ]),
              );
          });
          total = total.add(t.shape[axis]!);
        });
        return tensor(
          first.dtype,
          first.shape.map((d, j) => (j === axis ? total : d)),
          ctx.span,
        );
      },
      "concat",
    ),
  ],
  [
    "pad",
    def(
      [req("x"), req("widths"), none("value", F(0))],
      (a: Args, ctx: OpContext) => {
        const x = a.tensor("x");
        const w = a.value("widths");
        const rank = x.shape.length;
        if (w.k !== "list" || w.items.length !== rank) a.fail("widths", `pad needs one [lo, hi] pair per axis of ${tensorText(x)} (${rank} pairs)`, "E0409");
        const shape = x.shape.map((d, i) => {
          const pair = w.items[i]!;
          if (pair.k !== "list" || pair.items.length !== 2 || pair.items.some((p) => p.k !== "int" || p.value.value === undefined || p.value.value < 0))
            a.fail("widths", `pad: entry ${i} must be [lo, hi] with compile-time integers ≥ 0`, "E0409");
          const [lo, hi] = pair.items as [{ k: "int"; value: Dim }, { k: "int"; value: Dim }];
          return d.add(lo.value).add(hi.value);
        });
        const v = a.value("value");
        if (v.k !== "int" && v.k !== "float") a.fail("value", `pad needs a compile-time number for 'value', but got ${describe(v)}`);
        return tensor(x.dtype, shape, ctx.span);
      },
      "pad",
    ),
  ],
  ["zeros", creation("zeros", false)],
  ["ones", creation("ones", false)],
  ["full", creation("full", true)],
  ["randn", creation("randn", false)],
  ["rand", creation("rand", false)],
  [
    "arange",
    def([req("n")], (a: Args, ctx: OpContext) => {
      const n = a.int("n");
      if (n.value !== undefined && n.value < 1) a.fail("n", `arange needs n ≥ 1, got ${n}`, "E0407");
      return tensor("f32", [n], ctx.span);
    }, "arange"),
  ],
  // The 1-based number of the optimizer step a train entry is taking (the checker allows it only there).
  ["train_step", def([], (_a: Args, ctx: OpContext) => tensor("f32", [], ctx.span), "train_step")],
  // Which shard of the global batch this process holds, and how many there are (0 and 1 unless data-parallel):
  // what statistics over the whole batch need, such as an example's global index.
  ["data_shard", def([], (_a: Args, ctx: OpContext) => tensor("f32", [], ctx.span), "data_shard")],
  ["data_shards", def([], (_a: Args, ctx: OpContext) => tensor("f32", [], ctx.span), "data_shards")],
  // 1 while a train entry takes a step, 0 in plain entries and initialisers: what dropout reads to switch itself off.
  ["training", def([], (_a: Args, ctx: OpContext) => tensor("f32", [], ctx.span), "training")],
  // The L2 norm of every trained parameter's gradient at this step, for clipping (the checker allows it only in an
  // optimizer's update, which runs once the whole backward pass has).
  ["grad_norm", def([], (_a: Args, ctx: OpContext) => tensor("f32", [], ctx.span), "grad_norm")],
  [
    "stop_gradient",
    def([req("x")], (a: Args, ctx: OpContext) => {
      const x = a.tensor("x");
      return tensor(x.dtype, x.shape, ctx.span);
    }, "stop_gradient"),
  ],
  [
    "cast",
    def([req("x"), req("dtype")], (a: Args, ctx: OpContext) => {
      const x = a.tensor("x");
      const d = a.value("dtype");
      if (d.k !== "dtype") a.fail("dtype", `cast needs a dtype (${DTYPES.join(", ")}), but got ${describe(d)}`);
      return tensor(d.dtype, x.shape, ctx.span);
    }, "cast"),
  ],
  [
    "shape",
    def([req("x")], (a: Args) => {
      const x = a.tensor("x");
      return { k: "list", items: x.shape.map((d) => intValue(d)) };
    }, "shape"),
  ],
  [
    "float",
    def([req("x")], (a: Args) => {
      const v = a.value("x");
      if (v.k === "float") return v;
      if (v.k === "int") return { k: "float", value: v.value.value };
      return a.fail("x", `float converts a compile-time number, but got ${describe(v)}`);
    }, "float"),
  ],
  [
    "int",
    def([req("x")], (a: Args) => {
      const v = a.value("x");
      if (v.k === "int") return v;
      if (v.k === "float") {
        if (v.value === undefined) a.fail("x", "int needs the float to be known at compile time", "E0310");
        return intValue(Math.trunc(v.value));
      }
      return a.fail("x", `int converts a compile-time number, but got ${describe(v)}`);
    }, "int"),
  ],
  [
    "floordiv",
    def([req("a"), req("b")], (a: Args) => {
      const r = a.int("a").floorDiv(a.int("b"));
      if (!r) a.fail("b", "floordiv: division by zero", "E0407");
      return { k: "int", value: r };
    }, "floordiv"),
  ],
]);

/** Names that resolve to dtypes in expressions (`cast(x, f16)`). */
export const DTYPE_VALUES: ReadonlyMap<string, Value> = new Map(DTYPES.map((d) => [d, { k: "dtype", dtype: d } as Value]));

export { ERROR };
