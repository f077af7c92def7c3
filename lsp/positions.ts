// Between the front end's places (files by path, spans as offsets, 1-based lines) and the protocol's (files
// by URI, 0-based lines). Columns agree: both count UTF-16 code units.
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Location, Range } from "vscode-languageserver";
import type { Span } from "../dsl/source.js";

/** The absolute path of a `file:` URI; undefined for other schemes (an untitled buffer), which ulc cannot import from. */
export function uriPath(uri: string): string | undefined {
  return uri.startsWith("file:") ? fileURLToPath(uri) : undefined;
}

export function pathUri(p: string): string {
  return pathToFileURL(p).href;
}

/** The absolute path of a span's file (diagnostics name files relative to the working directory). */
export function spanPath(span: Span): string {
  return path.resolve(span.file.path);
}

/** Whether a cursor at `offset` is on the span: its end included, as a cursor just after a name is on it. */
export function spanContains(span: { readonly start: number; readonly end: number }, offset: number): boolean {
  return span.start <= offset && offset <= span.end;
}

export function spanRange(span: Span): Range {
  const start = span.file.position(span.start);
  const end = span.file.position(span.end);
  return { start: { line: start.line - 1, character: start.col - 1 }, end: { line: end.line - 1, character: end.col - 1 } };
}

export function spanLocation(span: Span): Location {
  return { uri: pathUri(spanPath(span)), range: spanRange(span) };
}
