// One ul_tiny train step (`models/ul_tiny.ul`, entry `fit`: forward, backward and Adam) on WebGPU: ours (the
// fused kernels WebGpuSession runs) against the same network written in TensorFlow.js on its WebGPU backend,
// on the same adapter. The TF.js network follows models/ul_tiny.ul and models/std/*.ul layer for layer: the
// encoder MLP, the latent prior (residual MLP denoiser, linear log-SNR schedule, unweighted ELBO + terminal
// KL) and the pixel decoder (residual MLP denoiser conditioned on z0, cosine schedule, sigmoid-weighted ELBO),
// the same losses and Adam(lr = 3e-4); only the random draws differ. A step is, for both, the update and the
// read-back of its metrics (ours: the six scalars of the entry's record; TF.js: the same six, stacked).
// Contenders take turns step by step, after warm-up steps (pipeline compilation).
//
//   npm run build && npm run bench:train-step [-- --write] [-- --steps 9] [-- --batch 64]
import os from "node:os";
import { dirname, join, relative } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { alternate, machine, median, writeSection } from "./docs.mjs";
import { shareGpu, tfjsWebgpu } from "./peers.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DOC = join(ROOT, "docs", "benchmarks.md");
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const write = args.includes("--write");
const steps = option("--steps", 9);
const warmup = option("--warmup", 2);
const B = option("--batch", 64);
const dist = (p) => pathToFileURL(join(ROOT, "dist", p)).href;

const { getGpu, openDevice } = await import(dist("runtime/webgpu/device.js"));
const { lowerProgram } = await import(dist("compiler/lower.js"));
const { sessionFromProgram } = await import(dist("runtime/webgpu/compile.js"));

const ours = await openDevice({ gpu: await shareGpu(getGpu) });
const tf = await tfjsWebgpu();

const images = Float64Array.from({ length: B * 784 }, (_, i) => Math.tanh(Math.sin(i / 37) * 2));

// ---------------------------------------------------------------- ours
const program = lowerProgram(join(ROOT, "models/ul_tiny.ul"), { bindings: { B } });
const session = await sessionFromProgram(ours.device, program, { seed: 1 });
const batch = new Map([["x", { dtype: "f32", shape: [B, 1, 28, 28], data: images }]]);
const stepOurs = () => session.trainStep("fit", batch);

// ---------------------------------------------------------------- TF.js, the same network
const lecun = (fanIn, fanOut, scale = 1) => tf.variable(tf.randomNormal([fanIn, fanOut]).mul(scale / Math.sqrt(fanIn)));
function linear(fanIn, fanOut, scale = 1) {
  const w = lecun(fanIn, fanOut, scale);
  const b = tf.variable(tf.zeros([fanOut]));
  return (x) => tf.add(tf.matMul(x, w), b);
}
function layerNorm(d) {
  const scale = tf.variable(tf.ones([d]));
  const shift = tf.variable(tf.zeros([d]));
  return (x) => {
    const centred = tf.sub(x, tf.mean(x, 1, true));
    const variance = tf.mean(tf.mul(centred, centred), 1, true);
    return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, 1e-5))), scale), shift);
  };
}
const silu = (x) => tf.mul(x, tf.sigmoid(x));
function mlp(sizes) {
  const layers = sizes.slice(1).map((out, i) => linear(sizes[i], out));
  return (x) => layers.reduce((h, layer, i) => (i < layers.length - 1 ? silu(layer(h)) : layer(h)), x);
}
function noiseLevelEmbedding(F, E) {
  const freqs = tf.tensor1d(Array.from({ length: F / 2 }, (_, i) => 0.0625 * Math.exp((i * Math.log(16 / 0.0625)) / (F / 2))));
  const fc1 = linear(F, E);
  const fc2 = linear(E, E);
  return (l) => {
    const angles = tf.mul(tf.reshape(l, [-1, 1]), tf.reshape(freqs, [1, F / 2]));
    return fc2(silu(fc1(tf.concat([tf.sin(angles), tf.cos(angles)], 1))));
  };
}
function resMlpBlock(D, E) {
  const [norm, fc1, cond, fc2] = [layerNorm(D), linear(D, D), linear(E, D), linear(D, D, 0)];
  return (h, c) => tf.add(h, fc2(silu(tf.add(fc1(silu(norm(h))), cond(silu(c))))));
}
function denoiser(inDim, Z, hidden, depth, conditioned) {
  const embed = noiseLevelEmbedding(64, 128);
  const cond = conditioned ? linear(128 + Z, 128) : undefined;
  const first = linear(inDim, hidden);
  const blocks = Array.from({ length: depth }, () => resMlpBlock(hidden, 128));
  const norm = layerNorm(hidden);
  const last = linear(hidden, inDim, 0);
  return (x, l, z0) => {
    const c = cond ? cond(tf.concat([embed(l), z0], 1)) : embed(l);
    const h = blocks.reduce((h, block) => block(h, c), first(x));
    return last(silu(norm(h)));
  };
}
const alpha = (l) => tf.sqrt(tf.sigmoid(l));
const sigma = (l) => tf.sqrt(tf.sigmoid(tf.neg(l)));
const rows = (a, x) => tf.mul(tf.reshape(a, [-1, 1]), x);
const noise = (x, l, eps) => tf.add(rows(alpha(l), x), rows(sigma(l), eps));
const epsFromV = (z, v, l) => tf.add(rows(sigma(l), z), rows(alpha(l), v));
const times = (u) => {
  const shifted = tf.add(u, tf.div(tf.range(0, B), B));
  return tf.sub(shifted, tf.floor(shifted));
};
const [lambda0, lambdaMin, lambdaMax, lossFactor] = [5, -10, 10, 1.5];
const cosB = Math.atan(Math.exp(-0.5 * lambdaMax));
const cosA = Math.atan(Math.exp(-0.5 * lambdaMin)) - cosB;

