// Real-browser tests: Debian's Chromium driven by playwright-core (nothing downloaded by npm), pages served
// over HTTP on localhost by a small static server. The suites skip, saying why, only where Chromium or WebGPU
// is missing; CI requires both (`npm run test:ci` installs them, and sets ULC_REQUIRE_WEBGPU).
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import type { Browser } from "playwright-core";
import { testDevice, type TestDevice } from "./webgpu.js";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** The WebGPU device for the Node side of a comparison, or why the browser tests skip (a failure where CI requires them). */
export async function browserTestDevice(): Promise<TestDevice> {
  const td = await testDevice();
  if (td.gpu === undefined) return td;
  if (existsSync(CHROMIUM)) return td;
  const skip = `browser tests skipped: no Chromium at ${CHROMIUM} (run bash scripts/setup-browser.sh)`;
  if (["1", "true"].includes(process.env.ULC_REQUIRE_WEBGPU ?? "")) throw new Error(skip);
  console.warn(skip);
  return { skip };
}

/** Headless Chromium with its WebGPU on, and everything that would reach the network off. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
}

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".json": "application/json", ".css": "text/css", ".wgsl": "text/plain" };

/** Serves `dir` (and DIR/index.html for a directory) on 127.0.0.1, a free port; resolves to its URL and a function that stops it. */
export async function serveDirectory(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const root = path.resolve(dir);
  const server = createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = path.join(root, pathname.endsWith("/") ? `${pathname}index.html` : pathname);
    if (!file.startsWith(root + path.sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
