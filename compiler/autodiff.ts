// Reverse-mode automatic differentiation of the graph IR: one VJP rule per primitive, and `vjp`, which appends
// the backward pass of a node to a GraphBuilder.
//
// A rule receives the node and the id of its cotangent (same shape and dtype as the node) and returns, per
// input, the id of that input's cotangent contribution (same shape and dtype as the input), or `undefined` for
// "no gradient". Rules only add ordinary IR nodes, so the backward pass is itself differentiable: every op a
// rule emits has a rule of its own, which makes second-order use (a gradient of a gradient) work.
//
// Conventions at the points where the derivative is not unique (the same choices as JAX):
// - `maximum`/`minimum`: where a == b each side gets half the cotangent;
// - `reduce max`: the cotangent is split equally among the elements that attain the maximum;
// - `abs`: the derivative at 0 is 0 (sign(0) = 0);
// - `floor` (and a cast to an integer dtype): derivative 0 (true almost everywhere), so no contribution;
// - `compare` and `stop_gradient` are "nondifferentiable": no gradient passes through them;
// - `pow(a, b)`: d/da = b·a^(b−1), and 0 where b == 0; d/db = log(a)·a^b where a > 0 and 0 elsewhere, computed
//   as log(select(a > 0, a, 1)) so that no NaN is ever computed, not even in the branch select discards
//   (a NaN there would reappear in a second-order gradient as 0·NaN).
import { GraphBuilder, IrError, shapeEquals, type DType, type Node, type Op, type OpKind, type UnaryFn, type BinaryFn } from "./ir.js";

/**
 * The VJP of one primitive. `needed[i]` (when given) says whether input i's contribution will be used; a rule
 * may skip building the ones that are not (it may also return them anyway).
 */
export type VjpRule = (b: GraphBuilder, node: Node, cotangent: number, needed?: readonly boolean[]) => (number | undefined)[];

export function isFloat(d: DType): boolean {
  return d === "f32" || d === "f16";
}

// ---------------------------------------------------------------------------------------------------------
// Small node constructors over a builder.

const constCache = new WeakMap<GraphBuilder, Map<string, number>>();

/** A constant of the given shape and dtype, shared within a builder. */
function constant(b: GraphBuilder, value: number, shape: readonly number[], dtype: DType): number {
  let cache = constCache.get(b);
  if (!cache) constCache.set(b, (cache = new Map()));
  const key = `${value}|${dtype}|${shape.join(",")}`;
  const hit = cache.get(key);
  if (hit !== undefined) {
    // The builder's node list is a plain array: check the cached node is still the same constant.
    const n = b.nodes[hit];
    if (n && n.op.kind === "constant" && Object.is(n.op.value, value) && n.dtype === dtype && shapeEquals(n.shape, shape)) return hit;
  }
  const id = b.add({ kind: "constant", value }, [], shape, dtype);
  cache.set(key, id);
  return id;
}

function like(b: GraphBuilder, value: number, id: number): number {
  const n = b.node(id);
  return constant(b, value, n.shape, n.dtype);
}

const un = (b: GraphBuilder, fn: UnaryFn, x: number) => b.add({ kind: "unary", fn }, [x]);
const bin = (b: GraphBuilder, fn: BinaryFn, x: number, y: number) => b.add({ kind: "binary", fn }, [x, y]);
const mul = (b: GraphBuilder, x: number, y: number) => bin(b, "mul", x, y);
const cmp = (b: GraphBuilder, fn: "lt" | "le" | "gt" | "ge" | "eq" | "ne", x: number, y: number) => b.add({ kind: "compare", fn }, [x, y]);
const select = (b: GraphBuilder, c: number, x: number, y: number) => b.add({ kind: "select" }, [c, x, y]);
/** x · k for a number k. */
const scale = (b: GraphBuilder, x: number, k: number) => (k === 1 ? x : mul(b, x, like(b, k, x)));

function swapLast(b: GraphBuilder, x: number): number {
  const r = b.node(x).shape.length;
  const perm = [...Array(r).keys()];
  perm[r - 1] = r - 2;
  perm[r - 2] = r - 1;
  return b.add({ kind: "transpose", perm }, [x]);
}

