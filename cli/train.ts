// `ulc train MODEL.ul --data fashion-mnist --out RUN_DIR`: trains a model's train entry on images, with a
// progress bar, metrics in RUN_DIR/metrics.jsonl, atomic checkpoints, exact resume and a stop on a
// non-finite loss. The loop itself is train/loop.ts; this file turns flags into a run and reports it.
// Under mpirun (or with --ranks N, which starts mpirun), each process is one rank of a data-parallel job: it
// trains its shard of every global batch --batch, and rank 0 alone holds and writes the run.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Program } from "../compiler/lower.js";
import { NAMES } from "../compiler/names.js";
import { decodeSafetensors, encodeSafetensors } from "../runtime/safetensors.js";
import { arrayData, imageData, inputLayout, type TrainingData } from "../train/batches.js";
import { CheckpointError, removeStaleTemporaries, writeFileAtomic } from "../train/checkpoint.js";
import { EntryError, requireEntries } from "../train/conventions.js";
import { DataError, loadImages } from "../train/data.js";
import { isTensorFile, readTensorFile } from "../train/tensor-file.js";
import { entryOutputs } from "../train/evaluate.js";
import { DivergedError, trainLoop } from "../train/loop.js";
import { DeviceUnavailableError, openSession, resolveTarget, type OpenedSession } from "../train/open-session.js";
import { writeLossCurve } from "../train/plot.js";
import { defaultPrecision, listRunFiles, lockRun, readMetrics, readRunConfig, resolveData, RUN_FILE, RUN_FORMAT, RunError, writeRunConfig, type RunConfig, type Target, type TargetChoice } from "../train/run.js";
import type { ContractionPrecision } from "../runtime/manifest.js";
import { NativeError } from "../runtime/native/compile.js";
import { EXIT } from "./args.js";
import { checkAndLower } from "./build.js";
import type { CliIo } from "./io.js";
import { metricFields, Progress } from "./progress.js";
import { launchRanks, mpiRank, withoutRanks, type Rank } from "./ranks.js";

export interface TrainCommandOptions {
  readonly data: string;
  readonly steps: number;
  readonly batch: number;
  readonly lr?: number;
  readonly seed: number;
  readonly set?: Record<string, number>;
  readonly target: TargetChoice;
  readonly out?: string;
  readonly resume?: boolean;
  readonly emaDecay: number;
  readonly checkpointEvery: number;
  readonly entry?: string;
  readonly model?: string;
  readonly bind?: Record<string, number>;
  readonly latentsFrom?: string;
  /** Start an MPI job of this many ranks on this machine (`mpirun -np N ulc train ...`). */
  readonly ranks?: number;
  /** How contractions multiply f32 operands; default tf32 on the cuda target, else fp32 (train/run.ts, defaultPrecision). */
  readonly precision?: ContractionPrecision;
}

/**
 * Flags that define a run, each with where run.json records it: `--resume` takes them from there, so such a flag
 * may be given again only with the recorded value.
 */
const RECORDED: { readonly [K in keyof TrainCommandOptions]?: (config: RunConfig) => unknown } = {
  model: (c) => c.modelName,
  data: (c) => c.data,
  batch: (c) => c.batch,
  seed: (c) => c.seed,
  target: (c) => c.target,
  precision: (c) => c.precision,
  emaDecay: (c) => c.emaDecay,
  entry: (c) => c.entry,
  lr: (c) => c.optimizer.lr,
  set: (c) => c.hypers,
  bind: (c) => c.bindings,
  latentsFrom: (c) => c.latentsFrom,
};

class UsageError extends Error {}

/** A recorded value as a flag would spell it; records by name sorted, so `--set a=1 --set b=2` is one value whichever comes first. */
function spell(value: unknown): string {
  if (value === undefined) return "none";
  if (typeof value !== "object" || value === null) return String(value);
  return Object.entries(value).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(" ") || "none";
}

