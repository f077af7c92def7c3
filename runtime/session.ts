// What every runtime offers the training loop, the sampler and the bindings: run an entry, take an optimizer
// step, and move the whole training state (parameters, optimizer state, the parameters' moving average, the
// step) in and out as named host tensors, which is what a checkpoint holds. The reference interpreter, WebGPU
// (Node or a browser) and native (CPU, CUDA) sessions implement it, so `ulc train`, `ulc sample` and the web
// page are written once. Nothing here needs Node.
import type { DType } from "./manifest.js";

/** A host tensor as a runtime hands it over: f32 (bools as 0/1) or i32 storage. */
export interface HostTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

/** What an entry takes: any numbers of the right count (uploads convert them to the storage type). */
export interface InputTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: ArrayLike<number>;
}

/**
 * The training state by name: `param:NAME` for each parameter, `optimizer.STATE.PARAM` for optimizer state
 * (`NAMES`, runtime/manifest.ts), `ema:NAME` for the moving average once one is kept.
 */
export interface TrainingState {
  readonly step: number;
  readonly tensors: ReadonlyMap<string, HostTensor>;
}

export interface Session {
  /** The number of optimizer steps taken; the next train step is step + 1. */
  readonly step: number;
  /** Runs a plain entry; its randomness is keyed by `step` (default: the current step). */
  run(entry: string, inputs: ReadonlyMap<string, InputTensor>, step?: number): Promise<Map<string, HostTensor>>;
  /** One optimizer step of a train entry; returns its metrics. */
  trainStep(entry: string, inputs: ReadonlyMap<string, InputTensor>): Promise<Map<string, number>>;
  /**
   * Optional: several optimizer steps, each followed by the moving average's update at its decay, in as few
   * round trips to the device as the runtime can; each step's metrics. The training loop takes steps one by one
   * (trainStep, then updateEma) on a runtime without it.
   */
  trainSteps?(entry: string, batches: readonly ReadonlyMap<string, InputTensor>[], emaDecays: readonly number[]): Promise<Map<string, number>[]>;
  /** Folds the current parameters into their exponential moving average: ema ← decay·ema + (1 − decay)·param. */
  updateEma(decay: number): Promise<void>;
  /**
   * Runs plain entries with the moving average in place of the parameters (a no-op switch when none is kept).
   * Train steps and the average's own update always read the parameters.
   */
  useEma(on: boolean): void;
  exportState(): Promise<TrainingState>;
  /** Replaces the state; every tensor must match the program's parameter table (name, dtype, shape). */
  importState(state: TrainingState): Promise<void>;
  dispose(): void;
}

/** Train steps one by one, each followed by the moving average's update: Session.trainSteps where a runtime has nothing faster. */
export async function trainStepsOneByOne(session: Session, entry: string, batches: readonly ReadonlyMap<string, InputTensor>[], emaDecays: readonly number[]): Promise<Map<string, number>[]> {
  const metrics: Map<string, number>[] = [];
  for (const [i, batch] of batches.entries()) {
    metrics.push(await session.trainStep(entry, batch));
    await session.updateEma(emaDecays[i]!);
  }
  return metrics;
}
