// `ulc lsp` driven by a scripted client over stdio (test/support/lsp.ts): open ul_small, edit it, and check the
// diagnostics against `ulc check`, hover shapes, definitions into std, completion and the outline.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { CompletionRequest, DefinitionRequest, DocumentSymbolRequest, HoverRequest, type CompletionItem, type DocumentSymbol, type Location, type MarkupContent, type Position } from "vscode-languageserver-protocol/node";
import { ulc } from "./support/cli.js";
import { LspClient } from "./support/lsp.js";

const SMALL = fileURLToPath(new URL("../models/ul_small.ul", import.meta.url));
const SMALL_URI = pathToFileURL(SMALL).href;
const TEXT = readFileSync(SMALL, "utf8");

/** Where `needle` starts in ul_small (plus `shift` characters), as the protocol counts. */
function at(needle: string, shift = 0, text = TEXT): Position {
  const offset = text.indexOf(needle);
  if (offset < 0) throw new Error(`'${needle}' is not in the text`);
  const before = text.slice(0, offset + shift).split("\n");
  return { line: before.length - 1, character: before.at(-1)!.length };
}

let client: LspClient;
let dir: string;

beforeAll(async () => {
  const buildError = inject("buildError");
  expect(buildError, buildError).toBe("");
  dir = mkdtempSync(join(tmpdir(), "ulc-lsp-"));
  client = new LspClient();
  await client.initialize();
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function hoverText(position: Position): Promise<string> {
  const h = await client.connection.sendRequest(HoverRequest.type, { textDocument: { uri: SMALL_URI }, position });
  return (h?.contents as MarkupContent | undefined)?.value ?? "";
}

async function definitionOf(position: Position): Promise<Location> {
  return (await client.connection.sendRequest(DefinitionRequest.type, { textDocument: { uri: SMALL_URI }, position })) as Location;
}

describe("ulc lsp", () => {
  test("opening ul_small publishes no diagnostics", async () => {
    expect(await client.open(SMALL_URI, TEXT)).toEqual([]);
  });

  test("an edit that breaks a shape gets the code, message and range `ulc check` reports; undoing it clears them", async () => {
    const call = "down0(h0)";
    const start = at(call);
    const range = { start, end: { line: start.line, character: start.character + call.length } };
    const diagnostics = await client.change(SMALL_URI, [{ range, text: "down0(h0) + h0" }]);

    const edited = join(dir, "ul_small.ul");
    writeFileSync(edited, TEXT.replace(call, "down0(h0) + h0"));
    const checked = JSON.parse((await ulc(["check", "--json", edited])).stdout) as { diagnostics: { file: string; code: string; message: string; line: number; col: number; endLine: number; endCol: number }[] };
    // The document shows those in its own file (any in std go to std's files).
    const inFile = checked.diagnostics.filter((d) => resolve(d.file) === edited);
    expect(inFile.length).toBeGreaterThan(0);
    expect(diagnostics.map((d) => ({ code: d.code, message: d.message, range: d.range }))).toEqual(
      inFile.map((d) => ({ code: d.code, message: d.message, range: { start: { line: d.line - 1, character: d.col - 1 }, end: { line: d.endLine - 1, character: d.endCol - 1 } } })),
    );

    const undone = await client.change(SMALL_URI, [{ range: { start, end: { line: start.line, character: start.character + "down0(h0) + h0".length } }, text: call }]);
    expect(undone).toEqual([]);
  });

  test("hover shows the dtype and shape of a name, with the model's dims bound", async () => {
    expect(await hoverText(at("let h0", 4))).toContain("h0: f32[B, 32, 32, 32]");
    expect(await hoverText(at("let z_clean", 4))).toContain("z_clean: f32[B, 4, 8, 8]");
    // An expression's, not only a name's: the call `encoder(x)`, the cursor on its closing parenthesis.
    expect((await hoverText(at("encoder(x)", "encoder(x".length))).split("\n")).toContain("f32[B, 4, 8, 8]  // Zc = 4");
    // A component: its module with the values of the module's generics.
    expect(await hoverText(at("encoder(x)"))).toContain("encoder: module ConvEncoder<Zc = 4>");
  });

  test("hover lists each instantiation of generic code with its generics' values: the model's and the module's own", async () => {
    const lines = (await hoverText(at("var h = stem(z_t)", 4))).split("\n");
    expect(lines).toContain("h: f32[B, 64, 8, 8]  // Zc = 4, C = 64, Depth = 4, H = 8, W = 8"); // inside UlSmall: LatentPrior<Zc, 64, 4>
    expect(lines).toContain("h: f32[B, C, H, W]"); // the module checked with its generics as symbols
    // An annotation shows what it is in each instantiation too.
    expect((await hoverText(at("f32[B, Zc, H, W]"))).split("\n")).toEqual(expect.arrayContaining(["f32[B, 4, 8, 8]  // Zc = 4, C = 64, Depth = 4, H = 8, W = 8", "f32[B, Zc, H, W]"]));
  });

  test("go to definition follows an imported name into std, and a local to its let", async () => {
    const silu = await definitionOf(at("silu(norm(h2))"));
    expect(silu.uri).toBe(pathToFileURL(fileURLToPath(new URL("../models/std/layers.ul", import.meta.url))).href);
    const std = readFileSync(fileURLToPath(silu.uri), "utf8").split("\n");
    expect(std[silu.range.start.line]!.slice(silu.range.start.character, silu.range.end.character)).toBe("silu");
    expect(std[silu.range.start.line]).toMatch(/^fn silu\b/);

    const h0 = await definitionOf(at("down0(h0)", "down0(".length));
    expect(h0.uri).toBe(SMALL_URI);
    expect(h0.range.start).toEqual(at("let h0", 4));
  });

  test("completion offers std names with their import, and std modules after `std.`", async () => {
    const items = (await client.connection.sendRequest(CompletionRequest.type, { textDocument: { uri: SMALL_URI }, position: at("\nconst channels", 1) })) as CompletionItem[];
    const linear = items.find((i) => i.label === "Linear");
    expect(linear?.additionalTextEdits?.[0]?.newText).toBe("from std.layers import Linear\n");
    expect(items.map((i) => i.label)).toEqual(expect.arrayContaining(["ConvEncoder", "UlSmall", "zs", "Conv2d", "model", "f32", "conv2d"]));

    const scratch = pathToFileURL(join(dir, "scratch.ul")).href;
    await client.open(scratch, "from std.");
    const modules = (await client.connection.sendRequest(CompletionRequest.type, { textDocument: { uri: scratch }, position: { line: 0, character: "from std.".length } })) as CompletionItem[];
    expect(modules.map((i) => i.label).sort()).toEqual(["diffusion", "layers", "optim"]);
  });

  test("an edit to an open file re-checks the open files that import it; closing it puts the file on disk back", async () => {
    const put = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return pathToFileURL(join(dir, name)).href;
    };
    const helperText = "fn double<N>(x: f32[N]) -> f32[N] { x * 2.0 }\n";
    const helper = put("helper.ul", helperText);
    const main = put("main.ul", 'from "./helper.ul" import double\n\nfn quad<N>(x: f32[N]) -> f32[N] { double(double(x)) }\n');
    expect(await client.open(main, readFileSync(fileURLToPath(main), "utf8"))).toEqual([]);
    // Opening the helper re-checks main too: main now reads the helper's buffer.
    const mainAfterOpen = client.diagnostics(main);
    expect(await client.open(helper, helperText)).toEqual([]);
    expect(await mainAfterOpen).toEqual([]);

    const mainAfterEdit = client.diagnostics(main);
    await client.change(helper, [{ range: { start: { line: 0, character: 3 }, end: { line: 0, character: 9 } }, text: "twice" }]);
    const [unknown] = await mainAfterEdit;
    expect(unknown?.code).toBe("E0502");
    expect(unknown?.range.start).toEqual({ line: 0, character: "from \"./helper.ul\" import ".length });

    const mainAfterClose = client.diagnostics(main);
    client.closeDocument(helper);
    expect(await mainAfterClose).toEqual([]);
  });

  test("an error in an imported file that is not open is published to that file", async () => {
    writeFileSync(join(dir, "broken.ul"), "fn broken<N>(x: f32[N]) -> f32[N] { y }\n");
    const user = join(dir, "user.ul");
    writeFileSync(user, 'from "./broken.ul" import broken\n');
    const inBroken = client.diagnostics(pathToFileURL(join(dir, "broken.ul")).href);
    expect(await client.open(pathToFileURL(user).href, readFileSync(user, "utf8"))).toEqual([]);
    expect((await inBroken).map((d) => d.code)).toEqual(["E0301"]);
  });

  test("document symbols outline the model with its entries", async () => {
    const symbols = (await client.connection.sendRequest(DocumentSymbolRequest.type, { textDocument: { uri: SMALL_URI } })) as DocumentSymbol[];
    const model = symbols.find((s) => s.name === "UlSmall");
    expect(model?.detail).toBe("model");
    expect(model?.children?.map((c) => c.name)).toEqual(expect.arrayContaining(["fit", "evaluate", "encoder", "loss_factor"]));
    expect(symbols.map((s) => s.name)).toEqual(expect.arrayContaining(["ConvEncoder", "ul_report", "zs"]));
  });

  test("shutdown and exit end the server with code 0, having written nothing on stderr", async () => {
    expect(await client.shutdown()).toBe(0);
    expect(client.errors).toBe("");
  });
});
