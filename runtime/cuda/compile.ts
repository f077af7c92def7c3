// Turns a CUDA build (backends/cuda/program.ts) into a program on disk: writes the directory, runs the
// compiler commands of backends/cuda/toolchain.ts (the two translation units in parallel, then the link), and
// caches the result by content, so a second session of the same program starts at once. Missing tools and
// architectures nvcc does not know are reported in plain words.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { CudaBuild } from "../../backends/cuda/program.js";
import { buildCommands, DEFAULT_ARCH, type Command, type Flavour, type Tools } from "../../backends/cuda/toolchain.js";

/** A failure the user can act on: no toolchain, no GPU, out of memory, an unsupported architecture. */
export class CudaError extends Error {}

export interface CompileOptions extends Tools {
  readonly flavour: Flavour;
  readonly arch?: string;
  /** Where built programs are cached (default: $TMPDIR/ulc-cuda). */
  readonly cacheDir?: string;
}

export interface Compiled {
  /** The build directory, which holds the program's files and the binary. */
  readonly dir: string;
  readonly binary: string;
}

function run(c: Command, cwd: string, flavour: Flavour, arch: string): Promise<void> {
  const tool = c.argv[0]!;
  return new Promise((resolve, reject) => {
    const child = spawn(tool, c.argv.slice(1), { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") return reject(e);
      const hint = flavour === "cuda" ? "install the CUDA toolkit, or point ULC_NVCC at nvcc" : "install g++, or point ULC_CXX at a C++17 compiler";
      reject(new CudaError(`${tool} was not found: ${hint}`));
    });
    child.on("close", (code) => {
      if (code === 0) return resolve();
      const unsupported = /Unsupported gpu architecture '([^']+)'/.exec(output);
      if (unsupported) return reject(new CudaError(`nvcc (${tool}) does not support --arch ${arch} (${unsupported[1]}): choose an architecture it lists in \`nvcc --list-gpu-arch\``));
      const tail = output.trim().split("\n").slice(-40).join("\n");
      reject(new CudaError(`${path.basename(tool)} failed building ${c.output} in ${cwd} (exit ${code}):\n${tail}`));
    });
  });
}

/** Writes a build's directory: its files and manifest.json. */
export function writeCudaBuild(build: CudaBuild, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of build.files) writeFileSync(path.join(dir, name), text);
  writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(build.manifest, null, 1) + "\n");
}

/** The architecture of GPU 0 as sm_XY (from nvidia-smi), or undefined when there is no GPU to ask. */
export function detectArch(): string | undefined {
  const r = spawnSync("nvidia-smi", ["--query-gpu=compute_cap", "--format=csv,noheader"], { encoding: "utf8" });
  const m = /^(\d+)\.(\d+)/.exec(r.stdout ?? "");
  return m ? `sm_${m[1]}${m[2]}` : undefined;
}

/**
 * Whether this machine shows an NVIDIA GPU: nvidia-smi lists one (`arch`, what it reported), or the driver lists
 * one under /proc. Checked before a build, so that a machine without one hears so at once instead of after
 * minutes of nvcc; the host runtime's own check (cudaGetDeviceCount) stays the authority.
 */
export function nvidiaGpuVisible(arch = detectArch()): boolean {
  if (arch !== undefined) return true;
  try {
    return readdirSync("/proc/driver/nvidia/gpus").length > 0;
  } catch {
    return false;
  }
}

/** Builds (or finds in the cache) the program of `build`. */
export async function compileCuda(build: CudaBuild, options: CompileOptions): Promise<Compiled> {
  const arch = options.arch ?? DEFAULT_ARCH;
  const tools = { nvcc: options.nvcc ?? process.env.ULC_NVCC, cxx: options.cxx ?? process.env.ULC_CXX };
  const commands = buildCommands(options.flavour, arch, tools);
  const hash = createHash("sha256");
  hash.update(JSON.stringify(commands));
  for (const [name, text] of [...build.files].sort(([a], [b]) => (a < b ? -1 : 1))) hash.update(`${name}\0${text}\0`);
  const cache = options.cacheDir ?? path.join(tmpdir(), "ulc-cuda");
  const dir = path.join(cache, `${build.manifest.model}-${options.flavour}-${hash.digest("hex").slice(0, 16)}`);
  const binary = path.join(dir, commands.binary);
  if (existsSync(binary)) {
    markUsed(dir);
    return { dir, binary };
  }
  // Built aside, then renamed into place: concurrent builds of one program never see each other's halves.
  mkdirSync(cache, { recursive: true });
  const work = mkdtempSync(path.join(cache, "build-"));
  try {
    writeCudaBuild(build, work);
    await Promise.all(commands.compile.map((c) => run(c, work, options.flavour, arch)));
    await run(commands.link, work, options.flavour, arch);
    try {
      renameSync(work, dir);
    } catch (e) {
      if (!existsSync(binary)) throw e; // another process built the same program meanwhile
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  markUsed(dir);
  pruneCache(cache, CACHE_KEEP);
  return { dir, binary };
}

/** Built programs kept in the cache: a few models × flavours × bindings; each is a few MiB. */
const CACHE_KEEP = 16;

function markUsed(dir: string): void {
  const now = new Date();
  utimesSync(dir, now, now);
}

/**
 * Removes all but the `keep` most recently used programs of a cache directory. Builds under way (`build-*`)
 * are not programs and stay.
 */
export function pruneCache(cache: string, keep: number): void {
  const programs = readdirSync(cache, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith("build-"))
    .map((e) => ({ dir: path.join(cache, e.name), used: statSync(path.join(cache, e.name)).mtimeMs }))
    .sort((a, b) => b.used - a.used);
  for (const p of programs.slice(keep)) rmSync(p.dir, { recursive: true, force: true });
}
