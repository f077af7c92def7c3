#!/usr/bin/env node
// Square f32 matmuls (256, 512, 1024 by default) on one WebGPU adapter, side by side in one run: ours (the tile
// `tuneMatmul` picks for this adapter), TensorFlow.js's WebGPU backend, and jax-js's WebGPU backend where it runs.
// Run after `npm run build` (it imports the compiled dist/):
//
//   npm run bench:matmul                       # print the tables
//   npm run bench:matmul -- --write            # also update the `matmul` section of docs/benchmarks.md
//   npm run bench:matmul -- --sizes 256,1024 --runs 15 --no-jax
//
// Method, the same for every contender: inputs are on the device before timing; one timed run enqueues the
// matmul and submits it (ours: the operand packing, if the tile uses textures, and the matmul in one command
// buffer; TF.js: `tf.matMul` with WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE = 1, so its dispatch is submitted at once;
// jax-js: `np.matmul` then `blockUntilReady()`, its only public way to dispatch, which waits on a 0-byte copy),
// then awaits `queue.onSubmittedWorkDone()` on that contender's device; nothing is read back. Warm-up runs
// first (pipelines compiled, buffers pooled), then the contenders take turns run by run, so background load on
// the machine falls on all of them alike. Reported: the median, GFLOP/s = 2·n³ / median, and our throughput
// over each peer's (> 1: ours is faster).
import { existsSync, readFileSync } from "node:fs";
import { machine as describeMachine, median, writeSection } from "./docs.mjs";
import { shareGpu, tfjsWebgpu } from "./peers.mjs";
import os from "node:os";
import { dirname, join, relative } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DOC = join(ROOT, "docs", "benchmarks.md");

