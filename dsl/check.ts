// The front end's entry point: load files, parse, check; return every diagnostic in source order.
import { sortDiagnostics, type Diagnostic } from "./diagnostics.js";
import { Checker, type CheckedEntry } from "./checker.js";
import { defaultStdRoot, diskHost, loadProgram, type SourceHost } from "./loader.js";

export type { SourceHost } from "./loader.js";

export interface CheckOptions {
  /** Values for generic dims of models and entries, as given by `--bind B=64`. */
  bindings?: Record<string, number>;
  /** Where files are read from (tests and the fuzzer use an in-memory host). */
  host?: SourceHost;
  /** The folder holding the standard library (`std.layers` is `STDROOT/layers.ul`). */
  stdRoot?: string;
}

export interface CheckResult {
  diagnostics: Diagnostic[];
  /** The entry points of every model that checked, with their input and output types. */
  entries: CheckedEntry[];
}

export function checkFiles(paths: string[], options: CheckOptions = {}): CheckResult {
  const program = loadProgram(paths, options.host ?? diskHost, options.stdRoot ?? defaultStdRoot());
  const checker = new Checker(program, { ...(options.bindings && { bindings: options.bindings }) });
  checker.run();
  return { diagnostics: sortDiagnostics([...program.diagnostics, ...checker.diagnostics.items]), entries: checker.entries };
}
