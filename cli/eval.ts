// `ulc eval RUN_DIR`: measures a trained run on the test split and writes RUN_DIR/eval.json. A Unified Latents
// run gets held-out bits/pixel (the prior bound, from its `evaluate` entry), reconstruction PSNR and, given a
// trained classifier run, the Fréchet distance between real and sampled images in the classifier's feature
// space (an FID for Fashion-MNIST, with our classifier in Inception's place); pictures of reconstructions and
// samples land beside it. An autoencoder (a `reconstruct` entry) gets reconstruction PSNR, and held-out
// metrics with `evaluate`; a classifier run gets its test loss and accuracy.
import { join } from "node:path";
import type { ProgramEntry } from "../compiler/lower.js";
import { writeFileAtomic } from "../train/checkpoint.js";
import { batchOf, inputLayout } from "../train/batches.js";
import { DataError, loadImages, type ImageSet } from "../train/data.js";
import { autoencoded, entryOutputs, featureDistance, meanMetrics, meanPsnr, reconstructions, samples } from "../train/evaluate.js";
import { writeLossCurve } from "../train/plot.js";
import { readMetrics, readRunConfig, RunError, type TargetChoice } from "../train/run.js";
import { sampleCalls, stepEntry, type Sampler } from "../runtime/sampler.js";
import { EntryError, requireEntries, type ConventionName } from "../train/conventions.js";
import { EXIT } from "./args.js";
import type { CliIo } from "./io.js";
import { Progress } from "./progress.js";
import { imageSampler, loadRun, writeGrid, type ImageSampler, type LoadedRun } from "./sample.js";

export interface EvalCommandOptions {
  readonly classifier?: string;
  readonly n: number;
  readonly recon: number;
  readonly fdN: number;
  readonly steps: number;
  readonly sampler: Sampler;
  readonly batch: number;
  readonly seed: number;
  readonly ema: boolean;
  readonly target?: TargetChoice;
}

/** An entry eval relies on, which `measures` has checked is there with its signature (train/conventions.ts). */
function entry(run: LoadedRun, name: ConventionName): ProgramEntry {
  return run.program.entries.find((e) => e.name === name)!;
}

/** What eval measures of a run, by the entries its model has; each needs entries the run's model must have. */
interface Measures {
  /** A model without `decoder_step` or `reconstruct` (and not stage 2) is a classifier: its test loss and accuracy. */
  readonly classifier: boolean;
  readonly heldOut: boolean;
  /** Reconstruction PSNR by the `reconstruct` entry (an autoencoder's), by encoding and decoder sampling, or none. */
  readonly psnr: "reconstruct" | "sampling" | false;
  readonly frechet: boolean;
}

/** The measures of `run`, its entries checked for them before any is taken (an EntryError says what is missing). */
function measures(run: LoadedRun, options: EvalCommandOptions): Measures {
  const has = (name: string) => run.program.entries.some((e) => e.name === name);
  const stage2 = Boolean(run.config.latentsFrom);
  if (!has("decoder_step") && !has("reconstruct") && !stage2) {
    requireEntries(run.program, ["evaluate"], `measuring ${run.dir} as a classifier (a model without decoder_step or reconstruct)`);
    return { classifier: true, heldOut: false, psnr: false, frechet: false };
  }
  const psnr = has("reconstruct") ? "reconstruct" : has("encode") && has("decoder_step") ? "sampling" : false;
  const m = { classifier: false, heldOut: has("evaluate"), psnr, frechet: Boolean(options.classifier) && (has("prior_step") || stage2) } as const;
  requireEntries(run.program, m.heldOut ? ["evaluate"] : [], `the held-out metrics of ${run.dir}`);
  if (psnr === "reconstruct") requireEntries(run.program, ["reconstruct"], `the reconstruction PSNR of ${run.dir}`);
  if (psnr === "sampling") requireEntries(run.program, ["encode", stepEntry("decoder", options.sampler), "decoder_x_hat"], `the reconstruction PSNR of ${run.dir}`, ["noise_latent"]);
  return m;
}

