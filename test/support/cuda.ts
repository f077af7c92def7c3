// The CUDA target as the native suites (./native.ts) run it: emulated on the CPU, or on a GPU.
import type { Flavour } from "../../backends/cuda/toolchain.js";
import { openCudaSession } from "../../runtime/cuda/session.js";
import type { NativeTarget } from "./native.js";

export function cudaTarget(flavour: Flavour): NativeTarget {
  return {
    name: flavour === "cuda" ? "CUDA" : "emulated CUDA",
    open: (program, seed) => openCudaSession(program, { seed, flavour }),
    outOfMemory: /out of device memory: the arena needs 1073741824\.\d MiB .* the GPU has [\d.]+ MiB free of [\d.]+ MiB: try a smaller batch/,
    precision: "tf32",
  };
}
