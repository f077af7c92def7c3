// The CPU target: the generated C++ kernels, BLAS calls and host runtime, built by g++ for this machine, driven
// through the native session (the suites: test/support/native.ts), against the reference interpreter.
import { readdirSync } from "node:fs";
import { describe, test } from "vitest";
import { lowerProgram } from "../compiler/lower.js";
import { openCpuSession } from "../runtime/cpu/session.js";
import { ReferenceSession } from "../runtime/reference.js";
import { everyKernel, nativeSuites } from "./support/native.js";

nativeSuites({
  name: "the CPU",
  open: (program, seed) => openCpuSession(program, { seed }),
  outOfMemory: /out of memory: the arena needs 1073741824\.\d MiB .*: try a smaller batch/,
});

describe("every model in models/ on the CPU", () => {
  const models = readdirSync("models").filter((f) => f.endsWith(".ul"));

  // B = 2: batch statistics and the low-discrepancy times see more than one example.
  test.each(models)("%s: the initial parameters, every entry, a train step, the moving average", async (file) => {
    const program = lowerProgram(`models/${file}`, { bindings: { B: 2 } });
    const session = await openCpuSession(program, { seed: 8 });
    try {
      await everyKernel(session, new ReferenceSession(program, { precision: "f32", seed: 8 }), program, "all");
    } finally {
      session.dispose();
    }
  }, 300_000);
});
