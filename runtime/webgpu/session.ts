/// <reference types="@webgpu/types" />
// A WGSL Program (manifest + kernels, as `ulc build --target wgsl` writes it) on a GPUDevice: parameters and
// optimizer state live on the device; each entry runs as its kernels (compiled once, cached), and a train step's
// new parameters and state replace the old buffers. The protocol is the reference session's
// (runtime/reference.ts), so the two are compared step by step. Nothing here needs Node: a browser passes the
// manifest and kernel files it fetched.
import { emitWgsl, type EntryManifest, type GraphManifest, type ProgramManifest, type WgslBuild } from "../../backends/wgsl/program.js";
import type { Program } from "../../compiler/lower.js";
import { NAMES } from "../../compiler/names.js";
import type { HostTensor, InputTensor, Session, TrainingState } from "../session.js";
import { download, runGraph, tilingFor, upload, type DeviceTensor } from "./kernels.js";

export interface WebGpuSessionOptions {
  readonly seed: number;
  readonly hypers?: Readonly<Record<string, number>>;
  readonly optimizer?: Readonly<Record<string, number>>;
}

/** Destroys each buffer once, except those still in use. */
function free(tensors: readonly DeviceTensor[], live: ReadonlySet<DeviceTensor>): void {
  for (const t of new Set(tensors)) if (!live.has(t)) t.buffer.destroy();
}

export class WebGpuSession implements Session {
  /** Parameters by name, on the device. */
  private params = new Map<string, DeviceTensor>();
  private readonly state = new Map<string, DeviceTensor>();
  /** The parameters' moving average by parameter name, once `updateEma` has run or a checkpoint held one. */
  private readonly ema = new Map<string, DeviceTensor>();
  private emaInUse = false;
  step = 0;

  private constructor(
    readonly device: GPUDevice,
    readonly program: ProgramManifest,
    private readonly kernels: ReadonlyMap<string, string>,
    readonly options: WebGpuSessionOptions,
  ) {}

  /** Loads a built Program and initialises its parameters on the device with its init graph. */
  static async create(device: GPUDevice, build: WgslBuild, options: WebGpuSessionOptions): Promise<WebGpuSession> {
    const s = new WebGpuSession(device, build.manifest, build.kernels, options);
    const out = await s.execute(build.manifest.init, new Map(), 0);
    for (const o of build.manifest.init.outputs) s.params.set(o.name, out.get(o.name)!);
    return s;
  }

  /** Compiles an in-memory Program (as `ulc build --target wgsl` would, with the device's tiling) and loads it. */
  static fromProgram(device: GPUDevice, program: Program, options: WebGpuSessionOptions): Promise<WebGpuSession> {
    return WebGpuSession.create(device, emitWgsl(program, tilingFor(device)), options);
  }

  /** Runs a graph with named inputs; returns its outputs' buffers and frees every other buffer it made. */
  private async execute(g: GraphManifest, inputs: ReadonlyMap<string, DeviceTensor>, step: number): Promise<Map<string, DeviceTensor>> {
    const buffers = new Map<number, DeviceTensor>();
    for (const b of g.buffers) {
      if (b.role !== "input" && b.role !== "param") continue;
      const t = b.role === "input" ? inputs.get(b.name!) : this.paramFor(b.name!);
      if (!t) throw new Error(`the graph needs the ${b.role} '${b.name}'`);
      buffers.set(b.id, t);
    }
    const created = await runGraph(this.device, g, this.kernels, buffers, this.options.seed, step);
    const outputs = new Map(g.outputs.map((o) => [o.name, buffers.get(o.buffer)!]));
    free(created, new Set(outputs.values()));
    return outputs;
  }

  /** The value a graph reads for a parameter: the moving average while it is in use. */
  private paramFor(name: string): DeviceTensor | undefined {
    return (this.emaInUse && this.ema.get(name)) || this.params.get(name);
  }

  private entry(name: string): EntryManifest {
    const e = this.program.entries.find((x) => x.name === name);
    if (!e) throw new Error(`model ${this.program.model} has no entry '${name}'`);
    return e;
  }

  private scalar(v: number): DeviceTensor {
    return upload(this.device, "f32", [v]);
  }

  private inputsFor(entry: EntryManifest, data: ReadonlyMap<string, InputTensor>): Map<string, DeviceTensor> {
    const inputs = new Map<string, DeviceTensor>();
    for (const spec of entry.inputs) {
      const t = data.get(spec.name);
      if (!t) throw new Error(`entry ${entry.name} needs the input '${spec.name}'`);
      inputs.set(spec.name, upload(this.device, spec.dtype, t.data));
    }
    for (const h of this.program.hypers) inputs.set(h.name, this.scalar(this.options.hypers?.[h.name] ?? h.default));
    return inputs;
  }

