// The kernel IR's index and scalar expressions (compiler/kernel/ir.ts) printed in a C-like language. WGSL and
// CUDA share the tree walk and the conversion rules; a Dialect says only how each spells literals, functions,
// casts and random draws. Values have three classes: i32, bool, and float (f32 and f16 compute in f32).
import type { BinaryFn, DType, UnaryFn } from "../../compiler/ir.js";
import type { Ix, Sx } from "../../compiler/kernel/ir.js";

export interface Dialect {
  /** An i32 literal. */
  int(v: number): string;
  /** A finite, normal (or zero) f32 value as a literal; `s` is its shortest decimal form. */
  float(s: string): string;
  /** An f32 given by its bits: infinities, NaN and subnormals, which have no portable literal. */
  bits(b: number): string;
  readonly unary: { readonly [F in UnaryFn]: (x: string) => string };
  /** Float arithmetic, and i32 arithmetic where `intBinary` has no entry (i32 pow goes through floats). */
  readonly binary: { readonly [F in BinaryFn]: (a: string, b: string) => string };
  /** i32 ops whose spelling must differ to keep the interpreter's wrapping and x / 0 = x. */
  readonly intBinary: { readonly [F in BinaryFn]?: (a: string, b: string) => string };
  /** i32 abs. */
  absInt(x: string): string;
  select(c: string, a: string, b: string): string;
  /** Float -> i32 with the interpreter's rule: truncate, saturate, NaN -> 0. */
  toInt(x: string): string;
  toFloat(x: string): string;
  /** An index (signed) as the u32 counter of a random stream. */
  toU32(x: string): string;
  /** Element `at` of the stream `key` (runtime/random.ts) at the launch's seed and step. */
  random(dist: "normal" | "uniform", key: number, at: string): string;
  /**
   * Index division and remainder by a positive constant. The kernel IR applies them only to non-negative values
   * (or where a bounds check discards the result), so a dialect may divide unsigned, which takes a GPU fewer
   * instructions than C's rounding of a signed quotient toward zero; default: signed `/` and `%`.
   */
  indexDiv?(a: string, c: number): string;
  indexMod?(a: string, c: number): string;
}

/** A call of the function `name`. */
export function call(name: string): (...args: string[]) => string {
  return (...args) => `${name}(${args.join(", ")})`;
}

/** What every dialect spells alike: negation, infix arithmetic, and the ulc_* helpers (each defines its own). */
export const C_UNARY = { neg: (x: string) => `(-${x})`, sigmoid: call("ulc_sigmoid"), softplus: call("ulc_softplus") };
export const C_BINARY = {
  add: (a: string, b: string) => `(${a} + ${b})`,
  sub: (a: string, b: string) => `(${a} - ${b})`,
  mul: (a: string, b: string) => `(${a} * ${b})`,
  div: (a: string, b: string) => `(${a} / ${b})`,
  pow: call("ulc_pow"),
};

/** Functions of one argument spelled as calls, by their names in the dialect. */
export function calls<K extends string>(names: Record<K, string>): Record<K, (x: string) => string> {
  return Object.fromEntries(Object.entries<string>(names).map(([k, name]) => [k, call(name)])) as Record<K, (x: string) => string>;
}

type Class = "i32" | "bool" | "float";

function cls(t: DType): Class {
  return t === "i32" || t === "bool" ? t : "float";
}

export function renderIx(x: Ix, d: Dialect): string {
  switch (x.k) {
    case "gid":
      return "gid";
    case "r":
      return "r";
    case "var":
      return x.name;
    case "const":
      return d.int(x.v);
    case "add":
      return `(${renderIx(x.a, d)} + ${renderIx(x.b, d)})`;
    case "mul":
      return `${renderIx(x.a, d)} * ${d.int(x.c)}`;
    case "div":
      return d.indexDiv ? d.indexDiv(renderIx(x.a, d), x.c) : `(${renderIx(x.a, d)} / ${d.int(x.c)})`;
    case "mod":
      return d.indexMod ? d.indexMod(renderIx(x.a, d), x.c) : `(${renderIx(x.a, d)} % ${d.int(x.c)})`;
  }
}

const F32_MIN_NORMAL = 1.1754943508222875e-38;

/** `v` rounded to f32, as a literal. */
export function floatLiteral(v: number, d: Dialect): string {
  if (Object.is(v, -0)) return d.float("-0.0");
  const f = Math.fround(v);
  if (!Number.isFinite(f) || (f !== 0 && Math.abs(f) < F32_MIN_NORMAL)) return d.bits(new Uint32Array(Float32Array.of(f).buffer)[0]!);
  const s = String(f);
  return d.float(/[.e]/.test(s) ? s : `${s}.0`);
}

export function literal(v: number, t: DType, d: Dialect): string {
  if (t === "i32") return d.int(v | 0);
  if (t === "bool") return v !== 0 ? "true" : "false";
  return floatLiteral(v, d);
}

/** `x` (of dtype `from`) converted to dtype `to`, with the interpreter's rules (i32 truncates and saturates). */
function convert(x: string, from: DType, to: DType, d: Dialect): string {
  const [a, b] = [cls(from), cls(to)];
  if (a === b) return x;
  if (b === "bool") return a === "i32" ? `(${x} != ${d.int(0)})` : `(${x} != ${d.float("0.0")})`;
  if (a === "bool") return b === "i32" ? d.select(x, d.int(1), d.int(0)) : d.select(x, d.float("1.0"), d.float("0.0"));
  return b === "i32" ? d.toInt(x) : d.toFloat(x);
}

const COMPARE = { lt: "<", le: "<=", gt: ">", ge: ">=", eq: "==", ne: "!=" } as const;

/**
 * A scalar expression; `inputs` are the kernel's input dtypes (bool buffers hold 0/1 floats). Loads read
 * `in{i}[...]`, the reduction's result is `acc`.
 */
export function renderSx(x: Sx, inputs: readonly DType[], d: Dialect): string {
  const sub = (y: Sx) => renderSx(y, inputs, d);
  const ix = (y: Ix) => renderIx(y, d);
  switch (x.k) {
    case "load": {
      const raw = `in${x.buffer}[${ix(x.at)}]`;
      return inputs[x.buffer] === "bool" ? `(${raw} != ${d.float("0.0")})` : raw;
    }
    case "const":
      return literal(x.v, x.t, d);
    case "index":
      return convert(ix(x.at), "i32", x.t, d);
    case "random":
      return d.random(x.dist, x.key, d.toU32(ix(x.at)));
    case "unary":
      if (x.t === "i32") return x.fn === "neg" ? `(-${sub(x.x)})` : x.fn === "abs" ? d.absInt(sub(x.x)) : d.toInt(d.unary[x.fn](d.toFloat(sub(x.x))));
      return d.unary[x.fn](sub(x.x));
    case "binary":
      if (x.t === "i32" && x.fn === "pow") return d.toInt(d.binary.pow(d.toFloat(sub(x.a)), d.toFloat(sub(x.b))));
      return ((x.t === "i32" && d.intBinary[x.fn]) || d.binary[x.fn])(sub(x.a), sub(x.b));
    case "compare":
      return `(${sub(x.a)} ${COMPARE[x.fn]} ${sub(x.b)})`;
    case "select":
      return d.select(sub(x.c), sub(x.a), sub(x.b));
    case "cast":
      return convert(sub(x.x), x.x.t, x.t, d);
    case "inrange": {
      const at = ix(x.at);
      return `(${at} >= ${d.int(x.lo)} && ${at} < ${d.int(x.hi)})`;
    }
    case "acc":
      return "acc";
  }
}