/** The run to train: a new one from the flags (`--target auto` resolved), or the recorded one when resuming. */
/** `writer`: whether this process writes the run (rank 0 of a job does; its other ranks read what it wrote). */
async function runConfig(file: string, options: TrainCommandOptions, given: ReadonlySet<string>, dir: string, writer: boolean): Promise<RunConfig> {
  if (options.resume) {
    if (!existsSync(join(dir, RUN_FILE))) throw new UsageError(`--resume: ${dir} holds no run to resume (no ${RUN_FILE})`);
    const config = readRunConfig(dir);
    if (config.model !== resolve(file)) throw new UsageError(`--resume: ${dir} is a run of ${config.model}, not of ${resolve(file)}`);
    // What the flags would record for a new run (probing for a target only when one is asked for), compared
    // field by field with what was recorded.
    const asked = newRunConfig(file, options, given.has("target") ? await resolveTarget(options.target) : config.target);
    for (const [flag, recorded] of Object.entries(RECORDED)) {
      if (!given.has(flag)) continue;
      const [was, now] = [spell(recorded(config)), spell(recorded(asked))];
      if (was !== now) throw new UsageError(`--resume: --${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is ${now}, but ${join(dir, RUN_FILE)} records ${was}; a resumed run keeps its settings (drop the flag, or train a new run)`);
    }
    return config;
  }
  if (writer && existsSync(join(dir, RUN_FILE))) throw new UsageError(`${dir} already holds a run; pass --resume to continue it, or choose another --out`);
  return newRunConfig(file, options, await resolveTarget(options.target));
}

/** The run the flags describe, on `target` (the flag's choice resolved). */
function newRunConfig(file: string, options: TrainCommandOptions, target: Target): RunConfig {
  return {
    format: RUN_FORMAT,
    model: resolve(file),
    ...(options.model && { modelName: options.model }),
    entry: options.entry ?? "",
    batch: options.batch,
    bindings: options.bind ?? {},
    seed: options.seed,
    data: resolveData(options.data),
    hypers: options.set ?? {},
    optimizer: options.lr === undefined ? {} : { lr: options.lr },
    emaDecay: options.emaDecay,
    target,
    precision: options.precision ?? defaultPrecision(target),
    ...(options.latentsFrom && { latentsFrom: resolve(options.latentsFrom) }),
  };
}

const LATENTS_FILE = "latents.safetensors";

/** A stage-1 run's latents (`count` rows, flattened) as the data of the entry's one input. */
function latentData(source: string, rows: Float32Array, count: number, entry: Program["entries"][number]): TrainingData {
  if (entry.inputs.length !== 1) throw new DataError(`entry ${entry.name} takes ${entry.inputs.length} inputs; training on ${source} fills exactly one`);
  return arrayData(source, new Map([[entry.inputs[0]!.name, { dtype: "f32", example: [rows.length / count], count, data: rows }]]), entry);
}

/**
 * Stage 2's data: the latents of the training images under a stage-1 run's frozen encoder (its moving average),
 * computed once with its `encode` entry and kept in the run as latents.safetensors, so a resumed run trains on
 * the very same values.
 */
async function stage1Latents(config: RunConfig, dir: string, entry: Program["entries"][number], io: CliIo): Promise<TrainingData> {
  const cache = join(dir, LATENTS_FILE);
  const source = `the latents of ${config.latentsFrom}`;
  if (existsSync(cache)) {
    const rows = decodeSafetensors(readFileSync(cache), cache).tensors.get("latents");
    if (!rows) throw new DataError(`${cache} holds no 'latents' tensor`);
    return latentData(source, rows.data as Float32Array, rows.shape[0]!, entry);
  }
  const { loadRun } = await import("./sample.js");
  const stage1 = await loadRun(config.latentsFrom!, { batch: config.batch, seed: config.seed, ema: true, target: config.target }, io, "train");
  if (typeof stage1 === "number") throw new UsageError(`--latents-from ${config.latentsFrom}: the stage-1 run cannot be loaded (above)`);
  try {
    requireEntries(stage1.program, ["encode"], `--latents-from ${config.latentsFrom} (stage 2's latents)`);
    const encode = stage1.program.entries.find((e) => e.name === "encode")!;
    const set = loadImages(stage1.config.data, "train");
    const layout = inputLayout(encode, set);
    io.stderr.write(`ulc train: encoding ${set.count} images with the frozen encoder of ${config.latentsFrom} (step ${stage1.step})\n`);
    const rows = await entryOutputs(stage1.opened.session, "encode", imageData(set, layout).inputs, set.count, config.batch, 0);
    const per = rows.length / set.count;
    writeFileAtomic(cache, encodeSafetensors(new Map([["latents", { dtype: "f32", shape: [set.count, per], data: rows }]]), { stage1: config.latentsFrom!, step: String(stage1.step) }));
    return latentData(source, rows, set.count, entry);
  } finally {
    stage1.opened.close();
  }
}