/** Sums `ct` down to `shape` (same rank, size-1 dims where `ct`'s are broadcast). */
function sumTo(b: GraphBuilder, ct: number, shape: readonly number[]): number {
  const s = b.node(ct).shape;
  const axes = s.flatMap((d, i) => (shape[i] === 1 && d !== 1 ? [i] : []));
  return axes.length === 0 ? ct : b.add({ kind: "reduce", fn: "sum", axes }, [ct]);
}

function broadcastTo(b: GraphBuilder, x: number, shape: readonly number[]): number {
  return shapeEquals(b.node(x).shape, shape) ? x : b.add({ kind: "broadcast" }, [x], shape);
}

/** Calls `f` only for the inputs that are needed. */
function only(needed: readonly boolean[] | undefined, i: number, f: () => number | undefined): number | undefined {
  return needed && !needed[i] ? undefined : f();
}

// ---------------------------------------------------------------------------------------------------------
// The rules.

function unaryRule(b: GraphBuilder, node: Node, ct: number): (number | undefined)[] {
  const op = node.op as Extract<Op, { kind: "unary" }>;
  const x = node.inputs[0]!;
  const y = node.id;
  switch (op.fn) {
    case "neg":
      return [un(b, "neg", ct)];
    case "exp": // y' = y
      return [mul(b, ct, y)];
    case "log": // 1/x
      return [bin(b, "div", ct, x)];
    case "sqrt": // 1/(2y)
      return [bin(b, "div", scale(b, ct, 0.5), y)];
    case "rsqrt": // d x^(-1/2) = -1/2 · x^(-3/2) = -1/2 · y³
      return [mul(b, scale(b, ct, -0.5), mul(b, y, mul(b, y, y)))];
    case "sin":
      return [mul(b, ct, un(b, "cos", x))];
    case "cos":
      return [un(b, "neg", mul(b, ct, un(b, "sin", x)))];
    case "tanh": // 1 - y²
      return [mul(b, ct, bin(b, "sub", like(b, 1, y), mul(b, y, y)))];
    case "sigmoid": // y (1 - y)
      return [mul(b, ct, mul(b, y, bin(b, "sub", like(b, 1, y), y)))];
    case "softplus": // sigmoid(x)
      return [mul(b, ct, un(b, "sigmoid", x))];
    case "abs": {
      // sign(x), with sign(0) = 0
      const zero = like(b, 0, x);
      const sign = select(b, cmp(b, "gt", x, zero), like(b, 1, x), select(b, cmp(b, "lt", x, zero), like(b, -1, x), zero));
      return [mul(b, ct, sign)];
    }
    case "floor": // 0 almost everywhere
      return [undefined];
    case "round_tf32": // straight-through: the precision pass adds the roundings after differentiation; this keeps the table total
    case "round_bf16":
      return [ct];
  }
}

function binaryRule(b: GraphBuilder, node: Node, ct: number, needed?: readonly boolean[]): (number | undefined)[] {
  const op = node.op as Extract<Op, { kind: "binary" }>;
  const [x, y] = node.inputs as [number, number];
  const out = node.id;
  const each = (fa: () => number, fb: () => number) => [only(needed, 0, fa), only(needed, 1, fb)];
  switch (op.fn) {
    case "add":
      return [ct, ct];
    case "sub":
      return each(
        () => ct,
        () => un(b, "neg", ct),
      );
    case "mul":
      return each(
        () => mul(b, ct, y),
        () => mul(b, ct, x),
      );
    case "div": {
      // d/dx = 1/y; d/dy = -x/y² = -(1/y)·(x/y)
      const ctOverY = bin(b, "div", ct, y);
      return each(
        () => ctOverY,
        () => un(b, "neg", mul(b, ctOverY, out)),
      );
    }
    case "pow":
      return each(
        () => {
          // b·a^(b−1), defined as 0 where b == 0 (a^0 is constant even at a = 0)
          const zero = like(b, 0, x);
          const d = mul(b, y, bin(b, "pow", x, bin(b, "sub", y, like(b, 1, y))));
          return select(b, cmp(b, "eq", y, zero), zero, mul(b, ct, d));
        },
        () => {
          // log(a)·a^b where a > 0, else 0; log is only ever taken of positive numbers
          const zero = like(b, 0, x);
          const pos = cmp(b, "gt", x, zero);
          const safe = select(b, pos, x, like(b, 1, x));
          return select(b, pos, mul(b, ct, mul(b, out, un(b, "log", safe))), zero);
        },
      );
    case "maximum":
    case "minimum": {
      // The winner takes the cotangent; a tie splits it equally.
      const zero = like(b, 0, ct);
      const tie = select(b, cmp(b, "eq", x, y), scale(b, ct, 0.5), zero);
      const [xWins, yWins] = op.fn === "maximum" ? (["gt", "lt"] as const) : (["lt", "gt"] as const);
      return each(
        () => select(b, cmp(b, xWins, x, y), ct, tie),
        () => select(b, cmp(b, yWins, x, y), ct, tie),
      );
    }
  }
}

