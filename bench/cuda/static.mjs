// The CUDA target measured without a GPU, from what nvcc makes of it: per model, the launches of a train step
// (`fit` and the moving average), ptxas's registers, spills and shared memory per kernel, and for the heaviest
// kernels the PTX instructions their hot loop spends per useful multiply-add (a convolution's masked taps
// are not useful). From those, a roofline-style estimate of the step on an H100 beside the same estimate for
// PyTorch eager (cuDNN): labelled as estimates, each assumption stated. No GPU runs here; `bench/gpu` measures.
//
//   npm run build && npm run bench:cuda-static [-- --write]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { machine, writeSection } from "../docs.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DOC = join(ROOT, "docs", "benchmarks.md");
const write = process.argv.includes("--write");
const dist = (p) => pathToFileURL(join(ROOT, "dist", p)).href;
const { lowerProgram } = await import(dist("compiler/lower.js"));
const { fuse } = await import(dist("compiler/kernel/fuse.js"));
const { emitCuda, cudaFuseOptions } = await import(dist("backends/cuda/program.js"));
const { renderKernelCuda, KERNEL_NAME } = await import(dist("backends/cuda/kernel.js"));
const { gemmPlan, BK, GEMM_THREADS } = await import(dist("backends/cuda/gemm.js"));
const { CONTRACTIONS } = await import(dist("compiler/passes/precision.js"));
const { writeNativeBuild } = await import(dist("runtime/native/compile.js"));

const ARCH = "90";
/** H100 SXM: 132 SMs × 4 schedulers × 32 lanes at 1.98 GHz: thread-instructions per second at full issue. */
const SMS = 132;
const ISSUE_RATE = SMS * 4 * 32 * 1.98e9;
/**
 * Tensor cores through mma.sync m16n8k8 TF32: assumed half the H100's 495 TFLOP/s of dense TF32 (which needs
 * Hopper's warpgroup wgmma to reach), in multiply-adds per second.
 */
const MMA_MACS = (0.5 * 495e12) / 2;
/** Assumed cost of one kernel node of a replayed CUDA Graph. */
const LAUNCH_S = 1e-6;
/** PyTorch eager: cuDNN convolutions and cuBLAS matmuls in TF32 (its default) at 40% of the H100's 495 TFLOP/s dense, plus 8 µs of dispatch per op. */
const EAGER_FLOPS = 0.4 * 495e12;
const EAGER_OP_S = 8e-6;
/** Eager Adam on a GPU updates all parameters in a few multi-tensor kernels (foreach): counted as this many ops. */
const EAGER_OPTIMIZER_OPS = 12;
const PYTHON = process.env.ULC_PYTHON ?? "/usr/bin/python3";

function run(cwd, cmd, args) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stderr + r.stdout;
}

