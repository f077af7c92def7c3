// Checkpoints: the whole training state (runtime/session.ts) in one safetensors file, written atomically. The
// bytes go to a temporary file in the same directory, which is flushed to disk and then renamed over the old
// checkpoint (rename is atomic on POSIX file systems), and the directory entry is flushed too: a process
// killed at any moment leaves either the previous checkpoint or the new one, never a torn file.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from "../runtime/safetensors.js";
import type { TrainingState } from "../runtime/session.js";

export const CHECKPOINT_FILE = "checkpoint.safetensors";

export class CheckpointError extends Error {}

/** Writes `bytes` to `path` so that a crash leaves the old file or the new one. */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    const data = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(join(path, ".."), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export function writeCheckpoint(runDir: string, state: TrainingState, metadata: Record<string, string>): void {
  writeFileAtomic(join(runDir, CHECKPOINT_FILE), encodeSafetensors(state.tensors, { ...metadata, step: String(state.step) }));
}

export function hasCheckpoint(runDir: string): boolean {
  return existsSync(join(runDir, CHECKPOINT_FILE));
}

export function readCheckpoint(runDir: string): { state: TrainingState; metadata: Record<string, string> } {
  const path = join(runDir, CHECKPOINT_FILE);
  if (!existsSync(path)) throw new CheckpointError(`${runDir} has no checkpoint (${CHECKPOINT_FILE}); train first with 'ulc train ... --out ${runDir}'`);
  try {
    const { tensors, metadata } = decodeSafetensors(readFileSync(path), path);
    const step = Number(metadata.step);
    if (!Number.isInteger(step) || step < 0) throw new CheckpointError(`${path} has no valid step in its metadata`);
    return { state: { step, tensors }, metadata };
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(e.message);
    throw e;
  }
}

/** Removes temporary files a killed writer left behind. */
export function removeStaleTemporaries(runDir: string, names: readonly string[]): void {
  for (const n of names) if (/\.tmp-\d+$/.test(n)) rmSync(join(runDir, n), { force: true });
}
