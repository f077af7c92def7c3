// `ulc sample RUN_DIR -o grid.png`: images from a trained Unified Latents run. The model is rebuilt with the
// batch bound to --n, the checkpoint loaded (its moving average unless --no-ema), the prior sampled from noise
// to z0 and the decoder from noise to images (runtime/sampler.ts), and the images written as one PNG grid.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Program } from "../compiler/lower.js";
import { imageGrid } from "../runtime/pictures/grid.js";
import { encodePng } from "../runtime/pictures/png.js";
import { decode, sampleCalls, sampleImages, samplePrior, stepEntry, type Sampler } from "../runtime/sampler.js";
import type { HostTensor } from "../runtime/session.js";
import { StateMismatchError } from "../runtime/training-state.js";
import { CheckpointError, fsFailure, makeFolder, readCheckpoint } from "../train/checkpoint.js";
import { EntryError, requireEntries, type ConventionName } from "../train/conventions.js";
import { DeviceUnavailableError, openSession, type OpenedSession } from "../train/open-session.js";
import { readRunConfig, RunError, type RunConfig, type TargetChoice } from "../train/run.js";
import { EXIT } from "./args.js";
import { checkAndLower } from "./build.js";
import type { CliIo } from "./io.js";
import { Progress } from "./progress.js";

export interface SampleCommandOptions {
  readonly n: number;
  readonly steps: number;
  readonly sampler: Sampler;
  readonly seed: number;
  readonly ema: boolean;
  readonly target?: TargetChoice;
  readonly output: string;
}

export interface LoadedRun {
  /** The run directory. */
  readonly dir: string;
  readonly config: RunConfig;
  readonly program: Program;
  readonly opened: OpenedSession;
  readonly step: number;
  readonly usesEma: boolean;
}

export interface LoadOptions {
  readonly batch: number;
  /** Keys the entries' noise. */
  readonly seed: number;
  /** Load the parameters' moving average, when the checkpoint has one. */
  readonly ema: boolean;
  /** The target to run on (default: the one the run trained on); checkpoints are the same on every target. */
  readonly target?: TargetChoice;
}

/**
 * A run's model rebuilt at `batch` with its checkpoint loaded, ready for plain entries. Returns an exit code
 * when the run cannot be loaded (the reason is printed).
 */
export async function loadRun(dir: string, { batch, seed, ema, target }: LoadOptions, io: CliIo, command: string): Promise<LoadedRun | number> {
  let config: RunConfig, checkpoint: ReturnType<typeof readCheckpoint>;
  try {
    config = readRunConfig(dir);
    checkpoint = readCheckpoint(dir);
  } catch (e) {
    if (e instanceof RunError || e instanceof CheckpointError) {
      io.stderr.write(`ulc ${command}: ${e.message}\n`);
      return EXIT.usage;
    }
    throw e;
  }
  // The parameters this command reads (their moving average, where kept) must be numbers: NaN parameters would
  // make NaN images, and NaN features a meaningless distance.
  const usesEma = ema && [...checkpoint.state.tensors.keys()].some((k) => k.startsWith("ema:"));
  const read = usesEma ? "ema:" : "param:";
  for (const [name, t] of checkpoint.state.tensors) {
    if (!name.startsWith(read)) continue;
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad < 0) continue;
    io.stderr.write(`ulc ${command}: ${join(dir, "checkpoint.safetensors")} holds a non-finite value in '${name}' (element ${bad}: ${t.data[bad]}); the run diverged or the file was altered\n`);
    return EXIT.usage;
  }
  // The run's precision, whatever the target: the model it trained is the one it samples.
  const program = checkAndLower(config.model, { ...config.bindings, B: batch }, config.modelName, io, command, { precision: config.precision });
  if (typeof program === "number") return program;
  let opened: OpenedSession;
  try {
    opened = await openSession(program, target ?? config.target, { seed, hypers: config.hypers });
  } catch (e) {
    if (!(e instanceof DeviceUnavailableError)) throw e;
    io.stderr.write(`ulc ${command}: ${e.message}\n`);
    return EXIT.device;
  }
  try {
    await opened.session.importState(checkpoint.state);
  } catch (e) {
    opened.close();
    if (!(e instanceof StateMismatchError)) throw e;
    io.stderr.write(`ulc ${command}: ${join(dir, "checkpoint.safetensors")} does not fit ${config.model} as it is now: ${e.message}\n`);
    return EXIT.usage;
  }
  opened.session.useEma(usesEma);
  return { dir, config, program, opened, step: checkpoint.state.step, usesEma };
}

export async function writeGrid(path: string, images: { data: ArrayLike<number>; shape: readonly number[] }): Promise<void> {
  makeFolder(dirname(path));
  writeFileSync(path, await encodePng(imageGrid(images.data, images.shape)));
}

