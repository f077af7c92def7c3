// Lowering: a checked model with every dim bound -> a Program of graphs. The checker's own evaluation builds
// the graphs (it inlines modules, unrolls loops and folds `if`s as it checks), with a GraphTracer recording each
// tensor operation. A train entry becomes one train-step graph: forward, backward (autodiff) and the optimizer
// update of every trained parameter and its state, all as outputs that the runtime feeds back as inputs.
import type * as A from "../dsl/ast.js";
import { Checker } from "../dsl/checker.js";
import { defaultStdRoot, diskHost, loadProgram, type SourceHost } from "../dsl/loader.js";
import type { TensorValue, Value } from "../dsl/values.js";
import { vjp } from "./autodiff.js";
import { GraphBuilder, verify, type Graph } from "./ir.js";
import { memoryStats, type MemoryStats } from "./memory.js";
import { NAMES } from "./names.js";
import { splitAtAllReduce, type SplitStep } from "./parallel.js";
import { optimize } from "./passes/index.js";
import { applyPrecision, type ContractionPrecision } from "./passes/precision.js";
import { dims, GraphTracer, type TraceShard } from "./trace.js";

// The model's interface is the one the Program's manifest carries to the runtimes (runtime/manifest.ts).
import type { ScalarSpec, TensorSpec, TrainingSpec } from "../runtime/manifest.js";
export type { ScalarSpec, TensorSpec };

export interface ProgramEntry {
  readonly name: string;
  readonly kind: "train" | "plain";
  readonly graph: Graph;
  /** The node count as traced, before the optimiser. */
  readonly tracedNodes: number;
  /** Bytes of the planned intermediate-buffer arena (compiler/memory.ts) and the sum it replaces. */
  readonly memory: MemoryStats;
  /** Data inputs (the entry's parameters). Other graph inputs are hypers, optimizer arguments and state. */
  readonly inputs: readonly TensorSpec[];
  /** Result outputs: a record's fields, `result` for a tensor, `result.0`... for a tuple. */
  readonly results: readonly string[];
  /** Train entries: the minimised field, the optimizer's arguments and state names, the trained parameters. */
  readonly training?: TrainingSpec;
  /** A train entry of a data-parallel Program: the step as two graphs with the all-reduce between them. */
  readonly parallel?: SplitStep;
}

export interface Program {
  readonly model: string;
  readonly bindings: Readonly<Record<string, number>>;
  /** How its contractions multiply: under "tf32" ("bf16") every graph reads their f32 operands through round_tf32 (round_bf16) nodes. */
  readonly precision: ContractionPrecision;
  readonly params: readonly TensorSpec[];
  readonly hypers: readonly ScalarSpec[];
  /** Outputs one tensor per parameter, named by the parameter. */
  readonly init: Graph;
  /** Folds the parameters into their moving average: `ema:NAME` ← decay·`ema:NAME` + (1 − decay)·param. */
  readonly ema: Graph;
  readonly entries: readonly ProgramEntry[];
}


export interface LowerOptions {
  readonly bindings: Readonly<Record<string, number>>;
  readonly host?: SourceHost;
  readonly stdRoot?: string;
  /** The model to lower when the file declares several; default: the only (or last) one. */
  readonly model?: string;
  /** Run the graph optimiser (compiler/passes) on every graph; default true. */
  readonly optimize?: boolean;
  /** Lower for one process of a data-parallel job (more than one shard). */
  readonly shard?: DataShard;
  /**
   * "tf32" ("bf16"): every graph's f32 contraction operands are rounded to TF32 (bfloat16; compiler/passes/precision.ts),
   * backward and update included, so the interpreter computes what tensor cores do up to summation order; default "fp32".
   */
  readonly precision?: ContractionPrecision;
}

/** One process of a data-parallel job: its shard of every global batch. */
export interface DataShard {
  /** 0-based, below `count`. */
  readonly index: number;
  readonly count: number;
  /** The generic dim that is the batch: bound to this process's share of the global batch. */
  readonly batch: string;
}

