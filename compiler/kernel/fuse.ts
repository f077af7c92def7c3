// Fusion: graph IR -> a schedule of kernels. Element-wise chains fuse into their consumer; movement ops, upsample,
// pad and concat become index arithmetic (with bounds checks); every contraction — reduce, matmul, the three
// convolutions, average pooling and its gradient — is a reduction loop that absorbs its element-wise prologue
// (what it reads is inlined) and, when its only consumer is element-wise on the same shape, that epilogue too.
// A value with several consumers is materialised, unless each can recompute it for no more memory traffic (a short
// expression of one full-size load); so is every graph output. Matmul and
// the convolutions are sums of products shaped like a batch of matrix products; given `tile`, a kernel whose
// output is such a sum computes a register tile of outputs per invocation (kernel/ir.ts, Tile). Library calls
// (tuned templates such as a register-blocked matmul) replace the ops named in `library`. With `siblings`,
// adjacent element-wise kernels of one size then merge into kernels of several outputs (kernel/siblings.ts); with
// `chain`, a kernel reading another's output at its own index runs in the same threads after it (kernel/chain.ts);
// with `batch`, independent kernels launch as one (kernel/batch.ts).
import { isRounding, strides, type Graph, type Node } from "../ir.js";
import { GID, R, ixAdd, ixConst, ixDiv, ixMod, ixMul, type Ix, type Kernel, type KernelInput, type LibraryOperand, type ParityClasses, type Schedule, type Step, type Sx, type Tile } from "./ir.js";
import { batchKernels, type BatchOptions } from "./batch.js";
import { chainKernels } from "./chain.js";
import { mergeSiblings } from "./siblings.js";

const ELEMENTWISE = new Set(["unary", "binary", "compare", "select", "cast", "stop_gradient"]);
/** Ops computed by a reduction loop: each is its own kernel unless it fuses into its consumer. */
const CONTRACTIONS = new Set(["reduce", "matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight", "avg_pool", "avg_pool_grad"]);
const MOVEMENT = new Set(["reshape", "transpose", "broadcast", "slice"]);

/** The multi-index of a tensor of `shape` at linear position `linear` (< size). */
function unravel(linear: Ix, shape: readonly number[]): Ix[] {
  const st = strides(shape);
  // linear < size, so its quotient by the first axis of more than one element needs no mod (before it, axes of
  // one element are 0): [1, 32, 3, 3] ravels back to the plain index, not index % 288.
  const lead = shape.findIndex((d) => d !== 1);
  return shape.map((d, i) => ixMod(ixDiv(linear, st[i]!), d, i === lead ? d : undefined));
}

function ravel(idx: readonly Ix[], shape: readonly number[]): Ix {
  const st = strides(shape);
  return idx.reduce<Ix>((acc, x, i) => ixAdd(acc, ixMul(x, st[i]!)), ixConst(0));
}

export interface FuseOptions {
  /** Ops run as library calls on materialised inputs, matmul's possibly transposed (default none). */
  readonly library?: ReadonlySet<string>;
  /**
   * The most buffers a kernel may read: a device's maxStorageBuffersPerShaderStage minus the output. The
   * default, 7, fits WebGPU's default limit of 8; a kernel that would read more is split.
   */
  readonly maxInputs?: number;
  /**
   * The largest register tile (rows × cols outputs per invocation) of a kernel computing a sum of products of
   * at least `minProducts` multiply-adds (default 0); default none: one output per invocation. Each kernel's
   * tile splits its matrices into equal blocks. `parity`: the renderer runs a strided input gradient's parity
   * classes as GEMMs of their own (kernel/ir.ts, ParityClasses); without it a tiled one multiplies masked taps.
   */
  readonly tile?: { readonly rows: number; readonly cols: number; readonly minProducts?: number; readonly parity?: boolean };
  /** Merge adjacent element-wise kernels of one size into multi-output kernels (kernel/siblings.ts); default off. */
  readonly siblings?: boolean;
  /** Run a kernel that reads another's output at its own index, both of one size and number of terms, in the same threads right after it (kernel/chain.ts); default off. */
  readonly chain?: boolean;
  /** Launch independent kernels as one (kernel/batch.ts); default off. */
  readonly batch?: BatchOptions;
}

