// ulc's CPU target against PyTorch on the same CPU, side by side in one run: the `fit` step (forward, backward,
// Adam) of ul_tiny at B=64 and ul_small at B=8, and ul_small's largest convolution (forward and both
// gradients), contenders taking turns step by step. The peer is bench/cpu/peer.py (bench/gpu/peer.py's models,
// parameter for parameter) on Debian's python3-torch with the BLAS it loads named; both get the same threads and
// OMP_WAIT_POLICY=PASSIVE. The machine's float32 ceiling is the faster of two sgemms (2048², the same threads):
// through that BLAS, and through oneDNN as ulc's CPU target calls it.
//
//   npm run build && npm run bench:cpu [-- --write] [-- --steps 30] [-- --threads 2]
//   ULC_PYTHON picks the Python that has torch (default /usr/bin/python3, Debian's: as root on Debian,
//   `apt-get install python3-torch libopenblas0-pthread` brings it with the BLAS the comparison assumes).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { machine, median, writeSection } from "../docs.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DOC = join(ROOT, "docs", "benchmarks.md");
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const write = args.includes("--write");
const steps = option("--steps", 30);
const threads = option("--threads", os.availableParallelism());
const python = process.env.ULC_PYTHON ?? "/usr/bin/python3";
const dist = (p) => pathToFileURL(join(ROOT, "dist", p)).href;
// Both contenders' OpenMP (and OpenBLAS) teams: the same size, sleeping between parallel regions.
Object.assign(process.env, { OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), OMP_WAIT_POLICY: "PASSIVE" });

const { lowerProgram } = await import(dist("compiler/lower.js"));
const { GraphBuilder } = await import(dist("compiler/ir.js"));
const { memoryStats } = await import(dist("compiler/memory.js"));
const { openCpuSession } = await import(dist("runtime/cpu/session.js"));
const { randomUniform } = await import(dist("runtime/random.js"));

const WARMUP = 3;
const mib = (b) => (b === undefined ? "—" : (b / 2 ** 20).toFixed(0));
const spread = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[Math.floor(s.length * 0.1)].toFixed(1)}–${s[Math.floor(s.length * 0.9)].toFixed(1)}`;
};

/** The peer process: its first line describes it; `step` answers with milliseconds; `quit` with its peak RSS. */
async function startPeer(flags) {
  const child = spawn(python, [join(ROOT, "bench", "cpu", "peer.py"), "--threads", String(threads), ...flags], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the PyTorch peer (${python} bench/cpu/peer.py ${flags.join(" ")}) stopped`);
    return JSON.parse(value);
  };
  const about = await next();
  return {
    about,
    step: async () => {
      child.stdin.write("step\n");
      return (await next()).ms;
    },
    quit: async () => {
      child.stdin.write("quit\n");
      return (await next()).peak_rss;
    },
  };
}

const size = (shape) => shape.reduce((a, b) => a * b, 1);

/** Multiply-adds ×2 of a contraction node (matmul and the convolutions; 0 for the rest, which is memory-bound). */
function nodeFlops(n, graph) {
  const shape = (i) => graph.nodes[n.inputs[i]].shape;
  // conv2d: each output sums C/G·KH·KW taps; each gradient does as many multiply-adds as the forward pass.
  switch (n.op.kind) {
    case "matmul":
      return 2 * size(n.shape) * shape(0).at(-1);
    case "conv2d":
      return 2 * size(n.shape) * size(shape(1).slice(1));
    case "conv2d_grad_input":
      return 2 * size(shape(0)) * size(shape(1).slice(1));
    case "conv2d_grad_weight":
      return 2 * size(shape(1)) * size(n.shape.slice(1));
    default:
      return 0;
  }
}

const flops = (graph) => graph.nodes.reduce((total, n) => total + nodeFlops(n, graph), 0);

const uniformData = (spec, seed) => ({ dtype: spec.dtype, shape: spec.shape, data: Float32Array.from(randomUniform(seed, 0, 0, size(spec.shape)), (u) => 2 * u - 1) });

/** A program of plain entries, each one graph built by `build(builder)` returning its result node. */
function plainProgram(model, entries) {
  const empty = new GraphBuilder().build([]);
  return {
    model,
    bindings: {},
    params: [],
    hypers: [],
    init: empty,
    ema: empty,
    entries: entries.map(([name, build]) => {
      const b = new GraphBuilder();
      const graph = b.build([{ name: "result", node: build(b) }]);
      const inputs = graph.nodes.filter((n) => n.op.kind === "input").map((n) => ({ name: n.op.name, dtype: "f32", shape: n.shape }));
      return { name, kind: "plain", graph, tracedNodes: graph.nodes.length, memory: memoryStats(graph), inputs, results: ["result"] };
    }),
  };
}

