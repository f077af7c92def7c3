// NativeSession: a Program on a native host runtime (backends/native/cpp/ulc_serve.h with the CUDA device or the
// CPU one), which this class starts and drives (./host.ts). runtime/cuda and runtime/cpu build the program and
// start a session on it; everything after the build is the same for both targets.
//
// The arena's fixed part, laid out here: two slots for every piece of training state (each parameter, its
// optimizer state and its moving average), and an I/O region where each graph finds its other inputs (data,
// hypers, optimizer arguments) and its other outputs. A graph reads state from the current slots and writes
// its new values to the other ones, which then become current: no copies, and a step's CUDA Graph is
// captured once per placement (two, alternating) on a GPU. Parameters and the protocol of graph inputs and outputs
// are those of the reference session (runtime/reference.ts, compiler/names.ts).
//
// A data-parallel train entry runs as its gradients graph, the host's all-reduce, then its update graph. What the
// two hand over has a place of its own in the fixed part: the values to reduce, one after another (each aligned:
// the all-reduce takes the whole span, gaps included), then the values carried as they are.
import { ALIGNMENT, ELEMENT_BYTES, gradientsGraph, planScratch } from "../../backends/native/schedule.js";
import type { BufferEntry, GraphManifest, ProgramManifest } from "../../backends/program.js";
import { size, type DType } from "../../compiler/ir.js";
import { NAMES } from "../../compiler/names.js";
import { trainStepsOneByOne, type HostTensor, type InputTensor, type Session, type TrainingState } from "../session.js";
import { checkState } from "../training-state.js";
import { HostProcess, packWrites, type DeviceInfo, type GraphRun, type JobInfo, type Span } from "./host.js";

export interface NativeSessionOptions {
  readonly seed: number;
  readonly hypers?: Readonly<Record<string, number>>;
  readonly optimizer?: Readonly<Record<string, number>>;
}

function align(x: number): number {
  return Math.ceil(x / ALIGNMENT) * ALIGNMENT;
}

/** A piece of training state: two places in the arena, one of them current. */
interface Slot {
  readonly bytes: number;
  readonly at: readonly [number, number];
  current: 0 | 1;
}

type EntryManifest = ProgramManifest["entries"][number];

/** A graph as the session runs it. */
interface Plan {
  /** Its index in the host runtime's schedule. */
  readonly index: number;
  readonly graph: GraphManifest;
  /** Set for an entry's graph. */
  readonly entry?: EntryManifest;
  /** The graph's pinned buffers (all but intermediates), in schedule order. */
  readonly pinned: readonly BufferEntry[];
  /** Outputs that become training state: output name -> slot. */
  readonly feeds: ReadonlyMap<string, string>;
  /** Buffer id -> offset, for inputs and outputs that are not training state. */
  readonly io: ReadonlyMap<number, number>;
  /** Buffer id -> offset, for what a data-parallel step's two graphs hand over (not written by the driver). */
  readonly handoff: ReadonlyMap<number, number>;
}

/** A graph run prepared for the host, and what to do with it after. */
interface Prepared {
  readonly run: GraphRun;
  /** Outputs to copy into their slots after the run. */
  readonly moves: readonly { readonly from: number; readonly slot: Slot }[];
  /** The slots whose other place becomes current. */
  readonly swaps: readonly Slot[];
  decode(got: readonly Buffer[]): Map<string, HostTensor>;
}

/** The other place of each slot becomes current. */
function swap(slots: readonly Slot[]): void {
  for (const slot of slots) slot.current = slot.current === 0 ? 1 : 0;
}

/** Whether a graph's runs can follow one another in one request: it writes each new piece of state straight into its slot. */
function chains(plan: Plan): boolean {
  const role = new Map(plan.graph.buffers.map((b) => [b.id, b.role]));
  const fed = plan.graph.outputs.filter((o) => plan.feeds.has(o.name));
  return fed.every((o) => role.get(o.buffer) === "output") && new Set(fed.map((o) => o.buffer)).size === fed.length;
}

function encode(dtype: DType, data: ArrayLike<number>): Uint8Array {
  const typed = dtype === "i32" ? Int32Array.from(data) : Float32Array.from(data);
  return new Uint8Array(typed.buffer);
}

function decode(dtype: DType, bytes: Buffer): Float32Array | Int32Array {
  const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return dtype === "i32" ? new Int32Array(copy) : new Float32Array(copy);
}

