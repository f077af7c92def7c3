/// <reference types="@webgpu/types" />
// A WGSL Program (manifest + kernels, as `ulc build --target wgsl` writes it) on a GPUDevice: parameters and
// optimizer state live on the device; each graph runs as its kernels (compiled once, cached) with its
// intermediates in buffers allocated once, host inputs are written into buffers kept per name, and a train
// step's new parameters and state replace the old buffers, into which the next step writes its own. The protocol is the reference session's
// (runtime/reference.ts), so the two are compared step by step. Nothing here needs Node or the compiler: a
// browser passes the manifest and kernel files it fetched, and a Program compiled in memory comes through
// compile.ts.
import { NAMES } from "../manifest.js";
import type { HostTensor, InputTensor, Session, TrainingState } from "../session.js";
import { checkState } from "../training-state.js";
import { WebGpuRequirementError } from "./device.js";
import { download, GraphRunner, hostToStorage, upload, type DeviceTensor } from "./kernels.js";
import type { EntryManifest, GraphManifest, ProgramManifest, WgslBuild } from "./program.js";

export interface WebGpuSessionOptions {
  readonly seed: number;
  readonly hypers?: Readonly<Record<string, number>>;
  readonly optimizer?: Readonly<Record<string, number>>;
}

/** Destroys each buffer once, except those still in use. */
function free(tensors: readonly DeviceTensor[], live: ReadonlySet<DeviceTensor>): void {
  for (const t of new Set(tensors)) if (!live.has(t)) t.buffer.destroy();
}

/** Every buffer a kernel binds must fit the device's binding limit: refused here, naming it, not at a dispatch. */
function checkBindingSizes(device: GPUDevice, manifest: ProgramManifest): void {
  const limit = device.limits.maxStorageBufferBindingSize;
  for (const [name, g] of [["init", manifest.init], ["ema", manifest.ema], ...manifest.entries.map((e) => [e.name, e] as const)] as const)
    for (const b of g.buffers) {
      const bytes = 4 * b.shape.reduce((x, y) => x * y, 1);
      if (bytes > limit)
        throw new WebGpuRequirementError(`graph ${name}: ${b.name ?? `%${b.id}`} (${b.dtype}[${b.shape.join(", ")}]) takes ${bytes} bytes, past this device's storage binding limit of ${limit}: bind a smaller batch or width`, [], []);
    }
}

export class WebGpuSession implements Session {
  /** Parameters by name, on the device. */
  private params = new Map<string, DeviceTensor>();
  private readonly state = new Map<string, DeviceTensor>();
  /** The parameters' moving average by parameter name, once `updateEma` has run or a checkpoint held one. */
  private readonly ema = new Map<string, DeviceTensor>();
  private emaInUse = false;
  step = 0;
  /** Each graph's runner (intermediates, pipelines, bind groups), made on first use. */
  private readonly runners = new Map<GraphManifest, GraphRunner>();
  /** Host inputs by name, in buffers rewritten in place, so that the runners' bind groups stay valid. */
  private readonly staged = new Map<string, DeviceTensor>();
  /** Per graph, by output name, the buffers its next run writes its outputs into (what its last run retired). */
  private readonly spares = new Map<GraphManifest, Map<string, DeviceTensor>>();

  private constructor(
    readonly device: GPUDevice,
    readonly program: ProgramManifest,
    private readonly kernels: ReadonlyMap<string, string>,
    readonly options: WebGpuSessionOptions,
  ) {}

  /** Loads a built Program and initialises its parameters on the device with its init graph. */
  static async create(device: GPUDevice, build: WgslBuild, options: WebGpuSessionOptions): Promise<WebGpuSession> {
    checkBindingSizes(device, build.manifest);
    const s = new WebGpuSession(device, build.manifest, build.kernels, options);
    const out = await s.execute(build.manifest.init, new Map(), 0);
    for (const o of build.manifest.init.outputs) s.params.set(o.name, out.get(o.name)!);
    // The init graph runs once: its intermediates go now.
    s.runners.get(build.manifest.init)!.destroy();
    s.runners.delete(build.manifest.init);
    return s;
  }

