// Fréchet distances of a stage-1 run on the classifier's features: samples (prior then decoder; none for a model
// without a prior) and reconstructions (encode -> z0 -> decoder), each against test images; images larger than
// the classifier's input are center-cropped (ul_small's 32x32 canvas has 2 pixels of constant padding per side).
// Writes RUN/fd.json.
// Usage: node fd.mjs RUN CLASSIFIER N [STEPS]   (run from the repository root)
import { join, resolve } from "node:path";
import { writeFileSync } from "node:fs";
const root = process.cwd();
const imp = (p) => import(resolve(root, p));
const { loadRun, imageSampler } = await imp("dist/cli/sample.js");
const { loadImages } = await imp("dist/train/data.js");
const { inputLayout, batchOf } = await imp("dist/train/batches.js");
const { entryOutputs, featureDistance, reconstructions, samples, meanPsnr } = await imp("dist/train/evaluate.js");
const { sampleCalls } = await imp("dist/runtime/sampler.js");
const [dir, clfDir, nArg, stepsArg] = process.argv.slice(2);
const n = Number(nArg), steps = Number(stepsArg ?? 50), batch = 64, seed = 0;
const io = { stdout: process.stdout, stderr: process.stderr, env: process.env };
const run = await loadRun(dir, { batch, seed, ema: true }, io, "fd");
const clf = await loadRun(clfDir, { batch, seed, ema: true }, io, "fd");
if (typeof run === "number" || typeof clf === "number") process.exit(3);
const set = loadImages(run.config.data, "test");
const fEntry = clf.program.entries.find((e) => e.name === "features");
const spec = fEntry.inputs[0];
const [, C, H, W] = spec.shape;
// crop [count, C, h, w] images to C x H x W (centre)
function crop(data, count, h, w) {
  if (h === H && w === W) return data;
  const out = new Float32Array(count * C * H * W), py = (h - H) / 2, px = (w - W) / 2;
  for (let i = 0; i < count; i++) for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++)
    out[((i * C + c) * H + y) * W + x] = data[((i * C + c) * h + y + py) * w + x + px];
  return out;
}
async function features(images, count, entry = "features") {
  const per = C * H * W;
  return entryOutputs(clf.opened.session, entry, (indices) => {
    const data = new Float32Array(batch * per);
    indices.forEach((k, i) => data.set(images.subarray(k * per, (k + 1) * per), i * per));
    return new Map([[spec.name, { dtype: "f32", shape: spec.shape, data }]]);
  }, count, batch, 0);
}
const clfLayout = inputLayout(fEntry, set);
const realFeat = (first, count) => entryOutputs(clf.opened.session, "features", (idx) => batchOf(set, clfLayout, idx.map((i) => (i + first) % set.count)), count, clfLayout.batch, 0);
const t0 = Date.now();
const fr = await realFeat(0, n);
const fr2 = await realFeat(n, n); // a disjoint set of test images: the floor
const dim = fr.length / n;
const report = { run: dir, step: run.step, classifier: clfDir, n, steps, realVsReal: featureDistance(fr, fr2, dim) };
// reconstructions
const layout = inputLayout(run.program.entries.find((e) => e.name === "encode"), set);
const [, , h, w] = layout.image.shape;
const rec = await reconstructions(run.opened.session, run.program.entries, set, layout, n, { steps, sampler: "ddpm", seed });
report.reconPsnr = meanPsnr(rec.real, rec.fake, n);
const recCropped = crop(rec.fake, n, h, w);
report.reconFd = featureDistance(fr, await features(recCropped, n), dim);
// The classifier's label for each reconstruction against the test label of its original, and for the originals.
const agree = (logits) => { const k = logits.length / n; let hits = 0; for (let i = 0; i < n; i++) { let best = 0; for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j; if (best === set.labels[i]) hits++; } return hits / n; };
report.reconAccuracy = agree(await features(recCropped, n, "logits"));
report.realAccuracy = agree(await features(crop(rec.real, n, h, w), n, "logits"));
process.stderr.write(`recon done ${(Date.now() - t0) / 1000}s\n`);
// samples (a model without a prior, such as the VAE, has none: its samples come from a stage-2 run)
if (run.program.entries.some((e) => e.name === "prior_step")) {
  const sampler = await imageSampler(run, batch, { steps, sampler: "ddpm", seed, ema: true }, io, "fd");
  const fakes = await samples(n, batch, sampleCalls(steps), (first) => sampler.sample(seed, first));
  report.sampleFd = featureDistance(fr, await features(crop(fakes.data, n, h, w), n), dim);
  sampler.close();
}
report.seconds = (Date.now() - t0) / 1000;
writeFileSync(join(dir, "fd.json"), JSON.stringify(report, null, 2) + "\n");
console.log(JSON.stringify(report));
run.opened.close(); clf.opened.close();
