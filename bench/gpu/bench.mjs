// ulc's CUDA train steps against PyTorch's on the same GPU: the `fit` step of ul_tiny and ul_small (forward,
// backward, Adam) at one batch size. Ours is timed two ways: device time per replay of the step's CUDA Graph
// (CUDA events around many replays, NativeSession.timeTrainStep) and the wall time of NativeSession.trainStep as
// the training loop sees it (upload of the batch, the replay, the metrics read back). The peer
// (bench/gpu/peer.py, the same models in PyTorch with the same parameter count) runs eager and under
// torch.compile(mode="reduce-overhead"). Memory: our whole device arena against torch.cuda.max_memory_allocated.
//
//   npm run build && npm run bench:gpu [-- --write] [-- --batch 64] [-- --steps 50]
//   (scripts/test-gpu.sh runs it after the GPU tests; ULC_PYTHON picks the Python that has torch)
//   --emulated: a dry run of this script without a GPU (ours emulated, the peer on the CPU); never written.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { machine, writeSection } from "../docs.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DOC = join(ROOT, "docs", "benchmarks.md");
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const emulated = args.includes("--emulated");
const write = args.includes("--write") && !emulated;
const batch = option("--batch", 64);
const steps = option("--steps", 50);
const python = process.env.ULC_PYTHON ?? "python3";
const dist = (p) => pathToFileURL(join(ROOT, "dist", p)).href;

const { lowerProgram } = await import(dist("compiler/lower.js"));
const { openCudaSession } = await import(dist("runtime/cuda/session.js"));
const { randomUniform } = await import(dist("runtime/random.js"));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (b) => (b / 2 ** 20).toFixed(1);

/** The peer's JSON report, or why there is none. */
function peer(model, compile) {
  const flags = ["--model", model, "--batch", String(batch), "--steps", String(steps), ...(compile ? ["--compile"] : []), ...(emulated ? ["--device", "cpu"] : [])];
  const r = spawnSync(python, [join(ROOT, "bench", "gpu", "peer.py"), ...flags], { encoding: "utf8" });
  if (r.status !== 0) return { error: (r.error?.message ?? r.stderr.trim().split("\n").at(-1)) || `exit ${r.status}` };
  return JSON.parse(r.stdout.trim().split("\n").at(-1));
}

const rows = [];
const notes = [];
let device = "";
for (const model of ["ul_tiny", "ul_small"]) {
  // The CUDA target's default precision: matmuls and convolutions on the tensor cores (the peer's TF32 too).
  const program = lowerProgram(join(ROOT, "models", `${model}.ul`), { bindings: { B: batch }, precision: "tf32" });
  const started = performance.now();
  const session = await openCudaSession(program, { seed: 0, flavour: emulated ? "emulated" : "cuda" });
  const setup = performance.now() - started;
  device = session.device.device;
  try {
    const spec = program.entries.find((e) => e.name === "fit").inputs[0];
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Map([["x", { dtype: "f32", shape: spec.shape, data: randomUniform(0, 0, 0, n).map((u) => 2 * u - 1) }]]);
    for (let i = 0; i < 5; i++) await session.trainStep("fit", data);
    const wall = [];
    for (let i = 0; i < steps; i++) {
      const t = performance.now();
      await session.trainStep("fit", data);
      wall.push(performance.now() - t);
    }
    const replay = await session.timeTrainStep("fit", data, steps);
    const params = program.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
    const [eager, compiled] = [peer(model, false), peer(model, true)];
    for (const p of [eager, compiled]) {
      if (p.error) notes.push(`${model}: the PyTorch peer failed (${p.error}).`);
      else if (p.params !== params) notes.push(`${model}: the peer has ${p.params} parameters, ulc's model ${params}: they are not the same model.`);
    }
    const ms = (p) => (p.error ? "—" : p.median_ms.toFixed(2));
    const ratio = (p) => (p.error ? "—" : `**${(p.median_ms / replay).toFixed(2)}×**`);
    const peak = eager.error || eager.peak_bytes === null ? "—" : mib(eager.peak_bytes);
    rows.push(`| ${model} | ${params} | ${replay.toFixed(2)} | ${median(wall).toFixed(2)} | ${ms(eager)} | ${ratio(eager)} | ${ms(compiled)} | ${ratio(compiled)} | ${mib(session.arenaBytes)} | ${peak} |`);
    notes.push(`${model}: build and start ${(setup / 1000).toFixed(1)} s (nvcc, cached by content afterwards); PyTorch ${eager.torch ?? "unavailable"}.`);
  } finally {
    session.dispose();
  }
}

const lines = [
  "## CUDA train steps: ulc vs PyTorch",
  "",
  `GPU: ${device}. Batch ${batch}; median of ${steps} steps after 5 (ours) or 10 (PyTorch) warm-up steps. Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}.`,
  "`ours replay` is device time per replay of the step's CUDA Graph (CUDA events); `ours step` is `NativeSession.trainStep` wall time (batch upload, replay, metrics read back). PyTorch times are wall time per synchronised step (bench/gpu/peer.py: the same models, parameter for parameter). `÷` is PyTorch's time over our replay. Memory: our whole arena (parameters, Adam state, EMA, two slots each, inputs and planned intermediates) against PyTorch's peak allocated.",
  "",
  "| model | params | ours replay ms | ours step ms | PyTorch eager ms | ÷ | PyTorch compiled ms | ÷ | ours arena MiB | PyTorch peak MiB |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ...rows,
  "",
  ...notes.map((n) => `- ${n}`),
  "",
  "Reproduce on a GPU host: `npm run test:gpu` (the GPU tests, then this benchmark with `--write`).",
];
console.log(lines.join("\n"));
if (write) writeSection(DOC, "gpu", lines);
