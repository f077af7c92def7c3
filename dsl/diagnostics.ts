// Diagnostics: stable codes, a primary span, optional notes pointing elsewhere, and rendering with a caret.
import type { Span } from "./source.js";

export const ERROR_CODES = {
  E0101: "unexpected character",
  E0102: "unterminated string or comment",
  E0103: "malformed number",
  E0104: "source is not UTF-8 text",
  E0201: "syntax error",
  E0202: "unclosed bracket",
  E0203: "nesting too deep",
  E0301: "unknown name",
  E0302: "duplicate declaration",
  E0303: "wrong kind of thing",
  E0304: "wrong number of arguments",
  E0305: "bad named argument",
  E0306: "missing argument",
  E0307: "recursion",
  E0308: "assignment to a non-var",
  E0309: "unknown field",
  E0310: "not known at compile time",
  E0311: "block has no value",
  E0312: "assertion failed",
  E0401: "type mismatch",
  E0402: "shape mismatch",
  E0403: "cannot broadcast",
  E0404: "rank mismatch",
  E0405: "axis out of range",
  E0406: "matmul dims differ",
  E0407: "bad dim arithmetic",
  E0408: "cannot infer generic parameter",
  E0409: "invalid argument value",
  E0501: "import not found",
  E0502: "imported name not declared",
  E0503: "import cycle",
  E0504: "import outside the project",
  E0505: "import of a file that is not .ul source",
  E0601: "malformed model or entry",
  E0602: "malformed optimizer",
  E0603: "train_step() outside a train entry",
  E0604: "grad_norm() outside an optimizer",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface Note {
  readonly span: Span;
  readonly message: string;
}

export interface Diagnostic {
  readonly code: ErrorCode;
  readonly message: string;
  readonly span: Span;
  readonly notes: readonly Note[];
}

export class CompileError extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}

export function diagnostic(code: ErrorCode, span: Span, message: string, notes: Note[] = []): Diagnostic {
  return { code, span, message, notes };
}

/** Collects diagnostics, dropping repeats. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  private readonly seen = new Set<string>();

  add(d: Diagnostic): void {
    // One error per code and place: a template body checked at several instantiations says it once.
    const key = `${d.code}|${d.span.file.path}|${d.span.start}|${d.span.end}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.items.push(d);
  }

  get hasErrors(): boolean {
    return this.items.length > 0;
  }
}

/** Edit distance ignoring case, a swap of two adjacent letters counting as one edit (the commonest typo: `trian`). */
function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  // d[i][j]: the distance between the first i letters of x and the first j of y.
  const d = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= x.length; i++)
    for (let j = 1; j <= y.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  return d[x.length]![y.length]!;
}

/** The candidate `name` is most likely a misspelling of, or undefined when none is close enough; ties go to the earliest. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(1, Math.floor(name.length / 3));
  for (const c of new Set(candidates)) {
    if (c === name) continue;
    const d = editDistance(name, c);
    // A short name is one insertion away from too many others.
    if (name.length < 3 && c.length > name.length) continue;
    if (d < bestD || (d === bestD && best === undefined)) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** `; did you mean 'x'?` for the end of a message, or nothing. */
export function suggest(best: string | undefined): string {
  return best === undefined ? "" : `; did you mean '${best}'?`;
}

export function didYouMean(name: string, candidates: Iterable<string>): string {
  return suggest(closest(name, candidates));
}

export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  return [...ds].sort(
    (a, b) => a.span.file.path.localeCompare(b.span.file.path) || a.span.start - b.span.start || a.code.localeCompare(b.code),
  );
}

function excerpt(span: Span, color: boolean): string {
  const file = span.file;
  const start = file.position(span.start);
  const end = file.position(Math.max(span.start, span.end - 1));
  const text = file.lineText(start.line).replace(/\t/g, " ");
  const width = start.line === end.line ? Math.max(1, end.col - start.col + 1) : Math.max(1, text.length - start.col + 1);
  const gutter = String(start.line).length;
  const pad = " ".repeat(gutter);
  const caret = " ".repeat(start.col - 1) + "^".repeat(Math.min(width, Math.max(1, text.length - start.col + 1)));
  const paint = (s: string) => (color ? `\x1b[31;1m${s}\x1b[0m` : s);
  return `${pad} |\n${start.line} | ${text}\n${pad} | ${paint(caret)}`;
}

export function formatLocation(span: Span): string {
  const p = span.file.position(span.start);
  return `${span.file.path}:${p.line}:${p.col}`;
}

/** The human form: `path:line:col: error[E0402]: message`, the source line, a caret, then the notes. */
export function renderDiagnostic(d: Diagnostic, options: { color?: boolean } = {}): string {
  const color = options.color ?? false;
  const head = color ? `\x1b[1m${formatLocation(d.span)}: \x1b[31merror[${d.code}]\x1b[0m\x1b[1m: ${d.message}\x1b[0m` : `${formatLocation(d.span)}: error[${d.code}]: ${d.message}`;
  const parts = [head, excerpt(d.span, color)];
  for (const n of d.notes) parts.push(`${formatLocation(n.span)}: note: ${n.message}`, excerpt(n.span, false));
  return parts.join("\n");
}

/** The machine form, for editors: 1-based lines and columns, end exclusive. */
export function diagnosticToJson(d: Diagnostic) {
  const loc = (s: Span) => {
    const a = s.file.position(s.start);
    const b = s.file.position(s.end);
    return { file: s.file.path, line: a.line, col: a.col, endLine: b.line, endCol: b.col };
  };
  return {
    code: d.code,
    severity: "error" as const,
    message: d.message,
    ...loc(d.span),
    notes: d.notes.map((n) => ({ message: n.message, ...loc(n.span) })),
  };
}
