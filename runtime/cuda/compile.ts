// Builds a CUDA build directory (backends/cuda/program.ts) with nvcc, or with g++ under emulation, through the
// native targets' cached compile (runtime/native/compile.ts); reads nvcc's refusal of an architecture in words,
// and finds the machine's GPU.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import type { CudaBuild } from "../../backends/cuda/program.js";
import { buildCommands, DEFAULT_ARCH, type Flavour, type Tools } from "../../backends/cuda/toolchain.js";
import { compileNative, defaultCache, mpiFlagsFor, NativeError, type Compiled } from "../native/compile.js";

export { pruneCache, type Compiled } from "../native/compile.js";

/** A failure of the CUDA target the user can act on: no nvcc, no GPU, an unsupported architecture. */
export class CudaError extends NativeError {}

export interface CompileOptions extends Tools {
  readonly flavour: Flavour;
  readonly arch?: string;
  /** Where built programs are cached (default: $TMPDIR/ulc-cuda). */
  readonly cacheDir?: string;
}

/** The architecture of GPU 0 as sm_XY (from nvidia-smi), or undefined when there is no GPU to ask. */
export function detectArch(): string | undefined {
  const r = spawnSync("nvidia-smi", ["--query-gpu=compute_cap", "--format=csv,noheader"], { encoding: "utf8" });
  const m = /^(\d+)\.(\d+)/.exec(r.stdout ?? "");
  return m ? `sm_${m[1]}${m[2]}` : undefined;
}

/**
 * Whether this machine shows an NVIDIA GPU: nvidia-smi lists one (`arch`, what it reported), or the driver lists
 * one under /proc. Checked before a build, so that a machine without one hears so at once instead of after
 * minutes of nvcc; the host runtime's own check (cudaGetDeviceCount) stays the authority.
 */
export function nvidiaGpuVisible(arch = detectArch()): boolean {
  if (arch !== undefined) return true;
  try {
    return readdirSync("/proc/driver/nvidia/gpus").length > 0;
  } catch {
    return false;
  }
}

/** Builds (or finds in the cache) the program of `build`. */
export async function compileCuda(build: CudaBuild, options: CompileOptions): Promise<Compiled> {
  const arch = options.arch ?? DEFAULT_ARCH;
  const { flavour } = options;
  return compileNative(build, {
    commands: buildCommands(flavour, arch, { nvcc: options.nvcc ?? process.env.ULC_NVCC, cxx: options.cxx ?? process.env.ULC_CXX, mpi: mpiFlagsFor(build) }),
    cacheDir: options.cacheDir ?? defaultCache("cuda"),
    flavour,
    missing: () => (flavour === "cuda" ? "install the CUDA toolkit, or point ULC_NVCC at nvcc" : "install g++, or point ULC_CXX at a C++17 compiler"),
    refusal: (output, tool) => {
      const unsupported = /Unsupported gpu architecture '([^']+)'/.exec(output);
      return unsupported ? `nvcc (${tool}) does not support --arch ${arch} (${unsupported[1]}): choose an architecture it lists in \`nvcc --list-gpu-arch\`` : undefined;
    },
    error: CudaError,
  });
}
