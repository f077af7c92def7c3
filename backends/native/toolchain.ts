// The shape of a native target's compiler commands (backends/cuda/toolchain.ts, backends/cpu/toolchain.ts),
// written once for a build directory's Makefile and for runtime/native/compile.ts, which runs them itself.

export interface Command {
  readonly argv: readonly string[];
  /** The file it writes. */
  readonly output: string;
}

export interface BuildCommands {
  /** Independent compilations (run in parallel), then the link. */
  readonly compile: readonly Command[];
  readonly link: Command;
  readonly binary: string;
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
