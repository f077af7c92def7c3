// Data-parallel training over MPI, as the CLI sees it: which rank of which job this process is (from what
// mpirun puts in its environment), and `ulc train --ranks N`, which starts such a job for the user. The job's
// processes are `ulc train` commands; each starts its host program, and those are what MPI connects.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { EXIT } from "./args.js";
import type { CliIo } from "./io.js";

export interface Rank {
  /** 0-based, below `count`. */
  readonly index: number;
  readonly count: number;
}

/** The rank variables of Open MPI's mpirun, then of MPICH's (Hydra's PMI). */
const RANK_VARIABLES = [
  ["OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"],
  ["PMI_RANK", "PMI_SIZE"],
] as const;

/** This process's rank in the MPI job that started it, or undefined outside one. */
export function mpiRank(env: Readonly<Record<string, string | undefined>>): Rank | undefined {
  for (const [rank, size] of RANK_VARIABLES) {
    const index = Number(env[rank]), count = Number(env[size]);
    if (env[rank] !== undefined && Number.isInteger(index) && Number.isInteger(count) && index >= 0 && index < count) return { index, count };
  }
  return undefined;
}

/** `args` without its `--ranks N` (or `--ranks=N`). */
export function withoutRanks(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--ranks") i++;
    else if (!args[i]!.startsWith("--ranks=")) out.push(args[i]!);
  }
  return out;
}

/** bin/ulc.js of this installation: the command every rank runs. */
function ulcScript(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) if (existsSync(path.join(dir, "bin", "ulc.js"))) return path.join(dir, "bin", "ulc.js");
  throw new Error("bin/ulc.js was not found above the CLI's modules");
}

/**
 * Runs `args` (a `ulc` command line) as an MPI job of `ranks` processes on this machine, through Open MPI's
 * mpirun, and returns its exit code. mpirun ends every rank when one fails and says which.
 */
export function launchRanks(ranks: number, args: readonly string[], io: CliIo): Promise<number> {
  const mpirun = io.env.ULC_MPIRUN ?? "mpirun";
  // Open MPI refuses to start as root unless told; a user who asks for ranks as root (a container) means it.
  const root = process.getuid?.() === 0 ? ["--allow-run-as-root"] : [];
  const argv = [...root, "-np", String(ranks), process.execPath, ulcScript(), ...args];
  io.stderr.write(`ulc train: ${ranks} ranks: ${mpirun} ${argv.join(" ")}\n`);
  return new Promise((resolve) => {
    const child = spawn(mpirun, argv, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...io.env } });
    child.stdout.on("data", (d: Buffer) => io.stdout.write(d.toString()));
    child.stderr.on("data", (d: Buffer) => io.stderr.write(d.toString()));
    child.on("error", (e: NodeJS.ErrnoException) => {
      io.stderr.write(`ulc train: --ranks needs ${mpirun}${e.code === "ENOENT" ? ", which was not found: install Debian's openmpi-bin (scripts/setup-mpi.sh installs it)" : `: ${e.message}`}\n`);
      resolve(EXIT.device);
    });
    child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