function reduceRule(b: GraphBuilder, node: Node, ct: number): (number | undefined)[] {
  const op = node.op as Extract<Op, { kind: "reduce" }>;
  const x = node.inputs[0]!;
  const shape = b.node(x).shape;
  if (op.fn === "sum") return [broadcastTo(b, ct, shape)];
  // max: the cotangent is shared equally by the elements equal to the maximum.
  const isMax = cmp(b, "eq", x, broadcastTo(b, node.id, shape));
  const ones = select(b, isMax, like(b, 1, x), like(b, 0, x));
  const count = b.add({ kind: "reduce", fn: "sum", axes: op.axes }, [ones]);
  return [mul(b, broadcastTo(b, bin(b, "div", ct, count), shape), ones)];
}

function padRule(b: GraphBuilder, node: Node, ct: number): (number | undefined)[] {
  const op = node.op as Extract<Op, { kind: "pad" }>;
  const inShape = b.node(node.inputs[0]!).shape;
  // Widths may in principle be negative (a crop): zero-pad the cotangent where the forward cropped, then
  // slice out the input's window.
  let g = ct;
  const grow = op.widths.map(([lo, hi]) => [Math.max(0, -lo), Math.max(0, -hi)] as const);
  if (grow.some(([lo, hi]) => lo > 0 || hi > 0)) g = b.add({ kind: "pad", widths: grow, value: 0 }, [g]);
  op.widths.forEach(([lo], axis) => {
    const start = Math.max(0, lo);
    const d = inShape[axis]!;
    if (start !== 0 || b.node(g).shape[axis] !== d) g = b.add({ kind: "slice", axis, start, end: start + d }, [g]);
  });
  return [g];
}