/**
 * How a run makes a batch of images: prior then decoder, or for a stage-2 run its base model then its stage-1 run's
 * decoder; either way in `sampleCalls(steps)` entry calls numbered from `firstCall` (runtime/sampler.ts).
 */
export interface ImageSampler {
  readonly describe: string;
  sample(seed: number, firstCall: number, onProgress?: (done: number, total: number) => void): Promise<HostTensor>;
  close(): void;
}

export async function imageSampler(run: LoadedRun, batch: number, options: Pick<SampleCommandOptions, "steps" | "sampler" | "seed" | "ema" | "target">, io: CliIo, command: string): Promise<ImageSampler | number> {
  const base = { steps: options.steps, sampler: options.sampler };
  const prior = stepEntry("prior", options.sampler);
  const decoder: ConventionName[] = [stepEntry("decoder", options.sampler), "decoder_x_hat"];
  // A stage-2 run samples its prior, then decodes with the decoder of the stage-1 run it was trained over.
  const stage1From = run.config.latentsFrom;
  const refused = entriesRefused(io, command, () => {
    // A model with a decoder and no prior (a stage-1 run, a VAE) is sampled through a stage-2 run over its latents.
    const noPrior = !run.program.entries.some((e) => e.name === prior) && run.program.entries.some((e) => e.name === decoder[0]);
    const hint = noPrior ? "; train a stage-2 base model on its latents (ulc train models/ul_tiny_base.ul --latents-from RUN_DIR) and sample that run" : "";
    requireEntries(run.program, stage1From ? [prior] : [prior, ...decoder], `sampling ${run.dir} (--sampler ${options.sampler})`, [], hint);
  });
  if (refused !== undefined) return refused;
  if (!stage1From) {
    return {
      describe: "prior and decoder",
      sample: async (seed, firstCall, onProgress) => (await sampleImages(run.opened.session, run.program.entries, { ...base, seed, ...(onProgress && { onProgress }) }, firstCall)).images,
      close: () => {},
    };
  }
  const stage1 = await loadRun(stage1From, { batch, seed: options.seed, ema: options.ema, ...(options.target && { target: options.target }) }, io, command);
  if (typeof stage1 === "number") return stage1;
  const decoderRefused = entriesRefused(io, command, () => requireEntries(stage1.program, decoder, `decoding stage 2's samples with ${stage1From}'s decoder`));
  if (decoderRefused !== undefined) {
    stage1.opened.close();
    return decoderRefused;
  }
  return {
    describe: `stage 2 over ${stage1From}'s decoder`,
    async sample(seed, firstCall, onProgress) {
      const sampling = { ...base, seed, ...(onProgress && { onProgress }) };
      const total = sampleCalls(options.steps);
      const z0 = await samplePrior(run.opened.session, run.program.entries, sampling, "prior", firstCall, total);
      return decode(stage1.opened.session, stage1.program.entries, z0, sampling, firstCall + options.steps, total);
    },
    close: () => stage1.opened.close(),
  };
}

/** Runs `check`; on an EntryError, says why and gives exit 2. */
function entriesRefused(io: CliIo, command: string, check: () => void): number | undefined {
  try {
    check();
    return undefined;
  } catch (e) {
    if (!(e instanceof EntryError)) throw e;
    io.stderr.write(`ulc ${command}: ${e.message}\n`);
    return EXIT.usage;
  }
}

export async function runSample(dir: string, options: SampleCommandOptions, io: CliIo): Promise<number> {
  const run = await loadRun(dir, { batch: options.n, seed: options.seed, ema: options.ema, ...(options.target && { target: options.target }) }, io, "sample");
  if (typeof run === "number") return run;
  const sampler = await imageSampler(run, options.n, options, io, "sample");
  try {
    if (typeof sampler === "number") return sampler;
    const progress = new Progress(io.stderr, "sample", sampleCalls(options.steps), 0, "call");
    const images = await sampler.sample(options.seed, 1, (done) => progress.update(done));
    try {
      await writeGrid(options.output, images);
    } catch (e) {
      const why = fsFailure(e);
      if (!why) throw e;
      io.stderr.write(`ulc sample: cannot write ${options.output}: ${why}\n`);
      return EXIT.usage;
    }
    io.stdout.write(`${options.output}: ${options.n} samples of ${run.program.model} at step ${run.step} (${sampler.describe}; ${run.usesEma ? "moving average" : "raw parameters"}, ${options.sampler}, ${options.steps} steps, seed ${options.seed})\n`);
    return EXIT.ok;
  } finally {
    if (typeof sampler === "object") sampler.close();
    run.opened.close();
  }
}
