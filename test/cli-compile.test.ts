// `ulc build --emit ir` and `ulc gradcheck`, run in-process with captured output.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { CliIo } from "../cli/io.js";
import { main } from "../cli/main.js";
import { lowerProgram } from "../compiler/lower.js";
import { gradcheck } from "../runtime/gradcheck.js";

let dir: string;
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ulc-compile-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ulc(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const io: CliIo = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

const REGRESSION = `
from std.optim import Sgd
model Fit {
  param w: f32[3] = randn([3])
  hyper scale = 2.0
  train step<B>(x: f32[B, 3]) -> { loss: f32 } minimize loss with Sgd(lr = 0.1) {
    let r = x * w * scale - 1.0
    { loss: mean(r * r) }
  }
  entry predict<B>(x: f32[B, 3]) -> f32[B] { sum(x * w, axis = 1) }
}
`;

describe("ulc build --emit ir", () => {
  test("prints every graph with its ops, shapes and outputs", async () => {
    const r = await ulc(["build", file("fit.ul", REGRESSION), "--emit", "ir", "--bind", "B=4"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^init \{/m);
    expect(r.stdout).toMatch(/^train step \{/m);
    expect(r.stdout).toMatch(/^entry predict \{/m);
    expect(r.stdout).toContain('f32[4, 3] = input{name="x"}()');
    expect(r.stdout).toContain('param{name="w"}');
    // The train step returns the loss, the updated parameter and the optimizer's state.
    expect(r.stdout).toMatch(/return loss: %\d+, param:w: %\d+, optimizer\.velocity\.w: %\d+/);
  });

  test("--stats prints op counts, kernels and planned memory per entry", async () => {
    const r = await ulc(["build", file("stats.ul", REGRESSION), "--emit", "ir", "--bind", "B=4", "--stats", "-o", join(dir, "stats.ir")]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^entry\s+traced ops\s+ops\s+kernels\s+intermediates MiB\s+arena MiB$/m);
    expect(r.stderr).toMatch(/^step\s+\d+\s+\d+\s+\d+\s+[\d.]+\s+[\d.]+$/m);
    expect(r.stderr).toMatch(/^predict\s+\d+/m);
  });

  test("--entry and -o write one graph to a file", async () => {
    const out = join(dir, "predict.ir");
    const r = await ulc(["build", file("fit2.ul", REGRESSION), "--emit", "ir", "--bind", "B=2", "--entry", "predict", "-o", out]);
    expect(r.code).toBe(0);
    const text = readFileSync(out, "utf8");
    expect(text).toContain("entry predict {");
    expect(text).not.toContain("train step {");
  });

  test("an unbound dim, an unknown entry and an unknown target are usage errors", async () => {
    const f = file("fit3.ul", REGRESSION);
    const unbound = await ulc(["build", f, "--emit", "ir"]);
    expect(unbound.code).toBe(2);
    expect(unbound.stderr).toContain("--bind B=");
    const entry = await ulc(["build", f, "--emit", "ir", "--bind", "B=2", "--entry", "nope"]);
    expect(entry.code).toBe(2);
    expect(entry.stderr).toContain("no entry 'nope'");
    const target = await ulc(["build", f, "--emit", "wgsl", "--bind", "B=2"]);
    expect(target.code).toBe(2);
    const tile = await ulc(["build", f, "--emit", "ir", "--bind", "B=2", "--tile", "cpu"]);
    expect([tile.code, tile.stderr]).toEqual([2, "ulc build: --tile goes with --target wgsl\n"]);
    const kind = await ulc(["build", f, "--target", "wgsl", "--bind", "B=2", "--tile", "tpu", "-o", join(dir, "tpu")]);
    expect([kind.code, kind.stderr]).toEqual([2, expect.stringContaining("'tpu' is not a tiling; the choices are gpu, cpu and none")]);
  });

  test("a model with errors is not built: diagnostics and exit 1", async () => {
    const r = await ulc(["build", file("broken.ul", REGRESSION.replace("x * w * scale", "x * v")), "--emit", "ir", "--bind", "B=2"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("E0301");
    expect(r.stdout).toBe("");
  });
});

describe("ulc gradcheck", () => {
  test("passes on a correct model and prints a row per parameter", async () => {
    const r = await ulc(["gradcheck", file("ok.ul", REGRESSION), "--runs", "3", "--seed", "4"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^w\s+\[3\]\s+\S+\s+\S+\s+\d+\s+ok$/m);
    expect(r.stdout).toContain("ok: 1 parameter, reverse mode agrees");
  });

  test("ul_tiny's train step passes over all its parameters", async () => {
    const r = await ulc(["gradcheck", "models/ul_tiny.ul", "--runs", "1"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ok: 68 parameters");
    expect(r.stdout).toMatch(/^encoder\.mlp\.first\.weight\s+\[784, 512\]/m);
  }, 180_000);

  test("reports a mismatch, naming the parameter and the seed, when the gradient is not the derivative", async () => {
    // stop_gradient makes reverse mode differentiate only one factor: d/dw sum(sg(w)·w) is w, the true derivative 2w.
    const cheat = REGRESSION.replace("{ loss: mean(r * r) }", "{ loss: mean(r * r) + sum(stop_gradient(w) * w) }");
    const r = await ulc(["gradcheck", file("cheat.ul", cheat), "--runs", "2", "--seed", "10"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^w .*MISMATCH$/m);
    expect(r.stderr).toMatch(/gradient mismatch in w \(seed 1[01]\).*rerun with --seed 1[01] --runs 1/);
  });

  // An L1 loss is piecewise smooth: along a random direction, a central difference whose two points straddle a
  // zero of some error element estimates a mean of the slopes either side, not the gradient (err/tol ~5000 on
  // seed 8 here before kinks were told apart).
  const L1 = `
from std.layers import Linear
from std.optim import Adam
model L1Fit {
  net: Linear<16, 64>
  train fit<B>(x: f32[B, 16]) -> { loss: f32 } minimize loss with Adam(lr = 1e-3) {
    { loss: mean(abs(net(x) - 0.5)) }
  }
}
`;

  test("a kink between the finite-difference points is named, and the run compared at a smaller step instead", async () => {
    const r = await ulc(["gradcheck", file("l1.ul", L1), "--bind", "B=64", "--runs", "10"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^net\.weight\s+\[16, 64\].*\sok$/m);
    expect(r.stdout).toMatch(/^net\.weight: seed \d+'s points at step 1e-5 straddle a kink of the loss near element \[\d+, \d+\] \(slopes \S+ and \S+ either side, reverse mode's \S+ between\); at step 1e-6 they do not, and the run is compared there$/m);
  });

  test("a run whose every step straddles a kink is reported as such, not as a mismatch", () => {
    // At steps 1, 0.1 and 0.01 the points cross zeros of many of the 4096 errors: no step avoids the kinks.
    const program = lowerProgram(file("l1-wide.ul", L1), { bindings: { B: 64 } });
    const report = gradcheck(program, { runs: 2, seed: 0, epsilon: 1 });
    const weight = report.params.find((p) => p.name === "net.weight")!;
    expect(report.ok).toBe(true);
    expect(weight.kinks).toBe(2);
    expect(weight.kink).toMatchObject({ seed: 0, epsilon: 1 });
    expect(weight.kink!.comparedAt).toBeUndefined();
    expect(Math.min(weight.kink!.left, weight.kink!.right)).toBeLessThanOrEqual(weight.kink!.analytic);
    expect(Math.max(weight.kink!.left, weight.kink!.right)).toBeGreaterThanOrEqual(weight.kink!.analytic);
  });

  test("a wrong gradient in a loss with kinks is still a mismatch", async () => {
    const cheat = L1.replace("mean(abs(net(x) - 0.5))", "mean(abs(net(x) - 0.5)) + sum(stop_gradient(net.bias) * net.bias)");
    const r = await ulc(["gradcheck", file("l1-cheat.ul", cheat), "--bind", "B=64", "--runs", "3"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^net\.bias .*MISMATCH$/m);
  });

  test("a model without a train entry is a usage error", async () => {
    const r = await ulc(["gradcheck", file("plain.ul", "model P {\n  param w: f32[2] = 1.0\n  entry f(x: f32[2]) -> f32[2] { x * w }\n}\n")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no train entry");
  });
});
