// The front end's diagnostics as the protocol's: the same code, message and span as `ulc check`, notes as
// related information.
import { DiagnosticSeverity, type Diagnostic as LspDiagnostic } from "vscode-languageserver";
import type { Diagnostic } from "../dsl/diagnostics.js";
import { spanLocation, spanPath, spanRange } from "./positions.js";

export function toLspDiagnostic(d: Diagnostic): LspDiagnostic {
  return {
    range: spanRange(d.span),
    severity: DiagnosticSeverity.Error,
    code: d.code,
    source: "ulc",
    message: d.message,
    relatedInformation: d.notes.map((n) => ({ location: spanLocation(n.span), message: n.message })),
  };
}

/** Diagnostics grouped by the absolute path of the file they are in. */
export function byFile(diagnostics: readonly Diagnostic[]): Map<string, LspDiagnostic[]> {
  const out = new Map<string, LspDiagnostic[]>();
  for (const d of diagnostics) {
    const p = spanPath(d.span);
    let inFile = out.get(p);
    if (!inFile) out.set(p, (inFile = []));
    inFile.push(toLspDiagnostic(d));
  }
  return out;
}