// ---------------------------------------------------------------------------------------------- the ceiling
// sgemm 2048² through PyTorch's BLAS and through ulc's (oneDNN's sgemm); the faster is the machine's ceiling.
const sgemm = await startPeer(["--sgemm", "2048"]);
const blas = sgemm.about.blas.find((p) => /libopenblas/.test(p)) ?? sgemm.about.blas.join(", ") ?? "none found";
const square = [2048, 2048];
const gemm = plainProgram("sgemm", [["mm", (b) => b.add({ kind: "matmul" }, [b.add({ kind: "input", name: "a" }, [], square), b.add({ kind: "input", name: "b" }, [], square)])]]);
const gemmSession = await openCpuSession(gemm, { seed: 0 });
const gemmData = new Map(gemm.entries[0].inputs.map((spec, i) => [spec.name, uniformData(spec, i + 1)]));
// A ceiling is the best the machine does: the fastest of a few rounds.
let best = Infinity;
for (let round = 0; round < 4; round++) best = Math.min(best, await gemmSession.timeRun("mm", gemmData, 10));
const oursSgemm = (2 * 2048 ** 3) / (best / 1000) / 1e9;
gemmSession.dispose();
const ceiling = Math.max(sgemm.about.gflops, oursSgemm);
console.error(`sgemm 2048² on ${threads} threads: ${sgemm.about.gflops.toFixed(1)} GFLOP/s through ${blas}, ${oursSgemm.toFixed(1)} through oneDNN (ulc)`);

