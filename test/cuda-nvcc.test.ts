// The CUDA target with the real toolchain: nvcc compiles and links every model's program (kernels and host
// runtime) with warnings as errors, for sm_90 with PTX. Without a GPU the built program must say so plainly;
// nvcc's own refusals (an architecture it lacks) and a missing nvcc are reported in words.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { emitCuda } from "../backends/cuda/program.js";
import { buildCommands } from "../backends/cuda/toolchain.js";
import { lowerProgram } from "../compiler/lower.js";
import { compileCuda, CudaError, detectArch, pruneCache, type Compiled } from "../runtime/cuda/compile.js";
import { compileNative, writeNativeBuild } from "../runtime/native/compile.js";
import { NativeSession } from "../runtime/native/session.js";

const nvcc = process.env.ULC_NVCC ?? "nvcc";
const hasNvcc = spawnSync(nvcc, ["--version"]).status === 0;
if (!hasNvcc && process.env.CI) throw new Error(`${nvcc} is not installed: the CUDA compile tests need it under CI`);

describe.skipIf(!hasNvcc)("nvcc builds the CUDA target", () => {
  const builds = new Map<string, Promise<Compiled>>();
  const build = (model: string) => {
    // In the CUDA target's default precision, tf32: its matmuls and convolutions are tensor-core GEMMs.
    if (!builds.has(model)) builds.set(model, compileCuda(emitCuda(lowerProgram(`models/${model}.ul`, { bindings: { B: 8 }, precision: "tf32" })), { flavour: "cuda", arch: "sm_90" }));
    return builds.get(model)!;
  };

  // Each model is one translation unit of a few hundred kernels: ul_small's takes nvcc about 45 s on 2 cores.
  test.each(["ul_tiny", "classifier", "ul_small"])("%s compiles and links, warnings as errors", async (model) => {
    const { binary } = await build(model);
    expect(binary).toMatch(/ulc_program$/);
  }, 600_000);

  // bf16: the GEMMs issue one mma.sync m16n8k16 BF16 per slice of 16 terms (no m16n8k8 TF32), from fragments packed
  // in registers, with nothing spilled to local memory. One compile of program.cu with the build's own flags, its
  // PTX kept and ptxas verbose.
  test("a bf16 program compiles, warnings as errors; its PTX holds mma.sync m16n8k16 BF16 and ptxas spills nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), "ulc-bf16-"));
    try {
      const build = emitCuda(lowerProgram("models/classifier.ul", { bindings: { B: 8 }, precision: "bf16" }));
      writeNativeBuild(build, dir);
      const [program] = buildCommands("cuda", "sm_90", { nvcc }).compile;
      const [tool, ...args] = program!.argv;
      const r = spawnSync(tool!, [...args, "-Xptxas", "-v", "-keep", "-keep-dir", dir], { cwd: dir, encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      const ptx = readFileSync(join(dir, "program.ptx"), "utf8");
      expect((ptx.match(/mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.bf16\.bf16\.f32/g) ?? []).length).toBeGreaterThan(0);
      expect(ptx).not.toMatch(/m16n8k8/);
      const spills = [...(r.stdout + r.stderr).matchAll(/(\d+) bytes spill stores, (\d+) bytes spill loads/g)];
      expect(spills.length).toBeGreaterThan(0);
      expect(spills.filter((m) => m[1] !== "0" || m[2] !== "0").map((m) => m[0])).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);

  test.skipIf(detectArch() !== undefined)("without a GPU the program says so", async () => {
    const { binary, dir } = await build("ul_tiny");
    const manifest = emitCuda(lowerProgram("models/ul_tiny.ul", { bindings: { B: 8 } })).manifest;
    await expect(NativeSession.start(binary, dir, manifest, { seed: 1 })).rejects.toThrow(/no CUDA GPU is usable here/);
  }, 600_000);

  test("an architecture nvcc does not know, a malformed one, and a missing nvcc are plain errors", async () => {
    const small = emitCuda(lowerProgram("models/classifier.ul", { bindings: { B: 1 } }));
    await expect(compileCuda(small, { flavour: "cuda", arch: "sm_35" })).rejects.toThrow(/nvcc \(.*\) does not support --arch sm_35/);
    await expect(compileCuda(small, { flavour: "cuda", arch: "gfx90a" })).rejects.toThrow(/expected a real GPU architecture such as sm_80/);
    await expect(compileCuda(small, { flavour: "cuda", nvcc: "/nonexistent/nvcc" })).rejects.toThrow(CudaError);
    await expect(compileCuda(small, { flavour: "cuda", nvcc: "/nonexistent/nvcc" })).rejects.toThrow(/was not found: install the CUDA toolkit/);
  }, 120_000);
});

describe("the build cache", () => {
  // A toolchain of shell commands whose objects say when they were made: a copied object keeps its first stamp.
  test("a shared unit (the host runtime) compiles once for every program made with the same command and headers", async () => {
    const cache = mkdtempSync(join(tmpdir(), "ulc-cache-"));
    const stamp = (unit: string, object: string) => ({ argv: ["sh", "-c", `cat ${unit} > ${object}; date +%s%N >> ${object}`, unit], output: object });
    const commands = { compile: [stamp("program.cpp", "program.o"), { ...stamp("host.cpp", "host.o"), shared: true }], link: { argv: ["sh", "-c", "cat program.o host.o > program"], output: "program" }, binary: "program" };
    const build = (program: string, header: string) => {
      const manifest = emitCuda(lowerProgram("models/classifier.ul", { bindings: { B: 1 } })).manifest;
      const files = new Map([["program.cpp", program], ["host.cpp", "host"], ["runtime.h", header]]);
      return compileNative({ manifest, files }, { commands, cacheDir: cache, missing: () => "", flavour: "test" });
    };
    const host = async (b: Promise<Compiled>) => readFileSync(join((await b).dir, "host.o"), "utf8");
    try {
      const first = await host(build("one model", "h1"));
      expect(first).toMatch(/^host\d+\n$/);
      expect(await host(build("another model", "h1"))).toBe(first);
      expect(await host(build("a third model", "h2"))).not.toBe(first);
      expect(readdirSync(cache).filter((f) => f.endsWith(".o"))).toHaveLength(2);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  test("keeps the most recently used programs and leaves builds under way alone", () => {
    const cache = mkdtempSync(join(tmpdir(), "ulc-cache-"));
    try {
      // p0 used longest ago ... p5 most recently; p1 used again just now.
      for (let i = 0; i < 6; i++) {
        mkdirSync(join(cache, `p${i}`));
        utimesSync(join(cache, `p${i}`), 1000 + i, 1000 + i);
      }
      utimesSync(join(cache, "p1"), 2000, 2000);
      mkdirSync(join(cache, "build-x"));
      utimesSync(join(cache, "build-x"), 10, 10);
      // Shared objects, by their own count: o0 used longest ago.
      for (let i = 0; i < 3; i++) {
        writeFileSync(join(cache, `o${i}.o`), "");
        utimesSync(join(cache, `o${i}.o`), 1000 + i, 1000 + i);
      }
      pruneCache(cache, 3, 2);
      expect(readdirSync(cache).sort()).toEqual(["build-x", "o1.o", "o2.o", "p1", "p4", "p5"]);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