  /**
   * Runs a graph with named inputs, reading the parameters' moving average instead of the parameters when
   * `averaged`; returns its outputs' buffers (the graph's spares where it has them).
   */
  private async execute(g: GraphManifest, inputs: ReadonlyMap<string, DeviceTensor>, step: number, averaged = false): Promise<Map<string, DeviceTensor>> {
    const bound = new Map<number, DeviceTensor>();
    for (const b of g.buffers) {
      if (b.role !== "input" && b.role !== "param") continue;
      const t = b.role === "input" ? inputs.get(b.name!) : (averaged && this.ema.get(b.name!)) || this.params.get(b.name!);
      if (!t) throw new Error(`the graph needs the ${b.role} '${b.name}'`);
      bound.set(b.id, t);
    }
    let runner = this.runners.get(g);
    if (!runner) this.runners.set(g, (runner = new GraphRunner(this.device, g, this.kernels)));
    const spares = this.spares.get(g);
    const into = spares && new Map(g.outputs.flatMap((o) => (spares.has(o.name) ? [[o.buffer, spares.get(o.name)!] as const] : [])));
    const out = await runner.run(bound, this.options.seed, step, into);
    return new Map(g.outputs.map((o) => [o.name, out.get(o.buffer)!]));
  }

  /**
   * Keeps `retired` (by output name) for the next run of `g` to write into. A buffer still in use is not kept,
   * and one retired under two names (two parameters initialised by one zeros node) is kept for one of them.
   */
  private retire(g: GraphManifest, retired: ReadonlyMap<string, DeviceTensor>): void {
    const taken = new Set([...this.params.values(), ...this.state.values(), ...this.ema.values(), ...this.staged.values()]);
    const spares = new Map<string, DeviceTensor>();
    for (const [name, t] of retired) {
      if (taken.has(t)) continue;
      taken.add(t);
      spares.set(name, t);
    }
    this.spares.set(g, spares);
  }

  private entry(name: string): EntryManifest {
    const e = this.program.entries.find((x) => x.name === name);
    if (!e) throw new Error(`model ${this.program.model} has no entry '${name}'`);
    return e;
  }

  /** `data` in the buffer kept for input `name`, rewritten in place when the size matches. */
  private stage(name: string, dtype: string, data: ArrayLike<number>): DeviceTensor {
    const held = this.staged.get(name);
    if (held && held.dtype === dtype && held.size === data.length) {
      this.device.queue.writeBuffer(held.buffer, 0, hostToStorage(dtype, data));
      return held;
    }
    held?.buffer.destroy();
    const t = upload(this.device, dtype, data);
    this.staged.set(name, t);
    return t;
  }

  private scalar(name: string, v: number): DeviceTensor {
    return this.stage(name, "f32", [v]);
  }

  private inputsFor(entry: EntryManifest, data: ReadonlyMap<string, InputTensor>): Map<string, DeviceTensor> {
    const inputs = new Map<string, DeviceTensor>();
    for (const spec of entry.inputs) {
      const t = data.get(spec.name);
      if (!t) throw new Error(`entry ${entry.name} needs the input '${spec.name}'`);
      inputs.set(spec.name, this.stage(spec.name, spec.dtype, t.data));
    }
    for (const h of this.program.hypers) inputs.set(h.name, this.scalar(h.name, this.options.hypers?.[h.name] ?? h.default));
    return inputs;
  }

  /** Runs a plain entry; returns its outputs on the host. */
  async run(name: string, data: ReadonlyMap<string, InputTensor>, step = this.step): Promise<Map<string, HostTensor>> {
    const entry = this.entry(name);
    const inputs = this.inputsFor(entry, data);
    const out = await this.execute(entry, inputs, step, this.emaInUse);
    const specs = new Map(entry.buffers.map((b) => [b.id, b]));
    const host = new Map<string, HostTensor>();
    for (const o of entry.outputs) {
      const spec = specs.get(o.buffer)!;
      host.set(o.name, { dtype: spec.dtype, shape: spec.shape, data: await download(this.device, out.get(o.name)!) });
    }
    this.retire(entry, out);
    return host;
  }

