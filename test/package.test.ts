// ulc as a package an app builds on (bench/app.mjs): packed, installed from its tarball into a folder outside
// the repository, its `ulc` generates ul_tiny's bindings, which type-check with only @webgpu/types (no Node
// types), and Vite bundles a page with them and the runtime, and without the compiler; a tool checks the model
// through `ulc/compiler`.
import { spawnSync } from "node:child_process";
import { expect, inject, test } from "vitest";

interface App {
  readonly typecheck: { readonly status: number; readonly output: string };
  readonly files: readonly { readonly file: string; readonly bytes: number }[];
  readonly script: string;
  readonly tool: { readonly diagnostics: number; readonly entries: readonly string[] };
}

test("an app installs the packed ulc, builds bindings with its ulc, type-checks them without Node's types and bundles no compiler", (ctx) => {
  expect(inject("buildError"), "the TypeScript build (dist/, which the package ships) failed").toBe("");
  const r = spawnSync(process.execPath, ["bench/app.mjs", "--json"], { encoding: "utf8" });
  // Exit 3: npm could not fetch vite, typescript or @webgpu/types (no registry, not in its cache).
  if (r.status === 3) ctx.skip(r.stderr);
  expect(r.status, r.stderr).toBe(0);
  const app = JSON.parse(r.stdout) as App;
  expect(app.typecheck).toEqual({ status: 0, output: "" });
  expect(app.files.map((f) => f.file.replace(/-[\w-]{8}\./, "."))).toEqual(["index.js", "ul_tiny.program.json"]);
  // The runtime and the bindings are there; the WGSL emitter (a kernel's `@compute` entry) and the parser are not.
  expect(app.script).toContain("ul_tiny.program");
  expect(app.script).toContain("decoder_x_hat");
  expect(app.script).not.toMatch(/@compute|@workgroup_size|chevrotain/);
  expect(app.tool.diagnostics).toBe(0);
  expect(app.tool.entries).toContain("fit");
}, 300_000);
