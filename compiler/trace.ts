// The tracer: receives the tensor operations the checker evaluates and records them as graph nodes. Each
// front-end operation lowers to IR primitives here: broadcasting becomes explicit, `mean` becomes a sum and a
// division, `keepdims = false` a reshape, and compile-time numbers become constants.
import type { BinaryOp } from "../dsl/ast.js";
import type { Dim } from "../dsl/dims.js";
import { normalizeAxis } from "../dsl/builtins.js";
import type { TensorValue, Tracer, Value } from "../dsl/values.js";
import { GraphBuilder, shapeEquals, type BinaryFn, type CompareFn, type UnaryFn } from "./ir.js";
import { NAMES } from "./names.js";

/** The concrete dims of a traced tensor; lowering requires every dim bound. */
export function dims(shape: readonly Dim[]): number[] {
  return shape.map((d) => {
    const v = d.value;
    if (v === undefined) throw new Error(`dim ${d} is not bound: pass --bind for it`);
    return v;
  });
}

const BINARY: Partial<Record<BinaryOp, BinaryFn>> = { "+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow" };
const COMPARE: Partial<Record<BinaryOp, CompareFn>> = { "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne" };
const UNARY = new Set<string>(["exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "softplus", "abs", "floor"]);

export interface TracedInput {
  readonly name: string;
  readonly node: number;
  readonly defaultValue?: number;
}

/**
 * This process's shard of a data-parallel job, as the tracer needs it: the position the builtins report, and
 * each random draw's shape at the global batch (by key), so a draw that depends on the batch is drawn at its
 * global shape and sliced to this shard's rows: every example sees the noise it would see in one process.
 */
export interface TraceShard {
  readonly index: number;
  readonly count: number;
  readonly globalRandomShapes: ReadonlyMap<number, readonly number[]>;
}

export class GraphTracer implements Tracer {
  readonly inputs: TracedInput[] = [];
  readonly params = new Map<string, number>();
  /** Where parameter initialisers go; undefined when this trace does not build them. */
  readonly initBuilder: GraphBuilder | undefined;
  readonly initOutputs: { name: string; node: number }[] = [];
  /** The key of the next `random` node, in this graph or its init graph: keys are never reused. */
  private randomKey: number;
  private current: GraphBuilder;
  private readonly shard: TraceShard | undefined;
  /** Whether this trace is a train entry's: what `training()` is. */
  private readonly training: boolean;
  /** The gradients' global norm (built on first use), once lower.ts has built the backward pass: what `grad_norm()` is. */
  gradNorm: (() => number) | undefined;

  /** `firstRandomKey`: where this trace's keys start, past those of the graphs traced before it (lower.ts). */
  constructor(
    readonly builder: GraphBuilder,
    options: { withInit?: boolean; firstRandomKey?: number; shard?: TraceShard; training?: boolean } = {},
  ) {
    this.current = builder;
    this.initBuilder = options.withInit ? new GraphBuilder() : undefined;
    this.randomKey = options.firstRandomKey ?? 0;
    this.shard = options.shard;
    this.training = options.training ?? false;
  }

  /** One past the last random key this trace used. */
  get nextRandomKey(): number {
    return this.randomKey;
  }

  private with(t: TensorValue, node: number): TensorValue {
    return { ...t, node };
  }

  private nodeOf(v: Value, like: TensorValue): number {
    if (v.k === "tensor") {
      if (v.node === undefined) throw new Error("a traced tensor has no node");
      return v.node;
    }
    return this.scalar(numberOf(v), like.dtype);
  }

  private scalar(value: number, dtype: TensorValue["dtype"]): number {
    return this.current.add({ kind: "constant", value }, [], [], dtype);
  }

  /** Reshapes (adding leading 1s) and broadcasts a node to `shape`. */
  broadcastTo(node: number, shape: readonly number[]): number {
    const n = this.current.node(node);
    if (shapeEquals(n.shape, shape)) return node;
    let x = node;
    if (n.shape.length < shape.length) x = this.current.add({ kind: "reshape" }, [x], [...Array(shape.length - n.shape.length).fill(1), ...n.shape]);
    return this.current.add({ kind: "broadcast" }, [x], shape);
  }

  /** A graph input; asking again for a name gives the same node (the step feeds train_step() and the optimizer). */
  input(name: string, t: TensorValue, defaultValue?: number): TensorValue {
    const known = this.inputs.find((i) => i.name === name);
    if (known) return this.with(t, known.node);
    const node = this.current.add({ kind: "input", name }, [], dims(t.shape), t.dtype);
    this.inputs.push({ name, node, ...(defaultValue !== undefined && { defaultValue }) });
    return this.with(t, node);
  }

  param(path: string, t: TensorValue, init: () => Value): TensorValue {
    const shape = dims(t.shape);
    const node = this.current.add({ kind: "param", name: path }, [], shape, t.dtype);
    this.params.set(path, node);
    if (this.initBuilder) {
      // The initialiser is evaluated into the init graph.
      const saved = this.current;
      this.current = this.initBuilder;
      try {
        const v = init();
        const like = { ...t, node: undefined };
        this.initOutputs.push({ name: path, node: this.broadcastTo(this.nodeOf(v, like), shape) });
      } finally {
        this.current = saved;
      }
    }
    return this.with(t, node);
  }

  constant(v: Value, t: TensorValue): TensorValue {
    return this.with(t, this.broadcastTo(this.scalar(numberOf(v), t.dtype), dims(t.shape)));
  }

  negate(a: TensorValue, result: TensorValue): TensorValue {
    return this.with(result, this.current.add({ kind: "unary", fn: "neg" }, [a.node!]));
  }

  binary(op: BinaryOp, a: Value, b: Value, result: Value): Value {
    if (result.k !== "tensor") return result;
    const like = a.k === "tensor" ? a : (b as TensorValue);
    if (op === "@") return this.with(result, this.matmul(a as TensorValue, b as TensorValue, result));
    const shape = dims(result.shape);
    const x = this.broadcastTo(this.nodeOf(a, like), shape);
    const y = this.broadcastTo(this.nodeOf(b, like), shape);
    const cmp = COMPARE[op];
    if (cmp) return this.with(result, this.current.add({ kind: "compare", fn: cmp }, [x, y]));
    return this.with(result, this.current.add({ kind: "binary", fn: BINARY[op]! }, [x, y]));
  }

  private matmul(a: TensorValue, b: TensorValue, result: TensorValue): number {
    const out = dims(result.shape);
    const batch = out.slice(0, -2);
    const operand = (t: TensorValue) => {
      const s = dims(t.shape);
      return this.broadcastTo(t.node!, [...batch, s[s.length - 2]!, s[s.length - 1]!]);
    };
    return this.current.add({ kind: "matmul" }, [operand(a), operand(b)]);
  }

  /**
   * A random draw. In a shard of a data-parallel job, a draw whose global shape has `count` times this shard's
   * rows (its first axis follows the batch) is drawn at that shape and sliced to this shard's rows; one whose
   * shape does not depend on the batch is the same draw on every rank.
   */
  private random(dist: "normal" | "uniform", shape: readonly number[], dtype: TensorValue["dtype"]): number {
    const key = this.randomKey++;
    const node = (s: readonly number[]) => this.current.add({ kind: "random", dist, key }, [], s, dtype);
    if (!this.shard) return node(shape);
    const global = this.shard.globalRandomShapes.get(key);
    if (global && shapeEquals(global, shape)) return node(shape);
    const rows = shape[0] ?? 0;
    if (!global || global.length !== shape.length || global[0] !== rows * this.shard.count || !shapeEquals(global.slice(1), shape.slice(1)))
      throw new Error(`a random draw of shape [${shape.join(", ")}] is [${global?.join(", ") ?? "absent"}] at the global batch, so it cannot be split across ranks: only a draw's first axis may follow the batch`);
    const start = rows * this.shard.index;
    return this.current.add({ kind: "slice", axis: 0, start, end: start + rows }, [node(global)]);
  }

  // ------------------------------------------------------------------ operations composed of primitives

  /** `value` with the shape and dtype of node `like`. */
  private fill(value: number, like: number): number {
    const n = this.current.node(like);
    return this.broadcastTo(this.scalar(value, n.dtype), n.shape);
  }

  private op(fn: BinaryFn, x: number, y: number): number {
    return this.current.add({ kind: "binary", fn }, [x, y]);
  }

  /** `x` reshaped to `view` (the same elements, with size-1 axes where it is repeated) and broadcast to `shape`. */
  private spread(x: number, view: readonly number[], shape: readonly number[]): number {
    return this.broadcastTo(this.current.add({ kind: "reshape" }, [x], view), shape);
  }

  /** 0, 1, ..., shape[axis] − 1 along `axis` of `shape`, repeated over the other axes. */
  private indexAlong(axis: number, shape: readonly number[]): number {
    const iota = this.current.add({ kind: "iota" }, [], [shape[axis]!], "i32");
    return this.spread(iota, shape.map((d, i) => (i === axis ? d : 1)), shape);
  }

  /**
   * An order-reversing involution, so that min = mirror ∘ max ∘ mirror: −x, and for i32 ~x = −x − 1, which
   * cannot overflow as −(−2³¹) does.
   */
  private mirror(x: number): number {
    const neg = this.current.add({ kind: "unary", fn: "neg" }, [x]);
    return this.current.node(x).dtype === "i32" ? this.op("sub", neg, this.fill(1, x)) : neg;
  }

  /** A reduction keeping the reduced axes as size 1; min is a max between mirrors, so it shares max's VJP rule and kernels. */
  private reduce(fn: "sum" | "max" | "min", x: number, axes: readonly number[]): number {
    if (fn === "min") return this.mirror(this.reduce("max", this.mirror(x), axes));
    return this.current.add({ kind: "reduce", fn, axes }, [x]);
  }

  /**
   * slope·x where x ≤ 0, else x (NaN passes through). A select rather than maximum(x, slope·x): its derivative at
   * 0 is slope, as PyTorch's and TF.js's, where maximum would split the cotangent of the tie. relu (slope 0)
   * takes the constant 0, since 0·x is NaN at x = −∞.
   */
  private leakyRelu(x: number, slope: number): number {
    const zero = this.fill(0, x);
    const low = slope === 0 ? zero : this.op("mul", x, this.fill(slope, x));
    return this.current.add({ kind: "select" }, [this.current.add({ kind: "compare", fn: "le" }, [x, zero]), low, x]);
  }

  /**
   * GELU's tanh approximation 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³), as x·σ(2u): the same function
   * (1 + tanh(u) = 2σ(2u)), without the cancellation of 1 + tanh(u) where tanh nears −1.
   */
  private gelu(x: number): number {
    const cubic = this.op("mul", x, this.op("add", this.fill(1, x), this.op("mul", this.fill(0.044715, x), this.op("mul", x, x))));
    const gate = this.current.add({ kind: "unary", fn: "sigmoid" }, [this.op("mul", this.fill(2 * Math.sqrt(2 / Math.PI), x), cubic)]);
    return this.op("mul", x, gate);
  }

  /** 1.0 where the last axis's index equals the label, else 0.0 (all zeros for a label out of range). */
  private oneHot(labels: number, shape: readonly number[]): number {
    const axis = shape.length - 1;
    const hit = this.current.add({ kind: "compare", fn: "eq" }, [this.spread(labels, [...shape.slice(0, axis), 1], shape), this.indexAlong(axis, shape)]);
    return this.current.add({ kind: "cast" }, [hit], shape, "f32");
  }

  /**
   * The first index along `axis` where x equals its maximum, or is NaN: max propagates NaN, so a NaN wins (as in
   * numpy and PyTorch). That is a min over the candidates' indices, with n for the other elements.
   */
  private argmax(x: number, axis: number, shape: readonly number[]): number {
    const b = this.current;
    const { shape: xs, dtype } = b.node(x);
    const index = this.indexAlong(axis, xs);
    const choose = (cond: number, otherwise: number) => b.add({ kind: "select" }, [cond, index, otherwise]);
    const none = this.broadcastTo(this.scalar(xs[axis]!, "i32"), xs);
    // An integer is never NaN (and C++ compilers reject the test x != x on one).
    const notTop = dtype === "i32" ? none : choose(b.add({ kind: "compare", fn: "ne" }, [x, x]), none);
    const top = this.broadcastTo(this.reduce("max", x, [axis]), xs);
    const candidate = choose(b.add({ kind: "compare", fn: "eq" }, [x, top]), notTop);
    return b.add({ kind: "reshape" }, [this.reduce("min", candidate, [axis])], shape);
  }

  /**
   * x's slices at `indices` along `axis` (numpy's take), as tinygrad writes it: each index is compared with every
   * position on the axis and the slice that matches is summed with zeros. So the gradient (a scatter-add) comes
   * from the rules of select, broadcast and sum, and every backend runs it, at n times the work of a direct read.
   * An index outside [0, n) matches nothing: zeros.
   */
  private gather(x: number, indices: number, axis: number, shape: readonly number[]): number {
    const b = this.current;
    const xs = b.node(x).shape;
    const is = b.node(indices).shape;
    const [lead, rest] = [xs.slice(0, axis), xs.slice(axis + 1)];
    const ones = (s: readonly number[]) => s.map(() => 1);
    // [...lead, ...is, n, ...rest]: each index against every position, the positions at `at`
    const wide = [...lead, ...is, xs[axis]!, ...rest];
    const at = axis + is.length;
    const values = this.spread(x, [...lead, ...ones(is), xs[axis]!, ...rest], wide);
    const wanted = this.spread(indices, [...ones(lead), ...is, 1, ...ones(rest)], wide);
    const hit = b.add({ kind: "compare", fn: "eq" }, [wanted, this.indexAlong(at, wide)]);
    const picked = b.add({ kind: "select" }, [hit, values, this.fill(0, values)]);
    return b.add({ kind: "reshape" }, [this.reduce("sum", picked, [at])], shape);
  }

  builtin(name: string, args: ReadonlyMap<string, Value>, result: Value): Value {
    if (result.k !== "tensor") return result;
    const shape = dims(result.shape);
    const arg = (n: string) => args.get(n)!;
    const node = (n: string) => this.nodeOf(arg(n), result);
    const b = this.current;
    const ints = (n: string): number[] => {
      const v = arg(n);
      return v.k === "list" ? v.items.map((i) => numberOf(i)) : [numberOf(v)];
    };
    const done = (id: number) => this.with(result, id);
    if (UNARY.has(name)) return done(b.add({ kind: "unary", fn: name as UnaryFn }, [node("x")]));
    switch (name) {
      case "maximum":
      case "minimum":
        return done(b.add({ kind: "binary", fn: name }, [this.broadcastTo(node("a"), shape), this.broadcastTo(node("b"), shape)]));
      case "matmul":
        return done(this.matmul(arg("a") as TensorValue, arg("b") as TensorValue, result));
      case "select":
        return done(b.add({ kind: "select" }, [this.broadcastTo(node("cond"), shape), this.broadcastTo(node("a"), shape), this.broadcastTo(node("b"), shape)]));
      case "sum":
      case "mean":
      case "max":
      case "min": {
        const x = b.node(node("x"));
        const rank = x.shape.length;
        const given = arg("axis").k === "list" && items(arg("axis")).length === 0 ? x.shape.map((_, i) => i) : ints("axis");
        const axes = given.map((a) => normalizeAxis(a, rank)!).sort((p, q) => p - q);
        let r = this.reduce(name === "mean" ? "sum" : name, x.id, axes);
        if (name === "mean") {
          const count = axes.reduce((p, a) => p * x.shape[a]!, 1);
          r = b.add({ kind: "binary", fn: "div" }, [r, this.broadcastTo(this.scalar(count, x.dtype), b.node(r).shape)]);
        }
        return done(shapeEquals(b.node(r).shape, shape) ? r : b.add({ kind: "reshape" }, [r], shape));
      }
      case "relu":
        return done(this.leakyRelu(node("x"), 0));
      case "leaky_relu":
        return done(this.leakyRelu(node("x"), numberOf(arg("slope"))));
      case "gelu":
        return done(this.gelu(node("x")));
      case "flatten":
        return done(b.add({ kind: "reshape" }, [node("x")], shape));
      case "one_hot":
        return done(this.oneHot(node("labels"), shape));
      case "gather": {
        const x = node("x");
        return done(this.gather(x, node("indices"), normalizeAxis(numberOf(arg("axis")), b.node(x).shape.length)!, shape));
      }
      case "argmax":
        return done(this.argmax(node("x"), normalizeAxis(numberOf(arg("axis")), shape.length + 1)!, shape));
      case "conv2d":
        return done(b.add({ kind: "conv2d", stride: numberOf(arg("stride")), padding: numberOf(arg("padding")), groups: numberOf(arg("groups")) }, [node("x"), node("w")]));
      case "upsample_nearest":
        return done(b.add({ kind: "upsample", factor: numberOf(arg("factor")) }, [node("x")]));
      case "avg_pool": {
        const size = numberOf(arg("size"));
        const s = arg("stride");
        return done(b.add({ kind: "avg_pool", size, stride: s.k === "int" ? numberOf(s) : size }, [node("x")]));
      }
      case "reshape":
        return done(b.add({ kind: "reshape" }, [node("x")], shape));
      case "transpose":
        return done(b.add({ kind: "transpose", perm: ints("perm") }, [node("x")]));
      case "broadcast_to":
        return done(this.broadcastTo(node("x"), shape));
      case "slice": {
        const x = b.node(node("x"));
        const axis = normalizeAxis(numberOf(arg("axis")), x.shape.length)!;
        return done(b.add({ kind: "slice", axis, start: numberOf(arg("start")), end: numberOf(arg("end")) }, [x.id]));
      }
      case "concat": {
        const xs = items(arg("xs")).map((v) => (v as TensorValue).node!);
        const axis = normalizeAxis(numberOf(arg("axis")), shape.length)!;
        return done(b.add({ kind: "concat", axis }, xs));
      }
      case "pad": {
        const widths = items(arg("widths")).map((p) => {
          const [lo, hi] = items(p).map((v) => numberOf(v));
          return [lo!, hi!] as const;
        });
        return done(b.add({ kind: "pad", widths, value: numberOf(arg("value")) }, [node("x")]));
      }
      case "zeros":
      case "ones":
      case "full": {
        const value = name === "zeros" ? 0 : name === "ones" ? 1 : numberOf(arg("value"));
        return done(this.broadcastTo(this.scalar(value, result.dtype), shape));
      }
      case "arange":
        return done(b.add({ kind: "iota" }, [], shape, result.dtype));
      case "randn":
      case "rand":
        return done(this.random(name === "randn" ? "normal" : "uniform", shape, result.dtype));
      case "stop_gradient":
        return done(b.add({ kind: "stop_gradient" }, [node("x")]));
      case "train_step":
        return this.input(NAMES.step, result);
      case "data_shard":
        return done(this.scalar(this.shard?.index ?? 0, "f32"));
      case "data_shards":
        return done(this.scalar(this.shard?.count ?? 1, "f32"));
      case "training":
        return done(this.scalar(this.training ? 1 : 0, "f32"));
      case "grad_norm":
        if (this.gradNorm === undefined) throw new Error("grad_norm() traced before the backward pass");
        return done(this.gradNorm());
      case "cast":
        return done(b.add({ kind: "cast" }, [node("x")], shape, result.dtype));
      default:
        throw new Error(`no lowering for the builtin ${name}`);
    }
  }
}

function items(v: Value): readonly Value[] {
  if (v.k !== "list" && v.k !== "tuple") throw new Error(`expected a list while tracing, got ${v.k}`);
  return v.items;
}

function numberOf(v: Value): number {
  if (v.k === "int" && v.value.value !== undefined) return v.value.value;
  if (v.k === "float" && v.value !== undefined) return v.value;
  if (v.k === "bool" && v.value !== undefined) return v.value ? 1 : 0;
  throw new Error(`a compile-time number is not known while tracing (${v.k})`);
}