export const VJP_RULES: { readonly [K in OpKind]: VjpRule | "nondifferentiable" | "leaf" } = {
  input: "leaf",
  param: "leaf",
  constant: "leaf",
  iota: "leaf",
  random: "leaf",
  unary: unaryRule,
  binary: binaryRule,
  compare: "nondifferentiable",
  select: (b, node, ct, needed) => {
    const c = node.inputs[0]!;
    const zero = like(b, 0, ct);
    return [undefined, only(needed, 1, () => select(b, c, ct, zero)), only(needed, 2, () => select(b, c, zero, ct))];
  },
  reduce: reduceRule,
  matmul: (b, node, ct, needed) => {
    const [x, y] = node.inputs as [number, number];
    // C = A B: dA = dC Bᵀ, dB = Aᵀ dC
    return [only(needed, 0, () => b.add({ kind: "matmul" }, [ct, swapLast(b, y)])), only(needed, 1, () => b.add({ kind: "matmul" }, [swapLast(b, x), ct]))];
  },
  conv2d: (b, node, ct, needed) => {
    const op = node.op as Extract<Op, { kind: "conv2d" }>;
    const [x, w] = node.inputs as [number, number];
    const p = { stride: op.stride, padding: op.padding, groups: op.groups };
    return [
      only(needed, 0, () => b.add({ kind: "conv2d_grad_input", ...p }, [ct, w], b.node(x).shape)),
      only(needed, 1, () => b.add({ kind: "conv2d_grad_weight", ...p }, [x, ct], b.node(w).shape)),
    ];
  },
  conv2d_grad_input: (b, node, ct, needed) => {
    // gi(dy, w) = conv_xᵀ(dy): linear in dy with adjoint conv2d(·, w); and ⟨ct, gi(dy, w)⟩ = ⟨conv2d(ct, w), dy⟩,
    // whose gradient in w is conv2d_grad_weight(ct, dy).
    const op = node.op as Extract<Op, { kind: "conv2d_grad_input" }>;
    const [dy, w] = node.inputs as [number, number];
    const p = { stride: op.stride, padding: op.padding, groups: op.groups };
    return [only(needed, 0, () => b.add({ kind: "conv2d", ...p }, [ct, w])), only(needed, 1, () => b.add({ kind: "conv2d_grad_weight", ...p }, [ct, dy], b.node(w).shape))];
  },
  conv2d_grad_weight: (b, node, ct, needed) => {
    // gw(x, dy) = conv_wᵀ(dy) at x: ⟨ct, gw(x, dy)⟩ = ⟨conv2d(x, ct), dy⟩, so d/dy = conv2d(x, ct) and
    // d/dx = conv2d_grad_input(dy, ct).
    const op = node.op as Extract<Op, { kind: "conv2d_grad_weight" }>;
    const [x, dy] = node.inputs as [number, number];
    const p = { stride: op.stride, padding: op.padding, groups: op.groups };
    return [only(needed, 0, () => b.add({ kind: "conv2d_grad_input", ...p }, [dy, ct], b.node(x).shape)), only(needed, 1, () => b.add({ kind: "conv2d", ...p }, [x, ct]))];
  },
  reshape: (b, node, ct) => [b.add({ kind: "reshape" }, [ct], b.node(node.inputs[0]!).shape)],
  transpose: (b, node, ct) => {
    const perm = (node.op as Extract<Op, { kind: "transpose" }>).perm;
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => (inverse[p] = i));
    return [inverse.every((p, i) => p === i) ? ct : b.add({ kind: "transpose", perm: inverse }, [ct])];
  },
  broadcast: (b, node, ct) => [sumTo(b, ct, b.node(node.inputs[0]!).shape)],
  slice: (b, node, ct) => {
    const op = node.op as Extract<Op, { kind: "slice" }>;
    const inShape = b.node(node.inputs[0]!).shape;
    const widths = inShape.map((d, i) => (i === op.axis ? ([op.start, d - op.end] as const) : ([0, 0] as const)));
    return [b.add({ kind: "pad", widths, value: 0 }, [ct])];
  },
  concat: (b, node, ct, needed) => {
    const op = node.op as Extract<Op, { kind: "concat" }>;
    if (node.inputs.length === 1) return [ct];
    let offset = 0;
    return node.inputs.map((x, i) => {
      const d = b.node(x).shape[op.axis]!;
      const start = offset;
      offset += d;
      return only(needed, i, () => b.add({ kind: "slice", axis: op.axis, start, end: start + d }, [ct]));
    });
  },
  pad: padRule,
  upsample: (b, node, ct) => {
    // Each input pixel is copied to a factor×factor block, so its gradient is the block's sum.
    const f = (node.op as Extract<Op, { kind: "upsample" }>).factor;
    if (f === 1) return [ct];
    return [scale(b, b.add({ kind: "avg_pool", size: f, stride: f }, [ct]), f * f)];
  },
  avg_pool: (b, node, ct) => {
    const op = node.op as Extract<Op, { kind: "avg_pool" }>;
    return [b.add({ kind: "avg_pool_grad", size: op.size, stride: op.stride }, [ct], b.node(node.inputs[0]!).shape)];
  },
  avg_pool_grad: (b, node, ct) => {
    // avg_pool_grad is avg_pool's transpose, so its own transpose is avg_pool.
    const op = node.op as Extract<Op, { kind: "avg_pool_grad" }>;
    return [b.add({ kind: "avg_pool", size: op.size, stride: op.stride }, [ct])];
  },
  cast: (b, node, ct) => {
    const from = b.node(node.inputs[0]!).dtype;
    if (!isFloat(from) || !isFloat(node.dtype)) return [undefined]; // through an integer or bool: zero a.e.
    return [from === node.dtype ? ct : b.add({ kind: "cast" }, [ct], undefined, from)];
  },
  stop_gradient: "nondifferentiable",
  // y = mean over ranks of x: each rank's x contributes 1/N to every rank's y, so its gradient is the mean of
  // the ranks' cotangents.
  all_reduce: (b, _node, ct) => [b.add({ kind: "all_reduce" }, [ct])],
};

