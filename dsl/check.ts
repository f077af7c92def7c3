// The front end's entry point: load files, parse, check; return every diagnostic in source order.
import { sortDiagnostics, type Diagnostic } from "./diagnostics.js";
import { Checker, type CheckedEntry } from "./checker.js";
import type { GenericKind } from "./ast.js";
import { defaultStdRoot, diskHost, loadProgram, stdDeclarations, type LoadResult, type LoadedFile, type SourceHost } from "./loader.js";
import type { CheckObserver } from "./values.js";

export type { SourceHost } from "./loader.js";

export interface CheckOptions {
  /** Values for generic dims of models and entries, as given by `--bind B=64`. */
  bindings?: Record<string, number>;
  /** Where files are read from (tests and the fuzzer use an in-memory host). */
  host?: SourceHost;
  /** The folder holding the standard library (`std.layers` is `STDROOT/layers.ul`). */
  stdRoot?: string;
  /** Told every value the checker computes and every name it resolves (the language server's hover and definitions). */
  observer?: CheckObserver;
}

export interface CheckResult {
  /** Problems with the request itself, which have no place in a source file: an unreadable file, a bad binding. */
  usageErrors: string[];
  diagnostics: Diagnostic[];
  /** The entry points of every model that checked, with their input and output types. */
  entries: CheckedEntry[];
  /** Every file read, by absolute path, with its AST and resolved imports. */
  files: ReadonlyMap<string, LoadedFile>;
}

export function checkFiles(paths: string[], options: CheckOptions = {}): CheckResult {
  const host = options.host ?? diskHost;
  const stdRoot = options.stdRoot ?? defaultStdRoot();
  const program = loadProgram(paths, host, stdRoot);
  const usageErrors = program.roots.filter((r) => !program.files.has(r)).map((r) => `cannot read ${r}`);
  usageErrors.push(...bindingErrors(program, options.bindings ?? {}));
  if (usageErrors.length > 0) return { usageErrors, diagnostics: sortDiagnostics(program.diagnostics), entries: [], files: program.files };
  let std: Map<string, string> | undefined;
  const stdNames = () => (std ??= stdDeclarations(host, stdRoot)); // read only when a name is unknown
  const checker = new Checker(program, { ...(options.bindings && { bindings: options.bindings }), stdNames, ...(options.observer && { observer: options.observer }) });
  checker.run();
  return { usageErrors, diagnostics: sortDiagnostics([...program.diagnostics, ...checker.diagnostics.items]), entries: checker.entries, files: program.files };
}

/** A binding must name a generic parameter of a model or an entry, and a dim must be at least 1. */
function bindingErrors(program: LoadResult, bindings: Record<string, number>): string[] {
  const kinds = new Map<string, GenericKind>();
  for (const f of program.files.values())
    for (const d of f.ast?.decls ?? []) {
      if (d.kind !== "model") continue;
      for (const g of d.generics) kinds.set(g.name.name, g.kind);
      for (const m of d.members) if (m.kind === "entry") for (const g of m.generics) kinds.set(g.name.name, g.kind);
    }
  const errors: string[] = [];
  for (const [name, value] of Object.entries(bindings)) {
    const kind = kinds.get(name);
    if (!kind) errors.push(`--bind ${name}=${value}: no model or entry has a generic parameter '${name}'${kinds.size ? ` (they have: ${[...kinds.keys()].join(", ")})` : ""}`);
    else if (kind === "dim" && value < 1) errors.push(`--bind ${name}=${value}: '${name}' is a dim, so it must be at least 1`);
    else if (kind !== "dim" && kind !== "int") errors.push(`--bind ${name}=${value}: '${name}' is a ${kind} parameter; only dims and ints can be bound`);
  }
  return errors;
}
