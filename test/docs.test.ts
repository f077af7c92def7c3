// docs/language.md stays true: every ```ul block checks clean, and its table of error codes is exactly the
// compiler's ERROR_CODES.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { checkFiles, type SourceHost } from "../dsl/check.js";
import { ERROR_CODES, renderDiagnostic } from "../dsl/diagnostics.js";
import { DOC, ROOT, ulBlocks } from "./support/docs.js";

const BLOCKS = ulBlocks(DOC);

describe("docs/language.md", () => {
  test("has ul examples", () => {
    expect(BLOCKS.length).toBeGreaterThanOrEqual(6);
  });

  test.each(BLOCKS.map((b) => [b.line, b] as const))("the ul block at line %i checks clean", (_, block) => {
    // Each block is its own in-memory file; std imports read the real standard library from disk.
    const file = `/docs/block-at-line-${block.line}.ul`;
    const host: SourceHost = {
      readFile: (p) => (p === file ? block.text : p.startsWith(path.join(ROOT, "models", "std")) ? tryRead(p) : undefined),
    };
    const r = checkFiles([file], { host });
    expect(r.diagnostics.map((d) => renderDiagnostic(d))).toEqual([]);
  });

  test("the error-code table lists exactly the compiler's codes", () => {
    const section = DOC.slice(DOC.indexOf("## Diagnostics"));
    const table = [...section.matchAll(/^\|\s*`(E\d{4})`\s*\|\s*(.+?)\s*\|\s*$/gm)].map((m) => m[1]!);
    expect(table.length).toBeGreaterThan(0);
    expect(new Set(table).size, "a code listed twice").toBe(table.length);
    expect([...table].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  test("every code mentioned anywhere in the text exists", () => {
    const mentioned = new Set([...DOC.matchAll(/\bE\d{4}\b/g)].map((m) => m[0]));
    for (const code of mentioned) expect(Object.keys(ERROR_CODES), `${code} in language.md`).toContain(code);
  });
});

function tryRead(p: string): string | undefined {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return undefined;
  }
}