export class NativeSession implements Session {
  step = 0;
  private readonly slots = new Map<string, Slot>();
  /** Optimizer state that exists (zeros until a train step or an import makes it). */
  private readonly started = new Set<string>();
  private emaKept = false;
  private emaInUse = false;
  private readonly plans = new Map<string, Plan>();
  /** Per data-parallel entry, the span its all-reduce takes. */
  private readonly reduced = new Map<string, Span>();
  /** Bytes of the arena's fixed part: training state and the I/O region. */
  private readonly fixedBytes: number;
  /** Bytes of the whole device arena. */
  readonly arenaBytes: number;

  private constructor(
    private readonly host: HostProcess,
    /** The program and its build directory. */
    readonly binary: string,
    readonly dir: string,
    readonly manifest: ProgramManifest,
    readonly device: DeviceInfo,
    /** The job the program is a rank of (a data-parallel program under mpirun), or a job of one. */
    readonly job: JobInfo,
    readonly options: NativeSessionOptions,
  ) {
    for (const name of Object.keys(options.hypers ?? {}))
      if (!manifest.hypers.some((h) => h.name === name)) throw new Error(`model ${manifest.model} has no hyper '${name}' (it has ${manifest.hypers.map((h) => h.name).join(", ") || "none"})`);
    let end = 0;
    const place = (bytes: number) => {
      const at = end;
      end = align(end + bytes);
      return at;
    };
    const spec = new Map(manifest.params.map((p) => [p.name, p]));
    const slot = (key: string, param: string) => {
      const bytes = size(spec.get(param)!.shape) * ELEMENT_BYTES;
      if (!this.slots.has(key)) this.slots.set(key, { bytes, at: [place(bytes), place(bytes)], current: 0 });
    };
    for (const p of manifest.params) {
      slot(NAMES.newParam(p.name), p.name);
      slot(NAMES.ema(p.name), p.name);
    }
    for (const e of manifest.entries) for (const p of e.training?.params ?? []) for (const s of e.training!.states) slot(NAMES.state(s, p), p);
    // What data-parallel steps hand over, by entry and name.
    const handoffs = new Map<string, Map<string, number>>();
    for (const e of manifest.entries) {
      if (!e.parallel) continue;
      const places = new Map<string, number>();
      const shapes = new Map(e.parallel.gradients.outputs.map((o) => [o.name, e.parallel!.gradients.buffers.find((b) => b.id === o.buffer)!.shape]));
      const start = end;
      for (const name of e.parallel.reduced) places.set(name, place(size(shapes.get(name)!) * ELEMENT_BYTES));
      this.reduced.set(e.name, { offset: start, bytes: end - start });
      for (const name of e.parallel.carried) places.set(name, place(size(shapes.get(name)!) * ELEMENT_BYTES));
      handoffs.set(e.name, places);
    }
    // The I/O region is shared: graphs run one at a time.
    const ioBase = end;
    let ioEnd = ioBase;
    type Graph = [string, GraphManifest, Map<string, string>, EntryManifest?, ReadonlyMap<string, number>?];
    const graphs: Graph[] = [
      ["init", manifest.init, new Map(manifest.params.map((p) => [p.name, NAMES.newParam(p.name)]))],
      ["ema", manifest.ema, new Map(manifest.params.map((p) => [NAMES.ema(p.name), NAMES.ema(p.name)]))],
      ...manifest.entries.map((e): Graph => {
        const feeds = new Map<string, string>();
        for (const p of e.training?.params ?? []) {
          feeds.set(NAMES.newParam(p), NAMES.newParam(p));
          for (const s of e.training!.states) feeds.set(NAMES.state(s, p), NAMES.state(s, p));
        }
        return [e.name, e, feeds, e, handoffs.get(e.name)];
      }),
      // As backends/native/schedule.ts numbers them: after the entries.
      ...manifest.entries.flatMap((e): Graph[] => (e.parallel ? [[gradientsGraph(e.name), e.parallel.gradients, new Map(), undefined, handoffs.get(e.name)]] : [])),
    ];
    graphs.forEach(([name, graph, feeds, entry, places], index) => {
      end = ioBase;
      const io = new Map<number, number>();
      const handoff = new Map<number, number>();
      const pinned = graph.buffers.filter((b) => b.role !== "intermediate");
      // Inputs first, one after another: a run's uploads are then one copy (packWrites).
      for (const b of [...pinned.filter((b) => b.role === "input"), ...pinned.filter((b) => b.role !== "input")]) {
        const state = b.role === "param" || (b.role === "input" && this.slots.has(b.name!)) || (b.role === "output" && feeds.has(b.name!));
        const handed = b.role !== "param" ? places?.get(b.name!) : undefined;
        if (handed !== undefined) handoff.set(b.id, handed);
        else if (!state) io.set(b.id, place(size(b.shape) * ELEMENT_BYTES));
      }
      ioEnd = Math.max(ioEnd, end);
      this.plans.set(name, { index, graph, pinned, feeds, io, handoff, ...(entry && { entry }) });
    });
    const scratch = Math.max(0, ...graphs.map(([, g]) => planScratch(g).bytes));
    this.fixedBytes = ioEnd;
    // As the host runtime lays it out: [fixed | rng words | scratch].
    this.arenaBytes = ioEnd + ALIGNMENT + scratch;
  }

