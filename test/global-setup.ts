// Runs once before the test files: compiles the project into dist/ so that tests which spawn the real
// `bin/ulc.js` see current code. A failing build does not abort the run (vitest runs the TypeScript sources
// directly, so most tests do not need dist/); its output is handed to the tests as `buildError`, and the
// tests that need dist/ fail with it. ULC_PREBUILT=1 skips the build (`npm run test:ci` builds first).
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** tsc's output when `tsc -p tsconfig.json` failed in the global setup; "" when it passed or was skipped. */
    buildError: string;
  }
}

export default function setup(project: TestProject): void {
  if (process.env.ULC_PREBUILT === "1") {
    project.provide("buildError", "");
    return;
  }
  const root = fileURLToPath(new URL("..", import.meta.url));
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: root, encoding: "utf8" });
  const failed = r.status !== 0 || r.error !== undefined;
  const detail = `${r.error ? String(r.error) + "\n" : ""}${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
  project.provide("buildError", failed ? `\`tsc -p tsconfig.json\` failed (exit ${r.status}):\n${detail}` : "");
}
