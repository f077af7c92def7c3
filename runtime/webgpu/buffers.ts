/// <reference types="@webgpu/types" />
// Buffers: upload host data, read results back, and plan which storage buffers a graph's intermediates share.
// The usage and map-mode flags are spelled out here because Dawn's Node bindings do not put `GPUBufferUsage` /
// `GPUMapMode` on globalThis (browsers do).
import type { Lifetime } from "../liveness.js";

export const BufferUsage = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  INDEX: 0x0010,
  VERTEX: 0x0020,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
  INDIRECT: 0x0100,
  QUERY_RESOLVE: 0x0200,
} as const;

export const MapMode = { READ: 0x0001, WRITE: 0x0002 } as const;

/** Storage usage for tensors: readable and writable by kernels, copyable both ways. */
export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/** WebGPU sizes must be multiples of 4, and bindings cannot be empty; 16 bytes at least, so that a buffer can
 * always be bound as an array of vec4s. */
function paddedSize(byteLength: number): number {
  return Math.max(16, Math.ceil(byteLength / 4) * 4);
}

/** A storage buffer of `byteLength` bytes (rounded up to a multiple of 4), zero-filled. */
export function createStorageBuffer(device: GPUDevice, byteLength: number, label?: string): GPUBuffer {
  return device.createBuffer({ label, size: paddedSize(byteLength), usage: STORAGE_USAGE });
}

/** A buffer holding a copy of `data` (storage usage unless `usage` says otherwise). */
export function uploadBuffer(
  device: GPUDevice,
  data: ArrayBufferView,
  usage: number = STORAGE_USAGE,
  label?: string,
): GPUBuffer {
  const buffer = device.createBuffer({ label, size: paddedSize(data.byteLength), usage, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buffer.unmap();
  return buffer;
}

export function uploadF32(device: GPUDevice, data: Float32Array, label?: string): GPUBuffer {
  return uploadBuffer(device, data, STORAGE_USAGE, label);
}

/** A uniform buffer holding `data` (e.g. a Uint32Array of shapes), writable later with `queue.writeBuffer`. */
export function uploadUniform(device: GPUDevice, data: ArrayBufferView, label?: string): GPUBuffer {
  return uploadBuffer(device, data, BufferUsage.UNIFORM | BufferUsage.COPY_DST, label);
}

/** Copies `byteLength` bytes of `buffer` (from `byteOffset`) to the host; waits for the queue's earlier work. */
export async function readBuffer(
  device: GPUDevice,
  buffer: GPUBuffer,
  byteLength: number = buffer.size,
  byteOffset = 0,
): Promise<ArrayBuffer> {
  const size = Math.max(4, Math.ceil(byteLength / 4) * 4);
  const staging = device.createBuffer({ label: "readback", size, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  try {
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MapMode.READ);
    return staging.getMappedRange().slice(0, byteLength);
  } finally {
    staging.destroy();
  }
}

/** The first `length` floats of `buffer` (all of it by default). */
export async function readF32(device: GPUDevice, buffer: GPUBuffer, length: number = buffer.size / 4): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, buffer, length * 4));
}

/** One storage buffer of a graph's plan, and the intermediates it holds one after another. */
export interface PlannedBuffer {
  readonly bytes: number;
  readonly holds: readonly number[];
}

/**
 * Intermediates assigned to as few storage buffers as their lifetimes (runtime/liveness.ts) allow: one buffer
 * holds several whose lifetimes do not overlap. Not one arena with offsets, because WebGPU forbids a dispatch to
 * bind one buffer both read-only and writable, whatever the ranges. In order of first use, an intermediate takes
 * the smallest free buffer that fits it, else the largest free one (which grows), else a new one.
 */
export function planBuffers(lives: ReadonlyMap<number, Lifetime>): PlannedBuffer[] {
  const planned: { bytes: number; holds: number[]; freeAfter: number }[] = [];
  const order = [...lives].sort(([a, x], [b, y]) => x.first - y.first || a - b);
  for (const [id, life] of order) {
    const free = planned.filter((p) => p.freeAfter < life.first);
    const fits = free.filter((p) => p.bytes >= life.bytes).sort((p, q) => p.bytes - q.bytes)[0];
    const chosen = fits ?? free.sort((p, q) => q.bytes - p.bytes)[0];
    if (chosen) {
      chosen.bytes = Math.max(chosen.bytes, life.bytes);
      chosen.holds.push(id);
      chosen.freeAfter = life.last;
    } else planned.push({ bytes: life.bytes, holds: [id], freeAfter: life.last });
  }
  return planned.map(({ bytes, holds }) => ({ bytes, holds }));
}
