// The training loop, the same on every runtime: batches in a seed-determined order, one optimizer step each,
// the parameters' moving average after each step, metrics to metrics.jsonl, a checkpoint every so often and at
// the end. A non-finite loss stops the run before anything of that step is saved, so the last checkpoint is the
// last good state. Resuming loads the checkpoint and continues with the same batches and the same random
// streams (both are functions of the seed and the step), so it gives what an uninterrupted run gives.
// In a data-parallel job every rank runs this loop on its shard of each global batch; the step's all-reduce
// keeps their states equal, and rank 0 alone writes the run's files.
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { trainStepsOneByOne, type Session } from "../runtime/session.js";
import { BatchOrder, type TrainingData } from "./batches.js";
import { StateMismatchError } from "../runtime/training-state.js";
import { CHECKPOINT_FILE, CheckpointError, guardedWrite, hasCheckpoint, readCheckpoint, writeCheckpoint } from "./checkpoint.js";
import { METRICS_FILE, readMetrics, type RunConfig, type MetricsRow } from "./run.js";

/** Train steps sent to the device in one request, where the runtime takes several (Session.trainSteps). */
const STEPS_PER_REQUEST = 8;

export interface LoopOptions {
  /** Train until the session has taken this many steps in all. */
  readonly steps: number;
  readonly checkpointEvery: number;
  readonly resume: boolean;
  /**
   * Tensors a checkpoint must hold for a resume to continue exactly (every parameter, its optimizer state and
   * moving average): one without them would start those from zero and diverge from the run it claims to continue.
   */
  readonly resumeNeeds?: readonly string[];
  /** This process's shard of every global batch, in a data-parallel job; only shard 0 writes metrics and checkpoints. */
  readonly shard?: { readonly index: number; readonly count: number };
}

export interface LoopEvents {
  /** Before the first step, with the number of steps already taken (0, or the checkpoint's on resume). */
  start?(taken: number): void;
  /** After each step, with its metrics. */
  step?(step: number, metrics: ReadonlyMap<string, number>): void;
  checkpoint?(step: number): void;
}

export class DivergedError extends Error {
  constructor(
    readonly step: number,
    readonly metric: string,
    readonly value: number,
    readonly lastCheckpoint: number | undefined,
  ) {
    super(
      `step ${step}: ${metric} is ${value}; training stopped. ` +
        (lastCheckpoint === undefined ? "No checkpoint had been written yet." : `The last good checkpoint (step ${lastCheckpoint}) is kept.`) +
        " Lower the learning rate (--lr) or check the data.",
    );
  }
}

export interface LoopResult {
  readonly firstStep: number;
  readonly lastStep: number;
  readonly seconds: number;
}

export async function trainLoop(session: Session, config: RunConfig, data: TrainingData, dir: string, options: LoopOptions, events: LoopEvents = {}): Promise<LoopResult> {
  let lastCheckpoint: number | undefined;
  const metricsFile = join(dir, METRICS_FILE);
  const shard = options.shard ?? { index: 0, count: 1 };
  const writes = shard.index === 0;
  const write = (f: () => void) => writes && guardedWrite(metricsFile, f);
  if (options.resume && hasCheckpoint(dir)) {
    const { state } = readCheckpoint(dir);
    const lacking = (options.resumeNeeds ?? []).filter((name) => !state.tensors.has(name));
    if (lacking.length > 0)
      throw new CheckpointError(`${join(dir, CHECKPOINT_FILE)} cannot resume the run exactly: it lacks ${lacking.length} of the tensors it needs, first '${lacking[0]}'`);
    try {
      await session.importState(state);
    } catch (e) {
      if (e instanceof StateMismatchError) throw new CheckpointError(`${join(dir, CHECKPOINT_FILE)} is not a checkpoint of this model as it is now: ${e.message}`);
      throw e;
    }
    lastCheckpoint = state.step;
    // The log keeps exactly the steps the checkpoint has taken.
    // The log keeps exactly the steps the checkpoint has taken.
    write(() => writeFileSync(metricsFile, readMetrics(dir).filter((r) => r.step <= state.step).map((r) => JSON.stringify(r) + "\n").join("")));
  } else write(() => writeFileSync(metricsFile, ""));

  // The global batch's order; each shard takes its consecutive part of every batch.
  const order = new BatchOrder(data.count, data.batch * shard.count, config.seed);
  const examples = (step: number) => order.indices(step).slice(shard.index * data.batch, (shard.index + 1) * data.batch);
  const firstStep = session.step + 1;
  const started = performance.now();
  events.start?.(session.step);
  const save = async () => {
    if (writes) writeCheckpoint(dir, await session.exportState(), { model: config.model, entry: config.entry });
    lastCheckpoint = session.step;
    events.checkpoint?.(session.step);
  };
  // Warm-up (as TensorFlow's ExponentialMovingAverage with num_updates): early on the average would be mostly
  // the initial parameters, so the decay grows from 0.18 towards the configured one.
  const decay = (step: number) => Math.min(config.emaDecay, (1 + step) / (10 + step));
  while (session.step < options.steps) {
    // The steps up to the next checkpoint (or the end), a few at a time: a runtime that can take them in one
    // request (Session.trainSteps) runs them back to back on the device.
    const first = session.step + 1;
    const last = Math.min(options.steps, Math.ceil(first / options.checkpointEvery) * options.checkpointEvery, first + STEPS_PER_REQUEST - 1);
    const steps = Array.from({ length: last - first + 1 }, (_, i) => first + i);
    const batches = steps.map((step) => data.inputs(examples(step)));
    const taken = await (session.trainSteps ? session.trainSteps(config.entry, batches, steps.map(decay)) : trainStepsOneByOne(session, config.entry, batches, steps.map(decay)));
    for (const [i, step] of steps.entries()) {
      const metrics = taken[i]!;
      for (const [name, value] of metrics) if (!Number.isFinite(value)) throw new DivergedError(step, name, value, lastCheckpoint);
      const row: MetricsRow = { step, ...Object.fromEntries(metrics) };
      write(() => appendFileSync(metricsFile, JSON.stringify(row) + "\n"));
      events.step?.(step, metrics);
    }
    if (last % options.checkpointEvery === 0 || last === options.steps) await save();
  }
  return { firstStep, lastStep: session.step, seconds: (performance.now() - started) / 1000 };
}
