// Counts what one data-parallel train step costs, from the compiled program rather than by hand: the trained
// parameters (the elements the gradient all-reduce carries), and the FLOPs of the train entry's graph, i.e. 2 per
// multiply-add of every contraction node (matmul, conv2d and the two convolution gradients); element-wise work,
// reductions and the optimizer's update are memory-bound and not counted. The forward pass is counted on the
// model's `evaluate` entry when it has one (the same loss without the update), so the backward pass is the rest.
// docs/scaling.md's ul_small numbers come from this script.
//
//   npm run build && node bench/flops.mjs [models/ul_small.ul] [--bind B=64] [--entry fit] [--forward evaluate] [--json]
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const { lowerProgram } = await import(pathToFileURL(join(ROOT, "dist", "compiler", "lower.js")).href);

// Options: --bind NAME=INT (repeatable; default B=64), --entry NAME, --forward NAME, --json; the rest is the file.
const args = process.argv.slice(2);
const bindings = {};
const options = { entry: "fit", forward: "evaluate", json: false };
let path;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--json") options.json = true;
  else if (a === "--bind") {
    const [name, value] = (args[++i] ?? "").split("=");
    if (!name || !Number.isInteger(Number(value))) throw new Error(`--bind wants NAME=INT, got ${args[i]}`);
    bindings[name] = Number(value);
  } else if (a === "--entry" || a === "--forward") options[a.slice(2)] = args[++i];
  else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
  else path = a;
}
if (Object.keys(bindings).length === 0) bindings.B = 64;
const file = resolve(path ?? join(ROOT, "models", "ul_small.ul"));
const entryName = options.entry;
const forwardName = options.forward;

const size = (shape) => shape.reduce((a, b) => a * b, 1);

/** 2 × multiply-adds of a contraction node; 0 for every other node. */
function nodeFlops(n, graph) {
  const shape = (i) => graph.nodes[n.inputs[i]].shape;
  switch (n.op.kind) {
    case "matmul": // [..., M, K] @ [..., K, N] -> [..., M, N]
      return 2 * size(n.shape) * shape(0).at(-1);
    case "conv2d": // each output sums C/G·KH·KW taps (weight [O, C/G, KH, KW])
      return 2 * size(n.shape) * size(shape(1).slice(1));
    case "conv2d_grad_input": // as many multiply-adds as the forward pass: dy [B, O, H', W'], w [O, C/G, KH, KW]
      return 2 * size(shape(0)) * size(shape(1).slice(1));
    case "conv2d_grad_weight": // dw [O, C/G, KH, KW] over every output position of dy [B, O, H', W']
      return 2 * size(shape(1)) * size(n.shape.slice(1));
    default:
      return 0;
  }
}

const graphFlops = (graph) => graph.nodes.reduce((total, n) => total + nodeFlops(n, graph), 0);

const program = lowerProgram(file, { bindings });
const entry = program.entries.find((e) => e.name === entryName);
if (!entry || entry.kind !== "train") throw new Error(`${file} has no train entry named ${entryName}`);
const trained = new Set(entry.training.params);
const params = program.params.reduce((s, p) => s + size(p.shape), 0);
const trainedParams = program.params.filter((p) => trained.has(p.name)).reduce((s, p) => s + size(p.shape), 0);
// The all-reduced buffer: one f32 per trained parameter plus the elements of the entry's results (its metrics).
const results = new Set(entry.results);
const metrics = entry.graph.outputs.filter((o) => results.has(o.name)).reduce((s, o) => s + size(entry.graph.nodes[o.node].shape), 0);
const step = graphFlops(entry.graph);
const forwardEntry = program.entries.find((e) => e.name === forwardName);
const forward = forwardEntry ? graphFlops(forwardEntry.graph) : undefined;
const batch = bindings.B;

const report = {
  model: program.model,
  file,
  bindings,
  entry: entryName,
  params,
  trainedParams,
  allReduceBytes: 4 * (trainedParams + metrics),
  stepFlops: step,
  perExampleFlops: batch ? step / batch : undefined,
  forwardFlops: forward,
  backwardFlops: forward === undefined ? undefined : step - forward,
  flopsPerParamPerExample: batch ? step / batch / trainedParams : undefined,
};

if (options.json) console.log(JSON.stringify(report, null, 2));
else {
  const g = (x) => (x === undefined ? "—" : `${(x / 1e9).toFixed(3)} GFLOP`);
  console.log(`${program.model} (${file}), ${Object.entries(bindings).map(([k, v]) => `${k}=${v}`).join(", ")}, entry ${entryName}`);
  console.log(`  parameters           ${params} (${trainedParams} trained)`);
  console.log(`  all-reduce buffer    ${report.allReduceBytes} bytes (f32 gradients + ${metrics} metric values)`);
  console.log(`  train step           ${g(step)}${batch ? ` = ${g(step / batch)} per example` : ""}`);
  console.log(`  forward (${forwardName}) ${g(forward)}; backward ${g(report.backwardFlops)}`);
  if (batch) console.log(`  FLOPs / param / example  ${report.flopsPerParamPerExample.toFixed(0)}`);
}