// ---------------------------------------------------------------------------------------------- fit steps
const rows = [];
const notes = [];
for (const [model, batch] of [
  ["ul_tiny", 64],
  ["ul_small", 8],
]) {
  const program = lowerProgram(join(ROOT, "models", `${model}.ul`), { bindings: { B: batch } });
  const fit = program.entries.find((e) => e.name === "fit");
  const data = new Map(fit.inputs.map((spec, i) => [spec.name, uniformData(spec, i + 1)]));
  // The first step with an empty build cache (g++), then with the program cached.
  const cache = mkdtempSync(join(os.tmpdir(), "ulc-bench-cpu-"));
  const firstStep = async () => {
    const t0 = performance.now();
    const session = await openCpuSession(program, { seed: 0, cacheDir: cache });
    await session.trainStep("fit", data);
    return { session, seconds: (performance.now() - t0) / 1000 };
  };
  const cold = await firstStep();
  cold.session.dispose();
  const { session: ours, seconds: warm } = await firstStep();
  const peer = await startPeer(["--model", model, "--batch", String(batch)]);
  try {
    const params = program.params.reduce((s, p) => s + size(p.shape), 0);
    if (peer.about.params !== params) notes.push(`${model}: the peer has ${peer.about.params} parameters, ulc's model ${params}: they are not the same model.`);
    for (let i = 0; i < WARMUP; i++) {
      await ours.trainStep("fit", data);
      await peer.step();
    }
    const [tOurs, tPeer] = [[], []];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await ours.trainStep("fit", data);
      tOurs.push(performance.now() - t0);
      tPeer.push(await peer.step());
    }
    const gflop = flops(fit.graph) / 1e9;
    const [mo, mp] = [median(tOurs), median(tPeer)];
    const rate = (ms) => `${(gflop / (ms / 1000)).toFixed(1)} (${((100 * gflop) / (ms / 1000) / ceiling).toFixed(0)}%)`;
    rows.push(
      `| ${model} | ${batch} | ${params} | ${mo.toFixed(1)} (${spread(tOurs)}) | ${mp.toFixed(1)} (${spread(tPeer)}) | **${(mp / mo).toFixed(2)}×** | ${gflop.toFixed(2)} | ${rate(mo)} | ${rate(mp)} | ${mib(ours.peakResidentBytes())} | ${mib(await peer.quit())} | ${cold.seconds.toFixed(1)} / ${warm.toFixed(1)} |`,
    );
    console.error(rows.at(-1));
  } finally {
    ours.dispose();
    rmSync(cache, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------- the largest convolution
const small = lowerProgram(join(ROOT, "models", "ul_small.ul"), { bindings: { B: 8 } });
const fitGraph = small.entries.find((e) => e.name === "fit").graph;
const conv = fitGraph.nodes.filter((n) => n.op.kind === "conv2d").sort((a, b) => nodeFlops(b, fitGraph) - nodeFlops(a, fitGraph))[0];
const [x, w] = conv.inputs.map((i) => fitGraph.nodes[i].shape);
const { stride, padding, groups } = conv.op;
const op = { stride, padding, groups };
const input = (b, name, shape) => b.add({ kind: "input", name }, [], shape);
/** conv2d, conv2d_grad_input and conv2d_grad_weight of that shape, each a plain entry of one program. */
function convProgram() {
  return plainProgram("conv", [
    ["forward", (b) => b.add({ kind: "conv2d", ...op }, [input(b, "x", x), input(b, "w", w)])],
    ["grad_input", (b) => b.add({ kind: "conv2d_grad_input", ...op }, [input(b, "dy", conv.shape), input(b, "w", w)], x)],
    ["grad_weight", (b) => b.add({ kind: "conv2d_grad_weight", ...op }, [input(b, "x", x), input(b, "dy", conv.shape)], w)],
  ]);
}
const convs = convProgram();
const convSession = await openCpuSession(convs, { seed: 0 });
// Each pass ten times back to back per turn, on both sides: one pass alone is a millisecond, in which waking
// the other side's sleeping threads and its cold caches would weigh as much as the arithmetic.
const REPEATS = 10;
const convPeer = await startPeer(["--conv", [...x, w[0], w[2], w[3], stride, padding].join(","), "--repeats", String(REPEATS)]);
const convRows = [];
try {
  const inputs = new Map(convs.entries.map((e) => [e.name, new Map(e.inputs.map((spec, i) => [spec.name, uniformData(spec, i + 7)]))]));
  const times = new Map(convs.entries.map((e) => [e.name, []]));
  const tPeer = [];
  for (let i = 0; i < WARMUP + steps; i++) {
    for (const e of convs.entries) {
      const ms = await convSession.timeRun(e.name, inputs.get(e.name), REPEATS);
      if (i >= WARMUP) times.get(e.name).push(ms);
    }
    const ms = await convPeer.step();
    if (i >= WARMUP) tPeer.push(ms);
  }
  const gflop = flops(convs.entries[0].graph) / 1e9;
  const rate = (ms, n) => `${((n * gflop) / (ms / 1000)).toFixed(1)} (**${((100 * n * gflop) / (ms / 1000) / ceiling).toFixed(0)}%**)`;
  for (const e of convs.entries) convRows.push(`| ulc: ${e.name} | ${median(times.get(e.name)).toFixed(2)} (${spread(times.get(e.name))}) | ${rate(median(times.get(e.name)), 1)} |`);
  const all = median(times.get("forward").map((t, i) => t + times.get("grad_input")[i] + times.get("grad_weight")[i]));
  convRows.push(`| ulc: all three | ${all.toFixed(2)} | ${rate(all, 3)} |`, `| PyTorch: forward + backward | ${median(tPeer).toFixed(2)} (${spread(tPeer)}) | ${rate(median(tPeer), 3)} |`);
  await convPeer.quit();
} finally {
  convSession.dispose();
}

const lines = [
  "## CPU train steps: ulc's CPU target vs PyTorch",
  "",
  `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}; ${threads} threads for both, OMP_WAIT_POLICY=PASSIVE. PyTorch ${sgemm.about.torch}. The ceiling is the faster sgemm (2048², ${threads} threads) of two: PyTorch's BLAS, ${blas}, ${sgemm.about.gflops.toFixed(1)} GFLOP/s${process.env.OPENBLAS_CORETYPE ? ` (OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE} is set on this machine: AVX2 kernels)` : ""}; and oneDNN's, which ulc calls, ${oursSgemm.toFixed(1)} GFLOP/s: **${ceiling.toFixed(1)} GFLOP/s**.`,
  "",
  `Median of ${steps} steps after ${WARMUP} warm-up steps, the two taking turns step by step (10th–90th percentile in brackets). Ours is \`NativeSession.trainStep\` wall time as the training loop sees it (batch upload, the step, metrics read back); PyTorch's is the step's wall time in its process. \`speed\` is PyTorch's time over ours (above 1: ulc is faster). GFLOP/s counts the matmuls' and convolutions' multiply-adds (2 FLOP each), % of the ceiling in brackets. Peak RSS: our host process (the compiler's Node process aside) against the PyTorch process. First step: building the program with g++ and taking one step, with the cache cold / warm.`,
  "",
  "| model | B | params | ulc ms | PyTorch ms | speed | GFLOP per step | ulc GFLOP/s | PyTorch GFLOP/s | ulc peak RSS MiB | PyTorch peak RSS MiB | ulc first step s (cold / cached) |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ...rows,
  "",
  `ul_small's largest convolution (B=8): x [${x.join(", ")}], w [${w.join(", ")}], stride ${stride}, padding ${padding}; ${(flops(convs.entries[0].graph) / 1e9).toFixed(3)} GFLOP each pass. Each turn runs a pass ${REPEATS} times back to back (ms per pass). Ours: each library call timed in the host program (\`NativeSession.timeRun\`); PyTorch: \`conv2d\` forward and backward (both gradients) timed in its process.`,
  "",
  "| contender | ms (median, 10th–90th percentile) | GFLOP/s (% of the ceiling) |",
  "| --- | ---: | ---: |",
  ...convRows,
  "",
  ...notes.map((n) => `- ${n}`),
  "- Not in this run yet: jax-js's WASM backend on the ul_tiny network (DESIGN.md §5 quotes a similar MLP step measured apart).",
  "",
  "Reproduce: `npm run build && npm run bench:cpu -- --write`.",
];
console.log(lines.join("\n"));
if (write) writeSection(DOC, "cpu", lines);
