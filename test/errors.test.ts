// The error corpus: every program in test/errors/ is a small mistake a user would make. Each declares what the
// checker must report in its leading comments:
//
//   // expect: E0402 at 7:12            an error at line 7, column 12 of this file (1-based)
//   // expect: E0503 at helpers.ul:2:1  an error in another file of a multi-file case
//   // expect: E0301 at 4:8: MESSAGE    an error with its exact message...
//   // note at 1:1: MESSAGE             ...and its notes, exactly (none listed: none given)
//   // bind: B=4, K=3                   values for generic dims (`ulc check --bind`)
//
// A case is a single `NAME.ul`, or a folder `NAME/` whose `main.ul` is checked (with the other files of the
// folder reachable through its imports). The diagnostics reported must be exactly the expected ones: none
// missing, none extra, none repeated. Then a few representative cases check the message text and notes, and
// the rendering of a diagnostic (location, source line, caret).
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { checkFiles, type CheckResult, type SourceHost } from "../dsl/check.js";
import { ERROR_CODES, diagnosticToJson, renderDiagnostic, type Diagnostic } from "../dsl/diagnostics.js";
import { SourceFile } from "../dsl/source.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CORPUS = path.join(ROOT, "test", "errors");

interface Expectation {
  readonly code: string;
  /** Relative to the case folder (the case file itself for a single-file case). */
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** The exact message and notes (`note at LOC: MESSAGE`), when the case states them. */
  readonly message?: string;
  readonly notes: string[];
}

interface Case {
  readonly name: string;
  /** The file that is checked. */
  readonly root: string;
  /** The folder that expectation paths are relative to. */
  readonly dir: string;
  readonly expected: Expectation[];
  readonly bindings: Record<string, number>;
}

function loadCase(name: string): Case {
  const entry = path.join(CORPUS, name);
  const isDir = statSync(entry).isDirectory();
  const root = isDir ? path.join(entry, "main.ul") : entry;
  const dir = isDir ? entry : path.dirname(entry);
  const rootRel = path.relative(dir, root);
  const text = readFileSync(root, "utf8");
  const expected: Expectation[] = [];
  const bindings: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("//")) break; // only the leading comment lines declare expectations
    const exp = /^\/\/\s*expect:\s*(E\d{4})\s+at\s+(?:([^\s:]+):)?(\d+):(\d+)(?::\s+(.*?))?\s*$/.exec(line);
    if (exp) {
      expected.push({ code: exp[1]!, file: exp[2] ?? rootRel, line: Number(exp[3]), col: Number(exp[4]), ...(exp[5] && { message: exp[5] }), notes: [] });
      continue;
    }
    if (/^\/\/\s*expect:/.test(line)) throw new Error(`${name}: malformed expectation ${JSON.stringify(line)}`);
    const note = /^\/\/\s*note\s+at\s+(?:([^\s:]+):)?(\d+):(\d+):\s+(.*?)\s*$/.exec(line);
    if (note) {
      const of = expected[expected.length - 1];
      if (of?.message === undefined) throw new Error(`${name}: a note must follow an expectation with a message: ${JSON.stringify(line)}`);
      of.notes.push(`note at ${note[1] ?? rootRel}:${note[2]}:${note[3]}: ${note[4]}`);
      continue;
    }
    const bind = /^\/\/\s*bind:\s*(.*)$/.exec(line);
    if (bind)
      for (const kv of bind[1]!.split(/[\s,]+/).filter(Boolean)) {
        const m = /^([A-Za-z_]\w*)=(-?\d+(?:\.\d+)?)$/.exec(kv);
        if (!m) throw new Error(`${name}: malformed binding ${JSON.stringify(kv)}`);
        bindings[m[1]!] = Number(m[2]);
      }
  }
  return { name, root, dir, expected, bindings };
}

const CASES: Case[] = readdirSync(CORPUS)
  .filter((n) => n.endsWith(".ul") || statSync(path.join(CORPUS, n)).isDirectory())
  .sort()
  .map(loadCase);

const byName = new Map(CASES.map((c) => [c.name.replace(/\.ul$/, ""), c]));

function run(c: Case): CheckResult {
  const r = checkFiles([c.root], { bindings: c.bindings });
  expect(r.usageErrors, c.name).toEqual([]);
  return r;
}

