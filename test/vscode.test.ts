// The VS Code extension (editor/vscode): its manifest names files that exist, its grammar knows the lexer's
// keywords, and it packages with @vscode/vsce into a .vsix that carries its language client.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import { KEYWORD_WORDS } from "../dsl/lexer.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const EXTENSION = join(ROOT, "editor", "vscode");

interface Manifest {
  main: string;
  contributes: { languages: { id: string; extensions: string[]; configuration: string }[]; grammars: { language: string; path: string }[] };
}

interface Rule {
  name?: string;
  match?: string;
  begin?: string;
  end?: string;
  patterns?: Rule[];
}

const manifest = JSON.parse(readFileSync(join(EXTENSION, "package.json"), "utf8")) as Manifest;
const grammar = JSON.parse(readFileSync(join(EXTENSION, "syntaxes", "ul.tmLanguage.json"), "utf8")) as { repository: Record<string, Rule> };

/** Every rule of the grammar, nested ones included. */
function rules(): Rule[] {
  const out: Rule[] = [];
  const visit = (r: Rule) => {
    out.push(r);
    r.patterns?.forEach(visit);
  };
  Object.values(grammar.repository).forEach(visit);
  return out;
}

test("the manifest contributes the ul language for .ul files, and every file it names exists", () => {
  const [language] = manifest.contributes.languages;
  expect(language?.id).toBe("ul");
  expect(language?.extensions).toEqual([".ul"]);
  expect(manifest.contributes.grammars.map((g) => g.language)).toEqual(["ul"]);
  for (const file of [manifest.main, language!.configuration, ...manifest.contributes.grammars.map((g) => g.path)]) expect(existsSync(join(EXTENSION, file)), file).toBe(true);
  // The client is plain CommonJS, as VS Code loads it: at least it must parse.
  const check = spawnSync(process.execPath, ["--check", join(EXTENSION, manifest.main)], { encoding: "utf8" });
  expect(check.status, check.stderr).toBe(0);
});

test("the grammar's regular expressions compile, and it highlights exactly the lexer's keywords", () => {
  for (const r of rules()) for (const source of [r.match, r.begin, r.end]) if (source !== undefined) expect(() => new RegExp(source), source).not.toThrow();
  // The words of the keyword and boolean rules, each an alternation: \b(for|in|if)\b.
  const words = rules()
    .filter((r) => r.name?.startsWith("keyword.") || r.name === "constant.language.boolean.ul")
    .flatMap((r) => /^\\b\(([\w|]+)\)\\b$/.exec(r.match ?? "")?.[1]!.split("|") ?? []);
  expect(new Set(words)).toEqual(new Set(KEYWORD_WORDS));
});

test("the extension packages into a .vsix that carries its language client (scripts/package-vscode.mjs)", (ctx) => {
  const dir = mkdtempSync(join(tmpdir(), "ulc-vsix-"));
  try {
    const vsix = join(dir, "ulc.vsix");
    const r = spawnSync(process.execPath, [join(ROOT, "scripts", "package-vscode.mjs"), "--out", vsix], { encoding: "utf8" });
    // Exit 3: npm could not fetch vscode-languageclient (no registry, not in its cache).
    if (r.status === 3) ctx.skip(r.stderr);
    expect(r.status, r.stderr).toBe(0);
    // A .vsix is a zip, whose entries' names are stored uncompressed.
    const zip = readFileSync(vsix).toString("latin1");
    for (const entry of ["extension/package.json", "extension/extension.js", "extension/language-configuration.json", "extension/syntaxes/ul.tmLanguage.json", "extension/node_modules/vscode-languageclient/lib/node/main.js"])
      expect(zip, entry).toContain(entry);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);
