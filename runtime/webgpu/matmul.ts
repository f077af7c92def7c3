/// <reference types="@webgpu/types" />
// Running the matmul kernel of backends/wgsl/matmul.ts on a device, and tuning its tile per adapter.
import {
  DEFAULT_MATMUL_TILE,
  MATMUL_CANDIDATES,
  PACK_WORKGROUP,
  matmulUniforms,
  matmulWorkgroups,
  packUniforms,
  renderMatmul,
  renderPack,
  textureProblems,
  textureShapes,
  tileName,
  tileProblems,
  type MatmulProblem,
  type MatmulTile,
} from "../../backends/wgsl/matmul.js";
import { createStorageBuffer, readF32, uploadF32, uploadUniform } from "./buffers.js";
import { summarize, type WebGpu } from "./device.js";
import { computePipeline } from "./pipelines.js";

const COMPUTE = 0x4; // GPUShaderStage.COMPUTE (Dawn's Node bindings do not put the flags on globalThis)
const TEXTURE_BINDING = 0x04; // GPUTextureUsage
const STORAGE_BINDING = 0x08;

interface Layouts {
  buffers: GPUPipelineLayout;
  buffersGroup: GPUBindGroupLayout;
  textures: GPUPipelineLayout;
  texturesGroup: GPUBindGroupLayout;
  pack: GPUPipelineLayout;
  packGroup: GPUBindGroupLayout;
}
const layouts = new WeakMap<GPUDevice, Layouts>();

/** The bind group layouts matmul kernels share: 0 uniform dims, 1 A, 2 B (buffers or textures), 3 C. */
function matmulLayouts(device: GPUDevice): Layouts {
  let l = layouts.get(device);
  if (l === undefined) {
    const uniform = { binding: 0, visibility: COMPUTE, buffer: { type: "uniform" as const } };
    const c = { binding: 3, visibility: COMPUTE, buffer: { type: "storage" as const } };
    const buffersGroup = device.createBindGroupLayout({
      label: "matmul (buffers)",
      entries: [
        uniform,
        { binding: 1, visibility: COMPUTE, buffer: { type: "read-only-storage" } },
        { binding: 2, visibility: COMPUTE, buffer: { type: "read-only-storage" } },
        c,
      ],
    });
    const texture = { sampleType: "unfilterable-float" as const, viewDimension: "2d-array" as const };
    const texturesGroup = device.createBindGroupLayout({
      label: "matmul (textures)",
      entries: [uniform, { binding: 1, visibility: COMPUTE, texture }, { binding: 2, visibility: COMPUTE, texture }, c],
    });
    const packGroup = device.createBindGroupLayout({
      label: "pack",
      entries: [
        uniform,
        { binding: 1, visibility: COMPUTE, buffer: { type: "read-only-storage" } },
        {
          binding: 2,
          visibility: COMPUTE,
          storageTexture: { access: "write-only", format: "rgba32float", viewDimension: "2d-array" },
        },
      ],
    });
    const pipelineLayout = (group: GPUBindGroupLayout, label: string) =>
      device.createPipelineLayout({ label, bindGroupLayouts: [group] });
    l = {
      buffers: pipelineLayout(buffersGroup, "matmul (buffers)"),
      buffersGroup,
      textures: pipelineLayout(texturesGroup, "matmul (textures)"),
      texturesGroup,
      pack: pipelineLayout(packGroup, "pack"),
      packGroup,
    };
    layouts.set(device, l);
  }
  return l;
}

/** Whether the vec4 kernel applies: N, K and the batch strides multiples of 4 (texture operands: N and C's stride). */
export function vec4Applies(problem: MatmulProblem, tile?: MatmulTile): boolean {
  const u = matmulUniforms(problem);
  const relevant = tile?.operands === "texture" ? [u[1], u[6]] : [u[1], u[2], u[4], u[5], u[6]];
  return relevant.every((v) => v! % 4 === 0);
}

/** The (cached, asynchronously compiled) pipeline of `tile` with vec4 or scalar buffer access. */
export function matmulPipeline(device: GPUDevice, tile: MatmulTile, vec4: boolean): Promise<GPUComputePipeline> {
  const problems = tileProblems(tile, device.limits);
  if (problems.length > 0) throw new Error(`matmul tile ${tileName(tile)} does not fit this device: ${problems.join("; ")}`);
  const l = matmulLayouts(device);
  return computePipeline(device, {
    code: renderMatmul({ ...tile, vec4 }),
    layout: tile.operands === "texture" ? l.textures : l.buffers,
    label: `matmul ${tileName(tile)} ${vec4 ? "vec4" : "scalar"}`,
  });
}

