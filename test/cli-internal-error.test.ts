// An exception escaping the front end is a bug in ulc: the CLI reports it as such and exits 3 (not 1 or 2).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test, vi } from "vitest";
import { main } from "../cli/main.js";

vi.mock("../dsl/check.js", () => ({
  checkFiles: () => {
    throw new Error("boom in the checker");
  },
}));

test("an internal error exits 3 with the stack and a plea to report it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ulc-ice-"));
  try {
    const file = join(dir, "a.ul");
    writeFileSync(file, "fn f<N>(x: f32[N]) -> f32[N] { x }\n");
    let stderr = "";
    const code = await main(["check", file], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => (stderr += s) },
      env: {},
    });
    expect(code).toBe(3);
    expect(stderr).toContain("internal error");
    expect(stderr).toContain("boom in the checker");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