  /** One optimizer step; returns the entry's metrics. */
  async trainStep(name: string, data: ReadonlyMap<string, InputTensor>): Promise<Map<string, number>> {
    const entry = this.entry(name);
    const training = entry.training;
    if (!training) throw new Error(`entry ${name} is not a train entry`);
    this.step += 1;
    const inputs = this.inputsFor(entry, data);
    inputs.set(NAMES.step, this.scalar(NAMES.step, this.step));
    for (const a of training.args) inputs.set(NAMES.arg(a.name), this.scalar(NAMES.arg(a.name), this.options.optimizer?.[a.name] ?? a.default));
    for (const p of training.params)
      for (const s of training.states) {
        const key = NAMES.state(s, p);
        if (!this.state.has(key)) this.state.set(key, upload(this.device, "f32", new Float32Array(this.params.get(p)!.size)));
        inputs.set(key, this.state.get(key)!);
      }
    const out = await this.execute(entry, inputs, this.step);
    // The step's new parameters and state replace the old buffers, into which the next step writes.
    const retired = new Map(entry.results.map((r) => [r, out.get(r)!]));
    for (const p of training.params) {
      retired.set(NAMES.newParam(p), this.params.get(p)!);
      this.params.set(p, out.get(NAMES.newParam(p))!);
      for (const s of training.states) {
        const key = NAMES.state(s, p);
        retired.set(key, this.state.get(key)!);
        this.state.set(key, out.get(key)!);
      }
    }
    const metrics = new Map<string, number>();
    for (const r of entry.results) metrics.set(r, (await download(this.device, out.get(r)!))[0]!);
    this.retire(entry, retired);
    return metrics;
  }

  /** A parameter's current value on the host. */
  async param(name: string): Promise<Float32Array | Int32Array> {
    return download(this.device, this.params.get(name)!);
  }

  async updateEma(decay: number): Promise<void> {
    const inputs = new Map<string, DeviceTensor>([[NAMES.emaDecay, this.scalar(NAMES.emaDecay, decay)]]);
    // The average starts at the parameters it first sees.
    for (const [name, p] of this.params) inputs.set(NAMES.ema(name), this.ema.get(name) ?? p);
    const out = await this.execute(this.program.ema, inputs, this.step);
    const retired = new Map([...this.ema].map(([name, t]) => [NAMES.ema(name), t]));
    for (const name of this.params.keys()) this.ema.set(name, out.get(NAMES.ema(name))!);
    this.retire(this.program.ema, retired);
  }

  useEma(on: boolean): void {
    this.emaInUse = on;
  }

  async exportState(): Promise<TrainingState> {
    const tensors = new Map<string, HostTensor>();
    const spec = new Map(this.program.params.map((p) => [p.name, p]));
    const put = async (key: string, param: string, t: DeviceTensor) => {
      const { dtype, shape } = spec.get(param)!;
      tensors.set(key, { dtype, shape, data: await download(this.device, t) });
    };
    for (const [name, t] of this.params) await put(NAMES.newParam(name), name, t);
    for (const [name, t] of this.ema) await put(NAMES.ema(name), name, t);
    for (const e of this.program.entries)
      for (const p of e.training?.params ?? [])
        for (const s of e.training!.states) {
          const t = this.state.get(NAMES.state(s, p));
          if (t && !tensors.has(NAMES.state(s, p))) await put(NAMES.state(s, p), p, t);
        }
    return { step: this.step, tensors };
  }

  async importState(state: TrainingState): Promise<void> {
    checkState(this.program, state);
    this.dispose();
    for (const [key, t] of state.tensors) {
      const device = upload(this.device, t.dtype, t.data);
      if (key.startsWith("param:")) this.params.set(key.slice("param:".length), device);
      else if (key.startsWith("ema:")) this.ema.set(key.slice("ema:".length), device);
      else this.state.set(key, device);
    }
    this.step = state.step;
  }

  /** Frees every buffer the session holds. */
  dispose(): void {
    const spares = [...this.spares.values()].flatMap((m) => [...m.values()]);
    free([...this.params.values(), ...this.state.values(), ...this.ema.values(), ...this.staged.values(), ...spares], new Set());
    for (const r of this.runners.values()) r.destroy();
    for (const m of [this.params, this.state, this.ema, this.staged, this.spares, this.runners]) m.clear();
  }
}
