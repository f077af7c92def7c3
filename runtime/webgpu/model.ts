/// <reference types="@webgpu/types" />
// What the typed bindings of a built model (`ulc build --target wgsl --emit ts`, backends/ts/bindings.ts) stand
// on. A generated class extends `BoundModel` with one typed method per entry; everything that does not depend on
// the model is here: loading the Program file, checking inputs against the manifest, checkpoints in
// safetensors, and sampling in batches of the bound batch size. Nothing here needs Node, except reading a
// `file:` URL, which only Node asks for.
import { decodeSafetensors, encodeSafetensors } from "../safetensors.js";
import { batchFirstCall, sampleCalls, sampleImages, type Sampler } from "../sampler.js";
import type { HostTensor } from "../session.js";
import { decodeProgramFile, type ProgramFile, type ProgramManifest, type WgslBuild } from "./program.js";
import { WebGpuSession } from "./session.js";

/** A tensor whose shape is in its type: `Tensor<readonly [4, 16]>` holds 64 values, row-major. */
export interface Tensor<S extends readonly number[] = readonly number[], D extends Float32Array | Int32Array = Float32Array> {
  readonly shape: S;
  readonly data: D;
}

/** A tensor of the given shape (the shape's literal type is kept); zeros unless `data` is given. */
export function tensor<const S extends readonly number[]>(shape: S, data?: ArrayLike<number>): Tensor<S> {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data !== undefined && data.length !== size) throw new Error(`a tensor of shape [${shape.join(", ")}] holds ${size} values, not ${data.length}`);
  return { shape, data: data === undefined ? new Float32Array(size) : Float32Array.from(data) };
}