function usage(message) {
  process.stderr.write(
    `bench/matmul.mjs: ${message}\nusage: node bench/matmul.mjs [--write] [--sizes 256,512,1024] [--runs N] [--warmup N] [--tune-size N] [--no-tfjs] [--no-jax]\n`,
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { write: false, sizes: [256, 512, 1024], runs: 9, warmup: 2, tuneSize: 512, tfjs: true, jax: true };
  const int = (v, name, min) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) usage(`${name} needs an integer of at least ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--write") opts.write = true;
    else if (a === "--sizes") opts.sizes = (argv[++i] ?? usage("--sizes needs a list")).split(",").map((s) => int(s, "--sizes", 1));
    else if (a === "--runs") opts.runs = int(argv[++i], "--runs", 3);
    else if (a === "--warmup") opts.warmup = int(argv[++i], "--warmup", 1);
    else if (a === "--tune-size") opts.tuneSize = int(argv[++i], "--tune-size", 16);
    else if (a === "--no-tfjs") opts.tfjs = false;
    else if (a === "--no-jax") opts.jax = false;
    else usage(`unknown argument '${a}'`);
  }
  return opts;
}

const gflops = (n, ms) => (2 * n ** 3) / ms / 1e6;
const fmt = (x, digits = 1) => (x === undefined || Number.isNaN(x) ? "–" : x.toFixed(digits));

/** Inputs in [-1, 1): the same values for every contender. */
function inputs(n, seed) {
  let s = seed >>> 0;
  return Float32Array.from({ length: n * n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const dist = (p) => join(ROOT, "dist", p);
  for (const p of ["runtime/webgpu/device.js", "runtime/webgpu/matmul.js"])
    if (!existsSync(dist(p))) usage(`dist/${p} is missing: run \`npm run build\` first`);
  const { getGpu, openDevice, summarize } = await import(pathToFileURL(dist("runtime/webgpu/device.js")).href);
  const { prepareMatmul, tuneMatmul } = await import(pathToFileURL(dist("runtime/webgpu/matmul.js")).href);
  const { createStorageBuffer, uploadF32, readF32 } = await import(pathToFileURL(dist("runtime/webgpu/buffers.js")).href);
  const { tileName } = await import(pathToFileURL(dist("backends/wgsl/matmul.js")).href);

  // One GPU object for everyone; each contender's device is checked to be on our adapter below.
  const ours = await openDevice({ gpu: await shareGpu(getGpu) });
  const adapter = ours.adapterInfo.name;
  const loadBefore = os.loadavg()[0];
  process.stdout.write(`adapter: ${adapter}\n`);

  // Tune first (its timings are reported too).
  const tuning = await tuneMatmul(ours, { size: opts.tuneSize, runs: 5 });
  const tuneTable = [
    `| tile (tuned on ${opts.tuneSize}²) | median ms | GFLOP/s |`,
    "| --- | ---: | ---: |",
    ...tuning.timings.map((t) => `| ${t.name}${t.tile === tuning.tile ? " (chosen)" : ""} | ${t.ms === undefined ? t.error : fmt(t.ms, 2)} | ${fmt(t.gflops)} |`),
  ].join("\n");
  process.stdout.write(`\n${tuneTable}\n`);

  const contenders = [];
  const notes = [];
  const sameAdapter = (name, device) => {
    const theirs = summarize(device.adapterInfo).name;
    if (theirs !== adapter) throw new Error(`${name} is on '${theirs}', not '${adapter}'`);
  };

  // Ours.
  contenders.push({
    name: "ours",
    device: ours.device,
    async setup(n, a, b) {
      const bufs = { a: uploadF32(ours.device, a), b: uploadF32(ours.device, b), c: createStorageBuffer(ours.device, n * n * 4) };
      const mm = await prepareMatmul(ours.device, { M: n, N: n, K: n }, bufs, tuning.tile);
      return {
        run: () => mm.submit(),
        result: () => readF32(ours.device, bufs.c),
        dispose() {
          mm.destroy();
          for (const buf of Object.values(bufs)) buf.destroy();
        },
      };
    },
  });

  // TensorFlow.js.
  if (opts.tfjs) {
    try {
      const tf = await tfjsWebgpu({ submitEach: true });
      const device = tf.backend().device;
      sameAdapter("TF.js", device);
      contenders.push({
        name: "TF.js",
        version: tf.version.tfjs,
        device,
        async setup(n, a, b) {
          const ta = tf.tensor2d(a, [n, n]);
          const tb = tf.tensor2d(b, [n, n]);
          let last;
          return {
            run() {
              last?.dispose();
              last = tf.matMul(ta, tb);
            },
            result: () => last.data(),
            dispose() {
              last?.dispose();
              ta.dispose();
              tb.dispose();
            },
          };
        },
      });
    } catch (e) {
      notes.push(`TF.js (WebGPU) did not run: ${e.message}`);
    }
  }

  // jax-js.
  if (opts.jax) {
    try {
      const jax = await import("@jax-js/jax");
      const available = await jax.init("webgpu");
      if (!available.includes("webgpu")) throw new Error(`jax.init('webgpu') gave only ${available.join(", ")}`);
      jax.defaultDevice("webgpu");
      const device = jax.getWebGPUDevice();
      sameAdapter("jax-js", device);
      const np = jax.numpy;
      const version = JSON.parse(readFileSync(join(ROOT, "node_modules", "@jax-js", "jax", "package.json"), "utf8")).version;
      contenders.push({
        name: "jax-js",
        version,
        device,
        async setup(n, a, b) {
          const ja = np.array(a, { shape: [n, n] });
          const jb = np.array(b, { shape: [n, n] });
          await jax.blockUntilReady([ja.ref, jb.ref]);
          let last;
          return {
            async run() {
              last?.dispose();
              last = np.matmul(ja.ref, jb.ref);
              await last.blockUntilReady();
            },
            result: async () => {
              const out = await last.ref.data();
              return out;
            },
            dispose() {
              last?.dispose();
              ja.dispose();
              jb.dispose();
            },
          };
        },
      });
    } catch (e) {
      notes.push(`jax-js (WebGPU) did not run: ${e.message}`);
    }
  }
  for (const note of notes) process.stdout.write(`\n${note}\n`);

  const results = []; // per size: { n, [name]: { ms, gflops, maxErr } }
  for (const n of opts.sizes) {
    const a = inputs(n, 1);
    const b = inputs(n, 2);
    const live = [];
    for (const c of contenders) live.push({ c, op: await c.setup(n, a, b), samples: [] });
    const timeOnce = async ({ c, op }) => {
      const t0 = performance.now();
      await op.run();
      await c.device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    for (let w = 0; w < opts.warmup; w++) for (const l of live) await timeOnce(l);
    for (let r = 0; r < opts.runs; r++) for (const l of live) l.samples.push(await timeOnce(l));
    // Every contender computes the same C: compare each with ours (relative to max |C|).
    const reference = await live[0].op.result();
    const scale = reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
    const row = { n };
    for (const l of live) {
      const got = await l.op.result();
      let err = 0;
      for (let i = 0; i < reference.length; i++) err = Math.max(err, Math.abs(got[i] - reference[i]));
      const ms = median(l.samples);
      row[l.c.name] = { ms, gflops: gflops(n, ms), relErr: err / scale, min: Math.min(...l.samples) };
      l.op.dispose();
    }
    results.push(row);
    process.stdout.write(
      `${n}: ${live.map((l) => `${l.c.name} ${fmt(row[l.c.name].ms)} ms (${fmt(row[l.c.name].gflops)} GFLOP/s)`).join(", ")}\n`,
    );
  }
  const loadAfter = os.loadavg()[0];

  const peers = contenders.slice(1).map((c) => c.name);
  const header = [
    "| n | ours ms | ours GFLOP/s |",
    ...peers.map((p) => ` ${p} ms | ${p} GFLOP/s | ours ÷ ${p} |`),
  ].join("");
  const align = ["| ---: | ---: | ---: |", ...peers.map(() => " ---: | ---: | ---: |")].join("");
  const rows = results.map((r) =>
    [
      `| ${r.n}³ | ${fmt(r.ours.ms)} | ${fmt(r.ours.gflops)} |`,
      ...peers.map((p) => ` ${fmt(r[p].ms)} | ${fmt(r[p].gflops)} | **${fmt(r.ours.gflops / r[p].gflops, 2)}×** |`),
    ].join(""),
  );
  const table = [header, align, ...rows].join("\n");
  const agreement = results
    .map((r) => `${r.n}: ${peers.map((p) => `${p} ${r[p].relErr.toExponential(1)}`).join(", ")}`)
    .join("; ");

  const machine = describeMachine();
  const versions = contenders.slice(1).map((c) => `${c.name} ${c.version}`).join(", ");
  const description = [
    `Adapter: \`${adapter}\` (all contenders on it, each with its own device). Measured ${new Date().toISOString().slice(0, 10)} on ${machine}; ` +
      `load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after.`,
    `Ours: the tile \`tuneMatmul\` chose, **${tileName(tuning.tile)}**${versions ? `; peers: ${versions}` : ""}. ` +
      `Median of ${opts.runs} runs after ${opts.warmup} warm-up runs, contenders taking turns; ` +
      "a run is enqueue + submit + `queue.onSubmittedWorkDone()`, no readback (see bench/matmul.mjs). " +
      "`ours ÷ peer` is our throughput over the peer's.",
  ];
  process.stdout.write(`\n${description.join("\n")}\n\n${table}\n`);
  process.stdout.write(`\nmax |C - C_ours| / max |C_ours|: ${agreement}\n`);
  for (const note of notes) process.stdout.write(`${note}\n`);

  if (opts.write) {
    writeSection(DOC, "matmul", [
      "## matmul on WebGPU: ours vs TensorFlow.js and jax-js",
      "",
      ...description,
      "",
      table,
      "",
      `Tuning (\`tuneMatmul\`, ${opts.tuneSize}² matmul, median of 5 runs per candidate; only the warm-up run for those over 4× slower than the best). ` +
        "A tile `KIND RxCv4 wgXxY` computes R rows × C vec4s (4C columns) of C per invocation in workgroups of X × Y; " +
        "`direct` reads A and B from storage buffers, `shared` stages tiles of them in workgroup memory (the classic GPU " +
        "kernel, as TF.js's), `texture` packs them into rgba32float textures first (the packing is inside the timed runs)." +
        (adapter.includes("llvmpipe")
          ? " On llvmpipe (Mesa 25.0) textures win: a storage-buffer load whose address differs between invocations " +
            "becomes a per-lane loop with a bounds check and a branch per element, while a texel fetch is vectorised."
          : ""),
      "",
      tuneTable,
      "",
      `Results agree (max |C − C_ours| / max |C_ours|): ${agreement}.` + (notes.length > 0 ? ` ${notes.join(" ")}` : ""),
      "Reproduce: `npm run build && npm run bench:matmul -- --write` (on a machine without a GPU, after " +
        "`bash scripts/setup-webgpu.sh`).",
    ]);
    process.stdout.write(`\nwrote ${relative(ROOT, DOC)}\n`);
  }
  for (const c of contenders) if (c.name === "ours") c.device.destroy();
  // TF.js and jax-js keep their devices (and Dawn's instance) alive; nothing else is pending.
  process.exit(0);
}

await main();
