// Runs a Program on the reference interpreter: initialises parameters, keeps the optimizer state, and feeds a
// train step's updated parameters and state back in for the next step. The WebGPU and CUDA runtimes follow the
// same protocol (graph input and output names in compiler/names.ts); this one is their oracle.
import type { Graph } from "../compiler/ir.js";
import type { Program, ProgramEntry } from "../compiler/lower.js";
import { NAMES } from "../compiler/names.js";
import { interpret } from "./interpreter.js";
import type { Precision, Tensor } from "./tensor.js";

export interface SessionOptions {
  readonly precision: Precision;
  readonly seed: number;
  /** Overrides of hyperparameter defaults (`--set loss_factor=2`). */
  readonly hypers?: Readonly<Record<string, number>>;
  /** Overrides of optimizer argument defaults (`--lr 3e-4`). */
  readonly optimizer?: Readonly<Record<string, number>>;
}

export class ReferenceSession {
  readonly params: Map<string, Tensor>;
  /** Optimizer state by graph input name (`optimizer.m.encoder.weight`); zeros before the first step. */
  readonly state = new Map<string, Tensor>();
  /** The number of train steps taken; the next one is step + 1. */
  step = 0;

  constructor(
    readonly program: Program,
    readonly options: SessionOptions,
  ) {
    for (const name of Object.keys(options.hypers ?? {}))
      if (!program.hypers.some((h) => h.name === name)) throw new Error(`model ${program.model} has no hyper '${name}' (it has ${program.hypers.map((h) => h.name).join(", ") || "none"})`);
    this.params = interpret(program.init, {}, { precision: options.precision, seed: options.seed, step: 0 });
  }

  private entry(name: string): ProgramEntry {
    const e = this.program.entries.find((x) => x.name === name);
    if (!e) throw new Error(`model ${this.program.model} has no entry '${name}'`);
    return e;
  }

  private scalar(v: number): Tensor {
    const data = this.options.precision === "f32" ? Float32Array.of(v) : Float64Array.of(v);
    return { dtype: "f32", shape: [], data };
  }

  private hyperInputs(): Map<string, Tensor> {
    return new Map(this.program.hypers.map((h) => [h.name, this.scalar(this.options.hypers?.[h.name] ?? h.default)]));
  }

  private inputsFor(entry: ProgramEntry, data: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
    const inputs = this.hyperInputs();
    for (const spec of entry.inputs) {
      const t = data.get(spec.name);
      if (!t) throw new Error(`entry ${entry.name} needs the input '${spec.name}' (${spec.dtype}[${spec.shape.join(", ")}])`);
      inputs.set(spec.name, t);
    }
    return inputs;
  }

  /** Runs a plain entry; its randomness is keyed by `step` (default: the current step). */
  run(name: string, data: ReadonlyMap<string, Tensor>, step = this.step): Map<string, Tensor> {
    const entry = this.entry(name);
    return interpret(entry.graph, { inputs: this.inputsFor(entry, data), params: this.params }, { precision: this.options.precision, seed: this.options.seed, step });
  }

  /** One optimizer step of a train entry; returns its metrics (the record's fields). */
  trainStep(name: string, data: ReadonlyMap<string, Tensor>): Map<string, number> {
    const entry = this.entry(name);
    return this.finishStep(entry, this.interpretStep(entry.graph, this.stepInputs(entry, data)));
  }

  /**
   * The first half of a data-parallel step (an entry lowered with a shard): this shard's gradients and metrics,
   * and what the update carries over, by name. The step is taken by `trainUpdate` with their mean over shards.
   */
  trainGradients(name: string, data: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
    const entry = this.entry(name);
    if (!entry.parallel) throw new Error(`entry ${name} was not lowered for data parallelism`);
    return this.interpretStep(entry.parallel.gradients, this.stepInputs(entry, data));
  }

  /** The second half of a data-parallel step, from the reduced (and carried) values `trainGradients` gave. */
  trainUpdate(name: string, handoff: ReadonlyMap<string, Tensor>): Map<string, number> {
    const entry = this.entry(name);
    if (!entry.parallel) throw new Error(`entry ${name} was not lowered for data parallelism`);
    const inputs = this.stepInputs(entry);
    for (const [k, v] of handoff) inputs.set(k, v);
    return this.finishStep(entry, this.interpretStep(entry.parallel.update, inputs));
  }

  /** A train step's inputs at the next step: data (unless the graph reads none), hypers, the step, the optimizer's arguments and state. */
  private stepInputs(entry: ProgramEntry, data?: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
    const training = entry.training;
    if (!training) throw new Error(`entry ${entry.name} is not a train entry`);
    const inputs = data ? this.inputsFor(entry, data) : this.hyperInputs();
    inputs.set(NAMES.step, this.scalar(this.step + 1));
    for (const a of training.args) inputs.set(NAMES.arg(a.name), this.scalar(this.options.optimizer?.[a.name] ?? a.default));
    for (const p of training.params) {
      const value = this.params.get(p)!;
      for (const s of training.states) {
        const key = NAMES.state(s, p);
        if (!this.state.has(key)) this.state.set(key, { ...value, data: new (value.data.constructor as Float64ArrayConstructor)(value.data.length) });
        inputs.set(key, this.state.get(key)!);
      }
    }
    return inputs;
  }

  private interpretStep(graph: Graph, inputs: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
    return interpret(graph, { inputs, params: this.params }, { precision: this.options.precision, seed: this.options.seed, step: this.step + 1 });
  }

  /** Takes the step: its new parameters and state become current; returns its metrics. */
  private finishStep(entry: ProgramEntry, out: ReadonlyMap<string, Tensor>): Map<string, number> {
    const training = entry.training!;
    this.step += 1;
    for (const p of training.params) {
      this.params.set(p, out.get(NAMES.newParam(p))!);
      for (const s of training.states) this.state.set(NAMES.state(s, p), out.get(NAMES.state(s, p))!);
    }
    return new Map(entry.results.map((r) => [r, out.get(r)!.data[0]!]));
  }
}
