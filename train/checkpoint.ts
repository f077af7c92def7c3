// Checkpoints: the whole training state (runtime/session.ts) in one safetensors file, written atomically. The
// bytes go to a temporary file in the same directory, which is flushed to disk and then renamed over the old
// checkpoint (rename is atomic on POSIX file systems), and the directory entry is flushed too: a process
// killed at any moment leaves either the previous checkpoint or the new one, never a torn file.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from "../runtime/safetensors.js";
import type { TrainingState } from "../runtime/session.js";

export const CHECKPOINT_FILE = "checkpoint.safetensors";

export class CheckpointError extends Error {}

const FS_FAILURES: Readonly<Record<string, string>> = {
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is used up",
  EFBIG: "the file would be larger than this process may write (ulimit -f)",
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOTDIR: "a part of the path is a file, not a folder",
  EISDIR: "it is a folder",
  ENOENT: "a folder on the way does not exist",
};

/** What a failed file-system call means to a user, or undefined when it is not one the user can act on. */
export function fsFailure(e: unknown): string | undefined {
  return FS_FAILURES[(e as NodeJS.ErrnoException)?.code ?? ""];
}

/** `mkdir -p`, where a file in the way fails as ENOTDIR (a recursive mkdir says EEXIST, as if all were well). */
export function makeFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") throw Object.assign(new Error(`${dir}: ${FS_FAILURES.ENOTDIR}`), { code: "ENOTDIR" });
    throw e;
  }
}

/** Runs `write` (of `path`), turning a file-system failure the user can act on into a CheckpointError. */
export function guardedWrite(path: string, write: () => void): void {
  try {
    write();
  } catch (e) {
    const why = fsFailure(e);
    if (why) throw new CheckpointError(`cannot write ${path}: ${why}`);
    throw e;
  }
}

/**
 * Writes `bytes` to `path` so that a crash leaves the old file or the new one. A write that fails (a full disk,
 * a read-only place) removes its temporary file and keeps the old one, and says why in a CheckpointError.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, "w");
    try {
      const data = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
      for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    const why = fsFailure(e);
    if (why) throw new CheckpointError(`cannot write ${path}: ${why}${existsSync(path) ? "; the last good one is kept" : ""}`);
    throw e;
  }
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
