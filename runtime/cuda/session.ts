// A Program on the CUDA target: built with nvcc for the GPU found here (or with g++ and CUDA emulated on the
// CPU, for tests), cached by content, and run by the native session (runtime/native/session.ts).
import { emitCuda } from "../../backends/cuda/program.js";
import { DEFAULT_ARCH, type Flavour } from "../../backends/cuda/toolchain.js";
import type { Program } from "../../compiler/lower.js";
import { NativeSession, type NativeSessionOptions } from "../native/session.js";
import { compileCuda, CudaError, detectArch, nvidiaGpuVisible } from "./compile.js";

export { CudaError } from "./compile.js";

export interface CudaSessionOptions extends NativeSessionOptions {
  /** "cuda": nvcc and a GPU (the default); "emulated": g++ and the CPU. */
  readonly flavour?: Flavour;
  /** The GPU architecture to build for (default: GPU 0's, else sm_90). */
  readonly arch?: string;
  /** Where built programs are cached. */
  readonly cacheDir?: string;
}

/** Builds the program (cached), starts it, and initialises the parameters with the init graph. */
export async function openCudaSession(program: Program, options: CudaSessionOptions): Promise<NativeSession> {
  const flavour = options.flavour ?? "cuda";
  const detected = flavour === "cuda" ? detectArch() : undefined;
  if (flavour === "cuda" && !nvidiaGpuVisible(detected))
    throw new CudaError("no NVIDIA GPU here (nvidia-smi lists none, and the driver shows none in /proc/driver/nvidia/gpus): use --target cpu or webgpu, or ULC_CUDA=emulated to run the CUDA build on the CPU");
  const arch = options.arch ?? detected ?? DEFAULT_ARCH;
  const build = emitCuda(program, { arch });
  const compiled = await compileCuda(build, { flavour, arch, ...(options.cacheDir !== undefined && { cacheDir: options.cacheDir }) });
  return NativeSession.start(compiled.binary, compiled.dir, build.manifest, options);
}
