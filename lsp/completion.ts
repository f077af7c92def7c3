// Completion: after `std.` the std modules, after `from std.M import` what M declares; elsewhere keywords,
// builtins, dtypes, the names in scope at the cursor and every std name, which brings its import along.
import { CompletionItemKind, type CompletionItem, type TextEdit } from "vscode-languageserver";
import type * as A from "../dsl/ast.js";
import { BUILTINS } from "../dsl/builtins.js";
import { KEYWORD_WORDS } from "../dsl/lexer.js";
import type { Span } from "../dsl/source.js";
import { DTYPES } from "../dsl/values.js";
import { spanContains, spanRange } from "./positions.js";

export interface CompletionContext {
  /** The document's declarations: its text's if it parses, else the last text that did. */
  readonly ast: A.FileAst | undefined;
  readonly offset: number;
  /** The cursor's line up to the cursor. */
  readonly lineBefore: string;
  /** The std module declaring each std name. */
  readonly std: ReadonlyMap<string, string>;
}

export function completions(c: CompletionContext): CompletionItem[] {
  if (/\bstd\.\w*$/.test(c.lineBefore)) return [...new Set(c.std.values())].map((m) => ({ label: m, kind: CompletionItemKind.Module, detail: `std.${m}` }));
  const from = /^\s*from\s+std\.(\w+)\s+import\s+[\w\s,]*$/.exec(c.lineBefore);
  if (from) return [...c.std].filter(([, m]) => m === from[1]).map(([name]) => ({ label: name, kind: CompletionItemKind.Reference, detail: `std.${from[1]}` }));
  if (/\.\w*$/.test(c.lineBefore)) return []; // a field or a member: the names below would all be wrong

  const items = new Map<string, CompletionItem>();
  const add = (label: string, kind: CompletionItemKind, detail: string, edit?: TextEdit) => {
    if (!items.has(label)) items.set(label, { label, kind, detail, ...(edit && { additionalTextEdits: [edit] }) });
  };
  for (const { name, kind, detail } of namesInScope(c.ast, c.offset)) add(name, kind, detail);
  for (const w of KEYWORD_WORDS) add(w, CompletionItemKind.Keyword, "keyword");
  for (const d of DTYPES) add(d, CompletionItemKind.TypeParameter, "dtype");
  for (const b of BUILTINS.keys()) add(b, CompletionItemKind.Function, "builtin");
  // Imports go before the first declaration, where a diagnostic about a forgotten import points too.
  const first = c.ast?.decls[0]?.span;
  const at = first ? spanRange(first).start : { line: 0, character: 0 };
  for (const [name, m] of c.std) add(name, CompletionItemKind.Reference, `from std.${m}`, { range: { start: at, end: at }, newText: `from std.${m} import ${name}\n` });
  return [...items.values()];
}

interface Named {
  readonly name: string;
  readonly kind: CompletionItemKind;
  readonly detail: string;
}

/**
 * The names visible at `offset`: the file's declarations and imports, and inside a declaration its generics,
 * parameters and members, and the locals bound before the cursor (in any block above it: a superset, which a
 * completion list can afford).
 */
function namesInScope(ast: A.FileAst | undefined, offset: number): Named[] {
  const out: Named[] = [];
  const inside = (s: { readonly span: Span }) => spanContains(s.span, offset);
  const signature = (generics: readonly A.GenericParam[], params: readonly A.ParamDecl[]) => {
    for (const g of generics) out.push({ name: g.name.name, kind: CompletionItemKind.TypeParameter, detail: `generic ${g.kind}` });
    for (const p of params) out.push({ name: p.name.name, kind: CompletionItemKind.Variable, detail: "parameter" });
  };
  const locals = (b: A.Block) => {
    for (const s of b.stmts) {
      if (s.span.start >= offset) break;
      if (s.kind === "let") for (const n of s.names) out.push({ name: n.name, kind: CompletionItemKind.Variable, detail: "let" });
      else if (s.kind === "var") out.push({ name: s.name.name, kind: CompletionItemKind.Variable, detail: "var" });
      else if (s.kind === "for" && inside(s)) {
        out.push({ name: s.name.name, kind: CompletionItemKind.Variable, detail: "loop index" });
        locals(s.body);
      } else if (s.kind === "if" && inside(s)) for (const branch of [s.expr.then, s.expr.else]) if (branch && inside(branch)) locals(branch);
    }
  };
  for (const d of ast?.decls ?? []) {
    if (d.kind === "import") {
      for (const { name, alias } of d.names ?? []) out.push({ name: (alias ?? name).name, kind: CompletionItemKind.Reference, detail: "imported" });
      if (d.alias) out.push({ name: d.alias.name, kind: CompletionItemKind.Module, detail: "imported module" });
      continue;
    }
    out.push({ name: d.name.name, kind: DECL_KINDS[d.kind], detail: d.kind });
    if (!inside(d)) continue;
    if (d.kind === "fn") {
      signature(d.generics, d.params);
      locals(d.body);
    } else if (d.kind !== "const") {
      signature(d.generics, d.params);
      for (const m of d.members) {
        out.push({ name: m.name.name, kind: MEMBER_KINDS[m.kind], detail: m.kind });
        if ((m.kind === "fn" || m.kind === "entry") && inside(m)) {
          signature(m.generics, m.params);
          locals(m.body);
        }
      }
    }
  }
  return out;
}

const DECL_KINDS: Record<Exclude<A.Decl["kind"], "import">, CompletionItemKind> = {
  const: CompletionItemKind.Constant,
  fn: CompletionItemKind.Function,
  module: CompletionItemKind.Class,
  model: CompletionItemKind.Class,
  optimizer: CompletionItemKind.Class,
};

const MEMBER_KINDS: Record<A.Member["kind"], CompletionItemKind> = {
  param: CompletionItemKind.Field,
  state: CompletionItemKind.Field,
  hyper: CompletionItemKind.Property,
  component: CompletionItemKind.Field,
  const: CompletionItemKind.Constant,
  fn: CompletionItemKind.Method,
  entry: CompletionItemKind.Method,
};