  /** Runs a plain entry; returns its outputs on the host. */
  async run(name: string, data: ReadonlyMap<string, InputTensor>, step = this.step): Promise<Map<string, HostTensor>> {
    const entry = this.entry(name);
    const inputs = this.inputsFor(entry, data);
    const out = await this.execute(entry, inputs, step);
    const specs = new Map(entry.buffers.map((b) => [b.id, b]));
    const host = new Map<string, HostTensor>();
    for (const o of entry.outputs) {
      const spec = specs.get(o.buffer)!;
      host.set(o.name, { dtype: spec.dtype, shape: spec.shape, data: await download(this.device, out.get(o.name)!) });
    }
    // Two outputs may be one buffer (x / 1 simplifies to x): free each buffer once, after every read.
    free([...out.values(), ...inputs.values()], new Set());
    return host;
  }

  /** One optimizer step; returns the entry's metrics. */
  async trainStep(name: string, data: ReadonlyMap<string, InputTensor>): Promise<Map<string, number>> {
    const entry = this.entry(name);
    const training = entry.training;
    if (!training) throw new Error(`entry ${name} is not a train entry`);
    this.step += 1;
    const inputs = this.inputsFor(entry, data);
    inputs.set(NAMES.step, this.scalar(this.step));
    for (const a of training.args) inputs.set(NAMES.arg(a.name), this.scalar(this.options.optimizer?.[a.name] ?? a.default));
    const uploaded = [...inputs.values()];
    for (const p of training.params)
      for (const s of training.states) {
        const key = NAMES.state(s, p);
        if (!this.state.has(key)) this.state.set(key, upload(this.device, "f32", new Float32Array(this.params.get(p)!.size)));
        inputs.set(key, this.state.get(key)!);
      }
    const out = await this.execute(entry, inputs, this.step);
    // The step's new parameters and state replace the old buffers, which are freed.
    const retired = new Set<DeviceTensor>();
    for (const p of training.params) {
      retired.add(this.params.get(p)!);
      this.params.set(p, out.get(NAMES.newParam(p))!);
      for (const s of training.states) {
        const key = NAMES.state(s, p);
        retired.add(this.state.get(key)!);
        this.state.set(key, out.get(key)!);
      }
    }
    const metrics = new Map<string, number>();
    for (const r of entry.results) metrics.set(r, (await download(this.device, out.get(r)!))[0]!);
    const live = new Set([...this.params.values(), ...this.state.values()]);
    free([...retired, ...uploaded, ...entry.results.map((r) => out.get(r)!)], live);
    return metrics;
  }

  /** A parameter's current value on the host. */
  async param(name: string): Promise<Float32Array | Int32Array> {
    return download(this.device, this.params.get(name)!);
  }

  async updateEma(decay: number): Promise<void> {
    const inputs = new Map<string, DeviceTensor>([[NAMES.emaDecay, this.scalar(decay)]]);
    // The average starts at the parameters it first sees.
    for (const [name, p] of this.params) inputs.set(NAMES.ema(name), this.ema.get(name) ?? p);
    const out = await this.execute(this.program.ema, inputs, this.step);
    const retired = [...this.ema.values(), inputs.get(NAMES.emaDecay)!];
    for (const name of this.params.keys()) this.ema.set(name, out.get(NAMES.ema(name))!);
    free(retired, new Set());
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
    const spec = new Map(this.program.params.map((p) => [p.name, p]));
    const stateKeys = new Map<string, string>();
    for (const e of this.program.entries) for (const p of e.training?.params ?? []) for (const s of e.training!.states) stateKeys.set(NAMES.state(s, p), p);
    const owner = (key: string): string | undefined => {
      if (key.startsWith("param:")) return key.slice("param:".length);
      if (key.startsWith("ema:")) return key.slice("ema:".length);
      return stateKeys.get(key);
    };
    for (const [key, t] of state.tensors) {
      const p = owner(key);
      const want = p === undefined ? undefined : spec.get(p);
      if (!want) throw new Error(`the state holds '${key}', which model ${this.program.model} does not have`);
      if (t.dtype !== want.dtype || t.shape.join(",") !== want.shape.join(","))
        throw new Error(`'${key}' is ${t.dtype}[${t.shape.join(", ")}], but model ${this.program.model} declares ${want.dtype}[${want.shape.join(", ")}]`);
    }
    const missing = this.program.params.filter((p) => !state.tensors.has(NAMES.newParam(p.name)));
    if (missing.length > 0) throw new Error(`the state lacks ${missing.length} parameter(s) of model ${this.program.model}, first '${missing[0]!.name}'`);
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
    free([...this.params.values(), ...this.state.values(), ...this.ema.values()], new Set());
    this.params.clear();
    this.state.clear();
    this.ema.clear();
  }
}