// ---------------------------------------------------------------------------------------------------------

/**
 * Appends to `b` the backward pass of `output` with respect to each of `wrt`, and returns the gradient node of
 * each (a zeros constant where no differentiable path leads from it to `output`). The cotangent of `output`
 * is `seed` (same shape and dtype), by default all ones, which for a scalar output gives the gradient.
 *
 * Nodes are visited in reverse topological order (descending ids); only those on a path from some `wrt` to
 * `output` through differentiable ops and floating-point values are differentiated; contributions from several
 * users are summed with `add`.
 */
export function vjp(b: GraphBuilder, output: number, wrt: readonly number[], seed?: number): number[] {
  const nodes = b.nodes;
  const outNode = nodes[output] ?? fail(`vjp: output %${output} does not exist`);
  if (!isFloat(outNode.dtype)) fail(`vjp: output %${output} is ${outNode.dtype}, not a floating-point tensor`);
  for (const w of wrt) if (!nodes[w]) fail(`vjp: %${w} (to differentiate with respect to) does not exist`);
  if (seed !== undefined) {
    const s = nodes[seed] ?? fail(`vjp: seed %${seed} does not exist`);
    if (!shapeEquals(s.shape, outNode.shape) || s.dtype !== outNode.dtype) fail(`vjp: seed ${s.dtype}[${s.shape}] does not match output ${outNode.dtype}[${outNode.shape}]`);
  }

  // Forward: which nodes depend differentiably on some wrt node.
  let lo = output;
  for (const w of wrt) lo = Math.min(lo, w);
  const fromWrt = new Uint8Array(output + 1);
  for (const w of wrt) if (w <= output && isFloat(nodes[w]!.dtype)) fromWrt[w] = 1;
  for (let id = lo; id <= output; id++) {
    if (fromWrt[id]) continue;
    const n = nodes[id]!;
    if (typeof VJP_RULES[n.op.kind] === "function" && isFloat(n.dtype) && n.inputs.some((i) => fromWrt[i])) fromWrt[id] = 1;
  }
  // Backward: of those, which lead to the output.
  const onPath = new Uint8Array(output + 1);
  onPath[output] = fromWrt[output]!;
  for (let id = output; id >= lo; id--) if (onPath[id]) for (const i of nodes[id]!.inputs) if (fromWrt[i]) onPath[i] = 1;

  const cotangent = new Map<number, number>();
  if (onPath[output]) cotangent.set(output, seed ?? constant(b, 1, outNode.shape, outNode.dtype));
  for (let id = output; id >= lo; id--) {
    const ct = cotangent.get(id);
    if (ct === undefined || !onPath[id]) continue;
    const node = nodes[id]!;
    const rule = VJP_RULES[node.op.kind];
    if (typeof rule !== "function") continue;
    const needed = node.inputs.map((i) => onPath[i] === 1);
    if (!needed.some((x) => x)) continue;
    const contributions = rule(b, node, ct, needed);
    node.inputs.forEach((i, k) => {
      const c = contributions[k];
      if (!needed[k] || c === undefined) return;
      const got = nodes[c]!;
      const want = nodes[i]!;
      if (!shapeEquals(got.shape, want.shape) || got.dtype !== want.dtype) {
        fail(`vjp: the ${node.op.kind} rule of %${id} gave input ${k} a cotangent ${got.dtype}[${got.shape}] for ${want.dtype}[${want.shape}]`);
      }
      const prev = cotangent.get(i);
      cotangent.set(i, prev === undefined ? c : bin(b, "add", prev, c));
    });
  }
  return wrt.map((w) => cotangent.get(w) ?? constant(b, 0, nodes[w]!.shape, nodes[w]!.dtype));
}

function fail(message: string): never {
  throw new IrError(message);
}