export function fuse(g: Graph, options: FuseOptions = {}): Schedule {
  // A collective is the host's work between two schedules, never a kernel's.
  if (g.nodes.some((n) => n.op.kind === "all_reduce")) throw new Error("a graph with all_reduce nodes must be split at them (compiler/parallel.ts) before fusion");
  const library = options.library ?? new Set<string>();
  const consumers = new Array<number>(g.nodes.length).fill(0);
  const users = g.nodes.map((): number[] => []);
  for (const n of g.nodes)
    for (const x of n.inputs) {
      consumers[x]! += 1;
      users[x]!.push(n.id);
    }
  // Reads through views count as reads of the viewed node: a value read by two views is read twice.
  const reads = new Array<number>(g.nodes.length).fill(0);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    const own = MOVEMENT.has(n.op.kind) ? reads[i]! : 1;
    for (const x of n.inputs) reads[x]! += own;
  }
  for (const o of g.outputs) reads[o.node]! += 1;
  const outputs = new Set(g.outputs.map((o) => o.node));
  const materialized = new Set<number>();
  for (const n of g.nodes) {
    const kind = n.op.kind;
    if (outputs.has(n.id) || kind === "input" || kind === "param" || library.has(kind)) materialized.add(n.id);
    if (library.has(kind)) for (const operand of libraryOperands(g, n)) materialized.add(operand.node);
    if ((ELEMENTWISE.has(kind) || kind === "random" || kind === "iota") && reads[n.id]! > 1 && !recomputedByReaders(g, n, materialized, reads[n.id]!, users)) materialized.add(n.id);
    if (CONTRACTIONS.has(kind) && !fusableReduce(g, n, consumers)) materialized.add(n.id);
  }
  // A kernel holds one reduction and reads at most maxInputs buffers: a second reduction met while building,
  // or a part of a kernel that reads too much, is materialised, and we retry.
  const maxInputs = options.maxInputs ?? 7;
  for (;;) {
    const retry = buildSchedule(g, materialized, library, maxInputs, options.tile);
    if (typeof retry === "number") {
      materialized.add(retry);
      continue;
    }
    const merged = options.siblings ? mergeSiblings(retry.steps, maxInputs + 1, !options.batch) : retry.steps;
    const chained = options.chain ? chainKernels(merged) : merged;
    return { ...retry, steps: options.batch ? batchKernels(chained, options.batch) : chained };
  }
}

/** The most element-wise ops a recomputed value's expression may hold. */
const RECOMPUTE_OPS = 32;
/** The most readers that recompute one value. */
const RECOMPUTE_READS = 8;

/**
 * Whether each reader of `n`, read `reads` times, computes it again rather than a kernel of its own storing it:
 *  - a rounding to TF32 or bfloat16 (a contraction's operand in a tf32 or bf16 Program) of a materialised value,
 *    seen through views: one op on one load;
 *  - a short element-wise expression of materialised values (nothing that sums or draws), read by element-wise
 *    ops and reductions that read each of its elements once (no broadcast in between), when that moves no more
 *    memory: stored, it costs a launch, its L full-size loads, a write and one load per read; recomputed, L loads
 *    per read (a value read through a broadcast, such as a norm's mean, stays in cache and is not counted). So
 *    the mean-centred input of a norm (L = 1) is recomputed by all its readers, and a difference of two
 *    activations read twice is too.
 */