/** `FILE:LINE:COL`, with FILE relative to the case folder. */
function at(c: Case, span: Diagnostic["span"]): string {
  const p = span.file.position(span.start);
  return `${path.relative(c.dir, path.resolve(span.file.path))}:${p.line}:${p.col}`;
}

/** `CODE at FILE:LINE:COL`. */
function where(c: Case, d: { code: string; span: Diagnostic["span"] }): string {
  return `${d.code} at ${at(c, d.span)}`;
}

/** A diagnostic as its case states it: where, then the message and notes if the case states them. */
function stated(c: Case, d: Diagnostic): string {
  const place = where(c, d);
  const e = c.expected.find((x) => expectedPlace(x) === place);
  if (e?.message === undefined) return place;
  return [`${place}: ${d.message}`, ...d.notes.map((n) => `note at ${at(c, n.span)}: ${n.message}`)].join("\n");
}

function expectedPlace(e: Expectation): string {
  return `${e.code} at ${e.file}:${e.line}:${e.col}`;
}

function statement(e: Expectation): string {
  const place = expectedPlace(e);
  return e.message === undefined ? place : [`${place}: ${e.message}`, ...e.notes].join("\n");
}

function caseResult(name: string): { c: Case; r: CheckResult } {
  const c = byName.get(name);
  if (!c) throw new Error(`no corpus case ${name}`);
  return { c, r: run(c) };
}

function only(name: string, code: string): { c: Case; d: Diagnostic } {
  const { c, r } = caseResult(name);
  const ds = r.diagnostics.filter((d) => d.code === code);
  expect(ds, `${name}: one ${code}`).toHaveLength(1);
  return { c, d: ds[0]! };
}

function loc(d: { span: Diagnostic["span"] }): string {
  const p = d.span.file.position(d.span.start);
  return `${path.basename(d.span.file.path)}:${p.line}:${p.col}`;
}

describe("error corpus", () => {
  test("has at least 45 distinct programs, each with an expectation", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(45);
    for (const c of CASES) expect(c.expected.length, `${c.name} declares no expectation`).toBeGreaterThan(0);
    const texts = new Set(CASES.map((c) => readFileSync(c.root, "utf8").replace(/^(\/\/.*\n)*/, "")));
    expect(texts.size).toBe(CASES.length);
  });

  test("covers every error code", () => {
    const covered = new Set(CASES.flatMap((c) => c.expected.map((e) => e.code)));
    const missing = Object.keys(ERROR_CODES).filter((code) => !covered.has(code));
    expect(missing).toEqual([]);
    for (const code of covered) expect(Object.keys(ERROR_CODES)).toContain(code);
  });

  test.each(CASES.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const r = run(c);
    const got = r.diagnostics.map((d) => stated(c, d)).sort();
    const want = c.expected.map(statement).sort();
    const detail = r.diagnostics.map((d) => renderDiagnostic(d)).join("\n\n");
    expect(got, `diagnostics of ${c.name}:\n${detail}`).toEqual(want);
  });
});