/** The train entry, and checks that every override names something the model has. */
function trainEntry(program: Program, config: RunConfig): Program["entries"][number] {
  const trains = program.entries.filter((e) => e.kind === "train");
  const entry = config.entry ? program.entries.find((e) => e.name === config.entry) : trains[0];
  if (!entry) throw new UsageError(config.entry ? `model ${program.model} has no entry '${config.entry}'` : `model ${program.model} has no train entry`);
  if (entry.kind !== "train") throw new UsageError(`entry ${entry.name} of ${program.model} is not a train entry (train entries: ${trains.map((e) => e.name).join(", ") || "none"})`);
  for (const name of Object.keys(config.hypers))
    if (!program.hypers.some((h) => h.name === name)) throw new UsageError(`--set ${name}: model ${program.model} has no hyper '${name}' (it has ${program.hypers.map((h) => h.name).join(", ") || "none"})`);
  for (const name of Object.keys(config.optimizer))
    if (!entry.training!.args.some((a) => a.name === name))
      throw new UsageError(
        `--${name}: the optimizer ${entry.training!.optimizer} of entry ${entry.name} has no run-time '${name}' (it has ${entry.training!.args.map((a) => a.name).join(", ") || "none"}); an argument the model computes, such as a scheduled lr, follows the hypers it reads: --set NAME=X`,
      );
  return entry;
}

/** What a checkpoint must hold to resume training `entry`: every parameter and its moving average, and the trained ones' optimizer state. */
function resumeNeeds(program: Program, entry: string): string[] {
  const training = program.entries.find((e) => e.name === entry)!.training!;
  return [...program.params.flatMap((p) => [NAMES.newParam(p.name), NAMES.ema(p.name)]), ...training.params.flatMap((p) => training.states.map((s) => NAMES.state(s, p)))];
}

