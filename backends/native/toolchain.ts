// The shape of a native target's compiler commands (backends/cuda/toolchain.ts, backends/cpu/toolchain.ts),
// written once for a build directory's Makefile and for runtime/native/compile.ts, which runs them itself.

export interface Command {
  readonly argv: readonly string[];
  /** The file it writes. */
  readonly output: string;
  /**
   * A translation unit without model code (the host runtime): its object is the same for every model built with
   * the same flags, so runtime/native/compile.ts caches it apart from the programs.
   */
  readonly shared?: boolean;
}

export interface BuildCommands {
  /** Independent compilations (run in parallel), then the link. */
  readonly compile: readonly Command[];
  readonly link: Command;
  readonly binary: string;
}

/**
 * MPI for a data-parallel program (one with a ProgramEntry.parallel): its host runtime is compiled with ULC_MPI
 * and these flags (headers), and linked with MPI's libraries. runtime/native/compile.ts asks mpicc for them.
 */
export interface MpiFlags {
  readonly compile: readonly string[];
  readonly link: readonly string[];
}

/** Whether a Program (or its manifest) is a data-parallel one, whose host runtime links MPI. */
export function isDataParallel(program: { readonly entries: readonly { readonly parallel?: unknown }[] }): boolean {
  return program.entries.some((e) => e.parallel !== undefined);
}

/** The flags as a Makefile has them: variables it sets from mpicc (MPI_MAKE_VARIABLES). */
export const MAKE_MPI: MpiFlags = { compile: ["$(MPI_CFLAGS)"], link: ["$(MPI_LIBS)"] };
export const MPI_MAKE_VARIABLES = ["MPI_CFLAGS = $(shell mpicc --showme:compile)", "MPI_LIBS = $(shell mpicc --showme:link)"];

/** The compile flags a program needs for MPI, if it does. */
export function mpiCompileFlags(mpi: MpiFlags | undefined): string[] {
  return mpi ? ["-DULC_MPI", ...mpi.compile] : [];
}

/** One argument for a POSIX shell (and make's recipes); make variables `$(NAME)` pass through. */
export function quote(arg: string): string {
  return /^([\w@%+=:,./-]|\$\([A-Z_]+\))+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A Makefile rule per command: the link's, then each compilation's (its sources and `headers` as prerequisites). */
export function makeRules(b: BuildCommands, headers: readonly string[]): string[] {
  const sources = (c: Command) => c.argv.filter((a) => /\.(cu|cpp)$/.test(a));
  return [
    `${b.binary}: ${b.link.argv.filter((a) => a.endsWith(".o")).join(" ")}`,
    `\t${b.link.argv.map(quote).join(" ")}`,
    ...b.compile.flatMap((c) => [`${c.output}: ${[...sources(c), ...headers].join(" ")}`, `\t${c.argv.map(quote).join(" ")}`]),
  ];
}