function packPipeline(device: GPUDevice): Promise<GPUComputePipeline> {
  return computePipeline(device, { code: renderPack(), layout: matmulLayouts(device).pack, label: "pack rgba32float" });
}

/** A matmul bound to its buffers, ready to encode or run any number of times. */
export interface PreparedMatmul {
  /** The tile that runs (texture operands fall back to buffers when the problem exceeds texture limits). */
  readonly tile: MatmulTile;
  readonly vec4: boolean;
  readonly workgroups: readonly [number, number, number];
  /** Records the dispatches (packing the operands first, for texture operands) into a compute pass. */
  encode(pass: GPUComputePassEncoder): void;
  /** Encodes and submits them (await `device.queue.onSubmittedWorkDone()` to wait for the result). */
  submit(): void;
  /** Frees what `prepareMatmul` allocated (uniforms, textures), not A, B, C. */
  destroy(): void;
}

export interface MatmulBuffers {
  a: GPUBuffer;
  b: GPUBuffer;
  c: GPUBuffer;
}

function checkProblem(device: GPUDevice, p: MatmulProblem, workgroups: readonly number[], buffers: MatmulBuffers, vec4: boolean): void {
  for (const [name, v] of Object.entries({ M: p.M, N: p.N, K: p.K, batch: p.batch ?? 1 }))
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** 31) throw new Error(`matmul: ${name} = ${v} is not an integer in [0, 2^31)`);
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups.some((w) => w > max))
    throw new Error(`matmul: ${workgroups.join(" × ")} workgroups exceed maxComputeWorkgroupsPerDimension (${max}); use a larger tile`);
  const u = matmulUniforms(p);
  const batch = u[3]!;
  const last = (stride: number, size: number) => (batch - 1) * stride + size;
  if (Math.max(last(u[4]!, p.M * p.K), last(u[5]!, p.K * p.N), last(u[6]!, p.M * p.N)) >= 2 ** 32)
    throw new Error("matmul: an operand has 2^32 or more elements: 32-bit indexing would overflow");
  if (batch === 0) return;
  for (const [name, elements] of [["A", last(u[4]!, p.M * p.K)], ["B", last(u[5]!, p.K * p.N)], ["C", last(u[6]!, p.M * p.N)]] as const) {
    const needed = Math.max(elements * 4, vec4 ? 16 : 4);
    const size = buffers[name.toLowerCase() as "a" | "b" | "c"].size;
    if (size < needed) throw new Error(`matmul: buffer ${name} has ${size} bytes; ${JSON.stringify(p)} needs ${needed}`);
  }
}