  /** Starts a built program (`binary` serving the build directory `dir`) and initialises its parameters. */
  static async start(binary: string, dir: string, manifest: ProgramManifest, options: NativeSessionOptions): Promise<NativeSession> {
    const host = new HostProcess(binary, dir);
    try {
      const device = await host.info();
      const s = new NativeSession(host, binary, dir, manifest, device, await host.job(), options);
      await host.alloc(s.fixedBytes);
      await s.execute(s.plans.get("init")!, new Map(), 0, []);
      return s;
    } catch (e) {
      host.close();
      throw e;
    }
  }

  private entry(name: string): Plan & { entry: EntryManifest } {
    const plan = this.plans.get(name);
    if (!plan?.entry) throw new Error(`model ${this.manifest.model} has no entry '${name}'`);
    return plan as Plan & { entry: EntryManifest };
  }

  /** A train entry's plan and its inputs but state: data, hypers, the step and the optimizer's arguments. */
  private trainInputs(name: string, data: ReadonlyMap<string, InputTensor>, step: number): { plan: Plan; values: Map<string, Uint8Array>; training: NonNullable<EntryManifest["training"]> } {
    const plan = this.entry(name);
    const training = plan.entry.training;
    if (!training) throw new Error(`entry ${name} is not a train entry`);
    const values = this.inputsFor(plan.entry, data);
    values.set(NAMES.step, this.scalar(step));
    for (const a of training.args) values.set(NAMES.arg(a.name), this.scalar(this.options.optimizer?.[a.name] ?? a.default));
    return { plan, values, training };
  }

  /** Optimizer state starts at zero. */
  private async startStates(training: NonNullable<EntryManifest["training"]>): Promise<void> {
    for (const p of training.params)
      for (const s of training.states) {
        const key = NAMES.state(s, p);
        if (this.started.has(key)) continue;
        const slot = this.slots.get(key)!;
        await this.host.write(slot.at[slot.current], new Uint8Array(slot.bytes));
        this.started.add(key);
      }
  }

  /** Where a pinned buffer is for this run. */
  private where(plan: Plan, b: BufferEntry): number {
    const io = plan.io.get(b.id) ?? plan.handoff.get(b.id);
    if (io !== undefined) return io;
    if (b.role === "param") {
      // Only plain entries read the average: train steps and the average's update read the parameters.
      const key = this.emaInUse && this.emaKept && plan.entry?.kind === "plain" ? NAMES.ema(b.name!) : NAMES.newParam(b.name!);
      const s = this.slots.get(key)!;
      return s.at[s.current];
    }
    const s = this.slots.get(b.role === "input" ? b.name! : plan.feeds.get(b.name!)!)!;
    return s.at[b.role === "input" ? s.current : 1 - s.current];
  }

