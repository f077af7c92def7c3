// A Session for a lowered Program on the chosen target. WebGPU opens the best adapter: a real GPU when there is
// one, Mesa's software Vulkan (lavapipe) otherwise.
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

export async function openSession(program: Program, target: Target, options: OpenOptions): Promise<OpenedSession> {
  if (target === "cuda") throw new Error("the CUDA target is not available in this build yet (issue 5)");
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
