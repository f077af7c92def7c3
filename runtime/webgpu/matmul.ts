/// <reference types="@webgpu/types" />
// Running the matmul kernel of backends/wgsl/matmul.ts on a device, and tuning its tile per adapter.
import {
  DEFAULT_MATMUL_TILE,
  MATMUL_CANDIDATES,
  matmulUniforms,
  matmulWorkgroups,
  renderMatmul,
  tileName,
  tileProblems,
  type MatmulProblem,
  type MatmulTile,
} from "../../backends/wgsl/matmul.js";
import { createStorageBuffer, readF32, uploadF32, uploadUniform } from "./buffers.js";
import type { WebGpu } from "./device.js";
import { computePipeline } from "./pipelines.js";

const layouts = new WeakMap<GPUDevice, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();

/** The bind group layout every matmul kernel shares: 0 uniform dims, 1 A, 2 B (read-only), 3 C. */
function matmulLayout(device: GPUDevice): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
  let layout = layouts.get(device);
  if (layout === undefined) {
    const COMPUTE = 0x4; // GPUShaderStage.COMPUTE (not on globalThis in Node)
    const group = device.createBindGroupLayout({
      label: "matmul",
      entries: [
        { binding: 0, visibility: COMPUTE, buffer: { type: "uniform" } },
        { binding: 1, visibility: COMPUTE, buffer: { type: "read-only-storage" } },
        { binding: 2, visibility: COMPUTE, buffer: { type: "read-only-storage" } },
        { binding: 3, visibility: COMPUTE, buffer: { type: "storage" } },
      ],
    });
    layout = { group, pipeline: device.createPipelineLayout({ label: "matmul", bindGroupLayouts: [group] }) };
    layouts.set(device, layout);
  }
  return layout;
}

/** Whether the vec4 kernel applies: N, K and the batch strides multiples of 4. */
export function vec4Applies(problem: MatmulProblem): boolean {
  const u = matmulUniforms(problem);
  return [u[1], u[2], u[4], u[5], u[6]].every((v) => v! % 4 === 0);
}

/** The (cached, asynchronously compiled) pipeline of `tile` with vec4 or scalar loads. */
export function matmulPipeline(device: GPUDevice, tile: MatmulTile, vec4: boolean): Promise<GPUComputePipeline> {
  const problems = tileProblems(tile, device.limits);
  if (problems.length > 0) throw new Error(`matmul tile ${tileName(tile)} does not fit this device: ${problems.join("; ")}`);
  return computePipeline(device, {
    code: renderMatmul({ ...tile, vec4 }),
    layout: matmulLayout(device).pipeline,
    label: `matmul ${tileName(tile)} ${vec4 ? "vec4" : "scalar"}`,
  });
}

/** A matmul bound to its buffers, ready to encode or run any number of times. */
export interface PreparedMatmul {
  readonly tile: MatmulTile;
  readonly vec4: boolean;
  readonly workgroups: readonly [number, number, number];
  /** Records the dispatch into a compute pass. */
  encode(pass: GPUComputePassEncoder): void;
  /** Encodes and submits one dispatch (await `device.queue.onSubmittedWorkDone()` to wait for it). */
  submit(): void;
  /** Frees the uniform buffer (not A, B, C). */
  destroy(): void;
}

export interface MatmulBuffers {
  a: GPUBuffer;
  b: GPUBuffer;
  c: GPUBuffer;
}

function checkProblem(device: GPUDevice, p: MatmulProblem, workgroups: readonly number[]): void {
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
}

/** Prepares C = A · B for `problem` on `buffers` with `tile` (default `DEFAULT_MATMUL_TILE`). */
export async function prepareMatmul(
  device: GPUDevice,
  problem: MatmulProblem,
  buffers: MatmulBuffers,
  tile: MatmulTile = DEFAULT_MATMUL_TILE,
): Promise<PreparedMatmul> {
  const workgroups = matmulWorkgroups(tile, problem);
  checkProblem(device, problem, workgroups);
  const vec4 = vec4Applies(problem);
  const pipeline = await matmulPipeline(device, tile, vec4);
  const uniforms = uploadUniform(device, matmulUniforms(problem), "matmul dims");
  const bindGroup = device.createBindGroup({
    label: "matmul",
    layout: matmulLayout(device).group,
    entries: [
      { binding: 0, resource: { buffer: uniforms } },
      { binding: 1, resource: { buffer: buffers.a } },
      { binding: 2, resource: { buffer: buffers.b } },
      { binding: 3, resource: { buffer: buffers.c } },
    ],
  });
  const empty = workgroups.some((w) => w === 0);
  const encode = (pass: GPUComputePassEncoder) => {
    if (empty) return;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...workgroups);
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
    destroy: () => uniforms.destroy(),
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
  const cLength = (batch - 1) * u[6]! + problem.M * problem.N;
  const bufs = { a: uploadF32(device, a, "A"), b: uploadF32(device, b, "B"), c: createStorageBuffer(device, cLength * 4, "C") };
  try {
    const mm = await prepareMatmul(device, problem, bufs, tile);
    mm.submit();
    mm.destroy();
    return await readF32(device, bufs.c, cLength);
  } finally {
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
  /** Timed runs per candidate (after one warm-up); the median counts. Default 3. */
  runs?: number;
  store?: TuningStore;
  /** Tune again even if a tuning is cached. */
  force?: boolean;
}

const tunings = new Map<string, Promise<MatmulTuning>>();

function adapterKey(target: WebGpu | GPUDevice): { device: GPUDevice; adapter: string } {
  if ("adapterInfo" in target && "adapter" in target) return { device: target.device, adapter: target.adapterInfo.name };
  const info = (target as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const adapter = info ? info.description || [info.vendor, info.architecture, info.device].join(" ").trim() : "";
  return { device: target as GPUDevice, adapter: adapter || "unknown adapter" };
}

/**
 * Picks the fastest matmul tile for this adapter by timing each candidate on a `size`² matmul (submit, then
 * `queue.onSubmittedWorkDone()`; no readback). The result is cached per adapter description for the process,
 * and in `options.store` across processes.
 */
export function tuneMatmul(target: WebGpu | GPUDevice, options: TuneOptions = {}): Promise<MatmulTuning> {
  const { device, adapter } = adapterKey(target);
  const size = options.size ?? 512;
  const key = `matmul f32 ${size}: ${adapter}`;
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
    let best = Infinity;
    for (const [i, tile] of candidates.entries()) {
      const mm = prepared[i]!;
      if (typeof mm === "string") {
        timings.push({ tile, name: tileName(tile), error: mm });
        continue;
      }
      const once = async () => {
        const t0 = performance.now();
        mm.submit();
        await device.queue.onSubmittedWorkDone();
        return performance.now() - t0;
      };
      const warm = await once();
      const samples: number[] = [];
      // A candidate far slower than the best so far is not worth more runs.
      if (warm < 3 * best) for (let r = 0; r < runs; r++) samples.push(await once());
      else samples.push(warm);
      samples.sort((x, y) => x - y);
      const ms = samples[Math.floor(samples.length / 2)]!;
      best = Math.min(best, ms);
      timings.push({ tile, name: tileName(tile), ms, gflops: flops / ms / 1e6 });
      mm.destroy();
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