  /**
   * A run of a graph as the host takes it: its I/O inputs written from `values`, the outputs named in `reads`
   * read back. Making its new training state current is `settle`'s, after the run (or, in a batch of runs,
   * before the next is prepared: where the next reads its state depends on it).
   */
  private prepare(plan: Plan, values: ReadonlyMap<string, Uint8Array>, step: number, reads: readonly string[]): Prepared {
    const writes = plan.pinned
      .filter((b) => b.role === "input" && plan.io.has(b.id))
      .map((b) => {
        const data = values.get(b.name!);
        if (!data) throw new Error(`the graph needs the input '${b.name}'`);
        if (data.byteLength !== size(b.shape) * ELEMENT_BYTES) throw new Error(`input '${b.name}' has ${data.byteLength / ELEMENT_BYTES} values; ${b.dtype}[${b.shape.join(", ")}] needs ${size(b.shape)}`);
        return { offset: plan.io.get(b.id)!, data };
      });
    const byId = new Map(plan.graph.buffers.map((b) => [b.id, b]));
    const output = (name: string) => byId.get(plan.graph.outputs.find((o) => o.name === name)!.buffer)!;
    const spans = reads.map((name) => {
      const b = output(name);
      return { offset: this.where(plan, b), bytes: size(b.shape) * ELEMENT_BYTES };
    });
    // An output the graph did not write to its slot (it is an input, or shares a buffer with another output) is
    // copied there after the run.
    const feeds = [...plan.feeds].map(([name, key]) => ({ from: this.where(plan, output(name)), slot: this.slots.get(key)! }));
    return {
      run: { graph: plan.index, seed: this.options.seed, step, pinned: plan.pinned.map((b) => this.where(plan, b)), writes: packWrites(writes, ALIGNMENT), reads: spans },
      moves: feeds.filter(({ from, slot }) => from !== slot.at[1 - slot.current]),
      swaps: feeds.map((f) => f.slot),
      decode: (got) =>
        new Map(
          reads.map((name, i) => {
            const b = output(name);
            return [name, { dtype: b.dtype, shape: b.shape, data: decode(b.dtype, got[i]!) }];
          }),
        ),
    };
  }

  /** Makes a run's new training state current (its moves copied first). */
  private async settle(p: Prepared): Promise<void> {
    for (const { from, slot } of p.moves) await this.host.copy(slot.at[1 - slot.current], from, slot.bytes);
    swap(p.swaps);
  }

  /** Runs a graph and makes its new training state current. */
  private async execute(plan: Plan, values: ReadonlyMap<string, Uint8Array>, step: number, reads: readonly string[]): Promise<Map<string, HostTensor>> {
    const p = this.prepare(plan, values, step, reads);
    const [got] = await this.host.run([p.run]);
    await this.settle(p);
    return p.decode(got!);
  }

  private scalar(v: number): Uint8Array {
    return encode("f32", [v]);
  }

  private inputsFor(entry: EntryManifest, data: ReadonlyMap<string, InputTensor>): Map<string, Uint8Array> {
    const values = new Map<string, Uint8Array>();
    for (const spec of entry.inputs) {
      const t = data.get(spec.name);
      if (!t) throw new Error(`entry ${entry.name} needs the input '${spec.name}' (${spec.dtype}[${spec.shape.join(", ")}])`);
      values.set(spec.name, encode(spec.dtype, t.data));
    }
    for (const h of this.manifest.hypers) values.set(h.name, this.scalar(this.options.hypers?.[h.name] ?? h.default));
    return values;
  }

  async run(name: string, data: ReadonlyMap<string, InputTensor>, step = this.step): Promise<Map<string, HostTensor>> {
    const plan = this.entry(name);
    return this.execute(plan, this.inputsFor(plan.entry, data), step, plan.graph.outputs.map((o) => o.name));
  }

  async trainStep(name: string, data: ReadonlyMap<string, InputTensor>): Promise<Map<string, number>> {
    const { plan, values, training } = this.trainInputs(name, data, this.step + 1);
    this.step += 1;
    await this.startStates(training);
    const results = plan.entry!.results;
    const reduced = this.reduced.get(name);
    if (reduced) {
      // Every rank takes this step: gradients, their mean over the ranks, then the update from it.
      await this.execute(this.plans.get(gradientsGraph(name))!, values, this.step, []);
      await this.host.allReduce(reduced.offset, reduced.bytes / ELEMENT_BYTES);
    }
    const out = await this.execute(plan, values, this.step, results);
    return new Map(results.map((r) => [r, out.get(r)!.data[0]!]));
  }