describe("messages say what went wrong", () => {
  test("a shape mismatch at a call names both shapes and where each came from", () => {
    const { d } = only("e0402-argument-shape", "E0402");
    expect(d.message).toContain("f32[B, 8]");
    expect(d.message).toContain("f32[B, 6]");
    expect(d.message).toContain("argument 'x'");
    // One note at the parameter's declaration in std.layers, one at the entry input that gave [B, 6].
    const notes = d.notes.map((n) => `${loc(n)} ${n.message}`);
    expect(notes).toContainEqual(expect.stringMatching(/^layers\.ul:\d+:\d+ declared as f32\[B, 8\]/));
    expect(notes).toContainEqual(expect.stringMatching(/^e0402-argument-shape\.ul:7:19 its shape \[B, 6\] comes from here/));
  });

  test("matmul inner dims: both operand shapes, notes at both operands' origins", () => {
    const { d } = only("e0406-matmul", "E0406");
    expect(d.message).toContain("f32[N, 8]");
    expect(d.message).toContain("f32[4, 16]");
    expect(d.message).toContain("8 vs 4");
    expect(d.notes.map((n) => loc(n))).toEqual(["e0406-matmul.ul:3:18", "e0406-matmul.ul:3:32"]);
    expect(d.notes[0]!.message).toContain("f32[N, 8]");
    expect(d.notes[1]!.message).toContain("f32[4, 16]");
  });

  test("broadcast failure names both shapes, the offending dims, and the operands' origins", () => {
    const { d } = only("e0403-broadcast", "E0403");
    expect(d.message).toContain("f32[N, 3]");
    expect(d.message).toContain("f32[N, 4]");
    expect(d.message).toContain("3 vs 4");
    expect(d.notes.map((n) => loc(n))).toEqual(["e0403-broadcast.ul:3:14", "e0403-broadcast.ul:3:28"]);
  });

  test("conv2d channel mismatch gives both channel counts", () => {
    const { d } = only("e0402-conv2d-channels", "E0402");
    expect(d.message).toMatch(/4 input channels/);
    expect(d.message).toMatch(/3 channels/);
    expect(d.notes.map((n) => n.message).join("\n")).toContain("f32[16, 4, 3, 3]");
  });

  test("reshape gives both element counts", () => {
    const { d } = only("e0409-reshape-count", "E0409");
    expect(d.message).toContain("12*N");
    expect(d.message).toContain("16*N");
  });

  test.each([
    ["e0301-typo-local", "E0301", "variance"],
    ["e0301-typo-builtin", "E0301", "sigmoid"],
    ["e0301-typo-component", "E0301", "encoder"],
    ["e0309-unknown-record-field", "E0309", "variance"],
    ["e0309-module-member", "E0309", "encode"],
    ["e0309-namespace-member", "E0309", "silu"],
    ["e0305-unknown-named-arg", "E0305", "axis"],
    ["e0502-undeclared-import", "E0502", "Linear"],
    ["e0502-file-import", "E0502", "ResBlock"],
    ["e0601-minimize-missing-field", "E0601", "loss"],
    ["e0601-over-unknown", "E0601", "decoder"],
  ])("%s (%s) suggests '%s'", (name, code, suggestion) => {
    const { d } = only(name, code);
    expect(d.message).toContain(`did you mean '${suggestion}'`);
  });

  test("a name with no near neighbour gets no suggestion", () => {
    const { d } = only("e0305-optimizer-unknown-arg", "E0305");
    expect(d.message).toContain("learning_rate");
    expect(d.message).not.toContain("did you mean");
  });

  test("duplicates and recursion point back at the first declaration", () => {
    const dup = only("e0302-duplicate-fn", "E0302").d;
    expect(dup.notes.map((n) => `${loc(n)} ${n.message}`)).toEqual(["e0302-duplicate-fn.ul:3:4 first declared here"]);
    const rec = only("e0307-recursion", "E0307").d;
    expect(rec.message).toContain("repeat");
    expect(rec.notes.map((n) => loc(n))).toEqual(["e0307-recursion.ul:3:4"]);
    const let_ = only("e0308-assign-to-let", "E0308").d;
    expect(let_.notes.map((n) => loc(n))).toEqual(["e0308-assign-to-let.ul:4:7"]);
  });

  test("an error inside a template instantiated from another file says which call", () => {
    const { d } = only("e0406-in-imported-template", "E0406");
    expect(path.basename(d.span.file.path)).toBe("helpers.ul");
    expect(d.notes.map((n) => `${loc(n)} ${n.message}`)).toContainEqual(expect.stringMatching(/^main\.ul:6:3 while checking this call/));
  });

  test("an import cycle lists the files of the cycle in order", () => {
    const { d } = only("e0503-three-file-cycle", "E0503");
    const chain = d.message.replace(/^import cycle: /, "").split(" -> ").map((p) => path.basename(p));
    expect(chain).toEqual(["main.ul", "b.ul", "c.ul", "main.ul"]);
  });

  test("failed assertions carry the assertion's message", () => {
    expect(only("e0312-assert-failed", "E0312").d.message).toContain("D must be divisible by the number of heads");
  });

  test("lexical errors quote the offending text", () => {
    expect(only("e0103-digits-then-letters", "E0103").d.message).toContain("'12abc'");
    expect(only("e0103-trailing-dot", "E0103").d.message).toContain("1.0");
    expect(caseResult("e0101-backticks").r.diagnostics.map((d) => d.message)).toEqual(['unexpected character "`"', 'unexpected character "`"']);
  });
});

