// `ulc check FILE...`: parse and type-check `.ul` files, report diagnostics.
import { resolve } from "node:path";
import { checkFiles } from "../dsl/check.js";
import { diagnosticToJson, renderDiagnostic, sortDiagnostics } from "../dsl/diagnostics.js";
import { displayPath } from "../dsl/loader.js";
import { EXIT, plural, resolveColor } from "./args.js";
import type { CliIo } from "./io.js";

export interface CheckCommandOptions {
  /** Print `{ diagnostics, files }` as JSON on stdout instead of rendered diagnostics on stderr. */
  readonly json?: boolean;
  /** Values for generic dims and ints left open on entries (`--bind B=64`). */
  readonly bind?: Record<string, number>;
  /** `--color` (true), `--no-color` (false), or neither (undefined: decide from the stream and env). */
  readonly color?: boolean;
}

/** Checks already-validated `.ul` paths; returns the exit code (0 clean, 1 with errors). */
export function runCheck(files: readonly string[], options: CheckCommandOptions, io: CliIo): number {
  const bindings = options.bind ?? {};
  // The standard library is found next to the package (dsl/loader.ts: defaultStdRoot).
  const result = checkFiles([...files], { bindings });
  if (result.usageErrors.length > 0) {
    for (const e of result.usageErrors) io.stderr.write(`ulc check: ${e}\n`);
    return EXIT.usage;
  }
  const diagnostics = sortDiagnostics(result.diagnostics);

  if (options.json) {
    // Files as the diagnostics name them: relative to the working directory when inside it.
    const out = { diagnostics: diagnostics.map(diagnosticToJson), files: files.map((f) => displayPath(resolve(f))) };
    io.stdout.write(JSON.stringify(out, null, 2) + "\n");
    return diagnostics.length === 0 ? EXIT.ok : EXIT.errors;
  }

  const color = resolveColor(options.color, io.stderr, io.env);
  for (const d of diagnostics) io.stderr.write(renderDiagnostic(d, { color }) + "\n\n");
  if (diagnostics.length === 0) {
    io.stderr.write(`ok: ${plural(files.length, "file")} checked\n`);
    return EXIT.ok;
  }
  const withErrors = new Set(diagnostics.map((d) => d.span.file.path)).size;
  const summary = `${plural(diagnostics.length, "error")} in ${plural(withErrors, "file")}`;
  io.stderr.write((color ? `\x1b[31;1m${summary}\x1b[0m` : summary) + "\n");
  return EXIT.errors;
}
