// The ```ul code blocks of docs/language.md, which the tests check (test/docs.test.ts) and train (test/examples.test.ts).
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const DOC = readFileSync(path.join(ROOT, "docs", "language.md"), "utf8");

export interface Block {
  /** 1-based line of the opening fence in language.md. */
  readonly line: number;
  readonly text: string;
}

export function ulBlocks(md: string): Block[] {
  const out: Block[] = [];
  const lines = md.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!/^```ul\s*$/.test(lines[i]!)) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`the ul block at language.md:${start + 1} is never closed`);
    out.push({ line: start + 1, text: body.join("\n") + "\n" });
  }
  return out;
}