const encoder = mlp([784, 512, 512, 16]);
const prior = denoiser(16, 16, 256, 3, false);
const decoder = denoiser(784, 16, 512, 2, true);
const optimizer = tf.train.adam(3e-4, 0.9, 0.999, 1e-8);
const tx = tf.tensor2d(Float32Array.from(images), [B, 784]);

function tfLoss() {
  const zClean = encoder(tx);
  const z0 = noise(zClean, tf.fill([B], lambda0), tf.randomNormal([B, 16]));
  // The prior's ELBO (linear schedule from λ0 to λ_min) and the terminal KL.
  const tp = times(tf.randomUniform([1]));
  const lp = tf.add(lambda0, tf.mul(lambdaMin - lambda0, tp));
  const epsP = tf.randomNormal([B, 16]);
  const zt = noise(zClean, lp, epsP);
  const errP = tf.sub(epsP, epsFromV(zt, prior(zt, lp), lp));
  const priorElbo = tf.mul(0.5 * (lambda0 - lambdaMin), tf.sum(tf.mul(errP, errP), 1));
  const a2 = 1 / (1 + Math.exp(-lambdaMin));
  const kl = tf.mul(0.5, tf.sum(tf.add(tf.mul(a2, tf.sub(tf.mul(zClean, zClean), 1)), Math.log1p(Math.exp(lambdaMin))), 1));
  // The decoder's sigmoid-weighted ELBO (cosine schedule).
  const td = times(tf.randomUniform([1]));
  const theta = tf.add(tf.mul(cosA, td), cosB);
  const ld = tf.mul(2, tf.sub(tf.log(tf.cos(theta)), tf.log(tf.sin(theta))));
  const negDl = tf.div(4 * cosA, tf.sin(tf.mul(2, theta)));
  const epsD = tf.randomNormal([B, 784]);
  const xt = noise(tx, ld, epsD);
  const errD = tf.sub(epsD, epsFromV(xt, decoder(xt, ld, z0), ld));
  const decoderElbo = tf.mul(tf.mul(tf.sigmoid(tf.neg(ld)), tf.mul(0.5, negDl)), tf.sum(tf.mul(errD, errD), 1));
  const priorLoss = tf.mean(tf.add(priorElbo, kl));
  const decoderLoss = tf.mean(decoderElbo);
  const loss = tf.add(priorLoss, tf.mul(lossFactor, decoderLoss));
  const bpp = tf.div(priorLoss, Math.log(2) * 784);
  return { loss, metrics: [loss, bpp, bpp, priorLoss, decoderLoss, tf.mean(kl)] };
}
/** One step; returns its loss. */
const stepTf = async () => {
  let metrics;
  optimizer.minimize(() => {
    const out = tfLoss();
    metrics = tf.keep(tf.stack(out.metrics));
    return out.loss;
  });
  const values = await metrics.data();
  metrics.dispose();
  return values[0];
};

// ---------------------------------------------------------------- timing
const loadBefore = os.loadavg()[0];
// The first losses, as a check that both compute the same objective (their random draws differ).
const firstLoss = [(await stepOurs()).get("loss"), await stepTf()];
for (let i = 1; i < warmup; i++) {
  await stepOurs();
  await stepTf();
}
const [tOurs, tTf] = await alternate(steps, stepOurs, stepTf);
const [mo, mt] = [median(tOurs), median(tTf)];
const loads = `load average ${loadBefore.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after`;
const params = program.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
const table = [
  "| ul_tiny `fit` step | ms / step (median) | min | max |",
  "| --- | ---: | ---: | ---: |",
  `| ours (WebGpuSession, fused kernels) | ${mo.toFixed(0)} | ${Math.min(...tOurs).toFixed(0)} | ${Math.max(...tOurs).toFixed(0)} |`,
  `| TF.js ${tf.version.tfjs} (webgpu backend) | ${mt.toFixed(0)} | ${Math.min(...tTf).toFixed(0)} | ${Math.max(...tTf).toFixed(0)} |`,
  "",
  `Ours is **${(mt / mo).toFixed(2)}×** the speed of TF.js (TF.js ms ÷ ours ms). First-step loss: ours ${firstLoss[0].toFixed(1)}, TF.js ${firstLoss[1].toFixed(1)}.`,
].join("\n");
process.stdout.write(`adapter: ${ours.adapterInfo.name}; batch ${B}; ${(params / 1e6).toFixed(2)}M parameters; ${loads}\n\n${table}\n`);
if (write) {
  writeSection(DOC, "train-step", [
    "## One ul_tiny train step on WebGPU: ours vs TensorFlow.js",
    "",
    `Adapter ${ours.adapterInfo.name}; ${machine()}; measured ${new Date().toISOString().slice(0, 10)} (${loads}); batch ${B}, ` +
      `${(params / 1e6).toFixed(2)}M parameters; ${steps} steps per contender after ${warmup} warm-up steps, contenders alternating ` +
      "step by step. A step is the forward pass, the backward pass and the Adam update, then the read-back of its six metrics. " +
      "TF.js runs the same network (bench/train-step.mjs builds it from the layers of models/ul_tiny.ul and models/std/*.ul) " +
      "with the same losses and Adam; ours is the Program's fused kernels on WebGpuSession (register-tiled matmuls).",
    "",
    table,
    "",
    "Reproduce: `npm run build && npm run bench:train-step -- --write`.",
  ]);
  process.stdout.write(`\nwrote ${relative(ROOT, DOC)}\n`);
}
process.exit(0);
