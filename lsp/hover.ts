// Hover: the type the checker computed for the expression or name under the cursor, once for each distinct
// instantiation of the code around it, with the values its generics had there (a module checked with its
// generics as symbols and again inside a model shows `f32[B, C, H, W]` and `f32[B, 64, 8, 8]  // C = 64, ...`),
// and a declaration's doc comment.
import type { Hover } from "vscode-languageserver";
import type * as A from "../dsl/ast.js";
import { BUILTINS } from "../dsl/builtins.js";
import { displayPath } from "../dsl/loader.js";
import { spanText, type Span } from "../dsl/source.js";
import { tensorText, type Instance, type Scope, type Value } from "../dsl/values.js";
import type { Analysis } from "./analysis.js";
import { spanContains, spanRange } from "./positions.js";

/** Instantiations listed before the rest are counted instead: a loop unrolled 64 times binds its index 64 ways. */
const MAX_LISTED = 8;

/** Values whose text names them already (`fn silu(x) -> ...`), so a hover shows no `name: ` before it. */
const SELF_NAMED = new Set<Value["k"]>(["fn", "decl", "builtin", "namespace"]);

export function hover(analysis: Analysis, path: string, offset: number): Hover | null {
  // The position is the character under the mouse, so a span ending there is not under it.
  const fact = analysis.factAt(path, offset, (f) => offset < f.span.end && f.values.some((c) => c.value.k !== "error"));
  if (!fact) return null;
  const written = spanText(fact.span);
  const name = /^[A-Za-z_]\w*$/.test(written) ? written : undefined;
  const generics = genericsAt(analysis.files.get(path)?.ast, fact.span.start).filter((g) => g !== name);
  // One line per type; the generics' values only where they say which instantiation gave it.
  const found = new Map<string, Set<string>>();
  for (const c of fact.values) {
    if (c.value.k === "error") continue;
    const type = (name !== undefined && !SELF_NAMED.has(c.value.k) ? `${name}: ` : "") + typeText(c.value);
    found.set(type, (found.get(type) ?? new Set()).add(bindings(c.scope, generics)));
  }
  const lines = [...found].slice(0, MAX_LISTED).map(([type, bound]) => (bound.size === 1 && !bound.has("") ? `${type}  // ${[...bound][0]}` : type));
  if (found.size > MAX_LISTED) lines.push(`// and ${found.size - MAX_LISTED} more`);
  const decl = fact.values.map((c) => c.value).find((v): v is Extract<Value, { k: "fn" | "decl" }> => v.k === "fn" || v.k === "decl");
  const doc = decl ? docComment(decl.decl.span) : "";
  return { contents: { kind: "markdown", value: ["```ul", ...lines, "```", ...(doc ? ["", doc] : [])].join("\n") }, range: spanRange(fact.span) };
}

/** `C = 64, H = 8`: the generics that had values in `scope` (one checked as its own symbol has none). */
function bindings(scope: Scope, generics: readonly string[]): string {
  return generics
    .flatMap((g) => {
      const v = scope.lookup(g)?.value;
      const text = v && v.k !== "error" ? argText(v) : g;
      return text === g ? [] : [`${g} = ${text}`];
    })
    .join(", ");
}

/** The generic parameters in scope at `offset`: its declaration's, and those of the function or entry it is in. */
function genericsAt(ast: A.FileAst | undefined, offset: number): string[] {
  const names: string[] = [];
  for (const d of ast?.decls ?? []) {
    if (d.kind === "import" || d.kind === "const" || !spanContains(d.span, offset)) continue;
    names.push(...d.generics.map((g) => g.name.name));
    if (d.kind !== "fn") for (const m of d.members) if ((m.kind === "fn" || m.kind === "entry") && spanContains(m.span, offset)) names.push(...m.generics.map((g) => g.name.name));
  }
  return names;
}

/** A value's type as .ul writes it; compile-time numbers with their value when known. */
function typeText(v: Value): string {
  switch (v.k) {
    case "tensor":
      return tensorText(v);
    case "int":
      return `int = ${v.value}`;
    case "float":
    case "bool":
      return v.value === undefined ? v.k : `${v.k} = ${v.value}`;
    case "string":
      return "string";
    case "dtype":
      return `dtype ${v.dtype}`;
    case "list":
      return `[${v.items.map(typeText).join(", ")}]`;
    case "tuple":
      return `(${v.items.map(typeText).join(", ")})`;
    case "record":
      return `{ ${[...v.fields].map(([n, f]) => `${n}: ${typeText(f)}`).join(", ")} }`;
    case "instance":
      return instanceText(v.inst);
    case "array":
      return `[${instanceText(v.element)}; ${v.count}]`;
    case "fn":
      // The signature as written: everything before the body's brace.
      return v.decl.span.file.text.slice(v.decl.span.start, v.decl.body.span.start).trim();
    case "decl":
      return containerHeader(v.decl);
    case "builtin":
      return `builtin ${v.name}(${BUILTINS.get(v.name)!.params.map((p) => (p.default ? `${p.name} = ${argText(p.default)}` : p.name)).join(", ")})`;
    case "namespace":
      return `import ${displayPath(v.file.filePath)}`;
    case "error":
      return "error";
  }
}

/** `module Conv2d<Cin = 1, Cout = 32, K = 3>`: a module with the values its generics have in this instance. */
function instanceText(inst: Instance): string {
  const args = inst.decl.generics.map((g) => {
    const v = inst.scope.ownBinding(g.name.name)?.value;
    return `${g.name.name} = ${v ? argText(v) : "?"}`;
  });
  return `${inst.decl.kind} ${inst.decl.name.name}${args.length ? `<${args.join(", ")}>` : ""}`;
}

/** A generic argument or a default: a known compile-time value alone, anything else by its type. */
function argText(v: Value): string {
  if (v.k === "int") return String(v.value);
  if ((v.k === "float" || v.k === "bool") && v.value !== undefined) return String(v.value);
  if (v.k === "list") return `[${v.items.map(argText).join(", ")}]`; // a shape pack
  return typeText(v);
}

/** `module Linear<In, Out>`: a container's declaration up to its opening brace. */
function containerHeader(decl: A.ContainerDecl): string {
  const text = decl.span.file.text;
  const brace = text.indexOf("{", decl.name.span.end);
  return text.slice(decl.span.start, brace < 0 ? decl.span.end : brace).trim();
}

/** The `///` lines right above a declaration, without their slashes. */
function docComment(decl: Span): string {
  const file = decl.file;
  const lines: string[] = [];
  for (let line = file.position(decl.start).line - 1; line >= 1; line--) {
    const m = /^\s*\/\/\/ ?(.*)$/.exec(file.lineText(line));
    if (!m) break;
    lines.unshift(m[1]!);
  }
  return lines.join("\n");
}
