// A run directory: what `ulc train` was asked to do (run.json), the last good checkpoint, the metrics of every
// step (metrics.jsonl) and the pictures. `ulc sample`, `ulc eval` and `--resume` start from run.json, so a run
// is reproducible from its directory alone.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { CONTRACTION_PRECISIONS, type ContractionPrecision } from "../runtime/manifest.js";
import { fsFailure, makeFolder, writeFileAtomic } from "./checkpoint.js";

export const RUN_FORMAT = "ulc-run/1";
export type Target = "webgpu" | "cuda" | "cpu";
/** A target, or `auto`: a real GPU when there is one (CUDA, else WebGPU on a GPU adapter), the CPU otherwise. */
export type TargetChoice = Target | "auto";

/**
 * The precision of contractions when no --precision is given: tf32 on CUDA, whose tensor cores multiply TF32;
 * fp32 elsewhere (CPUs and WebGPU have no TF32 arithmetic, so rounding would only lose digits).
 */
export function defaultPrecision(target: string | undefined): ContractionPrecision {
  return target === "cuda" ? "tf32" : "fp32";
}

export interface RunConfig {
  readonly format: typeof RUN_FORMAT;
  /** The model's .ul file, absolute. */
  readonly model: string;
  /** The model declared in it, when it declares several. */
  readonly modelName?: string;
  /** The train entry. */
  readonly entry: string;
  readonly batch: number;
  /** `--bind` values of the model's generics (its widths, say), beside the batch. */
  readonly bindings: Readonly<Record<string, number>>;
  readonly seed: number;
  /** `--data` as given (`fashion-mnist`, or an absolute path). */
  readonly data: string;
  /** Hyperparameter overrides (`--set`). */
  readonly hypers: Readonly<Record<string, number>>;
  /** Optimizer argument overrides (`--lr`). */
  readonly optimizer: Readonly<Record<string, number>>;
  readonly emaDecay: number;
  /** The target it trained on (`auto` resolved), which `--resume` keeps so that it continues bit for bit. */
  readonly target: Target;
  /**
   * How its contractions multiply (--precision, or the target's default), which `--resume`, `ulc sample` and
   * `ulc eval` lower with. A run recorded before the flag existed has none: it trained in fp32.
   */
  readonly precision: ContractionPrecision;
  /** Stage 2: the stage-1 run whose frozen encoder makes the latents this model trains on. */
  readonly latentsFrom?: string;
}

export class RunError extends Error {}

export const RUN_FILE = "run.json";
export const METRICS_FILE = "metrics.jsonl";

export function readRunConfig(dir: string): RunConfig {
  const path = join(dir, RUN_FILE);
  if (!existsSync(path)) throw new RunError(`${dir} is not a run directory (no ${RUN_FILE}); 'ulc train ... --out ${dir}' makes one`);
  let config: RunConfig;
  try {
    config = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new RunError(`${path} is not valid JSON (${(e as Error).message})`);
  }
  if (config.format !== RUN_FORMAT) throw new RunError(`${path} is not a ulc run record (format ${String(config.format)}, expected ${RUN_FORMAT})`);
  if (config.precision === undefined) return { ...config, precision: "fp32" };
  if (!CONTRACTION_PRECISIONS.includes(config.precision)) throw new RunError(`${path} records the precision ${JSON.stringify(config.precision)}; ulc knows ${CONTRACTION_PRECISIONS.join(", ")}`);
  return config;
}

/** The lock of a run directory being trained: one `ulc train` writes a run at a time. */
export const LOCK_FILE = "train.lock";

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly started: string;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes run directory `dir` for this process, before anything in it is read or written, and returns the release
 * (also run at exit). A lock left by a process that is gone (killed, crashed) on this machine is stale and taken
 * over; one held by a live process, or by another machine, is refused.
 */
export function lockRun(dir: string): () => void {
  const created = !existsSync(dir);
  const file = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const cannot = (e: unknown) => {
    const why = fsFailure(e);
    return why ? new RunError(`cannot write in ${dir}: ${why}`) : e;
  };
  try {
    makeFolder(dir);
  } catch (e) {
    throw cannot(e);
  }
  for (;;) {
    try {
      writeFileSync(file, JSON.stringify(me) + "\n", { flag: "wx" });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw cannot(e);
    }
    let owner: Partial<LockOwner> = {};
    try {
      owner = JSON.parse(readFileSync(file, "utf8"));
    } catch {
      // Unreadable: a writer died between creating and filling it.
    }
    const elsewhere = owner.host !== undefined && owner.host !== me.host;
    if (elsewhere || (typeof owner.pid === "number" && running(owner.pid)))
      throw new RunError(`${dir} is being trained by another ulc train (pid ${owner.pid} on ${owner.host}, since ${owner.started}); wait for it, or choose another --out${elsewhere ? ` (if no such process runs, remove ${file})` : ""}`);
    rmSync(file, { force: true });
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    rmSync(file, { force: true });
    if (created && readdirSync(dir).length === 0) rmdirSync(dir);
  };
  process.once("exit", release);
  return () => {
    process.removeListener("exit", release);
    release();
  };
}

export function writeRunConfig(dir: string, config: RunConfig): void {
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, RUN_FILE), JSON.stringify(config, null, 2) + "\n");
}

export function resolveData(data: string): string {
  return data === "fashion-mnist" ? data : resolve(data);
}

export type MetricsRow = { readonly step: number } & Readonly<Record<string, number>>;

/** The metrics log, each line one step; a resumed run first drops the lines past its checkpoint. */
export function readMetrics(dir: string): MetricsRow[] {
  const path = join(dir, METRICS_FILE);
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as MetricsRow];
      } catch {
        return []; // a line torn by a kill
      }
    });
}

export function listRunFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}