function recomputedByReaders(g: Graph, n: Node, materialized: ReadonlySet<number>, reads: number, users: readonly (readonly number[])[]): boolean {
  if (n.op.kind === "unary" && isRounding(n.op.fn)) {
    let source = n.inputs[0]!;
    while (MOVEMENT.has(g.nodes[source]!.op.kind)) source = g.nodes[source]!.inputs[0]!;
    return materialized.has(source);
  }
  if (!ELEMENTWISE.has(n.op.kind) || reads > RECOMPUTE_READS) return false;
  const readOnce = (id: number): boolean =>
    users[id]!.every((u) => {
      const kind = g.nodes[u]!.op.kind;
      if (kind === "broadcast") return false;
      return MOVEMENT.has(kind) ? readOnce(u) : ELEMENTWISE.has(kind) || kind === "reduce";
    });
  if (!readOnce(n.id)) return false;
  // The expression each reader would inline: n's inputs up to materialised values, the loads not broadcast.
  let ops = 0;
  const loads = new Set<number>();
  const seen = new Set<number>();
  const inlinable = (id: number, broadcast: boolean): boolean => {
    const m = g.nodes[id]!;
    if (materialized.has(id)) {
      if (!broadcast) loads.add(id);
      return true;
    }
    // A sum read through a broadcast is always materialised (FusedKernel.reduction): a cached load.
    if (m.op.kind === "constant" || seen.has(id) || (broadcast && CONTRACTIONS.has(m.op.kind))) return true;
    seen.add(id);
    if (ELEMENTWISE.has(m.op.kind)) ops += 1;
    else if (!MOVEMENT.has(m.op.kind)) return false;
    return ops <= RECOMPUTE_OPS && m.inputs.every((x) => inlinable(x, broadcast || m.op.kind === "broadcast"));
  };
  return inlinable(n.id, false) && reads * loads.size <= loads.size + 1 + reads;
}

