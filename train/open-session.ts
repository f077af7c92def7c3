// A Session for a lowered Program on the chosen target:
//  - cpu: the program built with g++ for this machine's processor (runtime/cpu; cached by content);
//  - cuda: built with nvcc for the GPU it finds (runtime/cuda); ULC_CUDA=emulated builds it with g++ and runs it
//    on the CPU instead (slow: for tests);
//  - webgpu: the best adapter, a real GPU when there is one, Mesa's software Vulkan (lavapipe) otherwise;
//  - auto: a real GPU when there is one (CUDA, else a WebGPU adapter that is not a software one), the CPU
//    otherwise.
// Their errors (no compiler, no GPU, out of memory) say so in words.
import type { Program } from "../compiler/lower.js";
import type { JobInfo } from "../runtime/native/host.js";
import type { Session } from "../runtime/session.js";
import type { Target, TargetChoice } from "./run.js";

export interface OpenOptions {
  readonly seed: number;
  readonly hypers?: Readonly<Record<string, number>>;
  readonly optimizer?: Readonly<Record<string, number>>;
}

export interface OpenedSession {
  readonly session: Session;
  /** The target it runs on (`auto` resolved). */
  readonly target: Target;
  /** The device in words, for the log. */
  readonly device: string;
  /** A native target's job: the ranks of a data-parallel program started by mpirun (else one). */
  readonly job?: JobInfo;
  close(): void;
}

/** Why a target cannot run here, in words (the caller reports it instead of a stack trace). */
export class DeviceUnavailableError extends Error {}

/** Error classes whose message already says what the device lacks. */
async function isDeviceError(e: unknown): Promise<boolean> {
  const { WebGpuUnavailableError, WebGpuRequirementError } = await import("../runtime/webgpu/device.js");
  const { NativeError } = await import("../runtime/native/compile.js");
  const { TargetLimitError } = await import("../backends/program.js");
  return e instanceof WebGpuUnavailableError || e instanceof WebGpuRequirementError || e instanceof NativeError || e instanceof TargetLimitError;
}

/**
 * Whether WebGPU could find a hardware adapter here. On Linux a GPU has a render node (/dev/dri/renderD*); without
 * one, opening Dawn would find at best a software adapter, after a second of start-up and its warnings.
 */
async function mayHaveGpu(): Promise<boolean> {
  if (process.platform !== "linux") return true;
  const { readdirSync } = await import("node:fs");
  try {
    return readdirSync("/dev/dri").some((f) => f.startsWith("renderD"));
  } catch {
    return false;
  }
}

/** `auto` as a target: CUDA where an NVIDIA GPU and nvcc are, else WebGPU on a hardware adapter, else the CPU. */
export async function resolveTarget(choice: TargetChoice): Promise<Target> {
  if (choice !== "auto") return choice;
  const { spawnSync } = await import("node:child_process");
  const { nvidiaGpuVisible } = await import("../runtime/cuda/compile.js");
  if (nvidiaGpuVisible() && spawnSync(process.env.ULC_NVCC ?? "nvcc", ["--version"]).status === 0) return "cuda";
  if (!(await mayHaveGpu())) return "cpu";
  const { openDevice } = await import("../runtime/webgpu/device.js");
  try {
    const gpu = await openDevice({ label: "ulc probe" });
    gpu.device.destroy();
    if (!gpu.adapterInfo.isFallbackAdapter) return "webgpu";
  } catch {
    // No WebGPU here at all: the CPU it is.
  }
  return "cpu";
}

/** A device that cannot run the target is reported as a DeviceUnavailableError. */
export async function openSession(program: Program, choice: TargetChoice, options: OpenOptions): Promise<OpenedSession> {
  const target = await resolveTarget(choice);
  try {
    return await openTarget(program, target, options);
  } catch (e) {
    if (await isDeviceError(e)) throw new DeviceUnavailableError(`the ${target} target cannot run here: ${(e as Error).message}`);
    throw e;
  }
}

async function openTarget(program: Program, target: Target, options: OpenOptions): Promise<OpenedSession> {
  if (target === "cpu" || target === "cuda") {
    const session =
      target === "cpu"
        ? await (await import("../runtime/cpu/session.js")).openCpuSession(program, options)
        : await (await import("../runtime/cuda/session.js")).openCudaSession(program, { ...options, flavour: process.env.ULC_CUDA === "emulated" ? "emulated" : "cuda" });
    return { session, target, device: `${target === "cpu" ? "" : "CUDA: "}${session.device.device}`, job: session.job, close: () => session.dispose() };
  }
  const { openDevice } = await import("../runtime/webgpu/device.js");
  const { sessionFromProgram } = await import("../runtime/webgpu/compile.js");
  const gpu = await openDevice({ label: `ulc ${program.model}` });
  const session = await sessionFromProgram(gpu.device, program, options);
  return {
    session,
    target,
    device: `WebGPU: ${gpu.adapterInfo.name}${gpu.adapterInfo.isFallbackAdapter ? " (software)" : ""}`,
    close: () => {
      session.dispose();
      gpu.device.destroy();
    },
  };
}