/** Reads a URL: `fetch` in browsers; Node's `fetch` cannot read `file:` URLs, so those are read from disk. */
async function readText(url: URL): Promise<string> {
  if (url.protocol === "file:") {
    // A variable specifier, as in device.ts: browser bundles leave it alone, and browsers never get here.
    const fs = "node:fs/promises";
    const { readFile } = (await import(/* @vite-ignore */ fs)) as { readFile(url: URL, encoding: "utf8"): Promise<string> };
    return readFile(url, "utf8");
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load the Program from ${url.href}: HTTP ${response.status} ${response.statusText}`);
  return response.text();
}

export interface ModelOptions<Hypers = Record<string, number>, Optimizer = Record<string, number>> {
  /** Keys the parameters' initialisation and the entries' randomness; default 0. */
  readonly seed?: number;
  /** Hyperparameters other than the model's defaults. */
  readonly hypers?: Hypers;
  /** Optimizer arguments (learning rate, ...) other than the model's defaults. */
  readonly optimizer?: Optimizer;
  /** The Program itself, instead of the file beside the bindings (for example one compiled in memory). */
  readonly program?: WgslBuild;
}

export interface SampleOptions {
  /** Steps of each diffusion (the prior's, then the decoder's); default 50. */
  readonly steps?: number;
  /** Default "ddpm" (ancestral); "ddim" is deterministic given the starting noise. */
  readonly sampler?: Sampler;
  /** Keys the starting noise; default 0. */
  readonly seed?: number;
  /** Called after each entry call: `done` of `total` calls. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** The base of every generated model class. */
export class BoundModel {
  protected constructor(readonly session: WebGpuSession) {}

  /** Loads the Program (from `url`, unless `options.program` is given) and initialises the parameters. */
  protected static async open(device: GPUDevice, url: URL, options: ModelOptions<object, object>): Promise<WebGpuSession> {
    const build = options.program ?? decodeProgramFile(JSON.parse(await readText(url)) as ProgramFile);
    // The generated option types are interfaces of optional numbers; the session looks them up by name.
    const numbers = (r: object | undefined) => r as Readonly<Record<string, number>> | undefined;
    const hypers = numbers(options.hypers);
    const optimizer = numbers(options.optimizer);
    return WebGpuSession.create(device, build, { seed: options.seed ?? 0, ...(hypers && { hypers }), ...(optimizer && { optimizer }) });
  }

  get manifest(): ProgramManifest {
    return this.session.program;
  }

  /** Optimizer steps taken so far (restored by `loadCheckpoint`). */
  get step(): number {
    return this.session.step;
  }

  /**
   * Replaces the training state with a safetensors checkpoint (as `ulc train` writes or `saveCheckpoint` returns);
   * returns its metadata and whether it keeps the parameters' moving average (for `useEma`).
   */
  async loadCheckpoint(bytes: Uint8Array): Promise<{ metadata: Record<string, string>; ema: boolean }> {
    const { tensors, metadata } = decodeSafetensors(bytes, "the checkpoint");
    // A file of bare parameters (no step in its metadata) starts at step 0.
    const step = metadata.step === undefined ? 0 : Number(metadata.step);
    if (!Number.isInteger(step) || step < 0) throw new Error(`the checkpoint's metadata has step '${metadata.step}', not a step count`);
    await this.session.importState({ step, tensors });
    return { metadata, ema: [...tensors.keys()].some((k) => k.startsWith("ema:")) };
  }

  /** The training state (parameters, optimizer state, moving average) as a safetensors file. */
  async saveCheckpoint(metadata: Record<string, string> = {}): Promise<Uint8Array> {
    const state = await this.session.exportState();
    return encodeSafetensors(state.tensors, { ...metadata, step: String(state.step) });
  }

  /** Folds the parameters into their exponential moving average. */
  updateEma(decay: number): Promise<void> {
    return this.session.updateEma(decay);
  }

  /** Runs entries with the moving average in place of the parameters. */
  useEma(on: boolean): void {
    this.session.useEma(on);
  }

  /** Frees the model's buffers on the device. */
  dispose(): void {
    this.session.dispose();
  }

  /** The entry's inputs as the session takes them, each checked against the manifest (generated callers are typed; casts are not). */
  private inputs(entry: string, values: Readonly<Record<string, Tensor<readonly number[], Float32Array | Int32Array> | number>>): Map<string, HostTensor> {
    const spec = this.manifest.entries.find((e) => e.name === entry)!;
    const out = new Map<string, HostTensor>();
    for (const { name, dtype, shape } of spec.inputs) {
      const v = values[name]!;
      const t = typeof v === "number" ? { shape: [], data: Float32Array.of(v) } : v;
      const size = shape.reduce((a, b) => a * b, 1);
      if (t.shape.join(",") !== shape.join(",") || t.data.length !== size)
        throw new Error(`${entry}: '${name}' must be ${dtype}[${shape.join(", ")}] (${size} values), got shape [${t.shape.join(", ")}] with ${t.data.length} values`);
      out.set(name, { dtype, shape, data: t.data });
    }
    return out;
  }

  /** A result as the generated signature types it: the manifest fixes its shape, which the type only restates. */
  protected shaped<T extends Tensor<readonly number[], Float32Array | Int32Array>>(t: HostTensor | undefined): T {
    return t as unknown as T;
  }

  /** Runs a plain entry; its randomness is keyed by `step` (default: the optimizer step count). */
  protected run(entry: string, values: Readonly<Record<string, Tensor<readonly number[], Float32Array | Int32Array> | number>>, step?: number): Promise<Map<string, HostTensor>> {
    return this.session.run(entry, this.inputs(entry, values), step);
  }

  /** One optimizer step of a train entry; returns its metrics. */
  protected train(entry: string, values: Readonly<Record<string, Tensor<readonly number[], Float32Array | Int32Array> | number>>): Promise<Map<string, number>> {
    return this.session.trainStep(entry, this.inputs(entry, values));
  }

  /**
   * `n` images in [-1, 1] (unclamped), sampled in batches of the bound batch size: the prior's diffusion gives z0,
   * the decoder's diffusion conditioned on z0 gives the image (runtime/sampler.ts). Batch 0 is what
   * `sampleImages` gives for the same seed.
   */
  protected async sampleImages(n: number, options: SampleOptions): Promise<HostTensor> {
    const entries = this.manifest.entries;
    const finish = entries.find((e) => e.name === "decoder_x_hat");
    if (!finish) throw new Error(`model ${this.manifest.model} has no entry 'decoder_x_hat', which sampling needs`);
    if (!Number.isInteger(n) || n < 1) throw new Error(`sample: n must be a positive integer, got ${n}`);
    const [batch, ...image] = finish.inputs[0]!.shape as [number, ...number[]];
    const steps = options.steps ?? 50;
    const perBatch = sampleCalls(steps);
    const batches = Math.ceil(n / batch);
    const size = image.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n * size);
    const sampling = {
      steps,
      sampler: options.sampler ?? "ddpm",
      seed: options.seed ?? 0,
      // Calls are numbered across batches, so `done` is already the overall count.
      onProgress: (done: number) => options.onProgress?.(done, batches * perBatch),
    };
    for (let k = 0; k < batches; k++) {
      // Each batch's calls follow the batch before, so its starting and fresh noise are its own.
      const { images } = await sampleImages(this.session, entries, sampling, batchFirstCall(k, perBatch), perBatch);
      const take = Math.min(batch, n - k * batch);
      data.set(images.data.subarray(0, take * size), k * batch * size);
    }
    return { dtype: "f32", shape: [n, ...image], data };
  }
}