/** A matmul reads an operand transposed in its last two axes as the transpose's input (a GEMM's flag, not a copy). */
function libraryOperands(g: Graph, n: Node): LibraryOperand[] {
  return n.inputs.map((x) => {
    const op = g.nodes[x]!.op;
    const r = n.shape.length;
    const swapsLastTwo = op.kind === "transpose" && op.perm.every((p, i) => p === (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
    return n.op.kind === "matmul" && swapsLastTwo ? { node: g.nodes[x]!.inputs[0]!, transposed: true } : { node: x, transposed: false };
  });
}

/** The distinct materialised nodes that computing `id` inline reads. */
function leavesUnder(g: Graph, id: number, materialized: ReadonlySet<number>, memo: Map<number, Set<number>>): Set<number> {
  const hit = memo.get(id);
  if (hit) return hit;
  const out = new Set<number>();
  for (const x of g.nodes[id]!.inputs) {
    if (materialized.has(x)) out.add(x);
    else if (g.nodes[x]!.op.kind !== "constant") for (const l of leavesUnder(g, x, materialized, memo)) out.add(l);
  }
  memo.set(id, out);
  return out;
}

/**
 * The fused node to materialise so that a kernel reading too many buffers splits: the one that reads the most
 * while still fitting in a kernel of its own, else the one that reads the most short of all of them.
 */
function splitPoint(g: Graph, k: Kernel, materialized: ReadonlySet<number>, maxInputs: number): number {
  const memo = new Map<number, Set<number>>();
  let fitting: { id: number; reads: number } | undefined;
  let largest: { id: number; reads: number } | undefined;
  for (const id of k.fused) {
    if (id === k.node) continue;
    const reads = leavesUnder(g, id, materialized, memo).size;
    if (reads < 2 || reads >= k.inputs.length) continue;
    if (reads <= maxInputs && reads > (fitting?.reads ?? 0)) fitting = { id, reads };
    if (reads > (largest?.reads ?? 0)) largest = { id, reads };
  }
  const best = (fitting ?? largest)?.id;
  if (best === undefined) throw new Error(`${k.name} reads ${k.inputs.length} buffers and cannot be split (one op reads them all)`);
  return best;
}

/** A reduction fuses into its consumer when that is its only use, element-wise, and on the same shape. */
function fusableReduce(g: Graph, n: Node, consumers: readonly number[]): boolean {
  if (consumers[n.id] !== 1) return false;
  const user = g.nodes.find((u) => u.inputs.includes(n.id))!;
  return ELEMENTWISE.has(user.op.kind) && user.shape.length === n.shape.length && user.shape.every((d, i) => d === n.shape[i]);
}

/** The schedule, or the id of a node to materialise first (a second reduction, or a split point). */
function buildSchedule(g: Graph, materialized: ReadonlySet<number>, library: ReadonlySet<string>, maxInputs: number, tile: FuseOptions["tile"]): Schedule | number {
  const steps: Step[] = [];
  for (const n of g.nodes) {
    if (!materialized.has(n.id) || n.op.kind === "input" || n.op.kind === "param") continue;
    if (library.has(n.op.kind)) {
      steps.push({ kind: "library", call: { node: n.id, operands: libraryOperands(g, n) } });
      continue;
    }
    const k = new KernelBuilder(g, materialized, n, tile);
    const kernel = k.build();
    if (typeof kernel === "number") return kernel;
    if (kernel.inputs.length > maxInputs) return splitPoint(g, kernel, materialized, maxInputs);
    steps.push({ kind: "kernel", kernel });
  }
  return { steps, buffers: g.nodes.filter((n) => materialized.has(n.id)).map((n) => n.id) };
}

/** The conjunction of bool expressions (select(a, b, false)). */
function all(conds: readonly Sx[]): Sx {
  return conds.reduce((acc, c) => ({ k: "select", t: "bool", c: acc, a: c, b: { k: "const", t: "bool", v: 0 } }));
}

interface Contraction {
  readonly fn: "sum" | "max";
  readonly count: number;
  /**
   * Set when the output is a batch of m × n matrices whose every term is lhs · rhs, lhs independent of the
   * column and rhs of the row (kernel/ir.ts, Tile); `body` is then that product.
   */
  readonly gemm?: { readonly m: number; readonly n: number; readonly parity?: ParityClasses };
  /** The term for reduction counter `r` (built lazily, after the kernel has registered the contraction). */
  body(): Sx;
  /** The node's value from the accumulated `acc`. */
  finish(acc: Sx): Sx;
}

/**
 * Each contraction as a loop over `r`, with the summation order of the reference interpreter, so that the
 * fused result equals it exactly in float64. `operand(i, at)` reads input i at a multi-index. A convolution's
 * tap outside the image reads 0 (the interpreter skips it: the same sum unless the other factor is infinite
 * or NaN), which keeps the term a product of a factor per row and a factor per column of its implicit GEMM.
 */
function contraction(n: Node, idx: readonly Ix[], operand: (i: number, at: readonly Ix[]) => Sx, g: Graph, tiling: FuseOptions["tile"]): Contraction {
  const op = n.op;
  const t = n.dtype;
  const shapeOf = (i: number) => g.nodes[n.inputs[i]!]!.shape;
  const mul = (a: Sx, b: Sx): Sx => ({ k: "binary", t, fn: "mul", a, b });
  const zero: Sx = { k: "const", t, v: 0 };
  const guarded = (cond: Sx[], value: Sx): Sx => ({ k: "select", t, c: all(cond), a: value, b: zero });
  const within = (at: Ix, hi: number): Sx => ({ k: "inrange", t: "bool", at, lo: 0, hi });
  const identity = (acc: Sx) => acc;
  // Convolutions: the input row (or column) an output position reads through kernel tap k, and the input
  // channel of a group's channel c; and, going back, the output position a strided window maps to exactly.
  const conv = op.kind === "conv2d" || op.kind === "conv2d_grad_input" || op.kind === "conv2d_grad_weight" ? op : undefined;
  const tap = (out: Ix, k: Ix) => ixAdd(ixAdd(ixMul(out, conv!.stride), k), ixConst(-conv!.padding));
  const channel = (o: Ix, O: number, Cg: number, c: Ix) => ixAdd(ixMul(ixDiv(o, O / conv!.groups), Cg), c);
  /** `num / stride` where the division is exact and lands in [0, hi): the conditions and the quotient. */
  const exactly = (num: Ix, stride: number, hi: number): { cond: Sx[]; at: Ix } => {
    const at = ixDiv(num, stride);
    return { cond: [within(num, INT_MAX), within(ixMod(num, stride), 1), within(at, hi)], at };
  };
  switch (op.kind) {
    case "reduce": {
      const x = shapeOf(0);
      const sub = op.axes.map((a) => x[a]!);
      const r = unravel(R, sub);
      const at = x.map((_, d) => (op.axes.includes(d) ? r[op.axes.indexOf(d)]! : idx[d]!));
      return { fn: op.fn, count: product(sub), body: () => operand(0, at), finish: identity };
    }
    case "matmul": {
      const a = shapeOf(0);
      const rank = a.length;
      const batch = idx.slice(0, rank - 2);
      return {
        fn: "sum",
        count: a[rank - 1]!,
        gemm: { m: a[rank - 2]!, n: n.shape[rank - 1]! },
        body: () => mul(operand(0, [...batch, idx[rank - 2]!, R]), operand(1, [...batch, R, idx[rank - 1]!])),
        finish: identity,
      };
    }
    case "conv2d": {
      // out[n, o, oh, ow] = Σ_(c, kh, kw) w[o, c, kh, kw] · x[n, g·Cg + c, oh·s + kh − p, ow·s + kw − p]: per
      // (n, g), a GEMM of w's rows (o) and x's columns (oh, ow).
      const [, , H, W] = shapeOf(0) as [number, number, number, number];
      const [O, Cg, KH, KW] = shapeOf(1) as [number, number, number, number];
      const [nn, o, oh, ow] = idx as [Ix, Ix, Ix, Ix];
      const [c, kh, kw] = unravel(R, [Cg, KH, KW]) as [Ix, Ix, Ix];
      const [ih, iw] = [tap(oh, kh), tap(ow, kw)];
      return {
        fn: "sum",
        count: Cg * KH * KW,
        gemm: { m: O / op.groups, n: n.shape[2]! * n.shape[3]! },
        body: () => mul(operand(1, [o, c, kh, kw]), guarded([within(ih, H), within(iw, W)], operand(0, [nn, channel(o, O, Cg, c), ih, iw]))),
        finish: identity,
      };
    }
    case "conv2d_grad_input": {
      // dx[n, ci, h, w] = Σ_(og, kh, kw) w[o, ci mod Cg, kh, kw] · dy[n, o, (h + p − kh)/s, (w + p − kw)/s]
      // over the terms where the divisions are exact and land inside dy; o = (ci / Cg)·Og + og. Per (n, g), a
      // GEMM of w's rows (ci) and dy's columns (h, w).
      const [, O, HO, WO] = shapeOf(0) as [number, number, number, number];
      const [, Cg, KH, KW] = shapeOf(1) as [number, number, number, number];
      const Og = O / op.groups;
      const [nn, ci, h, w] = idx as [Ix, Ix, Ix, Ix];
      const s = op.stride;
      if (s > 1 && (!tiling || tiling.parity)) {
        // Strided: of the taps kh, only those ≡ h + p (mod s) divide exactly, so the sum visits just those,
        // kh = (h + p) mod s + j·s (in the same order as all of them, so the same sum): 1/s² of the terms, and
        // the row (h + p − kh)/s = ⌊(h + p)/s⌋ − j needs no division test. A tiled kernel takes this form only
        // where its renderer runs each parity class as a GEMM of its own (the tap depends on the column's class);
        // other tiles keep every tap, masked (below).
        const [JH, JW] = [Math.ceil(KH / s), Math.ceil(KW / s)];
        const [og, jh, jw] = unravel(R, [Og, JH, JW]) as [Ix, Ix, Ix];
        const o = ixAdd(ixMul(ixDiv(ci, Cg), Og), og);
        // The tap along one axis for output position x and step j, the dy position it reads, and whether both exist.
        const along = (x: Ix, j: Ix, K: number, size: number) => {
          const k = ixAdd(ixMod(ixAdd(x, ixConst(op.padding)), s), ixMul(j, s));
          const at = ixAdd(ixDiv(ixAdd(x, ixConst(op.padding)), s), ixMul(j, -1));
          return { k, at, cond: [within(k, K), within(at, size)] };
        };
        const [rows, cols] = [along(h, jh, KH, HO), along(w, jw, KW, WO)];
        const weight = () => operand(1, [o, ixMod(ci, Cg), rows.k, cols.k]);
        const gradient = () => operand(0, [nn, o, rows.at, cols.at]);
        if (!tiling)
          return { fn: "sum", count: Og * JH * JW, body: () => guarded([...rows.cond, ...cols.cond], mul(weight(), gradient())), finish: identity };
        // As a GEMM per parity class: the tap's test with the weight (a factor per row and class), the dy
        // position's with dy (a factor per column).
        const [H, W] = [n.shape[2]!, n.shape[3]!];
        return {
          fn: "sum",
          count: Og * JH * JW,
          gemm: { m: Cg, n: H * W, parity: { stride: s, padding: op.padding, height: H, width: W, taps: [KH, KW], groupOutputs: Og } },
          body: () => mul(guarded([rows.cond[0]!, cols.cond[0]!], weight()), guarded([rows.cond[1]!, cols.cond[1]!], gradient())),
          finish: identity,
        };
      }
      const [og, kh, kw] = unravel(R, [Og, KH, KW]) as [Ix, Ix, Ix];
      const o = ixAdd(ixMul(ixDiv(ci, Cg), Og), og);
      const rows = exactly(ixAdd(ixAdd(h, ixConst(op.padding)), ixMul(kh, -1)), op.stride, HO);
      const cols = exactly(ixAdd(ixAdd(w, ixConst(op.padding)), ixMul(kw, -1)), op.stride, WO);
      return {
        fn: "sum",
        count: Og * KH * KW,
        gemm: { m: Cg, n: n.shape[2]! * n.shape[3]! },
        body: () => mul(operand(1, [o, ixMod(ci, Cg), kh, kw]), guarded([...rows.cond, ...cols.cond], operand(0, [nn, o, rows.at, cols.at]))),
        finish: identity,
      };
    }
    case "conv2d_grad_weight": {
      // dw[o, c, kh, kw] = Σ_(n, oh, ow) dy[n, o, oh, ow] · x[n, g·Cg + c, oh·s + kh − p, ow·s + kw − p]: per g,
      // a GEMM of dy's rows (o) and x's columns (c, kh, kw).
      const [N, , H, W] = shapeOf(0) as [number, number, number, number];
      const [, , HO, WO] = shapeOf(1) as [number, number, number, number];
      const [O, Cg] = n.shape as [number, number];
      const [o, c, kh, kw] = idx as [Ix, Ix, Ix, Ix];
      const [nn, oh, ow] = unravel(R, [N, HO, WO]) as [Ix, Ix, Ix];
      const [ih, iw] = [tap(oh, kh), tap(ow, kw)];
      return {
        fn: "sum",
        count: N * HO * WO,
        gemm: { m: O / op.groups, n: Cg * n.shape[2]! * n.shape[3]! },
        body: () => mul(operand(1, [nn, o, oh, ow]), guarded([within(ih, H), within(iw, W)], operand(0, [nn, channel(o, O, Cg, c), ih, iw]))),
        finish: identity,
      };
    }
    case "avg_pool": {
      const rank = idx.length;
      const [kh, kw] = unravel(R, [op.size, op.size]) as [Ix, Ix];
      const at = [...idx.slice(0, rank - 2), ixAdd(ixMul(idx[rank - 2]!, op.stride), kh), ixAdd(ixMul(idx[rank - 1]!, op.stride), kw)];
      return { fn: "sum", count: op.size * op.size, body: () => operand(0, at), finish: (acc) => ({ k: "binary", t, fn: "div", a: acc, b: { k: "const", t, v: op.size * op.size } }) };
    }
    case "avg_pool_grad": {
      // dx[..., h, w] = Σ over the windows (oh, ow) holding (h, w), in increasing (oh, ow), of dy[..., oh, ow]/k²:
      // kh = k − 1 − r_h runs the window rows so that oh = (h − kh)/s increases.
      const rank = idx.length;
      const dy = shapeOf(0);
      const [HO, WO] = [dy[rank - 2]!, dy[rank - 1]!];
      const [rh, rw] = unravel(R, [op.size, op.size]) as [Ix, Ix];
      const rows = exactly(ixAdd(idx[rank - 2]!, ixAdd(rh, ixConst(1 - op.size))), op.stride, HO);
      const cols = exactly(ixAdd(idx[rank - 1]!, ixAdd(rw, ixConst(1 - op.size))), op.stride, WO);
      const area: Sx = { k: "const", t, v: op.size * op.size };
      return {
        fn: "sum",
        count: op.size * op.size,
        body: () => guarded([...rows.cond, ...cols.cond], { k: "binary", t, fn: "div", a: operand(0, [...idx.slice(0, rank - 2), rows.at, cols.at]), b: area }),
        finish: identity,
      };
    }
    default:
      throw new Error(`${op.kind} is not a contraction`);
  }
}

const INT_MAX = 2147483647;

function product(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

/** Thrown while building a kernel: `node` must be materialised first (a second reduction, or one read several times per element). */
class Materialize {
  constructor(readonly node: number) {}
}

class KernelBuilder {
  private readonly inputs: KernelInput[] = [];
  private readonly inputIndex = new Map<number, number>();
  private readonly fused = new Set<number>();
  private reduce: Kernel["reduce"];
  private reduceNode: number | undefined;
  private tile: Tile | undefined;
  /** The root's multi-index; element-wise ops pass it on unchanged, so a contraction that sees it computes the kernel's own output element. */
  private readonly rootIdx: readonly Ix[];
  /** The linear index of multi-indices made by unravelling one (the root's, a reshape's), so a reshape of them unravels it again. */
  private readonly linear = new WeakMap<readonly Ix[], Ix>();
  /** > 0 while inlining what a broadcast or an upsample reads, where each element is computed several times. */
  private replicated = 0;

  constructor(
    private readonly g: Graph,
    private readonly materialized: ReadonlySet<number>,
    private readonly root: Node,
    private readonly maxTile: FuseOptions["tile"],
  ) {
    this.rootIdx = unravel(GID, root.shape);
    this.linear.set(this.rootIdx, GID);
  }

  build(): Kernel | number {
    try {
      const idx = this.rootIdx;
      const body = CONTRACTIONS.has(this.root.op.kind) ? this.reduction(this.root, idx) : this.at(this.root, idx, true);
      return {
        name: `k${this.root.id}_${this.root.op.kind}`,
        node: this.root.id,
        dtype: this.root.dtype,
        size: this.root.shape.reduce((a, b) => a * b, 1),
        inputs: this.inputs,
        ...(this.reduce && { reduce: this.reduce }),
        ...(this.tile && { tile: this.tile }),
        body,
        fused: [...this.fused].sort((a, b) => a - b),
      };
    } catch (e) {
      if (e instanceof Materialize) return e.node;
      throw e;
    }
  }

  private load(n: Node, idx: readonly Ix[]): Sx {
    let i = this.inputIndex.get(n.id);
    if (i === undefined) {
      i = this.inputs.length;
      this.inputIndex.set(n.id, i);
      this.inputs.push({ node: n.id, dtype: n.dtype, size: n.shape.reduce((a, b) => a * b, 1) });
    }
    return { k: "load", t: n.dtype, buffer: i, at: ravel(idx, n.shape) };
  }

  /** A contraction (reduction loop) for the output element at `idx`, its operands inlined; yields its value. */
  private reduction(n: Node, idx: readonly Ix[]): Sx {
    // A second reduction, or one whose every result would be recomputed for several outputs (a row sum read
    // through a broadcast), is materialised.
    if (this.reduce || this.replicated > 0) throw new Materialize(n.id);
    const c = contraction(n, idx, (i, at) => this.at(this.g.nodes[n.inputs[i]!]!, at), this.g, this.maxTile);
    this.fused.add(n.id);
    this.reduceNode = n.id;
    // Placeholder first, so a nested contraction in the prologue is detected as a second one.
    this.reduce = { fn: c.fn, count: c.count, body: { k: "const", t: n.dtype, v: 0 } };
    this.reduce = { ...this.reduce, body: c.body() };
    const products = product(n.shape) * c.count;
    if (this.maxTile && c.gemm && this.linear.get(idx) === GID && (n.dtype === "f32" || n.dtype === "f16") && products >= (this.maxTile.minProducts ?? 0)) {
      // Equal blocks no larger than the maximum: 17 rows with at most 8 a tile are 3 tiles of 6.
      const side = (d: number, max: number) => Math.ceil(d / Math.ceil(d / max));
      this.tile = { ...c.gemm, rows: side(c.gemm.m, this.maxTile.rows), cols: side(c.gemm.n, this.maxTile.cols) };
    }
    return c.finish({ k: "acc", t: n.dtype });
  }

  private replicating(replicates: boolean, f: () => Sx): Sx {
    if (!replicates) return f();
    this.replicated += 1;
    try {
      return f();
    } finally {
      this.replicated -= 1;
    }
  }

  /** The value of node `n` at multi-index `idx`, inlining everything not materialised. */
  private at(n: Node, idx: readonly Ix[], isRoot = false): Sx {
    if (!isRoot && this.materialized.has(n.id)) return this.load(n, idx);
    const op = n.op;
    const t = n.dtype;
    const input = (i: number) => this.g.nodes[n.inputs[i]!]!;
    if (op.kind !== "constant") this.fused.add(n.id);
    switch (op.kind) {
      case "constant":
        return { k: "const", t, v: op.value };
      case "iota":
        return { k: "index", t, at: idx[0]! };
      case "random":
        return { k: "random", t, dist: op.dist, key: op.key, at: ravel(idx, n.shape) };
      case "unary":
        return { k: "unary", t, fn: op.fn, x: this.at(input(0), idx) };
      case "binary":
        return { k: "binary", t, fn: op.fn, a: this.at(input(0), idx), b: this.at(input(1), idx) };
      case "compare":
        return { k: "compare", t, fn: op.fn, a: this.at(input(0), idx), b: this.at(input(1), idx) };
      case "select":
        return { k: "select", t, c: this.at(input(0), idx), a: this.at(input(1), idx), b: this.at(input(2), idx) };
      case "cast":
        return { k: "cast", t, x: this.at(input(0), idx) };
      case "stop_gradient":
        return this.at(input(0), idx);
      case "reduce":
      case "matmul":
      case "conv2d":
      case "conv2d_grad_input":
      case "conv2d_grad_weight":
      case "avg_pool":
      case "avg_pool_grad":
        if (this.reduceNode === n.id) throw new Materialize(n.id); // met twice: materialise it
        return this.reduction(n, idx);
      case "upsample": {
        const r = idx.length;
        const inner = idx.map((x, i) => (i >= r - 2 ? ixDiv(x, op.factor) : x));
        return this.replicating(op.factor > 1, () => this.at(input(0), inner));
      }
      case "pad": {
        const x = input(0);
        const inner = idx.map((v, i) => ixAdd(v, ixConst(-op.widths[i]![0])));
        const inside = all(inner.map((v, i) => ({ k: "inrange", t: "bool", at: v, lo: 0, hi: x.shape[i]! }) as Sx));
        return { k: "select", t, c: inside, a: this.at(x, inner), b: { k: "const", t, v: op.value } };
      }
      case "concat": {
        // The last input first, then a select per earlier input: the one whose range holds the index wins.
        let offset = n.shape[op.axis]!;
        let value: Sx | undefined;
        for (let i = n.inputs.length - 1; i >= 0; i--) {
          const x = input(i);
          offset -= x.shape[op.axis]!;
          const shifted = idx.map((v, d) => (d === op.axis ? ixAdd(v, ixConst(-offset)) : v));
          const here = this.at(x, shifted);
          value = value === undefined ? here : { k: "select", t, c: { k: "inrange", t: "bool", at: idx[op.axis]!, lo: offset, hi: offset + x.shape[op.axis]! }, a: here, b: value };
        }
        return value!;
      }
      case "transpose": {
        const inIdx = new Array<Ix>(n.shape.length);
        op.perm.forEach((p, d) => (inIdx[p] = idx[d]!));
        return this.at(input(0), inIdx);
      }
      case "broadcast": {
        const x = input(0);
        const inner = x.shape.map((d, i) => (d === 1 ? ixConst(0) : idx[i]!));
        return this.replicating(x.shape.some((d, i) => d < n.shape[i]!), () => this.at(x, inner));
      }
      case "slice":
        return this.at(
          input(0),
          idx.map((x, i) => (i === op.axis ? ixAdd(x, ixConst(op.start)) : x)),
        );
      case "reshape": {
        const x = input(0);
        const linear = this.linear.get(idx) ?? ravel(idx, n.shape);
        const inner = unravel(linear, x.shape);
        this.linear.set(inner, linear);
        return this.at(x, inner);
      }
      default:
        throw new Error(`${op.kind} cannot be fused (it should have been materialised)`);
    }
  }
}
