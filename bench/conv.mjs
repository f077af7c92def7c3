// One ul_small convolution layer (3×3, padding 1, bias) on WebGPU: ours (the fused kernel the compiler emits
// for conv2d + bias: an implicit GEMM in register tiles, as sessionFromProgram tiles for this adapter) against
// TensorFlow.js's WebGPU backend on the same adapter. Each run is dispatch + submit
// + `queue.onSubmittedWorkDone()`, no readback, for both; contenders take turns run by run.
//
//   npm run build && npm run bench:conv [-- --write] [-- --runs 9]
import { dirname, join, relative } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { alternate, machine, median, writeSection } from "./docs.mjs";
import { shareGpu, tfjsWebgpu } from "./peers.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DOC = join(ROOT, "docs", "benchmarks.md");
const args = process.argv.slice(2);
const write = args.includes("--write");
const runs = Number(args[args.indexOf("--runs") + 1]) || 9;
const dist = (p) => pathToFileURL(join(ROOT, "dist", p)).href;

const { getGpu, openDevice } = await import(dist("runtime/webgpu/device.js"));
const { GraphBuilder } = await import(dist("compiler/ir.js"));
const { emitGraph, KernelFiles } = await import(dist("backends/wgsl/program.js"));
const { GraphRunner, upload } = await import(dist("runtime/webgpu/kernels.js"));
const { tilingFor } = await import(dist("runtime/webgpu/compile.js"));

const ours = await openDevice({ gpu: await shareGpu(getGpu) });
const tf = await tfjsWebgpu({ submitEach: true });
const tfDevice = tf.backend().device;

const values = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);

const layers = [
  { B: 8, C: 32, H: 32, W: 32 },
  { B: 8, C: 64, H: 16, W: 16 },
  { B: 8, C: 128, H: 8, W: 8 },
];
const rows = [];
for (const { B, C, H, W } of layers) {
  // Ours: conv2d + broadcast bias, fused into one kernel.
  const b = new GraphBuilder();
  const x = b.add({ kind: "input", name: "x" }, [], [B, C, H, W]);
  const w = b.add({ kind: "input", name: "w" }, [], [C, C, 3, 3]);
  const bias = b.add({ kind: "input", name: "bias" }, [], [1, C, 1, 1]);
  const y = b.add({ kind: "binary", fn: "add" }, [b.add({ kind: "conv2d", stride: 1, padding: 1, groups: 1 }, [x, w]), b.add({ kind: "broadcast" }, [bias], [B, C, H, W])]);
  const g = b.build([{ name: "y", node: y }]);
  const files = new KernelFiles();
  const manifest = emitGraph(g, files, tilingFor(ours.device));
  const xs = values(B * C * H * W, 1);
  const ws = values(C * C * 9, 2);
  const bs = values(C, 3);
  const inputs = new Map([
    [x, upload(ours.device, "f32", xs)],
    [w, upload(ours.device, "f32", ws)],
    [bias, upload(ours.device, "f32", bs)],
  ]);
  const runner = new GraphRunner(ours.device, manifest, files.files);
  let out;
  const runOurs = async () => {
    out = await runner.run(inputs, 0, 0, out);
  };
  // TF.js: NHWC input, HWIO filter, the same arithmetic.
  const tx = tf.tensor4d(xs, [B, C, H, W]).transpose([0, 2, 3, 1]);
  const tw = tf.tensor4d(ws, [C, C, 3, 3]).transpose([2, 3, 1, 0]);
  const tb = tf.tensor1d(bs);
  const runTf = async () => {
    const out = tf.tidy(() => tf.add(tf.conv2d(tx, tw, 1, "same"), tb));
    await tfDevice.queue.onSubmittedWorkDone();
    out.dispose();
  };
  await runOurs();
  await runTf();
  const [tOurs, tTf] = await alternate(runs, runOurs, runTf);
  const gflop = (2 * B * C * C * 9 * H * W) / 1e9;
  const mo = median(tOurs);
  const mt = median(tTf);
  rows.push(`| [${B}, ${C}, ${H}, ${W}] * [${C}, ${C}, 3, 3] | ${mo.toFixed(1)} | ${(gflop / (mo / 1e3)).toFixed(1)} | ${mt.toFixed(1)} | ${(gflop / (mt / 1e3)).toFixed(1)} | ${(mt / mo).toFixed(2)}× |`);
  for (const t of [...inputs.values(), ...out.values()]) t.buffer.destroy();
  runner.destroy();
  tx.dispose();
  tw.dispose();
  tb.dispose();
}
const table = ["| conv2d + bias (NCHW) | ours ms | ours GFLOP/s | TF.js ms | TF.js GFLOP/s | ours ÷ TF.js (speed) |", "| --- | ---: | ---: | ---: | ---: | ---: |", ...rows].join("\n");
process.stdout.write(`adapter: ${ours.adapterInfo.name}\n\n${table}\n`);
if (write) {
  writeSection(DOC, "conv", [
    "## One ul_small convolution layer on WebGPU: ours vs TensorFlow.js",
    "",
    `Adapter ${ours.adapterInfo.name}; ${machine()}; measured ${new Date().toISOString().slice(0, 10)}; median of ${runs} runs, ` +
      "each dispatch + submit + `queue.onSubmittedWorkDone()`, contenders alternating. Ours is the kernel fusion emits for " +
      `conv2d with its bias epilogue: an implicit GEMM, ${tilingFor(ours.device).tile.rows} × ${tilingFor(ours.device).tile.cols} outputs ` +
      "(output channels × pixels) per invocation, the image read through the padding's bounds checks.",
    "",
    table,
    "",
    "Reproduce: `npm run build && npm run bench:conv -- --write`.",
  ]);
  process.stdout.write(`\nwrote ${relative(ROOT, DOC)}\n`);
}
process.exit(0);
