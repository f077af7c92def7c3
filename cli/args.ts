// Argument helpers shared by the ulc subcommands: `--bind NAME=INT`, source-file checks, colour choice,
// and small wording helpers. Nothing here knows about commander beyond InvalidArgumentError, so later
// subcommands (build, train, sample, eval, gradcheck) reuse the same parsing and the same messages.
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { InvalidArgumentError } from "commander";

/** Exit codes of every ulc subcommand. */
export const EXIT = {
  /** Success: no diagnostics. */
  ok: 0,
  /** The input has errors (diagnostics were reported). */
  errors: 1,
  /** Usage error: unknown flag, missing or unreadable file, malformed option value. */
  usage: 2,
  /** A bug in ulc itself (an exception escaped the compiler). */
  internal: 3,
  /** Training stopped on a non-finite loss (the last good checkpoint is kept). */
  diverged: 4,
  /** The target cannot run here: no WebGPU adapter, no nvcc or GPU, a missing feature, out of device memory. */
  device: 5,
} as const;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INT = /^[+-]?[0-9]+$/;

export interface Binding {
  readonly name: string;
  readonly value: number;
}

/**
 * Parses one `NAME=INT` binding of a generic dim or int (`B=64`). Throws an Error whose message says what
 * is wrong with the text; `collectBinding` turns that into commander's InvalidArgumentError.
 */
export function parseBinding(text: string): Binding {
  const eq = text.indexOf("=");
  if (eq < 0) throw new Error(`expected NAME=INT (for example B=64), got '${text}'`);
  const name = text.slice(0, eq);
  const raw = text.slice(eq + 1);
  if (name === "") throw new Error(`the name before '=' is missing (expected NAME=INT, for example B=64)`);
  if (!NAME.test(name)) throw new Error(`'${name}' is not a valid name (letters, digits and '_', not starting with a digit)`);
  if (raw === "") throw new Error(`the value of ${name} is missing (expected an integer, for example ${name}=64)`);
  if (!INT.test(raw)) throw new Error(`the value of ${name} must be an integer, got '${raw}'`);
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new Error(`the value of ${name} is too large: ${raw}`);
  return { name, value };
}

/**
 * A commander option parser for a repeatable `--bind NAME=INT`: accumulates into a fresh record and rejects
 * a name bound twice.
 */
export function collectBinding(text: string, previous: Record<string, number> | undefined): Record<string, number> {
  let b: Binding;
  try {
    b = parseBinding(text);
  } catch (e) {
    const m = (e as Error).message; // commander prints it after "... is invalid." so it starts a sentence
    throw new InvalidArgumentError(m.charAt(0).toUpperCase() + m.slice(1) + ".");
  }
  const acc = { ...(previous ?? {}) };
  if (Object.prototype.hasOwnProperty.call(acc, b.name)) {
    throw new InvalidArgumentError(`${b.name} is bound twice (${b.name}=${acc[b.name]} and ${b.name}=${b.value}).`);
  }
  // defineProperty, not `acc[name] =`: a binding named __proto__ must stay an ordinary entry.
  Object.defineProperty(acc, b.name, { value: b.value, enumerable: true, writable: true, configurable: true });
  return acc;
}

/** A commander option parser for a repeatable `--set NAME=NUMBER` (hyperparameter overrides). */
export function collectSetting(text: string, previous: Record<string, number> | undefined): Record<string, number> {
  const eq = text.indexOf("=");
  const name = text.slice(0, eq);
  const raw = text.slice(eq + 1);
  if (eq < 0 || !NAME.test(name)) throw new InvalidArgumentError(`Expected NAME=NUMBER (for example loss_factor=1.5), got '${text}'.`);
  const value = Number(raw);
  if (raw.trim() === "" || Number.isNaN(value)) throw new InvalidArgumentError(`The value of ${name} must be a number, got '${raw}'.`);
  const acc = { ...(previous ?? {}) };
  if (Object.prototype.hasOwnProperty.call(acc, name)) throw new InvalidArgumentError(`${name} is set twice.`);
  Object.defineProperty(acc, name, { value, enumerable: true, writable: true, configurable: true });
  return acc;
}

/** Minimal file-system view used to validate source arguments (injectable for tests). */
export interface FileProbe {
  kind(path: string): "file" | "directory" | "other" | "missing";
}

export const nodeFileProbe: FileProbe = {
  kind(path) {
    try {
      const s = statSync(path);
      return s.isFile() ? "file" : s.isDirectory() ? "directory" : "other";
    } catch {
      return "missing";
    }
  },
};

/**
 * Checks that each path names an existing `.ul` file. Returns the problems, one message per bad path
 * (empty when all are fine), and the good paths in their original order, without repeats (`a.ul` and `./a.ul`
 * are one file).
 */
export function validateSourceFiles(paths: readonly string[], probe: FileProbe = nodeFileProbe): { files: string[]; problems: string[] } {
  const files: string[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    const key = resolve(p);
    if (seen.has(key)) continue;
    seen.add(key);
    const kind = probe.kind(p);
    if (kind === "missing") problems.push(`file not found: ${p}`);
    else if (kind === "directory") problems.push(`${p} is a directory, not a .ul file`);
    else if (kind === "other") problems.push(`${p} is not a regular file`);
    else if (!p.endsWith(".ul")) problems.push(`${p} is not a .ul file (expected a name ending in .ul)`);
    else files.push(p);
  }
  return { files, problems };
}

/** Environment variables that matter for colour. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Whether to colour output written to `stream`: an explicit `--color`/`--no-color` wins; then NO_COLOR
 * (any non-empty value) turns colour off and FORCE_COLOR (other than 0/false) turns it on; otherwise colour
 * only on a TTY whose TERM is not `dumb`.
 */
export function resolveColor(flag: boolean | undefined, stream: { isTTY?: boolean }, env: Env): boolean {
  if (flag !== undefined) return flag;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== "0" && force.toLowerCase() !== "false";
  return stream.isTTY === true && env.TERM !== "dumb";
}

/** `1 error`, `3 errors`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
