// ulc as a package an app builds on (bench/app.mjs): packed, installed from its tarball into a folder outside
// the repository, its `ulc` generates ul_tiny's bindings, which type-check with only @webgpu/types (no Node
// types), and Vite bundles a page with them and the runtime, and without the compiler; a tool checks the model
// through `ulc/compiler`; in Debian's Chromium the bundled page samples 16 images and draws their grid.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { expect, inject, test } from "vitest";
import { browserTestDevice, launchChromium, serveDirectory } from "./support/browser.js";

const browser = await browserTestDevice();

interface App {
  readonly dir: string;
  readonly typecheck: { readonly status: number; readonly output: string };
  readonly files: readonly { readonly file: string; readonly bytes: number }[];
  readonly script: string;
  readonly tool: { readonly diagnostics: number; readonly entries: readonly string[] };
}

test("an app installs the packed ulc, builds bindings with its ulc, type-checks them without Node's types, bundles no compiler, and samples in Chromium", async (ctx) => {
  expect(inject("buildError"), "the TypeScript build (dist/, which the package ships) failed").toBe("");
  const r = spawnSync(process.execPath, ["bench/app.mjs", "--json", "--keep"], { encoding: "utf8" });
  // Exit 3: npm could not fetch vite, typescript or @webgpu/types (no registry, not in its cache).
  if (r.status === 3) ctx.skip(r.stderr);
  expect(r.status, r.stderr).toBe(0);
  const app = JSON.parse(r.stdout) as App;
  ctx.onTestFinished(() => rmSync(app.dir, { recursive: true, force: true }));
  expect(app.typecheck).toEqual({ status: 0, output: "" });
  expect(app.files.map((f) => f.file.replace(/-[\w-]{8}\./, "."))).toEqual(["index.js", "ul_tiny.program.json"]);
  // The runtime and the bindings are there; the WGSL emitter (a kernel's `@compute` entry) and the parser are not.
  expect(app.script).toContain("ul_tiny.program");
  expect(app.script).toContain("decoder_x_hat");
  expect(app.script).not.toMatch(/@compute|@workgroup_size|chevrotain/);
  expect(app.tool.diagnostics).toBe(0);
  expect(app.tool.entries).toContain("fit");
  if (browser.skip !== undefined) return;
  // The built page, as a static server serves it: it samples 16 images (20 steps each for the prior and the
  // decoder) and writes the size of their grid, 4 × 4 images of 28 × 28 scaled up to 610 × 610.
  const site = await serveDirectory(join(app.dir, "dist"));
  const chromium = await launchChromium();
  try {
    const page = await chromium.newPage();
    await page.goto(site.url);
    await page.waitForFunction(() => document.body.textContent!.trim() !== "", undefined, { timeout: 240_000 });
    expect((await page.textContent("body"))!.trim()).toBe("610×610");
  } finally {
    await chromium.close();
    await site.close();
  }
}, 600_000);