describe("bindings", () => {
  test("the E0310 case checks clean once the generic is bound", () => {
    const { c } = caseResult("e0310-hyper-from-generic");
    expect(c.expected.map((e) => e.code)).toEqual(["E0310"]);
    const r = checkFiles([c.root], { bindings: { K: 3 } });
    expect(r.diagnostics.map((d) => renderDiagnostic(d))).toEqual([]);
  });

  test("a binding that names no generic parameter is a usage error, not a diagnostic", () => {
    const { c } = caseResult("e0310-hyper-from-generic");
    const r = checkFiles([c.root], { bindings: { Q: 3 } });
    expect(r.usageErrors).toHaveLength(1);
    expect(r.usageErrors[0]).toContain("Q");
  });

  test("bound dims replace the symbols they name", () => {
    const host = memoryHost({
      "/mem/m.ul": "model M {\n  entry run<B>(x: f32[B, 3]) -> f32[B, 3] { x + zeros([2, 3]) }\n}\n",
    });
    // Symbolically, B is not 2; bound to 2, it is.
    const free = checkFiles(["/mem/m.ul"], { host });
    expect(free.diagnostics.map((d) => d.code)).toEqual(["E0403"]);
    expect(free.diagnostics[0]!.message).toContain("f32[B, 3]");
    expect(checkFiles(["/mem/m.ul"], { host, bindings: { B: 2 } }).diagnostics).toEqual([]);
    const other = checkFiles(["/mem/m.ul"], { host, bindings: { B: 5 } });
    expect(other.usageErrors).toEqual([]);
    expect(other.diagnostics.map((d) => d.code)).toEqual(["E0403"]);
    expect(other.diagnostics[0]!.message).toContain("f32[5, 3]");
  });
});