  /**
   * Several train steps, each followed by the moving average's update at its decay, in one request: the device
   * runs them back to back and synchronises once. One by one where something must happen between two runs: the
   * average's first update (it starts as a copy of the parameters), a data-parallel step's all-reduce, or a
   * graph whose outputs need a copy into their slots.
   */
  async trainSteps(name: string, batches: readonly ReadonlyMap<string, InputTensor>[], emaDecays: readonly number[]): Promise<Map<string, number>[]> {
    const plan = this.entry(name);
    const ema = this.plans.get("ema")!;
    if (!this.emaKept || plan.entry.parallel || !chains(plan) || !chains(ema)) return trainStepsOneByOne(this, name, batches, emaDecays);
    const results = plan.entry.results;
    const runs: GraphRun[] = [];
    const steps: Prepared[] = [];
    for (const [i, batch] of batches.entries()) {
      const step = this.step + 1 + i;
      const { values, training } = this.trainInputs(name, batch, step);
      if (i === 0) await this.startStates(training);
      const train = this.prepare(plan, values, step, results);
      swap(train.swaps);
      const average = this.prepare(ema, new Map([[NAMES.emaDecay, this.scalar(emaDecays[i]!)]]), step, []);
      swap(average.swaps);
      runs.push(train.run, average.run);
      steps.push(train);
    }
    const got = await this.host.run(runs);
    this.step += batches.length;
    return steps.map((p, i) => {
      const out = p.decode(got[2 * i]!);
      return new Map(results.map((r) => [r, out.get(r)!.data[0]!]));
    });
  }

  async updateEma(decay: number): Promise<void> {
    // The average starts at the parameters it first sees.
    if (!this.emaKept)
      for (const p of this.manifest.params) {
        const [param, ema] = [this.slots.get(NAMES.newParam(p.name))!, this.slots.get(NAMES.ema(p.name))!];
        await this.host.copy(ema.at[ema.current], param.at[param.current], param.bytes);
      }
    this.emaKept = true;
    await this.execute(this.plans.get("ema")!, new Map([[NAMES.emaDecay, this.scalar(decay)]]), this.step, []);
  }

  useEma(on: boolean): void {
    this.emaInUse = on;
  }

  async exportState(): Promise<TrainingState> {
    const tensors = new Map<string, HostTensor>();
    const spec = new Map(this.manifest.params.map((p) => [p.name, p]));
    const put = async (key: string, param: string) => {
      const { dtype, shape } = spec.get(param)!;
      const slot = this.slots.get(key)!;
      tensors.set(key, { dtype, shape, data: decode(dtype, await this.host.read({ offset: slot.at[slot.current], bytes: slot.bytes })) });
    };
    for (const p of this.manifest.params) {
      await put(NAMES.newParam(p.name), p.name);
      if (this.emaKept) await put(NAMES.ema(p.name), p.name);
    }
    for (const e of this.manifest.entries)
      for (const p of e.training?.params ?? []) for (const s of e.training!.states) if (this.started.has(NAMES.state(s, p)) && !tensors.has(NAMES.state(s, p))) await put(NAMES.state(s, p), p);
    return { step: this.step, tensors };
  }

  async importState(state: TrainingState): Promise<void> {
    checkState(this.manifest, state);
    this.started.clear();
    this.emaKept = false;
    for (const [key, t] of state.tensors) {
      const slot = this.slots.get(key)!;
      await this.host.write(slot.at[slot.current], encode(t.dtype, t.data));
      if (key.startsWith(NAMES.ema(""))) this.emaKept = true;
      else if (!key.startsWith(NAMES.newParam(""))) this.started.add(key);
    }
    this.step = state.step;
  }

  /** Milliseconds per run of a train entry with these inputs, timed by the device (HostProcess.time); the state is unchanged. */
  async timeTrainStep(name: string, data: ReadonlyMap<string, InputTensor>, repeats: number): Promise<number> {
    const { plan, values, training } = this.trainInputs(name, data, this.step + 1);
    if (plan.entry?.parallel) throw new Error(`entry ${name} is a data-parallel step, whose time includes the other ranks': time it by training`);
    await this.startStates(training);
    return this.timeGraph(plan, values, this.step + 1, repeats);
  }

  /** Milliseconds per run of a plain entry with these inputs, timed by the device. */
  async timeRun(name: string, data: ReadonlyMap<string, InputTensor>, repeats: number): Promise<number> {
    const plan = this.entry(name);
    return this.timeGraph(plan, this.inputsFor(plan.entry, data), this.step, repeats);
  }

  private async timeGraph(plan: Plan, values: ReadonlyMap<string, Uint8Array>, step: number, repeats: number): Promise<number> {
    for (const b of plan.pinned) if (b.role === "input" && plan.io.has(b.id)) await this.host.write(plan.io.get(b.id)!, values.get(b.name!)!);
    return this.host.time(plan.index, this.options.seed, step, plan.pinned.map((b) => this.where(plan, b)), repeats);
  }

  /** The host process's peak resident memory in bytes (Linux: VmHWM), or undefined where it cannot be read. */
  peakResidentBytes(): number | undefined {
    return this.host.peakResidentBytes();
  }

  dispose(): void {
    this.host.close();
  }
}
