// The kernel IR: what one GPU dispatch computes, free of any target's syntax. A kernel writes one buffer; one
// invocation computes one output element from its index (or, in a tiled kernel, a register tile of them),
// reading inputs through index expressions (views of movement ops folded in), evaluating a scalar expression
// tree, and at most one reduction loop. Renderers (JS for reference, WGSL, CUDA) print the same tree.
import type { BinaryFn, CompareFn, DType, UnaryFn } from "../ir.js";

// ---------------------------------------------------------------- index expressions

/**
 * Integer index arithmetic over the invocation's output index `gid` and the reduction counter `r`. Values may
 * be negative (a padded convolution's input row); `div` and `mod` are only ever applied to non-negative values
 * or under a bounds check that discards the result.
 */
export type Ix =
  | { readonly k: "gid" }
  | { readonly k: "r" }
  /** A loop variable of a renderer's loop nest (kernel/split.ts: the outer and inner parts of gid or r). */
  | { readonly k: "var"; readonly name: string }
  | { readonly k: "const"; readonly v: number }
  | { readonly k: "add"; readonly a: Ix; readonly b: Ix }
  | { readonly k: "mul"; readonly a: Ix; readonly c: number }
  | { readonly k: "div"; readonly a: Ix; readonly c: number }
  | { readonly k: "mod"; readonly a: Ix; readonly c: number };

export const GID: Ix = { k: "gid" };
export const R: Ix = { k: "r" };

export function ixConst(v: number): Ix {
  return { k: "const", v };
}

function ixEqual(a: Ix, b: Ix): boolean {
  if (a.k !== b.k) return false;
  switch (a.k) {
    case "gid":
    case "r":
      return true;
    case "var":
      return a.name === (b as typeof a).name;
    case "const":
      return a.v === (b as typeof a).v;
    case "add":
      return ixEqual(a.a, (b as typeof a).a) && ixEqual(a.b, (b as typeof a).b);
    default:
      return a.c === (b as typeof a).c && ixEqual(a.a, (b as typeof a).a);
  }
}

function terms(x: Ix): Ix[] {
  return x.k === "add" ? [...terms(x.a), ...terms(x.b)] : [x];
}

/**
 * Two terms of a sum as one, for a ≥ 0: `(a / c % d)·c + a % c = a % (c·d)` and `(a / c)·c + a % c = a`. A view
 * that unravels an index and ravels it again with the same strides (a reshape, a broadcast of size-1 axes) so
 * collapses back to the index, and a loop over it reads memory contiguously.
 */
function mergeTerms(hi: Ix, lo: Ix): Ix | undefined {
  if (hi.k !== "mul" || lo.k !== "mod" || hi.c !== lo.c) return undefined;
  const q = hi.a;
  if (q.k === "div" && q.c === lo.c && ixEqual(q.a, lo.a)) return lo.a;
  if (q.k === "mod" && q.a.k === "div" && q.a.c === lo.c && ixEqual(q.a.a, lo.a)) return ixMod(lo.a, lo.c * q.c);
  return undefined;
}

/** Constructors that fold constants, drop identities and merge unravelled terms, so rendered indices stay short. */
export function ixAdd(a: Ix, b: Ix): Ix {
  if (a.k === "const" && b.k === "const") return ixConst(a.v + b.v);
  if (a.k === "const" && a.v === 0) return b;
  if (b.k === "const" && b.v === 0) return a;
  const all = [...terms(a), ...terms(b)];
  let merged = false;
  for (let i = 0; i < all.length; i++)
    for (let j = 0; j < all.length; j++) {
      const m = i === j ? undefined : mergeTerms(all[i]!, all[j]!);
      if (!m) continue;
      all.splice(Math.max(i, j), 1);
      all.splice(Math.min(i, j), 1, m);
      merged = true;
      i = -1;
      break;
    }
  if (!merged) return { k: "add", a, b };
  return all.reduce((x, y) => ixAdd(x, y));
}

export function ixMul(a: Ix, c: number): Ix {
  if (c === 0) return ixConst(0);
  if (c === 1) return a;
  if (a.k === "const") return ixConst(a.v * c);
  if (a.k === "mul") return ixMul(a.a, a.c * c);
  return { k: "mul", a, c };
}

export function ixDiv(a: Ix, c: number): Ix {
  if (c === 1) return a;
  if (a.k === "const") return ixConst(Math.floor(a.v / c));
  if (a.k === "mul" && a.c % c === 0) return ixMul(a.a, a.c / c);
  if (a.k === "div") return ixDiv(a.a, a.c * c);
  return { k: "div", a, c };
}