function memoryHost(files: Record<string, string>): SourceHost {
  return {
    readFile(p) {
      if (p in files) return files[p];
      // std comes from disk
      try {
        return statSync(p).isFile() && p.startsWith(path.join(ROOT, "models")) ? readFileSync(p, "utf8") : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

describe("multi-file programs through an in-memory host", () => {
  test("an import cycle between two in-memory files", () => {
    const host = memoryHost({
      "/mem/a.ul": 'from "./b.ul" import g\nfn f<N>(x: f32[N]) -> f32[N] { g(x) }\n',
      "/mem/b.ul": 'from "./a.ul" import f\nfn g<N>(x: f32[N]) -> f32[N] { x }\n',
    });
    const r = checkFiles(["/mem/a.ul"], { host });
    expect(r.diagnostics.map((d) => `${d.code} ${path.basename(d.span.file.path)}:${d.span.file.position(d.span.start).line}`)).toEqual(["E0503 b.ul:1"]);
  });

  test("a missing relative import and a std import resolved against a custom stdRoot", () => {
    const host = memoryHost({
      "/mem/main.ul": 'from "./gone.ul" import h\nfrom std.extra import twice\nfn f<N>(x: f32[N]) -> f32[N] { twice(x) }\n',
      "/mem/std/extra.ul": "fn twice<N>(x: f32[N]) -> f32[N] { x * 2.0 }\n",
    });
    const r = checkFiles(["/mem/main.ul"], { host, stdRoot: "/mem/std" });
    expect(r.diagnostics.map((d) => `${d.code} ${d.span.file.position(d.span.start).line}`)).toEqual(["E0501 1"]);
  });

  test("several root files are all checked", () => {
    const host = memoryHost({
      "/mem/one.ul": "fn f<N>(x: f32[N]) -> f32[N] { y }\n",
      "/mem/two.ul": "fn g<N>(x: f32[N]) -> f32[N] { z }\n",
    });
    const r = checkFiles(["/mem/one.ul", "/mem/two.ul"], { host });
    expect(r.diagnostics.map((d) => `${d.code} ${path.basename(d.span.file.path)}`)).toEqual(["E0301 one.ul", "E0301 two.ul"]);
  });
});

describe("rendering", () => {
  /** The caret line under `lineNo`'s source line in a rendered excerpt: [column of the first ^, count of ^]. */
  function caret(rendered: string, lineNo: number, sourceLine: string): [number, number] {
    const lines = rendered.split("\n");
    const i = lines.indexOf(`${lineNo} | ${sourceLine}`);
    expect(i, `source line ${lineNo} in:\n${rendered}`).toBeGreaterThan(0);
    const gutter = " ".repeat(String(lineNo).length) + " | ";
    const under = lines[i + 1]!;
    expect(under.startsWith(gutter)).toBe(true);
    const marks = under.slice(gutter.length);
    expect(marks).toMatch(/^ *\^+$/);
    return [marks.indexOf("^") + 1, marks.length - marks.indexOf("^")];
  }

  test("path:line:col, the code, the source line and a caret under the span", () => {
    const { d } = only("e0301-typo-local", "E0301");
    const out = renderDiagnostic(d);
    const file = d.span.file;
    expect(out.split("\n")[0]).toBe(`${file.path}:6:19: error[E0301]: ${d.message}`);
    expect(caret(out, 6, file.lineText(6))).toEqual([19, "varience".length]);
    expect(out).not.toContain("\x1b[");
  });

  test("an operator expression is underlined whole, and notes are rendered with their own excerpt", () => {
    const { d } = only("e0406-matmul", "E0406");
    const out = renderDiagnostic(d);
    const file = d.span.file;
    expect(out).toContain(`${file.path}:4:3: error[E0406]`);
    expect(caret(out, 4, "  x @ w")).toEqual([3, 5]);
    expect(out).toContain(`${file.path}:3:18: note: the left operand is f32[N, 8], from here`);
    expect(out).toContain(`${file.path}:3:32: note: the right operand is f32[4, 16], from here`);
    expect(caret(out, 3, file.lineText(3))[0]).toBe(18);
  });

  test("colour adds ANSI codes and changes nothing else", () => {
    const { d } = only("e0403-broadcast", "E0403");
    const plain = renderDiagnostic(d);
    const coloured = renderDiagnostic(d, { color: true });
    expect(coloured).toContain("\x1b[");
    // eslint-disable-next-line no-control-regex
    expect(coloured.replace(/\x1b\[[0-9;]*m/g, "")).toBe(plain);
  });

  test("a span over several lines is underlined to the end of its first line", () => {
    const { d } = only("e0311-no-final-value", "E0311");
    const out = renderDiagnostic(d);
    const line = d.span.file.lineText(3);
    const [col, width] = caret(out, 3, line);
    expect(col).toBe(line.indexOf("{") + 1);
    expect(col + width - 1).toBe(line.length);
  });

  test("tabs are shown as spaces without moving the caret", () => {
    const file = new SourceFile("tabs.ul", "fn f<N>(x: f32[N]) -> f32[N] {\n\tx * sigmoud(x)\n}\n");
    const host: SourceHost = { readFile: (p) => (p === path.resolve("tabs.ul") ? file.text : undefined) };
    const r = checkFiles(["tabs.ul"], { host });
    expect(r.diagnostics).toHaveLength(1);
    const out = renderDiagnostic(r.diagnostics[0]!);
    expect(out).toContain("tabs.ul:2:6: error[E0301]");
    expect(caret(out, 2, " x * sigmoud(x)")).toEqual([6, 7]);
  });

  test("a diagnostic at the end of the file still renders a caret", () => {
    const { d } = only("e0202-unclosed-brace", "E0202");
    const out = renderDiagnostic(d);
    expect(out).toContain(`${d.span.file.path}:3:18: error[E0202]`);
    expect(caret(out, 3, d.span.file.lineText(3))).toEqual([18, 1]);
    const host = memoryHost({ "/mem/eof.ul": "fn f<N>(x: f32[N]) -> f32[N]" });
    const r = checkFiles(["/mem/eof.ul"], { host });
    expect(r.diagnostics.map((x) => x.code)).toEqual(["E0201"]);
    const eof = renderDiagnostic(r.diagnostics[0]!);
    expect(eof).toContain("/mem/eof.ul:1:29: error[E0201]");
    expect(caret(eof, 1, "fn f<N>(x: f32[N]) -> f32[N]")).toEqual([29, 1]);
  });

  test("the JSON form has 1-based positions and an exclusive end", () => {
    const { d } = only("e0301-typo-local", "E0301");
    const j = diagnosticToJson(d);
    expect(j).toMatchObject({ code: "E0301", severity: "error", line: 6, col: 19, endLine: 6, endCol: 19 + "varience".length });
  });
});
