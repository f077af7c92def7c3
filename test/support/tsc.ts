// Type-checking generated code as an application would: the TypeScript compiler on a tsconfig, in its own
// process (asynchronously, so a test can do other work meanwhile).
import { spawn } from "node:child_process";
import { createRequire } from "node:module";

/** Runs `tsc -p project`; resolves to its exit status and output (the diagnostics). */
export function tsc(project: string): Promise<{ status: number | null; output: string }> {
  const bin = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "-p", project], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, output }));
  });
}