/** ptxas -v: per kernel name (k12), registers, spilled bytes and shared memory. */
function ptxasInfo(dir) {
  const text = run(dir, "nvcc", ["-std=c++17", "-O3", `-gencode=arch=compute_${ARCH},code=sm_${ARCH}`, "-Xptxas", "-v", "-c", "program.cu", "-o", "program.o"]);
  const info = new Map();
  let current;
  for (const line of text.split("\n")) {
    const entry = /Compiling entry function '_Z\d+(k\d+)/.exec(line);
    if (entry) info.set((current = entry[1]), { registers: 0, spills: 0, shared: 0 });
    const spill = /(\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (spill && current) info.get(current).spills = Number(spill[1]) + Number(spill[2]);
    const used = /Used (\d+) registers(?:.*?(\d+) bytes smem)?/.exec(line);
    if (used && current) Object.assign(info.get(current), { registers: Number(used[1]), shared: Number(used[2] ?? 0) });
  }
  return info;
}

/** The instructions of the innermost loop that holds mma instructions (a GEMM's loop over slices), or 0. */
function mmaLoop(lines, labels, isInstruction) {
  let best;
  lines.forEach((l, i) => {
    const from = labels.get(/bra(?:\.uni)?\s+(\$L__\w+);/.exec(l)?.[1]);
    if (from === undefined || from >= i || !lines.slice(from, i + 1).some((x) => x.startsWith("mma."))) return;
    if (!best || i - from < best.to - best.from) best = { from, to: i };
  });
  return best ? lines.slice(best.from, best.to + 1).filter(isInstruction).length : 0;
}

/**
 * Per kernel, from its PTX: instructions and fused multiply-adds in its innermost loop (the shortest range from a
 * label to a branch back to it), the instructions outside loops, and whether it uses tensor cores.
 */
function ptxLoops(dir, source) {
  const ptxFile = source.replace(/\.cu$/, ".ptx");
  run(dir, "nvcc", ["-std=c++17", "-O3", `-arch=compute_${ARCH}`, "-ptx", source, "-o", ptxFile]);
  const ptx = readFileSync(join(dir, ptxFile), "utf8");
  const out = new Map();
  for (const body of ptx.split(/\.visible \.entry /).slice(1)) {
    const name = /^_Z\d+([ka]\d+)/.exec(body)?.[1];
    const lines = body.split("\n").map((l) => l.trim());
    const isInstruction = (l) => l.endsWith(";") && !l.startsWith(".") && !l.startsWith("//") && !l.startsWith("{");
    const labels = new Map();
    lines.forEach((l, i) => /^\$L__\w+:$/.test(l) && labels.set(l.slice(0, -1), i));
    let loop;
    lines.forEach((l, i) => {
      const target = /bra(?:\.uni)?\s+(\$L__\w+);/.exec(l)?.[1];
      const from = target === undefined ? undefined : labels.get(target);
      if (from !== undefined && from < i && (!loop || i - from < loop.to - loop.from)) loop = { from, to: i };
    });
    const inside = loop ? lines.slice(loop.from, loop.to + 1).filter(isInstruction) : [];
    out.set(name, {
      loopInstructions: inside.length,
      loopFmas: inside.filter((l) => /^(fma|mad)\.|mma\./.test(l)).length,
      instructions: lines.filter(isInstruction).length,
      mmaLoop: mmaLoop(lines, labels, isInstruction),
      mma: /mma\.sync/.test(body),
    });
  }
  return out;
}

/**
 * A tensor-core GEMM's thread-instructions and the seconds its multiply-adds take on the tensor cores. Its PTX's
 * loop over slices (the loop with the mma instructions; staging, fragment reads and mma unrolled inside it) runs
 * once per slice of each block's terms, the rest of the kernel (setup, a split's partial sums, the epilogue) once
 * per block; a kernel whose slices nvcc unrolled whole runs all its instructions once per block.
 */
function gemmWork(k, p, grid) {
  const { fm, classes, tiles } = gemmPlan(k);
  const perClassBlock = tiles / classes.reduce((t, c) => t + c.columnBlocks, 0);
  const slices = perClassBlock * classes.reduce((t, c) => t + c.columnBlocks * Math.ceil(c.terms / BK), 0);
  const instructions = p.mmaLoop ? slices * GEMM_THREADS * p.mmaLoop + grid * GEMM_THREADS * (p.instructions - p.mmaLoop) : grid * GEMM_THREADS * p.instructions;
  const mmas = slices * (BK / 8) * (GEMM_THREADS / 32) * fm * 4;
  return { instructions, tensorSeconds: (mmas * 16 * 8 * 8) / MMA_MACS };
}

/** Taps in range along one spatial axis: Σ over outputs o of the taps k with 0 ≤ o·s + k − p < size. */
function taps(outSize, size, k, s, p) {
  let n = 0;
  for (let o = 0; o < outSize; o++) for (let t = 0; t < k; t++) if (o * s + t - p >= 0 && o * s + t - p < size) n++;
  return n;
}

/** The multiply-adds a contraction node needs: a convolution's taps outside the image are not counted. */
function usefulMacs(g, node) {
  const n = g.nodes[node];
  const shape = (i) => g.nodes[n.inputs[i]].shape;
  const size = (s) => s.reduce((a, b) => a * b, 1);
  if (n.op.kind === "matmul") return (size(n.shape) * shape(0).at(-1));
  const { stride: s, padding: p, groups } = n.op;
  // [N, C, H, W] input, [O, C/g, K, K] weight, [N, O, OH, OW] output of the forward convolution.
  const [x, w, y] = n.op.kind === "conv2d" ? [shape(0), shape(1), n.shape] : n.op.kind === "conv2d_grad_input" ? [n.shape, shape(1), shape(0)] : [shape(0), n.shape, shape(1)];
  const [N, C, H, W] = x, [O, , K] = w;
  return N * O * (C / groups) * taps(y[2], H, K, s, p) * taps(y[3], W, K, s, p);
}

/** The ops eager PyTorch dispatches for the model's step (bench/cpu/peer.py --ops, the same model layer for layer), or undefined without torch. */
function eagerOps(model, B) {
  const r = spawnSync(PYTHON, [join(ROOT, "bench", "cpu", "peer.py"), "--threads", "1", "--model", model, "--batch", String(B), "--ops"], { encoding: "utf8" });
  return r.status === 0 ? JSON.parse(r.stdout).ops + EAGER_OPTIMIZER_OPS : undefined;
}

function measure(model, B) {
  const program = lowerProgram(join(ROOT, "models", `${model}.ul`), { bindings: { B }, precision: "tf32" });
  const dir = mkdtempSync(join(tmpdir(), "ulc-cuda-static-"));
  try {
    const build = emitCuda(program);
    writeNativeBuild(build, dir);
    const fit = program.entries.find((e) => e.name === "fit");
    const graphs = [
      { graph: fit.graph, dispatches: build.manifest.entries.find((e) => e.name === "fit").dispatches },
      { graph: program.ema, dispatches: build.manifest.ema.dispatches },
    ].map((g) => ({ ...g, steps: fuse(g.graph, cudaFuseOptions(program)).steps }));
    // A batch's or chain's parts are inlined into one function, whose loops are theirs all at once: each part is
    // also rendered as a kernel of its own (a0, a1, … in analysis.cu), whose PTX gives its loops.
    const alone = new Map();
    for (const { steps } of graphs)
      for (const step of steps) for (const k of step.kind === "batch" ? step.batch.parts : step.kind === "chain" ? step.chain.parts : []) alone.set(k, { name: `a${alone.size}`, kernel: renderKernelCuda(k, program.precision) });
    writeFileSync(join(dir, "analysis.cu"), ['#include "ulc_cuda.cuh"', ...[...alone.values()].map(({ name, kernel }) => kernel.code.replaceAll(KERNEL_NAME, name))].join("\n"));
    const [regs, loops] = [ptxasInfo(dir), new Map([...ptxLoops(dir, "program.cu"), ...ptxLoops(dir, "analysis.cu")])];
    /** A kernel's work on its own: its thread-instructions, its tensor-core seconds, and the multiply-adds its op needs. */
    const work = (graph, k, name, grid) => {
      const terms = k.size * (k.reduce?.count ?? 1);
      const contraction = k.fused.find((id) => CONTRACTIONS.has(graph.nodes[id].op.kind));
      const p = loops.get(name);
      // Thread-instructions: a reduction's loop per term, the rest per output; an element-wise kernel's body per output.
      const perTerm = k.reduce && p.loopFmas > 0 ? p.loopInstructions / p.loopFmas : 0;
      const gemm = k.tile ? gemmWork(k, p, grid) : undefined;
      const instructions = gemm?.instructions ?? (k.reduce ? terms * perTerm + k.size * (p.instructions - p.loopInstructions) : k.size * p.instructions);
      const useful = contraction === undefined ? undefined : usefulMacs(graph, contraction);
      const op = contraction === undefined ? (k.reduce ? "reduce" : "element-wise") : graph.nodes[contraction].op.kind;
      return { op, terms, useful, instructions, busy: Math.max(instructions / ISSUE_RATE, gemm?.tensorSeconds ?? 0), perUseful: useful ? instructions / useful : undefined, mma: p.mma };
    };
    // A launch takes its instructions at the issue rate of the SMs its blocks occupy, or its tensor-core work on
    // those SMs, whichever is longer: a GEMM of 9 blocks uses 9 of 132 SMs however long its sums are. A batch's
    // parts share the SMs all its blocks occupy; a chain's parts run one after another on its blocks' SMs.
    const occupied = (grid) => Math.min(1, grid / SMS);
    const rows = graphs.flatMap(({ graph, dispatches, steps }) =>
      steps.flatMap((step, i) => {
        const { kernel: name, grid } = dispatches[i];
        const ptxas = regs.get(name);
        if (step.kind === "kernel") {
          const w = work(graph, step.kernel, name, grid);
          return [{ name, ...w, seconds: w.busy / occupied(grid), ...ptxas }];
        }
        const parts = (step.kind === "batch" ? step.batch : step.chain).parts.map((k, j) => {
          const a = alone.get(k);
          return { name: `${name}.p${j}`, ...work(graph, k, a.name, a.kernel.grid), ...ptxas };
        });
        return parts.map((r) => ({ ...r, seconds: r.busy / occupied(grid) }));
      }),
    );
    const flops = rows.reduce((n, r) => n + 2 * (r.useful ?? 0), 0);
    const contractions = rows.filter((r) => r.useful !== undefined).length;
    // The same kernel launched more than once is one row, its instructions summed.
    const byKernel = new Map();
    for (const r of rows) {
      const k = byKernel.get(r.name);
      if (k) Object.assign(k, { launches: k.launches + 1, terms: k.terms + r.terms, useful: (k.useful ?? 0) + (r.useful ?? 0), instructions: k.instructions + r.instructions, seconds: k.seconds + r.seconds });
      else byKernel.set(r.name, { ...r, launches: 1 });
    }
    const ops = eagerOps(model, B);
    return {
      model,
      B,
      launches: { fit: graphs[0].dispatches.length, ema: graphs[1].dispatches.length },
      kernels: new Set(graphs.flatMap((g) => g.dispatches.map((d) => d.kernel))).size,
      spilling: [...new Map(rows.filter((r) => r.spills > 0).map((r) => [r.name, `${r.name} (${r.op}, ${r.spills} bytes)`])).values()],
      maxRegisters: Math.max(...rows.map((r) => r.registers)),
      heaviest: [...byKernel.values()].sort((a, b) => b.seconds - a.seconds).slice(0, 5).map((r) => ({ ...r, perUseful: r.useful ? r.instructions / r.useful : undefined })),
      mma: rows.filter((r) => r.useful !== undefined && r.mma).length,
      contractions,
      flops,
      ulcSeconds: rows.reduce((t, r) => t + r.seconds, 0) + (graphs[0].dispatches.length + graphs[1].dispatches.length) * LAUNCH_S,
      eagerOps: ops,
      eagerSeconds: ops === undefined ? undefined : flops / EAGER_FLOPS + ops * EAGER_OP_S,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ms = (s) => (s * 1000).toFixed(2);
const lines = [];
for (const [model, B] of [
  ["ul_tiny", 64],
  ["ul_small", 64],
]) {
  const m = measure(model, B);
  lines.push(
    `### ${m.model}, B = ${m.B}`,
    "",
    `- launches per train step: ${m.launches.fit} (\`fit\`) + ${m.launches.ema} (moving average) = ${m.launches.fit + m.launches.ema}, of ${m.kernels} distinct kernels`,
    `- ptxas: at most ${m.maxRegisters} registers; ${m.spilling.length ? `kernels that spill: ${m.spilling.join(", ")}` : "no kernel spills"}; contractions on tensor cores (\`mma\`): ${m.mma} of ${m.contractions}`,
    `- step: ${(m.flops / 1e9).toFixed(1)} GFLOP of useful multiply-adds`,
    m.eagerSeconds === undefined
      ? `- **estimate** on an H100: ulc ${ms(m.ulcSeconds)} ms (PyTorch eager not estimated: no torch at ${PYTHON})`
      : `- **estimate** on an H100: ulc ${ms(m.ulcSeconds)} ms, PyTorch eager ${ms(m.eagerSeconds)} ms (${m.eagerOps} ops); ulc/eager = ${(m.ulcSeconds / m.eagerSeconds).toFixed(2)}`,
    "",
    "| heaviest kernels | launches | op | mma | terms (M) | useful MACs (M) | thread-instructions per useful MAC | estimated µs | registers | spills |",
    "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...m.heaviest.map((r) => `| ${r.name} | ${r.launches} | ${r.op} | ${r.mma ? "yes" : "no"} | ${(r.terms / 1e6).toFixed(1)} | ${r.useful ? (r.useful / 1e6).toFixed(1) : "—"} | ${r.perUseful?.toFixed(2) ?? "—"} | ${(r.seconds * 1e6).toFixed(1)} | ${r.registers} | ${r.spills} |`),
    "",
  );
  console.error(`${model}: done`);
}
const body = [
  "## CUDA without a GPU: launches, registers, tensor cores and instructions per multiply-add (static)",
  "",
  `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, with ${run(ROOT, "nvcc", ["--version"]).trim().split("\n").at(-2)}, for sm_${ARCH}.`,
  "",
  ...lines,
  "How: the `fit` and moving-average schedules as the CUDA target fuses them, lowered with precision tf32 (the CUDA",
  "default: the matmuls and convolutions run as tensor-core GEMMs); ptxas's `-v` report per kernel. Thread-instructions:",
  "for a thread-, warp- or block-per-output kernel, its PTX's innermost loop's instructions per fused multiply-add times",
  "the loop's terms, plus the rest of the kernel per output; for a GEMM, its PTX loop over slices (staging, fragment",
  "reads and mma) once per slice of each block's terms and the rest once per block; a batch's or chain's part (a row kN.pI), from its own PTX",
  "as a kernel alone. Per useful multiply-add: over the multiply-adds the op needs (a convolution's taps outside the",
  "image, and a strided gradient's masked ones, are not useful). **The step times are estimates, not measurements:**",
  "each kernel takes its thread-instructions at an H100's full issue rate (132 SMs × 4 schedulers × 32 lanes × 1.98 GHz,",
  `no stalls: a lower bound) or, for a GEMM, its padded multiply-adds at ${MMA_MACS * 2 / 1e12} TFLOP/s of mma.sync TF32 (assumed: half the`,
  "dense TF32 peak, which needs wgmma), whichever is longer, scaled up when it has fewer blocks than the GPU has SMs",
  `(only that share of the GPU works; a batch's parts share the SMs its blocks occupy, a chain's run one after another), plus ${LAUNCH_S * 1e6} µs per kernel node; PyTorch eager's as the useful FLOPs at 40% of the H100's 495 TFLOP/s`,
  `of dense TF32 (its default for convolutions) plus ${EAGER_OP_S * 1e6} µs per op: the ops are counted by running the same model in PyTorch`,
  `on the CPU under its profiler (\`bench/cpu/peer.py --ops\`: the innermost aten ops of the forward and backward pass that compute),`,
  `plus ${EAGER_OPTIMIZER_OPS} for a multi-tensor Adam.`,
  "Reproduce: `npm run build && npm run bench:cuda-static -- --write`.",
];
process.stdout.write(body.join("\n") + "\n");
if (write) {
  writeSection(DOC, "cuda-static", body);
  process.stdout.write(`wrote ${relative(ROOT, DOC)}\n`);
}
