// Data-parallel `ulc train` for real: Open MPI's mpirun with 2 ranks on this machine, on the CPU target and on
// the CUDA target's CPU emulation, against one process training the same global batch. Oracles:
//  - one process at the same global batch: the metrics each step, the parameters at the end;
//  - the float64 reference interpreter: how far float32 rounding alone takes one process from exact arithmetic
//    in the same steps. Two ranks differ from one only in how the batch's sums are ordered (each rank sums its
//    half, then the halves are averaged), which is one more float32 rounding, so their distance from one
//    process must stay within that;
//  - a run killed mid-training and resumed on 2 ranks against the same run never killed (resume is exact).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, test } from "vitest";
import { emitCpu } from "../backends/cpu/program.js";
import { lowerProgram } from "../compiler/lower.js";
import { writeNativeBuild } from "../runtime/native/compile.js";
import { ReferenceSession } from "../runtime/reference.js";
import { BatchOrder, imageData, inputLayout } from "../train/batches.js";
import { readCheckpoint } from "../train/checkpoint.js";
import { FASHION_MNIST_DIR, loadImages } from "../train/data.js";
import { expectSameState } from "./support/runs.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SIZE = { Width: 32, PriorWidth: 16 };
const SMALL = ["--bind", `Width=${SIZE.Width}`, "--bind", `PriorWidth=${SIZE.PriorWidth}`, "--batch", "16", "--seed", "3"];
const hasMpirun = spawnSync("mpirun", ["--version"]).status === 0;
const skip = !existsSync(FASHION_MNIST_DIR) ? "Fashion-MNIST is not installed (bash scripts/setup-data.sh)" : !hasMpirun && !process.env.CI ? "Open MPI is not installed (bash scripts/setup-mpi.sh)" : undefined;
// Open MPI refuses root unless told; CI runs as root.
const ENV = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1" };

const dir = mkdtempSync(join(tmpdir(), "ulc-mpi-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const out = (name: string) => join(dir, name);

function start(args: readonly string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<{ code: number | null; output: string }> } {
  const child = spawn(process.execPath, [join(ROOT, "bin/ulc.js"), "train", "models/ul_tiny.ul", ...SMALL, ...args], { cwd: ROOT, env: { ...ENV, ...env } });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  return { child, done: new Promise((resolve) => child.on("close", (code) => resolve({ code, output }))) };
}

async function train(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { code, output } = await start(args, env).done;
  expect(code, output).toBe(0);
  return output;
}

function metrics(run: string): Record<string, number>[] {
  return readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
}

/** The spacing of float32 numbers at |x|. */
function ulp32(x: number): number {
  return 2 ** (Math.floor(Math.log2(Math.abs(x))) - 23);
}

/** The parameters after `steps` steps of the one-process run, in float64 arithmetic (same init, batches, noise). */
function exactParameters(steps: number): Map<string, ArrayLike<number>> {
  const program = lowerProgram("models/ul_tiny.ul", { bindings: { ...SIZE, B: 16 } });
  const set = loadImages("fashion-mnist", "train");
  const data = imageData(set, inputLayout(program.entries.find((e) => e.name === "fit")!, set));
  const order = new BatchOrder(data.count, 16, 3);
  const session = new ReferenceSession(program, { precision: "f64", seed: 3 });
  for (let step = 1; step <= steps; step++) session.trainStep("fit", new Map([...data.inputs(order.indices(step))].map(([k, t]) => [k, { ...t, data: Float64Array.from(t.data) }])));
  return new Map([...session.params].map(([name, t]) => [name, t.data]));
}

function maxDistance(a: Map<string, ArrayLike<number>>, b: Map<string, ArrayLike<number>>): number {
  let worst = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  return worst;
}

function parameters(run: string): Map<string, ArrayLike<number>> {
  const { tensors } = readCheckpoint(run).state;
  return new Map([...tensors].filter(([k]) => k.startsWith("param:")).map(([k, t]) => [k.slice("param:".length), t.data]));
}

function expectEqualToOneProcess(one: string, two: string, steps: number): void {
  const [m1, m2] = [metrics(one), metrics(two)];
  expect(m2.map((r) => r.step)).toEqual(m1.map((r) => r.step));
  // Each metric is a mean over the batch, taken as the mean of the two halves' means: a few roundings apart.
  for (const [i, row] of m1.entries()) for (const [k, v] of Object.entries(row)) expect(Math.abs(m2[i]![k]! - v), `${k} at step ${row.step}`).toBeLessThanOrEqual(4 * ulp32(v));
  const exact = exactParameters(steps);
  const rounding = maxDistance(parameters(one), exact);
  expect(rounding).toBeGreaterThan(0);
  expect(maxDistance(parameters(two), parameters(one))).toBeLessThanOrEqual(rounding);
}

/** The pid of rank `rank`'s `ulc train` process of the job training into `run`. */
function rankProcess(run: string, rank: number): number | undefined {
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmdline.includes(run) || cmdline.includes("mpirun")) continue;
      if (readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`OMPI_COMM_WORLD_RANK=${rank}`)) return Number(pid);
    } catch {
      // the process ended meanwhile
    }
  }
  return undefined;
}

