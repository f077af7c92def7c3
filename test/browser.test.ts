// The same WGSL Program in a real browser: headless Chromium (Debian's, driven by playwright-core) loads the
// runtime bundle and a built classifier over HTTP on localhost, runs an entry on its own WebGPU, and must give
// what the Node runtime (Dawn) gives. Skips, saying why, only where Chromium or WebGPU is missing; CI requires
// both (`npm run test:ci` installs them).
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { emitWgsl } from "../backends/wgsl/program.js";
import { lowerProgram } from "../compiler/lower.js";
import { randomUniform } from "../runtime/random.js";
import type { WebGpu } from "../runtime/webgpu/device.js";
import { sessionFromProgram } from "../runtime/webgpu/compile.js";
import { browserTestDevice, launchChromium, serveDirectory } from "./support/browser.js";

const td = await browserTestDevice();

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>ulc runtime</title>
<script type="module">
  import { WebGpuSession } from "./session.js";
  window.runEntry = async (entry, name, shape, data) => {
    if (!navigator.gpu) throw new Error("this browser has no WebGPU");
    const adapter = await navigator.gpu.requestAdapter();
    const device = await adapter.requestDevice({ requiredLimits: { maxStorageBuffersPerShaderStage: 8 } });
    const manifest = await (await fetch("program/manifest.json")).json();
    const files = await (await fetch("program/kernels.json")).json();
    const kernels = new Map(await Promise.all(files.map(async (f) => [f, await (await fetch("program/kernels/" + f)).text()])));
    const session = await WebGpuSession.create(device, { manifest, kernels }, { seed: 6 });
    const out = await session.run(entry, new Map([[name, { dtype: "f32", shape, data }]]));
    return { adapter: adapter.info?.vendor ?? "", result: Array.from(out.get("result").data) };
  };
  window.ready = true;
</script>`;

describe.skipIf(td.skip !== undefined)("the WGSL runtime in headless Chromium", () => {
  const gpu = td.gpu as WebGpu;
  let dir: string;
  let server: Awaited<ReturnType<typeof serveDirectory>>;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ulc-browser-"));
    // The runtime as a browser loads it: one ES module, bundled from the TypeScript sources.
    const { build } = await import("rolldown");
    await build({ input: path.resolve("runtime/webgpu/session.ts"), platform: "browser", output: { dir, format: "esm" }, write: true, logLevel: "silent" });
    const { manifest, kernels } = emitWgsl(lowerProgram("models/classifier.ul", { bindings: { B: 2 } }));
    mkdirSync(path.join(dir, "program", "kernels"), { recursive: true });
    writeFileSync(path.join(dir, "program", "manifest.json"), JSON.stringify(manifest));
    writeFileSync(path.join(dir, "program", "kernels.json"), JSON.stringify([...kernels.keys()]));
    for (const [f, code] of kernels) writeFileSync(path.join(dir, "program", "kernels", f), code);
    writeFileSync(path.join(dir, "index.html"), PAGE);
    server = await serveDirectory(dir);
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the classifier's logits in Chromium equal Node's (Dawn), within float32 rounding", async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(server.url + "index.html");
      await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, { timeout: 30_000 });
      const data = [...randomUniform(3, 0, 0, 2 * 784)].map((v) => 2 * v - 1);
      const inBrowser = await page.evaluate(
        ([d]) => (window as unknown as { runEntry: (e: string, n: string, s: number[], d: number[]) => Promise<{ adapter: string; result: number[] }> }).runEntry("logits", "x", [2, 1, 28, 28], d),
        [data] as const,
      );
      expect(errors).toEqual([]);
      const inNode = await sessionFromProgram(gpu.device, lowerProgram("models/classifier.ul", { bindings: { B: 2 } }), { seed: 6 });
      const want = (await inNode.run("logits", new Map([["x", { dtype: "f32", shape: [2, 1, 28, 28], data: Float64Array.from(data) }]]))).get("result")!.data;
      expect(inBrowser.result).toHaveLength(want.length);
      // Two WebGPU implementations (Chromium's, Dawn on lavapipe in Node), each summing in f32 in its own way:
      // 1e-4 relative to the logits' scale (sums of up to 3136 terms, a few ulp each).
      want.forEach((w, i) => expect(Math.abs(inBrowser.result[i]! - w)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(w))));
    } finally {
      await browser.close();
    }
  }, 180_000);
});