/** `a % c` for a ≥ 0; `bound` (when known) is an exclusive upper bound of `a`, which can make the mod vanish. */
export function ixMod(a: Ix, c: number, bound?: number): Ix {
  if (c === 1) return ixConst(0);
  if (a.k === "const") return ixConst(a.v % c);
  if (bound !== undefined && bound <= c) return a;
  if (a.k === "mul" && a.c % c === 0) return ixConst(0);
  return { k: "mod", a, c };
}

/** Whether `at` is the invocation's own output index in a kernel of `size` outputs (in a kernel of one, any 0 is). */
export function atOwnIndex(at: Ix, size: number): boolean {
  return at.k === "gid" || (size === 1 && at.k === "const" && at.v === 0);
}

// ---------------------------------------------------------------- scalar expressions

/** A scalar expression; `t` is its dtype, which renderers need for literals and integer arithmetic. */
export type Sx =
  /** Element `at` of kernel input `buffer` (an index into Kernel.inputs). */
  | { readonly k: "load"; readonly t: DType; readonly buffer: number; readonly at: Ix }
  | { readonly k: "const"; readonly t: DType; readonly v: number }
  /** The index itself as a number (iota). */
  | { readonly k: "index"; readonly t: DType; readonly at: Ix }
  /** Element `at` of the counter-based stream `key` (runtime/random.ts), at the dispatch's seed and step. */
  | { readonly k: "random"; readonly t: DType; readonly dist: "normal" | "uniform"; readonly key: number; readonly at: Ix }
  | { readonly k: "unary"; readonly t: DType; readonly fn: UnaryFn; readonly x: Sx }
  | { readonly k: "binary"; readonly t: DType; readonly fn: BinaryFn; readonly a: Sx; readonly b: Sx }
  /** `t` is bool; the operands have their own dtype. */
  | { readonly k: "compare"; readonly t: DType; readonly fn: CompareFn; readonly a: Sx; readonly b: Sx }
  | { readonly k: "select"; readonly t: DType; readonly c: Sx; readonly a: Sx; readonly b: Sx }
  | { readonly k: "cast"; readonly t: DType; readonly x: Sx }
  /** lo ≤ at < hi, as a bool: bounds checks of padding, strides and concatenation. */
  | { readonly k: "inrange"; readonly t: DType; readonly at: Ix; readonly lo: number; readonly hi: number }
  /** The reduction's result, in the epilogue. */
  | { readonly k: "acc"; readonly t: DType };

/** The operands of an expression node. */
export function sxChildren(x: Sx): Sx[] {
  switch (x.k) {
    case "unary":
    case "cast":
      return [x.x];
    case "binary":
    case "compare":
      return [x.a, x.b];
    case "select":
      return [x.c, x.a, x.b];
    default:
      return [];
  }
}

/**
 * Every distinct node of an expression, depth first, each once: a subexpression that fusion inlined into several
 * readers is one object under several parents, and visiting it once per path made this quadratic and worse.
 */
export function sxNodes(x: Sx): Sx[] {
  const seen = new Set<Sx>();
  const pending = [x];
  while (pending.length > 0) {
    const y = pending.pop()!;
    if (seen.has(y)) continue;
    seen.add(y);
    pending.push(...sxChildren(y).reverse());
  }
  return [...seen];
}

export interface KernelInput {
  /** The graph node whose buffer this is. */
  readonly node: number;
  readonly dtype: DType;
  readonly size: number;
}

/**
 * A register tile for a sum of products shaped like a batch of matrix products (matmul; the convolutions as
 * implicit GEMM). The output is a batch of m × n matrices, output `gid` = (b·m + i)·n + j, and each invocation
 * computes `rows` × `cols` of one of them. The reduction's term is `lhs · rhs` (its body is that `mul`), where
 * lhs does not depend on the column j and rhs not on the row i: so per step r an invocation evaluates lhs once
 * per row and rhs once per column (each at the `gid` of some output in that row or column) and does rows × cols
 * multiply-adds, instead of two operand reads per multiply-add. Each output still sums r = 0, 1, ... in order.
 */
export interface Tile {
  readonly m: number;
  readonly n: number;
  readonly rows: number;
  readonly cols: number;
  /** Set on a strided input gradient whose columns split into parity classes (ParityClasses). */
  readonly parity?: ParityClasses;
}

/**
 * A stride-s input gradient as s² GEMMs, one per parity class of its output positions: output row h (height ×
 * width positions, the columns) meets the kernel taps kh ≡ h + padding (mod s) only, kh = (h + padding) mod s +
 * j·s. The kernel's reduction counts r over (og, jh, jw) ∈ groupOutputs × ⌈KH/s⌉ × ⌈KW/s⌉, and its lhs (the
 * weights, masked where a tap is past the kernel) depends on the column only through its class; a renderer that
 * runs each class with its own count of taps multiplies no masked tap.
 */