/** Prepares C = A · B for `problem` on `buffers` with `tile` (default `DEFAULT_MATMUL_TILE`). */
export async function prepareMatmul(
  device: GPUDevice,
  problem: MatmulProblem,
  buffers: MatmulBuffers,
  requested: MatmulTile = DEFAULT_MATMUL_TILE,
): Promise<PreparedMatmul> {
  const tile: MatmulTile =
    requested.operands === "texture" && textureProblems(problem, device.limits).length > 0
      ? { ...requested, operands: "buffer" }
      : requested;
  const workgroups = matmulWorkgroups(tile, problem);
  const vec4 = vec4Applies(problem, tile);
  checkProblem(device, problem, workgroups, buffers, vec4);
  const l = matmulLayouts(device);
  const owned: { destroy(): void }[] = [];
  const uniforms = uploadUniform(device, matmulUniforms(problem), "matmul dims");
  owned.push(uniforms);
  const empty = workgroups.some((w) => w === 0);
  const steps: { pipeline: GPUComputePipeline; group: GPUBindGroup; workgroups: [number, number, number] }[] = [];

  if (tile.operands === "texture") {
    const [pipeline, pack] = await Promise.all([matmulPipeline(device, tile, vec4), packPipeline(device)]);
    const shapes = textureShapes(problem);
    const u = matmulUniforms(problem);
    const packed = (src: GPUBuffer, shape: [number, number, number], rows: number, cols: number, stride: number, label: string) => {
      const texture = device.createTexture({
        label,
        size: shape,
        format: "rgba32float",
        usage: TEXTURE_BINDING | STORAGE_BINDING,
      });
      const dims = uploadUniform(device, packUniforms(rows, cols, stride, shape[1]), `${label} dims`);
      owned.push(texture, dims);
      steps.push({
        pipeline: pack,
        group: device.createBindGroup({
          label,
          layout: l.packGroup,
          entries: [
            { binding: 0, resource: { buffer: dims } },
            { binding: 1, resource: { buffer: src } },
            { binding: 2, resource: texture.createView({ dimension: "2d-array" }) },
          ],
        }),
        workgroups: [Math.ceil(shape[0] / PACK_WORKGROUP[0]), Math.ceil(shape[1] / PACK_WORKGROUP[1]), shape[2]],
      });
      return texture.createView({ dimension: "2d-array" });
    };
    const a = packed(buffers.a, shapes.a, problem.M, problem.K, u[4]!, "matmul A texture");
    const b = packed(buffers.b, shapes.b, problem.K, problem.N, u[5]!, "matmul B texture");
    const group = device.createBindGroup({
      label: "matmul (textures)",
      layout: l.texturesGroup,
      entries: [
        { binding: 0, resource: { buffer: uniforms } },
        { binding: 1, resource: a },
        { binding: 2, resource: b },
        { binding: 3, resource: { buffer: buffers.c } },
      ],
    });
    steps.push({ pipeline, group, workgroups });
  } else {
    const pipeline = await matmulPipeline(device, tile, vec4);
    const group = device.createBindGroup({
      label: "matmul (buffers)",
      layout: l.buffersGroup,
      entries: [
        { binding: 0, resource: { buffer: uniforms } },
        { binding: 1, resource: { buffer: buffers.a } },
        { binding: 2, resource: { buffer: buffers.b } },
        { binding: 3, resource: { buffer: buffers.c } },
      ],
    });
    steps.push({ pipeline, group, workgroups });
  }

  const encode = (pass: GPUComputePassEncoder) => {
    if (empty) return;
    for (const step of steps) {
      pass.setPipeline(step.pipeline);
      pass.setBindGroup(0, step.group);
      pass.dispatchWorkgroups(...step.workgroups);
    }
  };
  return {
    tile,
    vec4,
    workgroups,
    encode,
    submit() {
      const encoder = device.createCommandEncoder({ label: "matmul" });
      const pass = encoder.beginComputePass();
      encode(pass);
      pass.end();
      device.queue.submit([encoder.finish()]);
    },
    destroy: () => owned.forEach((o) => o.destroy()),
  };
}

