// Turns a native build (a directory of C++ or CUDA sources: backends/cuda/program.ts, backends/cpu/program.ts)
// into a program on disk: writes the directory, runs its compiler commands (the translation units in parallel,
// then the link), and caches the result by content, so a second session of the same program starts at once.
// A missing compiler is reported in plain words; each target adds its own readings of its compiler's refusals.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isDataParallel, type BuildCommands, type Command, type MpiFlags } from "../../backends/native/toolchain.js";
import type { ProgramManifest } from "../../backends/program.js";

/** A failure the user can act on: no compiler, no device, out of memory, an unsupported architecture. */
export class NativeError extends Error {}

export interface NativeBuild {
  readonly manifest: ProgramManifest;
  /** Every file of the directory but manifest.json, by name. */
  readonly files: ReadonlyMap<string, string>;
}

export interface Compiled {
  /** The build directory, which holds the program's files and the binary. */
  readonly dir: string;
  readonly binary: string;
}

export interface NativeCompileOptions {
  readonly commands: BuildCommands;
  /** Where built programs are cached. */
  readonly cacheDir: string;
  /** What a user without the compiler `tool` should do. */
  readonly missing: (tool: string) => string;
  /** The output of the compiler `tool` read as a plain refusal, or undefined to report its tail. */
  readonly refusal?: (output: string, tool: string) => string | undefined;
  /** The class of the errors thrown (the target's own, a NativeError). */
  readonly error?: new (message: string) => NativeError;
  /** Distinguishes builds of one model in the cache's directory names ("cpu", "emulated", ...). */
  readonly flavour: string;
}

function run(c: Command, cwd: string, options: NativeCompileOptions): Promise<void> {
  const tool = c.argv[0]!;
  const Failure = options.error ?? NativeError;
  return new Promise((resolve, reject) => {
    const child = spawn(tool, c.argv.slice(1), { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") return reject(e);
      reject(new Failure(`${tool} was not found: ${options.missing(tool)}`));
    });
    child.on("close", (code) => {
      if (code === 0) return resolve();
      const refusal = options.refusal?.(output, tool);
      if (refusal) return reject(new Failure(refusal));
      const tail = output.trim().split("\n").slice(-40).join("\n");
      reject(new Failure(`${path.basename(tool)} failed building ${c.output} in ${cwd} (exit ${code}):\n${tail}`));
    });
  });
}

/** Writes a build's directory: its files and manifest.json. */
export function writeNativeBuild(build: NativeBuild, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of build.files) writeFileSync(path.join(dir, name), text);
  writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(build.manifest, null, 1) + "\n");
}

/** Builds (or finds in the cache) the program of `build`. */
export async function compileNative(build: NativeBuild, options: NativeCompileOptions): Promise<Compiled> {
  const { commands, cacheDir: cache } = options;
  const hash = createHash("sha256");
  hash.update(JSON.stringify(commands));
  for (const [name, text] of [...build.files].sort(([a], [b]) => (a < b ? -1 : 1))) hash.update(`${name}\0${text}\0`);
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
    writeNativeBuild(build, work);
    await Promise.all(commands.compile.map((c) => (c.shared ? compileShared(c, build, work, options) : run(c, work, options))));
    await run(commands.link, work, options);
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

/** Built programs kept in a cache: a few models × flavours × bindings; each is a few MiB. */
const CACHE_KEEP = 16;
/** Shared objects kept (Command.shared): one per flavour and set of flags, so a few. */
const OBJECTS_KEEP = 8;

/**
 * Compiles a shared unit into `work`, or copies the object an earlier build of any model made with the same
 * command from the same sources (the unit and every header: no model code). Saves each new model or binding
 * its host runtime's compile: about a third of the compiler's time for ul_tiny on the CPU.
 */
async function compileShared(c: Command, build: NativeBuild, work: string, options: NativeCompileOptions): Promise<void> {
  const hash = createHash("sha256");
  hash.update(JSON.stringify(c.argv));
  for (const [name, text] of [...build.files].sort(([a], [b]) => (a < b ? -1 : 1)))
    if (c.argv.includes(name) || /\.(h|cuh)$/.test(name)) hash.update(`${name}\0${text}\0`);
  const cached = path.join(options.cacheDir, `${options.flavour}-${path.basename(c.output, ".o")}-${hash.digest("hex").slice(0, 16)}.o`);
  const object = path.join(work, c.output);
  if (existsSync(cached)) {
    copyFileSync(cached, object);
    markUsed(cached);
    return;
  }
  await run(c, work, options);
  // Copied aside, then renamed into place: a concurrent build never copies half an object.
  const aside = path.join(work, `${c.output}.cached`);
  copyFileSync(object, aside);
  renameSync(aside, cached);
}

function markUsed(dir: string): void {
  const now = new Date();
  utimesSync(dir, now, now);
}

/**
 * Removes all but the `keep` most recently used programs of a cache directory, and all but the `objects` most
 * recently used shared objects. Builds under way (`build-*`) are not programs and stay.
 */
export function pruneCache(cache: string, keep: number, objects = OBJECTS_KEEP): void {
  const entries = readdirSync(cache, { withFileTypes: true });
  const oldest = (names: string[], kept: number) =>
    names
      .map((name) => ({ name, used: statSync(path.join(cache, name)).mtimeMs }))
      .sort((a, b) => b.used - a.used)
      .slice(kept);
  for (const p of oldest(entries.filter((e) => e.isDirectory() && !e.name.startsWith("build-")).map((e) => e.name), keep)) rmSync(path.join(cache, p.name), { recursive: true, force: true });
  for (const o of oldest(entries.filter((e) => e.isFile() && e.name.endsWith(".o")).map((e) => e.name), objects)) rmSync(path.join(cache, o.name), { force: true });
}

/**
 * MPI's flags for a data-parallel build (undefined for any other), from Open MPI's `mpicc --showme`; a missing
 * MPI is a NativeError that says what to install.
 */
export function mpiFlagsFor(build: NativeBuild): MpiFlags | undefined {
  if (!isDataParallel(build.manifest)) return undefined;
  const ask = (what: string) => {
    const r = spawnSync("mpicc", [`--showme:${what}`], { encoding: "utf8" });
    if (r.error || r.status !== 0) throw new NativeError(`a data-parallel program links MPI, and mpicc ${r.error ? "was not found" : `failed: ${r.stderr.trim()}`}: install Debian's openmpi-bin and libopenmpi-dev (scripts/setup-mpi.sh installs them)`);
    return r.stdout.trim().split(/\s+/).filter((a) => a.length > 0);
  };
  return { compile: ask("compile"), link: ask("link") };
}

/** The default cache of a target's programs: $TMPDIR/ulc-NAME. */
export function defaultCache(name: string): string {
  return path.join(tmpdir(), `ulc-${name}`);
}