export interface ParityClasses {
  readonly stride: number;
  readonly padding: number;
  readonly height: number;
  readonly width: number;
  readonly taps: readonly [number, number];
  readonly groupOutputs: number;
}

/** Another output of an element-wise kernel (kernel/siblings.ts): written at the same index, from its own body. */
export interface SiblingOutput {
  readonly node: number;
  readonly dtype: DType;
  readonly body: Sx;
}

export interface Kernel {
  readonly name: string;
  /** The graph node this kernel materialises. */
  readonly node: number;
  readonly dtype: DType;
  /** Output elements: one invocation each, unless the kernel is tiled. */
  readonly size: number;
  readonly inputs: readonly KernelInput[];
  /** A reduction: `count` terms of `body` (over r = 0..count-1), folded with `fn` from its identity. */
  readonly reduce?: { readonly fn: "sum" | "max"; readonly count: number; readonly body: Sx };
  /** Set on a sum of products computed a register tile per invocation; its reduction's body is `lhs · rhs`. */
  readonly tile?: Tile;
  /** The output element (uses `acc` when there is a reduction). */
  readonly body: Sx;
  /** More outputs of an element-wise kernel (no reduction, no tile), each written at the same index. */
  readonly siblings?: readonly SiblingOutput[];
  /** The graph nodes fused into this kernel, for statistics and debugging. */
  readonly fused: readonly number[];
}

/** Every output of a kernel: its own node, then its siblings'. */
export function kernelOutputs(k: Kernel): SiblingOutput[] {
  return [{ node: k.node, dtype: k.dtype, body: k.body }, ...(k.siblings ?? [])];
}

/** The two factors of a tiled kernel's term (see Tile). */
export function tileFactors(k: Kernel): { lhs: Sx; rhs: Sx } {
  const body = k.reduce?.body;
  if (!k.tile || k.reduce?.fn !== "sum" || body?.k !== "binary" || body.fn !== "mul") throw new Error(`${k.name} is not a tiled sum of products`);
  return { lhs: body.a, rhs: body.b };
}

/**
 * What a library call reads: a materialised node, possibly through a transpose of its last two axes, which a
 * GEMM reads as a flag instead of a copy.
 */
export interface LibraryOperand {
  readonly node: number;
  readonly transposed: boolean;
}

/** A graph op that runs as a library kernel (a template such as tiled matmul), not as a fused expression. */
export interface LibraryCall {
  readonly node: number;
  /** The op's inputs as the call reads them. */
  readonly operands: readonly LibraryOperand[];
}

/**
 * Independent kernels launched as one (kernel/batch.ts): none reads what another writes, so each part runs over
 * a range of the launch's blocks of its own, as if launched alone.
 */
export interface Batch {
  readonly parts: readonly Kernel[];
}

/**
 * Kernels of one size and one number of terms that the same threads run one after another (kernel/chain.ts): a
 * later part may read what an earlier one wrote, at its own output index only (a norm's variance reads its mean).
 */
export interface Chain {
  readonly parts: readonly Kernel[];
}

export type Step =
  | { readonly kind: "kernel"; readonly kernel: Kernel }
  | { readonly kind: "library"; readonly call: LibraryCall }
  | { readonly kind: "batch"; readonly batch: Batch }
  | { readonly kind: "chain"; readonly chain: Chain };

/**
 * The buffers kernels bind together (one kernel, a batch or a chain): what its parts read from outside it, each
 * once, in the order they first read them; then every part's outputs.
 */
export function partsBuffers(parts: readonly Kernel[]): { inputs: number[]; outputs: number[] } {
  const outputs = parts.flatMap((k) => kernelOutputs(k).map((o) => o.node));
  const written = new Set(outputs);
  return { inputs: [...new Set(parts.flatMap((k) => k.inputs.map((i) => i.node)))].filter((n) => !written.has(n)), outputs };
}

/** The buffers a step reads (from outside it), then those it writes. */
export function stepBuffers(step: Step): { inputs: number[]; outputs: number[] } {
  switch (step.kind) {
    case "kernel":
      return partsBuffers([step.kernel]);
    case "library":
      return { inputs: step.call.operands.map((o) => o.node), outputs: [step.call.node] };
    case "batch":
      return partsBuffers(step.batch.parts);
    case "chain":
      return partsBuffers(step.chain.parts);
  }
}

export interface Schedule {
  readonly steps: readonly Step[];
  /** Graph nodes that have a buffer: inputs, params, and every step's output. */
  readonly buffers: readonly number[];
}
