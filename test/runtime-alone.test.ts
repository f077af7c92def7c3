// The runtime an app imports (`ulc/runtime`, runtime/index.ts) stands alone: type-checked as a browser app
// would, with the DOM and WebGPU's types but not Node's, every file it reaches is under runtime/, so a page that
// runs a built model bundles none of the compiler, and nothing names a Node module. (Node-only code the runtime
// reaches at run time, Dawn and reading `file:` URLs, is imported through a variable, which bundlers leave alone.)
import path from "node:path";
import ts from "typescript";
import { expect, test } from "vitest";

const ROOT = path.resolve(".");

test("runtime/index.ts type-checks with only @webgpu/types and reaches nothing outside runtime/", () => {
  const program = ts.createProgram([path.join(ROOT, "runtime/index.ts")], {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2023.d.ts", "lib.dom.d.ts"],
    types: ["@webgpu/types"],
    typeRoots: [path.join(ROOT, "node_modules")],
    strict: true,
    noEmit: true,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
  expect(diagnostics).toEqual([]);
  const ours = program
    .getSourceFiles()
    .map((f) => path.relative(ROOT, f.fileName))
    .filter((f) => !f.startsWith("node_modules"));
  expect(ours.filter((f) => !f.startsWith("runtime/"))).toEqual([]);
  // The walk did happen: the bindings' base class and the session are there.
  expect(ours).toEqual(expect.arrayContaining(["runtime/webgpu/model.ts", "runtime/webgpu/session.ts", "runtime/manifest.ts"]));
  expect(program.getSourceFiles().some((f) => f.fileName.includes("@types/node"))).toBe(false);
}, 60_000);
