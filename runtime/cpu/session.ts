// A Program on the CPU target: built with g++ (OpenMP, oneDNN) for this machine's processor, cached by
// content, and run by the native session (runtime/native/session.ts).
import { emitCpu } from "../../backends/cpu/program.js";
import { cpuCommands } from "../../backends/cpu/toolchain.js";
import type { Program } from "../../compiler/lower.js";
import { compileNative, defaultCache, mpiFlagsFor, NativeError } from "../native/compile.js";
import { NativeSession, type NativeSessionOptions } from "../native/session.js";

/** A failure of the CPU target the user can act on: no C++ compiler, no oneDNN. */
export class CpuError extends NativeError {}

export interface CpuSessionOptions extends NativeSessionOptions {
  /** Where built programs are cached (default: $TMPDIR/ulc-cpu). */
  readonly cacheDir?: string;
  /** The C++ compiler (default: $ULC_CXX, else g++). */
  readonly cxx?: string;
}

const SETUP = "scripts/setup-cpu.sh installs both on Debian";

/** Builds the program (cached), starts it, and initialises the parameters with the init graph. */
export async function openCpuSession(program: Program, options: CpuSessionOptions): Promise<NativeSession> {
  const build = emitCpu(program);
  const compiled = await compileNative(build, {
    commands: cpuCommands(options.cxx ?? process.env.ULC_CXX, mpiFlagsFor(build)),
    cacheDir: options.cacheDir ?? defaultCache("cpu"),
    flavour: "cpu",
    missing: () => `install Debian's g++ (and libdnnl-dev for oneDNN; ${SETUP}), or point ULC_CXX at a C++17 compiler`,
    refusal: (output) => (/dnnl\.hpp: No such file|cannot find -ldnnl/.test(output) ? `oneDNN is not installed: install Debian's libdnnl-dev (${SETUP})` : undefined),
    error: CpuError,
  });
  return NativeSession.start(compiled.binary, compiled.dir, build.manifest, options);
}