export function lowerProgram(path: string, options: LowerOptions): Program {
  const host = options.host ?? diskHost;
  const stdRoot = options.stdRoot ?? defaultStdRoot();
  // Loaded and parsed once; each checker below only reads the ASTs.
  const program = loadProgram([path], host, stdRoot);
  const shard = options.shard && options.shard.count > 1 ? traceShard(path, options, options.shard) : undefined;
  const root = program.files.get(program.roots[0]!);
  const models = (root?.ast?.decls ?? []).filter((d): d is A.ContainerDecl => d.kind === "model");
  const model = options.model ? models.find((m) => m.name.name === options.model) : models[models.length - 1];
  if (!model) throw new Error(options.model ? `${path} declares no model named ${options.model}` : `${path} declares no model`);
  const unbound = [...model.generics, ...model.members.flatMap((m) => (m.kind === "entry" ? m.generics : []))].filter((g) => !g.default && options.bindings[g.name.name] === undefined);
  if (unbound.length > 0) throw new Error(`bind ${[...new Set(unbound.map((g) => g.name.name))].map((n) => `--bind ${n}=...`).join(" ")} to build ${model.name.name}`);

  // One checker per graph: each evaluation creates its own parameter and input nodes. Random keys are numbered
  // across the whole Program: each trace starts past the keys of the one before it (init, then the entries in
  // order, each traced to the end before the next begins), so two graphs run at the same (seed, step) never
  // draw the same stream (reconstruction runs `noise_latent` and the decoder's steps on one step counter).
  let previous: GraphTracer | undefined;
  const trace = (withInit: boolean, training = false) => {
    const tracer = new GraphTracer(new GraphBuilder(), { withInit, training, firstRandomKey: previous?.nextRandomKey ?? 0, ...(shard && { shard }) });
    previous = tracer;
    const checker = new Checker(program, { bindings: options.bindings, tracer });
    checker.prepare();
    const inst = checker.traceModel(model.name.name);
    const report = () => {
      if (checker.diagnostics.items.length > 0) throw new Error(`lowering ${model.name.name} met errors the checker should have reported: ${checker.diagnostics.items.map((d) => d.message).join("; ")}`);
    };
    return { tracer, checker, inst, report };
  };

  // The whole graph is built (a train step's backward pass and update included) before the precision pass, and the
  // optimiser runs after it: folding rounds a constant operand, CSE keeps one rounding per value.
  const precision = options.precision ?? "fp32";
  const finish = (traced: Graph): Graph => {
    verify(traced);
    const g = applyPrecision(traced, precision);
    return options.optimize === false ? g : optimize(g).graph;
  };
  const initTrace = trace(true);
  initTrace.report();
  const init = finish(initTrace.tracer.initBuilder!.build(initTrace.tracer.initOutputs));
  const params: TensorSpec[] = [...initTrace.tracer.params].map(([name, node]) => {
    const n = initTrace.tracer.builder.node(node);
    return { name, dtype: n.dtype, shape: n.shape };
  });
  const hypers = initTrace.tracer.inputs.map((i) => ({ name: i.name, default: i.defaultValue! }));

  const entries = model.members
    .filter((m): m is A.EntryMember => m.kind === "entry")
    .map((e): ProgramEntry => {
      const { tracer, checker, inst, report } = trace(false, e.training !== undefined);
      const b = tracer.builder;
      const { inputs, result } = checker.traceEntry(inst, e);
      report();
      const outputs = flattenResult(result);
      const base = {
        name: e.name.name,
        inputs: inputs.map((i) => ({ name: i.name, dtype: i.value.dtype, shape: dims(i.value.shape) })),
        results: outputs.map((o) => o.name),
      };
      if (!e.training) {
        const graph = b.build(outputs);
        const optimized = finish(graph);
        return { ...base, kind: "plain", graph: optimized, tracedNodes: graph.nodes.length, memory: memoryStats(optimized) };
      }
      const loss = outputs.find((o) => o.name === e.training!.minimize.name)!;
      const trained = checker.trainedParamsOf(inst, e);
      // Data-parallel: every rank's gradients and metrics become their mean over the ranks.
      const reduced = (node: number) => (shard ? b.add({ kind: "all_reduce" }, [node]) : node);
      const grads = vjp(
        b,
        loss.node,
        trained.map((p) => p.value.node!),
      ).map((g) => (g === undefined ? g : reduced(g)));
      // grad_norm(): built on first use, so an optimizer that never asks reads no gradient twice; from the reduced
      // gradients, so every rank of a data-parallel job clips alike.
      let norm: number | undefined;
      tracer.gradNorm = () => (norm ??= globalNorm(b, grads.filter((g) => g !== undefined)));
      const opt = checker.traceOptimizer(inst, e);
      // The step is not an argument, though train_step() may have made it an input already.
      const args = tracer.inputs.filter((i) => i.name.startsWith("optimizer.") && i.name !== NAMES.step).map((i) => ({ name: i.name.slice("optimizer.".length), default: i.defaultValue! }));
      const step = tracer.input(NAMES.step, scalarTensor(e));
      const stateNames = checker.stateNames(opt);
      const updates: { name: string; node: number }[] = [];
      trained.forEach((p, i) => {
        const states = new Map(stateNames.map((s) => [s, tracer.input(NAMES.state(s, p.name), p.value)]));
        const g: TensorValue = { ...p.value, node: grads[i]! };
        const r = checker.traceUpdate(opt, p.value, g, step, states);
        report();
        if (r.k !== "record") throw new Error("the optimizer's update returned no record");
        updates.push({ name: NAMES.newParam(p.name), node: nodeOf(r.fields.get("p")!) });
        for (const s of stateNames) updates.push({ name: NAMES.state(s, p.name), node: nodeOf(r.fields.get(s)!) });
      });
      const graph = b.build([...outputs.map((o) => ({ ...o, node: reduced(o.node) })), ...updates]);
      const optimized = finish(graph);
      return {
        ...base,
        kind: "train",
        graph: optimized,
        tracedNodes: graph.nodes.length,
        memory: memoryStats(optimized),
        training: { loss: loss.name, optimizer: opt.decl.name.name, args, states: stateNames, params: trained.map((p) => p.name) },
        ...(shard && { parallel: splitAtAllReduce(optimized) }),
      };
    });
  return { model: model.name.name, bindings: { ...options.bindings }, precision, params, hypers, init, ema: finish(emaGraph(params)), entries };
}

