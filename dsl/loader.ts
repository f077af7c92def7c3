// Loads a set of .ul files and everything they import: std.NAME from the standard library folder, strings
// relative to the importing file. Reports missing files and import cycles at the import that causes them.
// Imports stay inside the project: the standard library and the folders of the files named on the command line
// (and below them), and the folders ULC_IMPORT_PATH lists (separated as PATH is); a file elsewhere, or one that
// is not .ul source, is refused before it is read, so a diagnostic never echoes another file's contents.
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FileAst, ImportDecl } from "./ast.js";
import { diagnostic, type Diagnostic } from "./diagnostics.js";
import { parseFile } from "./parse.js";
import { SourceFile } from "./source.js";

export interface SourceHost {
  /** The file's text, or undefined when it does not exist. */
  readFile(path: string): string | undefined;
  /** The names of a folder's entries; without it, no diagnostic names the std module a forgotten import is in. */
  listFolder?(path: string): string[];
}

/** A source file whose bytes are not UTF-8 text; `text` is them decoded with U+FFFD for each bad sequence. */
export class SourceEncodingError extends Error {
  constructor(readonly text: string) {
    super("not UTF-8 text");
  }
}

const BOM = [0xef, 0xbb, 0xbf];

export const diskHost: SourceHost = {
  readFile(p) {
    let bytes: Buffer;
    try {
      if (!statSync(p).isFile()) return undefined;
      bytes = readFileSync(p);
    } catch {
      return undefined;
    }
    // A byte-order mark, as some editors write one, is not part of the text.
    const text = bytes.subarray(BOM.every((b, i) => bytes[i] === b) ? 3 : 0);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(text);
    } catch {
      throw new SourceEncodingError(new TextDecoder("utf-8").decode(text));
    }
  },
  listFolder(p) {
    try {
      return readdirSync(p);
    } catch {
      return [];
    }
  },
};

/** models/std next to this package, whether running from source or from dist/. */
export function defaultStdRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, "models", "std");
    if (diskHost.readFile(path.join(candidate, "layers.ul")) !== undefined) return candidate;
    dir = path.dirname(dir);
  }
  return path.resolve("models", "std");
}

/** The std module that declares each name (`Linear` -> `layers`), for the import to add when a name is unknown. */
export function stdDeclarations(host: SourceHost, stdRoot: string): Map<string, string> {
  const modules = new Map<string, string>();
  for (const entry of (host.listFolder?.(stdRoot) ?? []).sort()) {
    if (!entry.endsWith(".ul")) continue;
    const p = path.join(stdRoot, entry);
    const text = host.readFile(p);
    const ast = text === undefined ? undefined : parseFile(new SourceFile(p, text)).ast;
    for (const d of ast?.decls ?? []) if (d.kind !== "import" && !modules.has(d.name.name)) modules.set(d.name.name, entry.slice(0, -".ul".length));
  }
  return modules;
}

export interface LoadedFile {
  readonly path: string;
  readonly source: SourceFile;
  readonly ast?: FileAst;
  /** Resolved target path of each import declaration that was found. */
  readonly imports: Map<ImportDecl, string>;
}

export interface LoadResult {
  readonly files: Map<string, LoadedFile>;
  readonly roots: string[];
  readonly diagnostics: Diagnostic[];
}

export function resolveImport(decl: ImportDecl, fromFile: string, stdRoot: string): string {
  if (decl.source.kind === "file") return path.resolve(path.dirname(fromFile), decl.source.path);
  const [head, ...rest] = decl.source.path;
  const base = head === "std" ? stdRoot : path.dirname(fromFile);
  const parts = head === "std" ? rest : decl.source.path;
  return path.join(base, ...parts) + ".ul";
}

export function loadProgram(paths: readonly string[], host: SourceHost, stdRoot: string): LoadResult {
  const files = new Map<string, LoadedFile>();
  const diagnostics: Diagnostic[] = [];
  const roots = paths.map((p) => path.resolve(p));
  const widened = (process.env.ULC_IMPORT_PATH ?? "").split(path.delimiter).filter((d) => d !== "");
  const project = [stdRoot, ...roots.map((r) => path.dirname(r)), ...widened].map((d) => path.resolve(d));
  const inProject = (p: string) => project.some((dir) => {
    const rel = path.relative(dir, p);
    return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
  });

  const load = (p: string): LoadedFile | undefined => {
    const existing = files.get(p);
    if (existing) return existing;
    let text: string | undefined;
    try {
      text = host.readFile(p);
    } catch (e) {
      if (!(e instanceof SourceEncodingError)) throw e;
      // Reported where the first bad byte is, and not parsed: the rest would be noise.
      const source = new SourceFile(displayPath(p), e.text);
      const at = e.text.indexOf("\uFFFD");
      diagnostics.push(diagnostic("E0104", source.span(at, at + 1), "the file is not UTF-8 text: this byte (or sequence) is not valid UTF-8; save the file as UTF-8"));
      const file: LoadedFile = { path: p, source, imports: new Map() };
      files.set(p, file);
      return file;
    }
    if (text === undefined) return undefined;
    const source = new SourceFile(displayPath(p), text);
    const parsed = parseFile(source);
    for (const d of parsed.diagnostics) diagnostics.push(d); // a spread of 10^5 would overflow the stack
    const file: LoadedFile = { path: p, source, ...(parsed.ast && { ast: parsed.ast }), imports: new Map() };
    files.set(p, file);
    for (const d of parsed.ast?.decls ?? []) {
      if (d.kind !== "import") continue;
      const target = resolveImport(d, p, stdRoot);
      if (!target.endsWith(".ul")) {
        diagnostics.push(diagnostic("E0505", d.source.span, `imports name .ul source files: ${displayPath(target)} is not one`));
        continue;
      }
      if (!inProject(target)) {
        const where = project.slice(1).map(displayPath).join(", ");
        diagnostics.push(diagnostic("E0504", d.source.span, `${displayPath(target)} is outside the project: imports stay in the standard library and in ${where} (the folder of the file being compiled) and below; ULC_IMPORT_PATH=DIR adds a folder`));
        continue;
      }
      if (load(target)) file.imports.set(d, target);
      else {
        const what = d.source.kind === "std" ? `${d.source.path.join(".")} (looked for ${displayPath(target)})` : displayPath(target);
        diagnostics.push(diagnostic("E0501", d.source.span, `cannot find the imported file ${what}`));
      }
    }
    return file;
  };
  for (const r of roots) load(r);
  for (const d of findCycles(files)) diagnostics.push(d);
  return { files, roots, diagnostics };
}

/** Every import cycle, reported once, at the import that closes it. */
function findCycles(files: Map<string, LoadedFile>): Diagnostic[] {
  const out: Diagnostic[] = [];
  const state = new Map<string, "active" | "done">();
  const stack: LoadedFile[] = [];
  const visit = (f: LoadedFile) => {
    state.set(f.path, "active");
    for (const [decl, target] of f.imports) {
      const s = state.get(target);
      if (s === "active") {
        const start = stack.findIndex((e) => e.path === target);
        const chain = [...(start >= 0 ? stack.slice(start) : []), f, files.get(target)!].map((e) => e.source.path);
        out.push(diagnostic("E0503", decl.span, `import cycle: ${chain.join(" -> ")}`));
      } else if (s === undefined) {
        stack.push(f);
        visit(files.get(target)!);
        stack.pop();
      }
    }
    state.set(f.path, "done");
  };
  for (const f of files.values()) if (!state.has(f.path)) visit(f);
  return out;
}

/** Paths in messages: relative to the working directory when inside it. */
export function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : p;
}
