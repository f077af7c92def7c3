// Document symbols: the outline of a file. Models, modules and optimizers hold their members (entries, functions,
// params, components, hypers, state, consts); functions and consts stand alone.
import { SymbolKind, type DocumentSymbol } from "vscode-languageserver";
import type * as A from "../dsl/ast.js";
import { spanRange } from "./positions.js";

export function documentSymbols(ast: A.FileAst): DocumentSymbol[] {
  return ast.decls.flatMap((d) => (d.kind === "import" ? [] : [symbol(d, d.kind === "fn" || d.kind === "const" ? [] : d.members.map((m) => symbol(m, [])))]));
}

function symbol(d: Exclude<A.Decl, A.ImportDecl> | A.Member, children: DocumentSymbol[]): DocumentSymbol {
  return { name: d.name.name, detail: d.kind, kind: KINDS[d.kind], range: spanRange(d.span), selectionRange: spanRange(d.name.span), children };
}

const KINDS: Record<Exclude<A.Decl, A.ImportDecl>["kind"] | A.Member["kind"], SymbolKind> = {
  model: SymbolKind.Class,
  module: SymbolKind.Module,
  optimizer: SymbolKind.Class,
  fn: SymbolKind.Function,
  const: SymbolKind.Constant,
  entry: SymbolKind.Method,
  param: SymbolKind.Field,
  component: SymbolKind.Field,
  hyper: SymbolKind.Property,
  state: SymbolKind.Variable,
};