/**
 * What tracing one shard needs beyond its bindings: every random draw's shape at the global batch, from the
 * same Program lowered at the global batch (keys are numbered in the same order, so they match).
 */
function traceShard(path: string, options: LowerOptions, shard: DataShard): TraceShard {
  const local = options.bindings[shard.batch];
  if (local === undefined) throw new Error(`a data-parallel build needs the batch dim ${shard.batch} bound`);
  if (!(shard.index >= 0 && shard.index < shard.count)) throw new Error(`shard ${shard.index} of ${shard.count} does not exist`);
  const global = lowerProgram(path, { ...options, bindings: { ...options.bindings, [shard.batch]: local * shard.count }, optimize: false, shard: undefined });
  const globalRandomShapes = new Map<number, readonly number[]>();
  for (const g of [global.init, ...global.entries.map((e) => e.graph)])
    for (const n of g.nodes) if (n.op.kind === "random") globalRandomShapes.set(n.op.key, n.shape);
  return { index: shard.index, count: shard.count, globalRandomShapes };
}

/** √(Σ over the gradients of Σ g²), what grad_norm() is: the L2 norm of all of them as one vector. */
function globalNorm(b: GraphBuilder, grads: readonly number[]): number {
  const squares = grads.map((g) => {
    const { shape } = b.node(g);
    const square = b.add({ kind: "binary", fn: "mul" }, [g, g]);
    return shape.length ? b.add({ kind: "reshape" }, [b.add({ kind: "reduce", fn: "sum", axes: shape.map((_, i) => i) }, [square])], []) : square;
  });
  const total = squares.reduce((acc, x) => b.add({ kind: "binary", fn: "add" }, [acc, x]), b.add({ kind: "constant", value: 0 }, [], []));
  return b.add({ kind: "unary", fn: "sqrt" }, [total]);
}

/** ema + (1 − decay)·(param − ema): one fused kernel per parameter, written as the update rounds best near 1. */
function emaGraph(params: readonly TensorSpec[]): Graph {
  const b = new GraphBuilder();
  const decay = b.add({ kind: "input", name: NAMES.emaDecay }, [], []);
  const outputs = params.map((p) => {
    const param = b.add({ kind: "param", name: p.name }, [], p.shape, p.dtype);
    const ema = b.add({ kind: "input", name: NAMES.ema(p.name) }, [], p.shape, p.dtype);
    const rate = b.add({ kind: "binary", fn: "sub" }, [b.add({ kind: "constant", value: 1 }, [], []), decay]);
    const wide = b.add({ kind: "broadcast" }, [b.add({ kind: "reshape" }, [rate], p.shape.map(() => 1))], p.shape);
    const step = b.add({ kind: "binary", fn: "mul" }, [wide, b.add({ kind: "binary", fn: "sub" }, [param, ema])]);
    return { name: NAMES.ema(p.name), node: b.add({ kind: "binary", fn: "add" }, [ema, step]) };
  });
  return b.build(outputs);
}

function scalarTensor(e: A.EntryMember): TensorValue {
  return { k: "tensor", dtype: "f32", shape: [], origin: e.name.span };
}

function nodeOf(v: Value): number {
  if (v.k !== "tensor" || v.node === undefined) throw new Error(`expected a traced tensor, got ${v.k}`);
  return v.node;
}

/** An entry's result as named graph outputs. */
function flattenResult(v: Value, name = "result"): { name: string; node: number }[] {
  switch (v.k) {
    case "tensor":
      return [{ name, node: nodeOf(v) }];
    case "tuple":
      return v.items.flatMap((item, i) => flattenResult(item, `${name}.${i}`));
    case "record":
      return [...v.fields].flatMap(([field, item]) => flattenResult(item, name === "result" ? field : `${name}.${field}`));
    default:
      throw new Error(`an entry returned ${v.k}, which has no graph form`);
  }
}