/** `args`: the command line after `train`, which `--ranks` hands to mpirun. */
export async function runTrain(file: string, options: TrainCommandOptions, given: ReadonlySet<string>, io: CliIo, args: readonly string[] = []): Promise<number> {
  const rank = mpiRank(io.env);
  if (options.ranks !== undefined) {
    if (rank) {
      io.stderr.write(`ulc train: --ranks starts an MPI job, and this process is already rank ${rank.index} of one of ${rank.count}: drop --ranks\n`);
      return EXIT.usage;
    }
    if (options.ranks > 1) return launchRanks(options.ranks, ["train", ...withoutRanks(args)], io);
  }
  const shard = rank && rank.count > 1 ? rank : undefined;
  const dir = resolve(options.out ?? join("runs", file.replace(/^.*\//, "").replace(/\.ul$/, "")));
  if (shard && shard.index > 0) return trainRank(file, dir, options, given, io, shard);
  let release: () => void;
  try {
    release = lockRun(dir);
  } catch (e) {
    if (!(e instanceof RunError)) throw e;
    io.stderr.write(`ulc train: ${e.message}\n`);
    return EXIT.usage;
  }
  try {
    return await trainRank(file, dir, options, given, io, shard);
  } finally {
    release();
  }
}

/**
 * One process's training: alone, or one rank of a data-parallel job. When mpirun ends the job because another
 * rank failed, this rank says so before it goes.
 */
async function trainRank(file: string, dir: string, options: TrainCommandOptions, given: ReadonlySet<string>, io: CliIo, shard: Rank | undefined): Promise<number> {
  if (!shard) return trainLocked(file, dir, options, given, io, undefined);
  const ended = () => {
    io.stderr.write(`ulc train: rank ${shard.index} of ${shard.count}: the job was ended (mpirun ends every rank when one fails: see its message); --resume continues from the last checkpoint\n`);
    process.exit(128 + 15);
  };
  process.once("SIGTERM", ended);
  try {
    return await trainLocked(file, dir, options, given, io, shard);
  } finally {
    process.off("SIGTERM", ended);
  }
}

/** The run in `dir`, which this process holds (or, as a rank other than 0, reads). */
async function trainLocked(file: string, dir: string, options: TrainCommandOptions, given: ReadonlySet<string>, io: CliIo, shard: Rank | undefined): Promise<number> {
  const writer = (shard?.index ?? 0) === 0;
  // First, before anything is written: a killed writer's temporary files could be what fills the disk.
  if (writer) removeStaleTemporaries(dir, listRunFiles(dir));
  let config: RunConfig, data: TrainingData, program: Program | number;
  try {
    config = await runConfig(file, options, given, dir, writer);
    if (config.bindings.B !== undefined) throw new UsageError("the batch is --batch, not --bind B=...");
    if (shard) checkDataParallel(config, shard);
    const local = config.batch / (shard?.count ?? 1);
    program = checkAndLower(file, { ...config.bindings, B: local }, config.modelName, io, "train", { precision: config.precision, ...(shard && { shard: { ...shard, batch: "B" } }) });
    if (typeof program === "number") return program;
    const entry = trainEntry(program, config);
    config = { ...config, entry: entry.name };
    if (config.latentsFrom) {
      mkdirSync(dir, { recursive: true });
      data = await stage1Latents(config, dir, entry, io);
    } else if (isTensorFile(config.data)) {
      data = arrayData(config.data, readTensorFile(config.data, entry.inputs), entry);
    } else {
      const set = loadImages(config.data, "train");
      data = imageData(set, inputLayout(entry, set));
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof DataError || e instanceof RunError || e instanceof EntryError) {
      io.stderr.write(`ulc train: ${e.message}\n`);
      return EXIT.usage;
    }
    throw e;
  }
  let opened: OpenedSession;
  try {
    opened = await openSession(program, config.target, { seed: config.seed, hypers: config.hypers, optimizer: config.optimizer });
  } catch (e) {
    if (!(e instanceof DeviceUnavailableError)) throw e;
    io.stderr.write(`ulc train: ${e.message}\n`);
    return EXIT.device;
  }
  if (shard && opened.job?.ranks !== shard.count) {
    opened.close();
    io.stderr.write(`ulc train: mpirun started ${shard.count} ranks, but the ${config.target} program sees a job of ${opened.job?.ranks ?? 1} (${opened.job?.collective ?? "no MPI"}): its MPI is not the mpirun's\n`);
    return EXIT.device;
  }
  try {
    if (writer) writeRunConfig(dir, config);
    const ranks = shard ? ` over ${shard.count} ranks (${data.batch} each; ${opened.job!.collective})` : "";
    if (writer) io.stderr.write(`ulc train: ${program.model}.${config.entry} on ${data.source}, batch ${config.batch}${ranks}, ${opened.device}, ${program.precision} contractions\n`);
    let progress: Progress | undefined;
    const loss = program.entries.find((e) => e.name === config.entry)!.training!.loss;
    const result = await trainLoop(
      opened.session,
      config,
      data,
      dir,
      { steps: options.steps, checkpointEvery: options.checkpointEvery, resume: options.resume === true, resumeNeeds: resumeNeeds(program, config.entry), ...(shard && { shard }) },
      {
        start(taken) {
          if (writer) progress = new Progress(io.stderr, "train", options.steps, taken);
        },
        step(step, metrics) {
          progress?.update(step, metricFields(metrics, loss));
        },
      },
    );
    if (!writer) return EXIT.ok;
    if (result.lastStep < result.firstStep) io.stderr.write(`ulc train: ${dir} has already taken ${result.lastStep} steps; nothing to do (raise --steps to train on)\n`);
    await writeLossCurve(dir, readMetrics(dir), program.model);
    io.stdout.write(`${dir}: step ${result.lastStep}, checkpoint ${join(dir, "checkpoint.safetensors")}, metrics ${join(dir, "metrics.jsonl")}, loss curve ${join(dir, "loss.svg")}\n`);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof DivergedError) {
      io.stderr.write(`\nulc train: ${e.message}\n`);
      return EXIT.diverged;
    }
    if (e instanceof CheckpointError) {
      io.stderr.write(`ulc train: ${e.message}\n`);
      return EXIT.usage;
    }
    if (e instanceof NativeError) {
      io.stderr.write(`\nulc train: ${shard ? `rank ${shard.index} of ${shard.count}: ` : ""}${e.message}\n`);
      return EXIT.device;
    }
    throw e;
  } finally {
    opened.close();
  }
}

/** What a data-parallel run needs: a native target (its host does the all-reduce) and a batch the ranks share evenly. */
function checkDataParallel(config: RunConfig, shard: Rank): void {
  if (config.target !== "cpu" && config.target !== "cuda") throw new UsageError(`a data-parallel run trains on the cpu or cuda target (their host programs do the all-reduce), not ${config.target}`);
  if (config.batch % shard.count !== 0) throw new UsageError(`--batch ${config.batch} is the global batch, shared by ${shard.count} ranks: it must be a multiple of ${shard.count}`);
  if (config.latentsFrom) throw new UsageError("--latents-from is not supported in a data-parallel run yet: encode the latents in a run of one process first");
}