/** Test loss and accuracy of a classifier run. */
async function classifierReport(run: LoadedRun, set: ImageSet, n: number, io: CliIo): Promise<Record<string, number>> {
  const layout = inputLayout(entry(run, "evaluate"), set);
  const progress = new Progress(io.stderr, "classifier test split", Math.floor(n / layout.batch), 0, "batch");
  let done = 0;
  return meanMetrics(run.opened.session, "evaluate", set, layout, n, 0, () => progress.update(++done));
}

/**
 * The centre [C, h, w] of images [N, C, H, W]: the data loader pads the data set's images to the size a model
 * declares (ul_small's 32×32 canvas around Fashion-MNIST's 28×28), so a classifier of the data set's size reads
 * the generated images with that padding cut away. Undefined where no such crop exists.
 */
export function centreCrop(images: Float32Array, shape: readonly number[], want: readonly number[]): Float32Array | undefined {
  const [n, c, H, W] = shape as [number, number, number, number];
  const [wc, h, w] = want as [number, number, number];
  if (shape.length !== 4 || want.length !== 3 || c !== wc || H < h || W < w || (H - h) % 2 !== 0 || (W - w) % 2 !== 0) return undefined;
  const [top, left] = [(H - h) / 2, (W - w) / 2];
  const out = new Float32Array(n * c * h * w);
  for (let i = 0; i < n * c; i++) for (let y = 0; y < h; y++) out.set(images.subarray((i * H + top + y) * W + left, (i * H + top + y) * W + left + w), (i * h + y) * w);
  return out;
}

/** The classifier's input for images of `shape`: the images, or their centre crop; a DataError when neither fits. */
function classifierInput(run: LoadedRun, images: Float32Array, shape: readonly number[]): Float32Array {
  const want = entry(run, "features").inputs[0]!.shape.slice(1);
  if (shape.slice(1).join() === want.join()) return images;
  const crop = centreCrop(images, shape, want);
  if (!crop) throw new DataError(`the classifier takes [${want.join(", ")}] images; the run's are [${shape.slice(1).join(", ")}], and no centre crop gives the former`);
  return crop;
}

async function features(run: LoadedRun, images: Float32Array, count: number, batch: number): Promise<Float32Array> {
  const spec = entry(run, "features").inputs[0]!;
  const per = spec.shape.slice(1).reduce((a, b) => a * b, 1);
  return entryOutputs(run.opened.session, "features", (indices) => {
    const data = new Float32Array(batch * per);
    indices.forEach((n, i) => data.set(images.subarray(n * per, (n + 1) * per), i * per));
    return new Map([[spec.name, { dtype: "f32" as const, shape: spec.shape, data }]]);
  }, count, batch, 0);
}

/** Reconstruction PSNR, by the `reconstruct` entry or by decoder sampling, with a picture of pairs (original, reconstruction). */
async function reconstructionReport(run: LoadedRun, by: "reconstruct" | "sampling", set: ImageSet, options: EvalCommandOptions, dir: string, io: CliIo): Promise<number> {
  const layout = inputLayout(entry(run, by === "reconstruct" ? "reconstruct" : "encode"), set);
  io.stderr.write(`reconstructing ${options.recon} test images${by === "sampling" ? ` (${options.steps} decoder steps each)` : ""}...\n`);
  const { real, fake } =
    by === "reconstruct"
      ? await autoencoded(run.opened.session, set, layout, options.recon)
      : await reconstructions(run.opened.session, run.program.entries, set, layout, options.recon, { steps: options.steps, sampler: options.sampler, seed: options.seed });
  const per = real.length / options.recon;
  const pairs = Math.min(32, options.recon);
  const both = new Float32Array(2 * pairs * per);
  for (let i = 0; i < pairs; i++) {
    both.set(real.subarray(i * per, (i + 1) * per), 2 * i * per);
    both.set(fake.subarray(i * per, (i + 1) * per), (2 * i + 1) * per);
  }
  await writeGrid(join(dir, "eval-reconstructions.png"), { data: both, shape: [2 * pairs, ...layout.image.shape.slice(1)] });
  return meanPsnr(real, fake, options.recon);
}

