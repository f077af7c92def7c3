// The CPU target: the generated C++ kernels, BLAS calls and host runtime, built by g++ for this machine, driven
// through the native session (the suites: test/support/native.ts), against the reference interpreter.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, test } from "vitest";
import { openCpuSession } from "../runtime/cpu/session.js";
import { roundBf16, roundTf32 } from "../compiler/scalar.js";
import { nativeSuites } from "./support/native.js";

nativeSuites({
  name: "the CPU",
  open: (program, seed) => openCpuSession(program, { seed }),
  outOfMemory: /out of memory: the arena needs 1073741824\.\d MiB .*: try a smaller batch/,
  precision: "fp32",
});

describe.each([
  // TF32: a NaN comes back as the same NaN.
  ["ulc_round_tf32", roundTf32, (u: number) => u],
  // bfloat16: a NaN keeps its sign and high payload, quiet, with its low 16 bits cleared (a bfloat16 NaN itself).
  ["ulc_round_bf16", roundBf16, (u: number) => ((u | 0x00400000) & 0xffff0000) >>> 0],
] as const)("ulc_scalar.h's %s on float bits", (fn, round, nan) => {
  // Through a session every NaN is JavaScript's one NaN; here the payloads that masking would turn into Inf
  // (0x7f800001) or -0 (0x7fffffff) are given as bits, and must come back as NaN.
  test("NaN payloads stay NaN; ties, overflow and subnormals as the interpreter rounds them", () => {
    const dir = mkdtempSync(join(tmpdir(), "ulc-round-"));
    try {
      const bits = [0x7f800001, 0x7fffffff, 0xffffffff, 0xff800fff, 0x7fc00000, 0x7f800000, 0xff800000, 0x7f7ff000, 0x7f7fefff, 0x7f7f8000, 0x7f7f7fff, 0x3f801000, 0xbf801000, 0x3f808000, 0x3f818000, 0x00001000, 0x00008000, 0x00018000, 0x80000001, 0x00000000];
      const source = [
        "#include <cmath>",
        "#include <cstdint>",
        "#include <cstdio>",
        "#include <cstring>",
        "#define ULC_FN static inline",
        "ULC_FN float ulc_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }",
        "ULC_FN unsigned ulc_mulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }",
        "ULC_FN float ulc_rsqrt(float x) { return 1.0f / sqrtf(x); }",
        `#include "${resolve("backends/native/cpp/ulc_scalar.h")}"`,
        `int main() { const unsigned in[] = {${bits.map((b) => `0x${b.toString(16)}u`).join(", ")}};`,
        `  for (unsigned u : in) std::printf("%u\\n", ulc_float_bits(${fn}(ulc_as_float(u)))); }`,
      ].join("\n");
      writeFileSync(join(dir, "t.cpp"), source);
      execFileSync("g++", ["-std=c++17", "-O3", "-march=native", "-Wall", "-Werror", "t.cpp", "-o", "t"], { cwd: dir });
      const got = execFileSync(join(dir, "t"), { encoding: "utf8" }).trim().split("\n").map(Number);
      const f32 = (u: number) => new Float32Array(Uint32Array.of(u).buffer)[0]!;
      const u32 = (f: number) => new Uint32Array(Float32Array.of(f).buffer)[0]!;
      bits.forEach((u, i) => {
        const isNan = (u & 0x7fffffff) > 0x7f800000;
        expect(got[i], `0x${u.toString(16)}`).toBe(isNan ? nan(u) : u32(round(f32(u))));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