/** C = A · B on the host's arrays (A: batch × M × K, B: batch × K × N), through the device. For tests and tools. */
export async function matmulF32(
  device: GPUDevice,
  a: Float32Array,
  b: Float32Array,
  problem: MatmulProblem,
  tile?: MatmulTile,
): Promise<Float32Array> {
  const batch = problem.batch ?? 1;
  const u = matmulUniforms(problem);
  const cLength = batch === 0 ? 0 : (batch - 1) * u[6]! + problem.M * problem.N;
  const bufs = { a: uploadF32(device, a, "A"), b: uploadF32(device, b, "B"), c: createStorageBuffer(device, cLength * 4, "C") };
  device.pushErrorScope("validation");
  let scoped = false;
  try {
    const mm = await prepareMatmul(device, problem, bufs, tile);
    mm.submit();
    mm.destroy();
    const c = await readF32(device, bufs.c, cLength);
    scoped = true;
    const error = await device.popErrorScope();
    if (error !== null) throw new Error(`matmul: WebGPU validation error: ${error.message}`);
    return c;
  } finally {
    if (!scoped) await device.popErrorScope();
    for (const buf of Object.values(bufs)) buf.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Tuning

export interface TuneTiming {
  tile: MatmulTile;
  name: string;
  /** Median milliseconds per dispatch, or undefined when the tile does not fit or failed (see `error`). */
  ms?: number;
  gflops?: number;
  error?: string;
}

export interface MatmulTuning {
  /** The adapter the tile was tuned on (its description). */
  adapter: string;
  tile: MatmulTile;
  /** The square size timed. */
  size: number;
  /** Every candidate's time, fastest first; empty when the result came from the store. */
  timings: TuneTiming[];
}

/** Somewhere to keep tunings between runs (a JSON file in Node, localStorage in a browser). */
export interface TuningStore {
  get(key: string): MatmulTile | undefined | Promise<MatmulTile | undefined>;
  set(key: string, tile: MatmulTile): void | Promise<void>;
}

export interface TuneOptions {
  /** Square size of the timed problem; default 512 (large enough to fill a GPU, a few ms on llvmpipe's 2 cores). */
  size?: number;
  candidates?: readonly MatmulTile[];
  /** Timed runs per candidate (after one warm-up; candidates over 4× slower than the best warm-up get none);
   * the median counts. Default 3. */
  runs?: number;
  store?: TuningStore;
  /** Tune again even if a tuning is cached. */
  force?: boolean;
}

const tunings = new Map<string, Promise<MatmulTuning>>();

/** The key a tuning is cached and stored under: the adapter's description and the size tuned on. */
export function matmulTuningKey(adapter: string, size: number): string {
  return `matmul f32 ${size}: ${adapter}`;
}

function adapterKey(target: WebGpu | GPUDevice): { device: GPUDevice; adapter: string } {
  if ("device" in target && "adapter" in target) return { device: target.device, adapter: target.adapterInfo.name };
  const device = target as GPUDevice & { adapterInfo?: GPUAdapterInfo };
  return { device, adapter: summarize(device.adapterInfo).name };
}

/**
 * Picks the fastest matmul tile for this adapter by timing each candidate on a `size`² matmul (submit, then
 * `queue.onSubmittedWorkDone()`; no readback). The result is cached per adapter description for the process,
 * and in `options.store` across processes.
 */
export function tuneMatmul(target: WebGpu | GPUDevice, options: TuneOptions = {}): Promise<MatmulTuning> {
  const { device, adapter } = adapterKey(target);
  const size = options.size ?? 512;
  const key = matmulTuningKey(adapter, size);
  let tuning = options.force ? undefined : tunings.get(key);
  if (tuning === undefined) {
    tuning = tune(device, adapter, size, key, options);
    tunings.set(key, tuning);
    tuning.catch(() => tunings.delete(key));
  }
  return tuning;
}

async function tune(device: GPUDevice, adapter: string, size: number, key: string, options: TuneOptions): Promise<MatmulTuning> {
  if (!options.force && options.store) {
    const stored = await options.store.get(key);
    if (stored && tileProblems(stored, device.limits).length === 0) return { adapter, tile: stored, size, timings: [] };
  }
  const runs = options.runs ?? 3;
  const problem = { M: size, N: size, K: size };
  const flops = 2 * size ** 3;
  const data = new Float32Array(size * size).map((_, i) => ((i * 7919) % 13) / 13 - 0.5);
  const bufs = {
    a: uploadF32(device, data, "tune A"),
    b: uploadF32(device, data, "tune B"),
    c: createStorageBuffer(device, size * size * 4, "tune C"),
  };
  const timings: TuneTiming[] = [];
  try {
    const candidates = options.candidates ?? MATMUL_CANDIDATES;
    // Compile every candidate first (in parallel), so compilation does not disturb the timings.
    const prepared = await Promise.all(
      candidates.map(async (tile) => {
        const problems = tileProblems(tile, device.limits);
        if (problems.length > 0) return problems.join("; ");
        try {
          return await prepareMatmul(device, problem, bufs, tile);
        } catch (e) {
          return (e as Error).message;
        }
      }),
    );
    const once = async (mm: PreparedMatmul) => {
      const t0 = performance.now();
      mm.submit();
      await device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    // One warm-up run each; candidates more than 4× slower than the best of them get no further runs. The rest
    // take turns run by run, so a burst of other load on the machine falls on all of them alike.
    const live: { tile: MatmulTile; mm: PreparedMatmul; samples: number[] }[] = [];
    const warm = new Map<MatmulTile, number>();
    for (const [i, tile] of candidates.entries()) {
      const mm = prepared[i]!;
      if (typeof mm === "string") timings.push({ tile, name: tileName(tile), error: mm });
      else {
        warm.set(tile, await once(mm));
        live.push({ tile, mm, samples: [] });
      }
    }
    const bestWarm = Math.min(...warm.values());
    const timed = live.filter((l) => warm.get(l.tile)! <= 4 * bestWarm);
    for (let r = 0; r < runs; r++) for (const l of timed) l.samples.push(await once(l.mm));
    for (const l of live) {
      const samples = l.samples.length > 0 ? l.samples.sort((x, y) => x - y) : [warm.get(l.tile)!];
      const ms = samples[Math.floor(samples.length / 2)]!;
      timings.push({ tile: l.tile, name: tileName(l.tile), ms, gflops: flops / ms / 1e6 });
      l.mm.destroy();
    }
  } finally {
    for (const buf of Object.values(bufs)) buf.destroy();
  }
  const ranked = timings.filter((t) => t.ms !== undefined).sort((x, y) => x.ms! - y.ms!);
  if (ranked.length === 0) throw new Error(`tuneMatmul: no candidate tile runs on '${adapter}': ${timings.map((t) => `${t.name}: ${t.error}`).join("; ")}`);
  const tile = ranked[0]!.tile;
  await options.store?.set(key, tile);
  return { adapter, tile, size, timings: [...ranked, ...timings.filter((t) => t.ms === undefined)] };
}

