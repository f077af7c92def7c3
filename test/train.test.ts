// `ulc train` and `ulc sample` for real, on the CPU target (the default here, `auto`) and on WebGPU (lavapipe
// in CI), with Fashion-MNIST and UlTiny built small (--bind Width=32 PriorWidth=16): exact resume on both, a
// kill at any moment of a checkpoint write, the stop on a non-finite loss, bad data and bad flags, sampling to
// a PNG grid, and checkpoints that move between targets.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { main } from "../cli/main.js";
import { nvidiaGpuVisible } from "../runtime/cuda/compile.js";
import { readCheckpoint } from "../train/checkpoint.js";
import { FASHION_MNIST_DIR } from "../train/data.js";
import { decodePng } from "../train/png-decode.js";
import type { Session } from "../runtime/session.js";
import { expectSameState } from "./support/runs.js";
import { testDevice } from "./support/webgpu.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SMALL = ["--bind", "Width=32", "--bind", "PriorWidth=16", "--batch", "4"];
const device = await testDevice();
const skip = device.skip ?? (existsSync(FASHION_MNIST_DIR) ? undefined : `Fashion-MNIST is not installed (bash scripts/setup-data.sh)`);

async function ulc(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "", stderr = "";
  const code = await main(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  return { code, stdout, stderr };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ulc-train-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const out = (name: string) => join(dir, name);

describe.skipIf(skip !== undefined)("ulc train", () => {
  test("on WebGPU too, a resumed run equals an uninterrupted one, bit for bit", async () => {
    const gpu = ["--target", "webgpu", ...SMALL, "--steps", "3"];
    expect((await ulc(["train", "models/ul_tiny.ul", ...gpu, "--out", out("gpu-whole")])).code).toBe(0);
    expect((await ulc(["train", "models/ul_tiny.ul", ...gpu.slice(0, -1), "2", "--out", out("gpu-split")])).code).toBe(0);
    expect((await ulc(["train", "models/ul_tiny.ul", "--steps", "3", "--out", out("gpu-split"), "--resume"])).code).toBe(0);
    expectSameState(out("gpu-whole"), out("gpu-split"));
    expect(JSON.parse(readFileSync(join(out("gpu-whole"), "run.json"), "utf8")).target).toBe("webgpu");
  }, 300_000);

  test("a resumed run equals an uninterrupted one, bit for bit (parameters, Adam state, moving average, metrics)", async () => {
    const whole = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--steps", "4", "--checkpoint-every", "2", "--out", out("whole")]);
    expect(whole.code, whole.stderr).toBe(0);
    // `auto` on a machine without a GPU is the CPU, and run.json records it so that --resume stays there.
    expect(JSON.parse(readFileSync(join(out("whole"), "run.json"), "utf8")).target).toBe(nvidiaGpuVisible() ? expect.any(String) : "cpu");
    const first = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--steps", "2", "--out", out("split")]);
    expect(first.code, first.stderr).toBe(0);
    // --resume takes the run's settings from run.json; giving them again, with the same values, changes nothing
    // (test/cli.test.ts: other values are refused).
    const rest = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--steps", "4", "--out", out("split"), "--resume"]);
    expect(rest.code, rest.stderr).toBe(0);
    expectSameState(out("whole"), out("split"));
    expect(readFileSync(join(out("split"), "metrics.jsonl"), "utf8")).toBe(readFileSync(join(out("whole"), "metrics.jsonl"), "utf8"));
    const metrics = readFileSync(join(out("whole"), "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(Object.keys(metrics[0]).sort()).toEqual(["bpd", "bpp", "decoder_loss", "kl", "loss", "prior_loss", "step"]);
    expect(readFileSync(join(out("whole"), "loss.svg"), "utf8")).toMatch(/^<svg[^]*<polyline/);
    // A run directory already in use is not overwritten.
    const clash = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--steps", "1", "--out", out("whole")]);
    expect([clash.code, clash.stderr]).toEqual([2, expect.stringMatching(/already holds a run; pass --resume/)]);
  }, 300_000);

  test.skipIf(nvidiaGpuVisible())("--target cuda without a GPU stops with exit 5 before building anything", async () => {
    const r = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--target", "cuda", "--steps", "1", "--out", out("no-gpu")]);
    expect([r.code, r.stderr]).toEqual([5, expect.stringMatching(/the cuda target cannot run here: no NVIDIA GPU here .*ULC_CUDA=emulated/)]);
  });

  test("eval --classifier reads a padded canvas through its centre: ul_small's 32×32 samples against the 28×28 classifier", async () => {
    const tiny = ["--steps", "1", "--batch", "2"];
    expect((await ulc(["train", "models/classifier.ul", ...tiny, "--out", out("clf")])).code).toBe(0);
    expect((await ulc(["train", "models/ul_small.ul", ...tiny, "--out", out("small")])).code).toBe(0);
    const r = await ulc(["eval", out("small"), "--classifier", out("clf"), "--n", "4", "--recon", "2", "--fd-n", "4", "--steps", "2", "--batch", "2"]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out("small"), "eval.json"), "utf8"));
    expect(Number.isFinite(report.frechet.distance)).toBe(true);
  }, 300_000);

  test("--target cpu without a C++ compiler stops with exit 5, naming the package to install", async () => {
    process.env.ULC_CXX = "/nonexistent/g++";
    try {
      const r = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--target", "cpu", "--steps", "1", "--out", out("no-cxx")]);
      expect([r.code, r.stderr]).toEqual([5, expect.stringMatching(/the cpu target cannot run here: \/nonexistent\/g\+\+ was not found: install Debian's g\+\+/)]);
    } finally {
      delete process.env.ULC_CXX;
    }
  }, 120_000);

  test("a non-finite loss stops the run with exit 4 and keeps the last good checkpoint", async () => {
    const r = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--lr", "1e30", "--steps", "20", "--checkpoint-every", "1", "--out", out("nan")]);
    expect(r.code, r.stderr).toBe(4);
    const m = /step (\d+): (\w+) is (NaN|-?Infinity); training stopped\. The last good checkpoint \(step (\d+)\) is kept/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const [bad, good] = [Number(m![1]), Number(m![4])];
    expect(good).toBe(bad - 1);
    const { state } = readCheckpoint(out("nan"));
    expect(state.step).toBe(good);
    for (const [name, t] of state.tensors) expect(t.data.every(Number.isFinite), name).toBe(true);
    expect(readFileSync(join(out("nan"), "metrics.jsonl"), "utf8").trim().split("\n")).toHaveLength(good);
  }, 300_000);

  test("bad data and bad flags get a clear message and exit 2", async () => {
    const missing = await ulc(["train", "models/ul_tiny.ul", "--data", join(dir, "no-such-data"), "--out", out("x")]);
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringMatching(/no-such-data: no such file or directory/)]);
    writeFileSync(join(dir, "broken.idx"), Uint8Array.of(0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3));
    const broken = await ulc(["train", "models/ul_tiny.ul", "--data", join(dir, "broken.idx"), "--out", out("x")]);
    expect([broken.code, broken.stderr]).toEqual([2, expect.stringMatching(/broken\.idx: the header promises 9×28×28 = 7056 bytes of data, the file has 3/)]);
    const hyper = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--set", "loss_factr=2", "--out", out("x")]);
    expect([hyper.code, hyper.stderr]).toEqual([2, expect.stringMatching(/--set loss_factr: model UlTiny has no hyper 'loss_factr' \(it has loss_factor/)]);
    const lr = await ulc(["train", "models/ul_tiny.ul", "--lr", "-1"]);
    expect([lr.code, lr.stderr]).toEqual([2, expect.stringMatching(/--lr must be a positive number, got '-1'/)]);
    const resume = await ulc(["train", "models/ul_tiny.ul", "--resume", "--out", out("never-trained")]);
    expect([resume.code, resume.stderr]).toEqual([2, expect.stringMatching(/holds no run to resume/)]);
  }, 120_000);

  test("a process killed while writing checkpoints leaves a valid one, and the run resumes from it", async () => {
    const build = inject("buildError");
    expect(build, build).toBe("");
    const run = out("killed");
    const args = [join(ROOT, "bin/ulc.js"), "train", "models/ul_tiny.ul", ...SMALL, "--steps", "1000", "--checkpoint-every", "1", "--out", run];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: "ignore" });
    // Every step writes a checkpoint, so most of the time goes to writing one: SIGKILL at a moment past the
    // first one lands inside a write or between two.
    for (let i = 0; i < 600 && !existsSync(join(run, "checkpoint.safetensors")); i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500 + Math.random() * 1500));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const { state } = readCheckpoint(run);
    expect(state.step).toBeGreaterThanOrEqual(1);
    const resumed = await ulc(["train", "models/ul_tiny.ul", "--steps", String(state.step + 1), "--out", run, "--resume"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(readCheckpoint(run).state.step).toBe(state.step + 1);
  }, 300_000);

  test("ulc sample writes a PNG grid; the same seed gives the same images, another seed others, another target the same", async () => {
    const png = async (file: string, seed: string, run = "whole", target?: string) => {
      const r = await ulc(["sample", out(run), "--n", "4", "--steps", "3", "--seed", seed, ...(target ? ["--target", target] : []), "-o", join(dir, file)]);
      expect(r.code, r.stderr).toBe(0);
      return { file };
    };
    for (const [name, seed] of [["a.png", "1"], ["b.png", "1"], ["c.png", "2"]] as const) await png(name, seed);
    const [a, b, c] = ["a.png", "b.png", "c.png"].map((n) => decodePng(readFileSync(join(dir, n))));
    // A 2×2 grid of 30×30 images, 62 pixels wide, scaled up 9 times to be looked at.
    expect([a!.width, a!.height, a!.channels]).toEqual([9 * (2 * 30 + 2), 9 * (2 * 30 + 2), 1]);
    expect(b).toEqual(a);
    expect(c!.pixels).not.toEqual(a!.pixels);
    // The CPU run's checkpoint sampled on WebGPU, and the WebGPU run's on the CPU: the same random draws, f32
    // arithmetic in another order, so the same images up to a level of quantisation in a few pixels.
    for (const [run, other] of [
      ["whole", "webgpu"],
      ["gpu-whole", "cpu"],
    ] as const) {
      const here = decodePng(readFileSync(join(dir, (await png(`${run}-here.png`, "1", run)).file)))!;
      const there = decodePng(readFileSync(join(dir, (await png(`${run}-there.png`, "1", run, other)).file)))!;
      const off = here.pixels.map((p, i) => Math.abs(p - there.pixels[i]!));
      // (reduce, not Math.max(...off): a grid scaled up for viewing holds more pixels than a call has arguments)
      expect(off.reduce((a, b) => Math.max(a, b), 0), `${run} sampled on ${other}`).toBeLessThanOrEqual(1);
      expect(off.filter((d) => d > 0).length).toBeLessThanOrEqual(0.02 * off.length);
    }
    const none = await ulc(["sample", join(dir, "nothing-here"), "-o", join(dir, "x.png")]);
    expect([none.code, none.stderr]).toEqual([2, expect.stringMatching(/is not a run directory \(no run\.json\)/)]);
  }, 300_000);
});

describe.skipIf(device.skip !== undefined)("the moving average on WebGPU", () => {
  test("it folds as decay·ema + (1 − decay)·param, serves plain entries, and never trains", async () => {
    const { lowerProgram } = await import("../compiler/lower.js");
    const { sessionFromProgram } = await import("../runtime/webgpu/compile.js");
    const program = lowerProgram("models/ul_tiny.ul", { bindings: { B: 2, Width: 8, PriorWidth: 8 } });
    const x = new Map([["x", { dtype: "f32" as const, shape: [2, 1, 28, 28], data: new Float32Array(2 * 784).map((_, i) => Math.sin(i)) }]]);
    const open = () => sessionFromProgram(device.gpu!.device, program, { seed: 3 });
    const [a, b] = [await open(), await open()];
    const params = async (s: Session) => new Map([...(await s.exportState()).tensors].filter(([k]) => k.startsWith("param:")));
    for (const s of [a, b]) await s.trainStep("fit", x);
    const p1 = await params(a);
    await a.updateEma(0); // the average starts at the parameters
    for (const s of [a, b]) await s.trainStep("fit", x);
    const p2 = await params(a);
    await a.updateEma(0.25);
    const ema = new Map([...(await a.exportState()).tensors].filter(([k]) => k.startsWith("ema:")).map(([k, t]) => [`param:${k.slice(4)}`, t]));
    for (const [name, t] of ema) {
      const [u, v] = [p1.get(name)!.data, p2.get(name)!.data];
      t.data.forEach((e, i) => expect(Math.abs(e - (0.25 * u[i]! + 0.75 * v[i]!))).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(e))));
    }
    // Plain entries read the average: the same as a session whose parameters are the average.
    a.useEma(true);
    const c = await open();
    await c.importState({ step: 0, tensors: ema });
    expect((await a.run("encode", x)).get("result")!.data).toEqual((await c.run("encode", x)).get("result")!.data);
    // A train step does not: it matches the twin that never kept an average.
    expect(await a.trainStep("fit", x)).toEqual(await b.trainStep("fit", x));
    // A state that does not fit the model is refused before anything is replaced.
    const w = ema.get("param:encoder.mlp.last.weight")!;
    await expect(c.importState({ step: 0, tensors: new Map([...ema, ["param:nope", w]]) })).rejects.toThrow(/the state holds 'param:nope', which model UlTiny does not have/);
    await expect(c.importState({ step: 0, tensors: new Map([...ema, ["param:encoder.mlp.last.weight", { ...w, shape: [1, w.data.length] }]]) })).rejects.toThrow(/is f32\[1, \d+\], but model UlTiny declares f32\[/);
    expect((await a.run("encode", x)).get("result")!.data).toEqual((await c.run("encode", x)).get("result")!.data);
    for (const s of [a, b, c]) s.dispose();
  }, 300_000);
});

describe.skipIf(skip !== undefined)("stage 2, the VAE baseline and ulc eval", () => {
  test("a base model trains on a stage-1 run's latents and samples through its decoder; eval measures both stages and a VAE", async () => {
    // 48 Fashion-MNIST images as an IDX folder, so encoding the whole set for stage 2 takes a dozen calls.
    const { loadImages } = await import("../train/data.js");
    const full = loadImages("fashion-mnist", "train");
    const data = join(dir, "small-data");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(data);
    const header = (dims: number[]) => Buffer.from([0, 0, 8, dims.length, ...dims.flatMap((d) => [d >>> 24, (d >>> 16) & 255, (d >>> 8) & 255, d & 255])]);
    writeFileSync(join(data, "train-images-idx3-ubyte"), Buffer.concat([header([48, 28, 28]), full.pixels.subarray(0, 48 * 784)]));
    writeFileSync(join(data, "train-labels-idx1-ubyte"), Buffer.concat([header([48]), full.labels!.subarray(0, 48)]));
    writeFileSync(join(data, "t10k-images-idx3-ubyte"), Buffer.concat([header([48, 28, 28]), full.pixels.subarray(0, 48 * 784)]));
    writeFileSync(join(data, "t10k-labels-idx1-ubyte"), Buffer.concat([header([48]), full.labels!.subarray(0, 48)]));
    const ok = async (argv: string[]) => {
      const r = await ulc(argv);
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    await ok(["train", "models/ul_tiny.ul", ...SMALL, "--data", data, "--steps", "2", "--out", out("s1")]);
    await ok(["train", "models/ul_tiny_base.ul", "--bind", "Width=16", "--bind", "Depth=1", "--batch", "4", "--latents-from", out("s1"), "--steps", "2", "--out", out("s2")]);
    const latents = (await import("../runtime/safetensors.js")).decodeSafetensors(readFileSync(join(out("s2"), "latents.safetensors"))).tensors.get("latents")!;
    expect(latents.shape).toEqual([48, 16]);
    const sampled = await ok(["sample", out("s2"), "--n", "4", "--steps", "2", "-o", join(dir, "s2.png")]);
    expect(sampled.stdout).toMatch(/stage 2 over .*s1's decoder/);
    expect(decodePng(readFileSync(join(dir, "s2.png"))).width).toBe(9 * 62);
    await ok(["train", "models/classifier.ul", "--data", data, "--batch", "4", "--steps", "2", "--out", out("cls")]);
    const flags = ["--batch", "4", "--n", "8", "--recon", "4", "--fd-n", "8", "--steps", "2", "--classifier", out("cls")];
    await ok(["eval", out("s1"), ...flags]);
    const s1 = JSON.parse(readFileSync(join(out("s1"), "eval.json"), "utf8"));
    expect(s1.heldOut.examples).toBe(8);
    expect(s1.heldOut.bpp).toBeGreaterThan(0);
    expect(s1.psnr).toBeGreaterThan(0);
    expect(s1.frechet.distance).toBeGreaterThanOrEqual(0);
    expect(s1.frechet.classifier.accuracy).toBeGreaterThanOrEqual(0);
    expect(decodePng(readFileSync(join(out("s1"), "eval-reconstructions.png"))).width).toBeGreaterThan(0);
    await ok(["eval", out("s2"), ...flags]);
    expect(JSON.parse(readFileSync(join(out("s2"), "eval.json"), "utf8")).frechet.sampler).toMatch(/^stage 2 over/);
    await ok(["train", "models/vae_tiny.ul", "--bind", "Width=32", "--batch", "4", "--data", data, "--steps", "2", "--out", out("vae")]);
    await ok(["eval", out("vae"), ...flags]);
    const vae = JSON.parse(readFileSync(join(out("vae"), "eval.json"), "utf8"));
    expect(Object.keys(vae.heldOut).sort()).toEqual(["bpp", "decoder_loss", "examples", "kl", "loss"]);
    expect(vae.psnr).toBeGreaterThan(0);
    expect(vae.frechet).toBeUndefined(); // a VAE alone has no prior to sample from: stage 2 does that
    const noPrior = await ulc(["sample", out("vae"), "--n", "4", "-o", join(dir, "vae.png")]);
    expect([noPrior.code, noPrior.stderr]).toEqual([2, expect.stringMatching(/sampling .*vae \(--sampler ddpm\) needs an entry that model VaeTiny lacks: prior_step\(z: f32\[B, \.\.\.Z\], t: f32, s: f32\) -> f32\[B, \.\.\.Z\] is missing .*; train a stage-2 base model/)]);
  }, 600_000);
});

describe("checkpoint writes under SIGKILL", () => {
  test("a writer killed at random moments always leaves a whole checkpoint, old or new", async () => {
    const build = inject("buildError");
    expect(build, build).toBe("");
    const run = out("atomic");
    spawnSync("mkdir", ["-p", run]);
    // A child rewrites a 32 MiB checkpoint in a loop; each version's tensors are filled with its step.
    const script = `
      const { writeCheckpoint } = await import(${JSON.stringify(join(ROOT, "dist/train/checkpoint.js"))});
      for (let step = 1; ; step++) {
        const data = new Float32Array(8 << 20).fill(step);
        writeCheckpoint(${JSON.stringify(run)}, { step, tensors: new Map([["param:w", { dtype: "f32", shape: [8 << 20], data }]]) }, {});
      }`;
    for (let trial = 0; trial < 4; trial++) {
      const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: "ignore" });
      // The first trial waits for a first checkpoint (on a loaded machine it can take longer than the kill delay).
      while (!existsSync(join(run, "checkpoint.safetensors"))) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 700 + Math.random() * 900));
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      const { state } = readCheckpoint(run);
      const w = state.tensors.get("param:w")!.data;
      expect(w.length).toBe(8 << 20);
      expect(w.every((v) => v === state.step)).toBe(true);
    }
  }, 120_000);
});
