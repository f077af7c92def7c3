// A Session for a lowered Program on the chosen target. WebGPU opens the best adapter: a real GPU when there is
// one, Mesa's software Vulkan (lavapipe) otherwise. CUDA builds the program with nvcc (cached) and drives its
// host runtime; its errors (no nvcc, no GPU, out of memory) say so in words. CUDA builds the program with nvcc for the GPU it finds
// (runtime/cuda); ULC_CUDA=emulated builds it with g++ and runs it on the CPU instead (slow: for tests).
import type { Program } from "../compiler/lower.js";
import type { Session } from "../runtime/session.js";
import { openDevice } from "../runtime/webgpu/device.js";
import { WebGpuSession } from "../runtime/webgpu/session.js";
import type { Target } from "./run.js";

export interface OpenOptions {
  readonly seed: number;
  readonly hypers?: Readonly<Record<string, number>>;
  readonly optimizer?: Readonly<Record<string, number>>;
}

export interface OpenedSession {
  readonly session: Session;
  /** The device in words, for the log. */
  readonly device: string;
  close(): void;
}

/** Why a target cannot run here, in words (the caller reports it instead of a stack trace). */
export class DeviceUnavailableError extends Error {}

/** Error classes whose message already says what the device lacks. */
async function isDeviceError(e: unknown): Promise<boolean> {
  const { WebGpuUnavailableError, WebGpuRequirementError } = await import("../runtime/webgpu/device.js");
  const { CudaError } = await import("../runtime/cuda/compile.js");
  return e instanceof WebGpuUnavailableError || e instanceof WebGpuRequirementError || e instanceof CudaError;
}

/** A device that cannot run the target is reported as a DeviceUnavailableError. */
export async function openSession(program: Program, target: Target, options: OpenOptions): Promise<OpenedSession> {
  try {
    return await openTarget(program, target, options);
  } catch (e) {
    if (await isDeviceError(e)) throw new DeviceUnavailableError(`the ${target} target cannot run here: ${(e as Error).message}`);
    throw e;
  }
}

async function openTarget(program: Program, target: Target, options: OpenOptions): Promise<OpenedSession> {
  if (target === "cuda") {
    const { CudaSession } = await import("../runtime/cuda/session.js");
    const session = await CudaSession.fromProgram(program, { ...options, flavour: process.env.ULC_CUDA === "emulated" ? "emulated" : "cuda" });
    return { session, device: `CUDA: ${session.device.device}`, close: () => session.dispose() };
  }
  const gpu = await openDevice({ label: `ulc ${program.model}` });
  const session = await WebGpuSession.fromProgram(gpu.device, program, options);
  return {
    session,
    device: `WebGPU: ${gpu.adapterInfo.name}${gpu.adapterInfo.isFallbackAdapter ? " (software)" : ""}`,
    close: () => {
      session.dispose();
      gpu.device.destroy();
    },
  };
}