describe.skipIf(skip !== undefined)("mpirun -np 2 ulc train", () => {
  test("on the CPU: 2 ranks train what 1 process trains on the same global batch; a killed rank ends the job, and --resume on 2 ranks continues exactly", async () => {
    await train(["--target", "cpu", "--steps", "20", "--out", out("one")]);
    const log = await train(["--target", "cpu", "--steps", "20", "--ranks", "2", "--out", out("two")]);
    expect(log).toMatch(/batch 16 over 2 ranks \(8 each; MPI_Allreduce through host memory\)/);
    expectEqualToOneProcess(out("one"), out("two"), 20);

    // Killed: rank 1 dies mid-training; mpirun ends rank 0, which says so, within seconds.
    const job = start(["--target", "cpu", "--steps", "100000", "--checkpoint-every", "10", "--ranks", "2", "--out", out("killed")]);
    let pid: number | undefined;
    for (let i = 0; i < 600 && !(existsSync(join(out("killed"), "checkpoint.safetensors")) && (pid = rankProcess(out("killed"), 1))); i++) await new Promise((r) => setTimeout(r, 100));
    expect(pid, "rank 1 never started training").toBeDefined();
    const killedAt = Date.now();
    process.kill(pid!, "SIGKILL");
    const { code, output } = await job.done;
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(code).not.toBe(0);
    expect(output).toMatch(/rank 0 of 2: the job was ended/);
    expect(output).toMatch(/rank 1 .* exited on signal 9/);

    // Resumed on 2 ranks from its last checkpoint, it reaches what the uninterrupted run (itself resumed at
    // step 20, a different place) reaches.
    const taken = readCheckpoint(out("killed")).state.step;
    expect(taken).toBeGreaterThanOrEqual(10);
    const until = String(taken + 10);
    await train(["--steps", until, "--ranks", "2", "--out", out("killed"), "--resume"]);
    await train(["--steps", until, "--ranks", "2", "--out", out("two"), "--resume"]);
    expectSameState(out("two"), out("killed"));
    expect(readFileSync(join(out("killed"), "metrics.jsonl"), "utf8")).toBe(readFileSync(join(out("two"), "metrics.jsonl"), "utf8"));
  }, 600_000);

  test("a data-parallel program's build directory builds with make, linking MPI, and the program runs", () => {
    const build = out("make");
    writeNativeBuild(emitCpu(lowerProgram("models/classifier.ul", { bindings: { B: 2 }, shard: { index: 1, count: 2, batch: "B" } })), build);
    const make = spawnSync("make", ["-C", build], { encoding: "utf8" });
    expect(make.status, make.stdout + make.stderr).toBe(0);
    expect(readFileSync(join(build, "Makefile"), "utf8")).toMatch(/mpicc --showme:link/);
    const info = spawnSync(join(build, "ulc_program_cpu"), ["info"], { encoding: "utf8", env: ENV });
    expect([info.status, info.stdout]).toEqual([0, expect.stringMatching(/^CPU, \d+ threads?/)]);
  }, 300_000);

  test("on the CUDA target's CPU emulation: 2 ranks train what 1 process trains", async () => {
    const emulated = { ULC_CUDA: "emulated" };
    await train(["--target", "cuda", "--steps", "4", "--out", out("cuda-one")], emulated);
    await train(["--target", "cuda", "--steps", "4", "--ranks", "2", "--out", out("cuda-two")], emulated);
    expectEqualToOneProcess(out("cuda-one"), out("cuda-two"), 4);
  }, 900_000);
});
