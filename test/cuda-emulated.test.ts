// The CUDA target without a GPU: the generated .cu files and the C++ host runtime, compiled by g++ with
// backends/cuda/cpp/ulc_emulate.h (blocks, threads, warp shuffles and __syncthreads on the CPU), driven through
// the same native session as on a GPU (the suites: test/support/native.ts), against the reference interpreter.
import { spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { lowerProgram } from "../compiler/lower.js";
import { openCudaSession } from "../runtime/cuda/session.js";
import { NativeSession } from "../runtime/native/session.js";
import { ReferenceSession } from "../runtime/reference.js";
import { cudaTarget } from "./support/cuda.js";
import { asF64, entryInputs, near, nativeSuites } from "./support/native.js";

nativeSuites(cudaTarget("emulated"));

describe("a sticky device error", () => {
  test("ends the host program with the error, instead of a server that fails every later request", async () => {
    const program = lowerProgram("models/classifier.ul", { bindings: { B: 1 } });
    // The emulator's second graph launch faults (the first is the parameters' init), as an illegal access would.
    process.env.ULC_EMULATE_FAULT = "2";
    let session: NativeSession;
    try {
      session = await openCudaSession(program, { seed: 1, flavour: "emulated" });
    } finally {
      delete process.env.ULC_EMULATE_FAULT;
    }
    try {
      const x = entryInputs(program, "logits");
      await expect(session.run("logits", x)).rejects.toThrow(/an illegal memory access was encountered; the device can run nothing more after this error, so the program has ended/);
      await expect(session.run("logits", x)).rejects.toThrow(/the host runtime .* stopped/);
    } finally {
      session.dispose();
    }
  }, 300_000);
});

describe("ulc build --target cuda", () => {
  test("writes a directory whose Makefile builds the emulated program, which computes what the reference does", async () => {
    const { mkdtempSync, readFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const path = await import("node:path");
    const { main } = await import("../cli/main.js");
    const dir = mkdtempSync(path.join(tmpdir(), "ulc-cuda-"));
    try {
      let stderr = "";
      const io = { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) }, env: {} };
      expect(await main(["build", "models/classifier.ul", "--target", "cuda", "--bind", "B=1", "-o", dir], io), stderr).toBe(0);
      expect(stderr).toMatch(/make -C .* emulate/);
      const make = spawnSync("make", ["-C", dir, "-j2", "emulate"], { encoding: "utf8" });
      expect(make.status, make.stderr).toBe(0);
      const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8"));
      // --target cuda builds in tf32 unless --precision says otherwise; the reference lowers the same Program.
      expect(manifest.precision).toBe("tf32");
      const session = await NativeSession.start(path.join(dir, "ulc_program_emulated"), dir, manifest, { seed: 6 });
      try {
        const program = lowerProgram("models/classifier.ul", { bindings: { B: 1 }, precision: "tf32" });
        const x = entryInputs(program, "logits");
        const want = new ReferenceSession(program, { precision: "f32", seed: 6 }).run("logits", asF64(x)).get("result")!.data;
        // f32 on both sides, sums of up to 3136 terms in another order.
        near((await session.run("logits", x)).get("result")!.data, want, (w) => 1e-4 * (1 + Math.abs(w)), "logits");
      } finally {
        session.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
