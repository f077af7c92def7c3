// `ulc sample RUN_DIR -o grid.png`: images from a trained Unified Latents run. The model is rebuilt with the
// batch bound to --n, the checkpoint loaded (its moving average unless --no-ema), the prior sampled from noise
// to z0 and the decoder from noise to images (runtime/sampler.ts), and the images written as one PNG grid.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Program } from "../compiler/lower.js";
import { encodePng, imageGrid } from "../runtime/pictures/png.js";
import { sampleImages, type Sampler } from "../runtime/sampler.js";
import type { Session } from "../runtime/session.js";
import { CheckpointError, readCheckpoint } from "../train/checkpoint.js";
import { openSession, type OpenedSession } from "../train/open-session.js";
import { readRunConfig, RunError, type RunConfig } from "../train/run.js";
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
  readonly output: string;
}

export interface LoadedRun {
  readonly config: RunConfig;
  readonly program: Program;
  readonly opened: OpenedSession;
  readonly step: number;
  readonly usesEma: boolean;
}

/**
 * A run's model rebuilt at `batch` with its checkpoint loaded, ready for plain entries; `seed` keys the
 * entries' noise. Returns an exit code when the run cannot be loaded (the reason is printed).
 */
export async function loadRun(dir: string, batch: number, seed: number, ema: boolean, io: CliIo, command: string): Promise<LoadedRun | number> {
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
  const program = checkAndLower(config.model, { ...config.bindings, B: batch }, config.modelName, io, command);
  if (typeof program === "number") return program;
  const opened = await openSession(program, config.target, { seed, hypers: config.hypers });
  try {
    await opened.session.importState(checkpoint.state);
  } catch (e) {
    opened.close();
    io.stderr.write(`ulc ${command}: ${join(dir, "checkpoint.safetensors")} does not fit ${config.model} as it is now: ${(e as Error).message}\n`);
    return EXIT.usage;
  }
  const usesEma = ema && [...checkpoint.state.tensors.keys()].some((k) => k.startsWith("ema:"));
  opened.session.useEma(usesEma);
  return { config, program, opened, step: checkpoint.state.step, usesEma };
}

export async function writeGrid(path: string, images: { data: ArrayLike<number>; shape: readonly number[] }): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, await encodePng(imageGrid(images.data, images.shape)));
}

export async function sampleRun(session: Session, program: Program, options: Pick<SampleCommandOptions, "steps" | "sampler" | "seed">, io: CliIo, label = "sample") {
  const progress = new Progress(io.stderr, label, 2 * options.steps + 1, 0, "call");
  return sampleImages(session, program.entries, { ...options, onProgress: (done) => progress.update(done) });
}

export async function runSample(dir: string, options: SampleCommandOptions, io: CliIo): Promise<number> {
  const run = await loadRun(dir, options.n, options.seed, options.ema, io, "sample");
  if (typeof run === "number") return run;
  try {
    const { images } = await sampleRun(run.opened.session, run.program, options, io);
    await writeGrid(options.output, images);
    io.stdout.write(`${options.output}: ${options.n} samples of ${run.program.model} at step ${run.step} (${run.usesEma ? "moving average" : "raw parameters"}, ${options.sampler}, ${options.steps} steps, seed ${options.seed})\n`);
    return EXIT.ok;
  } finally {
    run.opened.close();
  }
}
