// Go to definition: from a name to where the checker resolved it, across imports into other files and std.
import type { Location } from "vscode-languageserver";
import type { Span } from "../dsl/source.js";
import type { Value } from "../dsl/values.js";
import type { Analysis } from "./analysis.js";
import { pathUri, spanContains, spanLocation } from "./positions.js";

/** Imports chain (the `a` this file imports is the `a` another file imports from a third): at most this many are followed. */
const MAX_HOPS = 8;

type Declared = Extract<Value, { k: "fn" | "decl" | "namespace" }>;

export function definition(analysis: Analysis, path: string, offset: number): Location | null {
  // An import's module path leads to the file it names.
  for (const [decl, target] of analysis.files.get(path)?.imports ?? [])
    if (spanContains(decl.source.span, offset)) return fileStart(target);
  const fact = analysis.factAt(path, offset, (f) => f.declared !== undefined || f.values.some((c) => isDeclared(c.value)));
  if (!fact) return null;
  // Functions, modules and namespaces know where they are declared, whatever imports the name came through.
  const value = fact.values.map((c) => c.value).find(isDeclared);
  if (value) return value.k === "namespace" ? fileStart(value.file.filePath) : spanLocation(value.decl.name.span);
  let at: Span = fact.declared!;
  // A name bound by `from X import a` resolves on to the `a` that X declares.
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const next = analysis.factOf(at)?.declared;
    if (!next || next === at) break;
    at = next;
  }
  return spanLocation(at);
}

function isDeclared(v: Value): v is Declared {
  return v.k === "fn" || v.k === "decl" || v.k === "namespace";
}

function fileStart(path: string): Location {
  const start = { line: 0, character: 0 };
  return { uri: pathUri(path), range: { start, end: start } };
}