/** The Fréchet distance between test images and samples on the classifier's features; a grid of the samples. */
async function frechetReport(classifier: LoadedRun, sampler: ImageSampler, set: ImageSet, options: EvalCommandOptions, dir: string, io: CliIo): Promise<Record<string, unknown>> {
  const accuracy = await classifierReport(classifier, set, set.count, io);
  const bar = new Progress(io.stderr, "samples for the Fréchet distance", options.fdN, 0, "image");
  let done = 0;
  const fakes = await samples(options.fdN, options.batch, sampleCalls(options.steps), async (firstCall) => {
    const images = await sampler.sample(options.seed, firstCall);
    bar.update((done = Math.min(options.fdN, done + options.batch)));
    return images;
  });
  const per = fakes.data.length / options.fdN;
  await writeGrid(join(dir, "eval-samples.png"), { data: fakes.data.subarray(0, Math.min(64, options.fdN) * per), shape: [Math.min(64, options.fdN), ...fakes.shape.slice(1)] });
  // Real images go to the classifier straight from the data set, in its own batches.
  const layout = inputLayout(entry(classifier, "features"), set);
  const fr = await entryOutputs(classifier.opened.session, "features", (indices) => batchOf(set, layout, indices.map((i) => i % set.count)), options.fdN, layout.batch, 0);
  const ff = await features(classifier, classifierInput(classifier, fakes.data as Float32Array, [options.fdN, ...fakes.shape.slice(1)]), options.fdN, options.batch);
  return {
    distance: featureDistance(fr, ff, fr.length / options.fdN),
    samples: options.fdN,
    sampler: `${sampler.describe}, ${options.sampler}, ${options.steps} steps`,
    features: "the classifier's penultimate layer: an FID for Fashion-MNIST with our classifier in place of Inception",
    classifier: { run: options.classifier, step: classifier.step, ...accuracy },
  };
}

export async function runEval(dir: string, options: EvalCommandOptions, io: CliIo): Promise<number> {
  const run = await loadRun(dir, { batch: options.batch, seed: options.seed, ema: options.ema, ...(options.target && { target: options.target }) }, io, "eval");
  if (typeof run === "number") return run;
  let classifier: LoadedRun | undefined, sampler: ImageSampler | undefined;
  try {
    // Everything the measures need is checked, and loaded, before the first is taken.
    const m = measures(run, options);
    if (m.frechet) {
      const loaded = await loadRun(options.classifier!, { batch: options.batch, seed: options.seed, ema: true, ...(options.target && { target: options.target }) }, io, "eval");
      if (typeof loaded === "number") return loaded;
      classifier = loaded;
      requireEntries(classifier.program, ["evaluate", "features"], `--classifier ${options.classifier} (the Fréchet distance's classifier)`);
      const made = await imageSampler(run, options.batch, options, io, "eval");
      if (typeof made === "number") return made;
      sampler = made;
    }
    const set = loadImages(run.config.latentsFrom ? readRunConfig(run.config.latentsFrom).data : run.config.data, "test");
    const n = Math.min(options.n, set.count);
    const report: Record<string, unknown> = { run: dir, model: run.program.model, step: run.step, ema: run.usesEma, data: set.source };
    if (m.classifier) Object.assign(report, { examples: n }, await classifierReport(run, set, n, io));
    if (m.heldOut) {
      const layout = inputLayout(entry(run, "evaluate"), set);
      const bar = new Progress(io.stderr, "held-out metrics", Math.floor(n / layout.batch), 0, "batch");
      let done = 0;
      report.heldOut = { examples: Math.floor(n / layout.batch) * layout.batch, ...(await meanMetrics(run.opened.session, "evaluate", set, layout, n, 0, () => bar.update(++done))) };
    }
    if (m.psnr) report.psnr = await reconstructionReport(run, m.psnr, set, options, dir, io);
    if (classifier && sampler) report.frechet = await frechetReport(classifier, sampler, set, options, dir, io);
    writeFileAtomic(join(dir, "eval.json"), JSON.stringify(report, null, 2) + "\n");
    await writeLossCurve(dir, readMetrics(dir), run.program.model);
    io.stdout.write(JSON.stringify(report, null, 2) + "\n");
    return EXIT.ok;
  } catch (e) {
    if (e instanceof DataError || e instanceof RunError || e instanceof EntryError) {
      io.stderr.write(`ulc eval: ${e.message}\n`);
      return EXIT.usage;
    }
    throw e;
  } finally {
    sampler?.close();
    classifier?.opened.close();
    run.opened.close();
  }
}
