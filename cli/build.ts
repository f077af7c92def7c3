// `ulc build FILE`: check, lower with every dim bound, then print the graphs (`--emit ir`) or write a WGSL
// Program (`--target wgsl -o DIR`: manifest.json and kernels/*.wgsl; with `--emit ts`, instead the Program in
// one file and a typed TypeScript module for it, backends/ts/bindings.ts), a CUDA one (`--target cuda -o DIR`:
// backends/cuda/program.ts) or a CPU one (`--target cpu -o DIR`: backends/cpu/program.ts).
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { emitCpu } from "../backends/cpu/program.js";
import { emitCuda } from "../backends/cuda/program.js";
import { archNumber } from "../backends/cuda/toolchain.js";
import { emitWgsl, TILINGS } from "../backends/wgsl/program.js";
import { checkFiles } from "../dsl/check.js";
import { renderDiagnostic } from "../dsl/diagnostics.js";
import { printGraph } from "../compiler/ir.js";
import { fuse } from "../compiler/kernel/fuse.js";
import { lowerProgram, type LowerOptions, type Program, type ProgramEntry } from "../compiler/lower.js";
import type { ContractionPrecision } from "../runtime/manifest.js";
import { TargetLimitError } from "../backends/program.js";
import { writeNativeBuild } from "../runtime/native/compile.js";
import { fsFailure } from "../train/checkpoint.js";
import { defaultPrecision } from "../train/run.js";
import { encodeProgramFile, type WgslBuild } from "../runtime/webgpu/program.js";
import { EXIT, resolveColor } from "./args.js";
import type { CliIo } from "./io.js";

export interface BuildCommandOptions {
  readonly emit?: "ir" | "ts";
  readonly target?: "wgsl" | "cuda" | "cpu";
  /** --target cuda: the architecture of the Makefile's nvcc commands. */
  readonly arch?: string;
  /** --target wgsl: the matmul and convolution tiling (backends/wgsl/program.ts, TILINGS); default gpu. */
  readonly tile?: keyof typeof TILINGS;
  /** How contractions multiply f32 operands; default tf32 for --target cuda, else fp32 (train/run.ts, defaultPrecision). */
  readonly precision?: ContractionPrecision;
  /** Print a table of op counts, kernels and memory per entry (to stderr) as well. */
  readonly stats?: boolean;
  readonly bind?: Record<string, number>;
  readonly model?: string;
  readonly entry?: string;
  readonly output?: string;
}

/** Checks, then lowers; returns the program, or the exit code when checking failed. */
/**
 * `lower.shard`: lower for one process of a data-parallel job (`bindings` bind its share of the batch);
 * `lower.precision`: of the contractions (default fp32).
 */
export function checkAndLower(file: string, bindings: Record<string, number>, model: string | undefined, io: CliIo, command: string, lower: Pick<LowerOptions, "shard" | "precision"> = {}): Program | number {
  const checked = checkFiles([file], { bindings });
  if (checked.usageErrors.length > 0) {
    for (const e of checked.usageErrors) io.stderr.write(`ulc ${command}: ${e}\n`);
    return EXIT.usage;
  }
  if (checked.diagnostics.length > 0) {
    const color = resolveColor(undefined, io.stderr, io.env);
    for (const d of checked.diagnostics) io.stderr.write(renderDiagnostic(d, { color }) + "\n\n");
    io.stderr.write(`${checked.diagnostics.length} error${checked.diagnostics.length === 1 ? "" : "s"}: nothing was built\n`);
    return EXIT.errors;
  }
  try {
    return lowerProgram(file, { bindings, ...(model && { model }), ...lower });
  } catch (e) {
    // Unbound dims or a missing model are the user's to fix; other failures are bugs and propagate.
    const message = e instanceof Error ? e.message : String(e);
    if (/^bind |declares no model|cannot be split across ranks/.test(message)) {
      io.stderr.write(`ulc ${command}: ${message}\n`);
      return EXIT.usage;
    }
    throw e;
  }
}

/** Per entry: op counts before and after the optimiser, kernels after fusion, and the planned memory. */
function statsTable(entries: readonly ProgramEntry[], kernelCount: (e: ProgramEntry) => number): string {
  const mib = (b: number) => (b / 2 ** 20).toFixed(2);
  const rows = entries.map((e) => [e.name, String(e.tracedNodes), String(e.graph.nodes.length), String(kernelCount(e)), mib(e.memory.intermediates), mib(e.memory.arena)]);
  const head = ["entry", "traced ops", "ops", "kernels", "intermediates MiB", "arena MiB"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), ...rows.map(line)].join("\n") + "\n";
}

/**
 * `--emit ts`: DIR/STEM.program.json (manifest and kernels in one file, which a bundler ships as one asset) and
 * DIR/STEM.ts, the typed bindings, which import the runtime by the package's name (`ulc/runtime`).
 */
async function writeBindings(build: WgslBuild, file: string, dir: string): Promise<string[]> {
  // Loaded on use: ts-morph takes over a second to import, which every other build (and train, sample) skips.
  const { bindingsStem, emitBindings } = await import("../backends/ts/bindings.js");
  const stem = bindingsStem(build.manifest.model);
  const written = [path.join(dir, `${stem}.program.json`), path.join(dir, `${stem}.ts`)];
  mkdirSync(dir, { recursive: true });
  writeFileSync(written[0]!, encodeProgramFile(build));
  writeFileSync(written[1]!, emitBindings(build.manifest, { source: path.basename(file), programFile: `${stem}.program.json` }));
  return written;
}

/** `--target cuda|cpu -o DIR`: the directory of backends/cuda/program.ts or backends/cpu/program.ts, ready for `make`. */
function buildNative(program: Program, options: BuildCommandOptions, io: CliIo): number {
  const cuda = options.target === "cuda";
  const build = cuda ? emitCuda(program, { ...(options.arch !== undefined && { arch: options.arch }) }) : emitCpu(program);
  const dir = options.output!;
  writeNativeBuild(build, dir);
  if (options.stats) io.stderr.write(statsTable(program.entries, (e) => build.manifest.entries.find((m) => m.name === e.name)!.dispatches.length));
  const make = cuda ? `\`make -C ${dir}\` builds it with nvcc, \`make -C ${dir} emulate\` on the CPU` : `\`make -C ${dir}\` builds it with g++ (OpenMP, oneDNN)`;
  io.stderr.write(`wrote ${dir} for ${program.model} (${program.entries.length} entries): ${make}\n`);
  return EXIT.ok;
}

/** `--target wgsl|cuda|cpu -o DIR`: the Program written for that target. */
async function buildTarget(file: string, program: Program, options: BuildCommandOptions, io: CliIo): Promise<number> {
  if (options.target === "cuda" || options.target === "cpu") return buildNative(program, options, io);
  // Built ahead of time for browsers, which run on GPUs; the runtime's own choice needs the device.
  const build = emitWgsl(program, TILINGS[options.tile ?? "gpu"]);
  const { manifest, kernels } = build;
  const dir = options.output!;
  let written: string;
  if (options.emit === "ts") written = (await writeBindings(build, file, dir)).join(" and ");
  else {
    mkdirSync(path.join(dir, "kernels"), { recursive: true });
    for (const [name, code] of kernels) writeFileSync(path.join(dir, "kernels", name), code);
    writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
    written = `${path.join(dir, "manifest.json")} and ${kernels.size} kernels`;
  }
  if (options.stats) io.stderr.write(statsTable(program.entries, (e) => manifest.entries.find((m) => m.name === e.name)!.dispatches.length));
  io.stderr.write(`wrote ${written} for ${program.model} (${program.entries.length} entries)\n`);
  return EXIT.ok;
}

export async function runBuild(file: string, options: BuildCommandOptions, io: CliIo): Promise<number> {
  if ((options.emit === "ir") === (options.target !== undefined)) {
    io.stderr.write("ulc build: give exactly one of --emit ir (print the graphs) and --target wgsl (write a Program, with --emit ts its typed bindings)\n");
    return EXIT.usage;
  }
  if (options.target && !options.output) {
    io.stderr.write(`ulc build: --target ${options.target} writes a directory: give it with -o DIR\n`);
    return EXIT.usage;
  }
  if (options.emit === "ts" && options.target !== "wgsl") {
    io.stderr.write("ulc build: --emit ts (TypeScript bindings) goes with --target wgsl\n");
    return EXIT.usage;
  }
  if (options.arch !== undefined) {
    if (options.target !== "cuda") {
      io.stderr.write("ulc build: --arch goes with --target cuda\n");
      return EXIT.usage;
    }
    try {
      archNumber(options.arch);
    } catch (e) {
      io.stderr.write(`ulc build: ${(e as Error).message}\n`);
      return EXIT.usage;
    }
  }
  if (options.tile !== undefined && options.target !== "wgsl") {
    io.stderr.write("ulc build: --tile goes with --target wgsl\n");
    return EXIT.usage;
  }
  const program = checkAndLower(file, options.bind ?? {}, options.model, io, "build", { precision: options.precision ?? defaultPrecision(options.target) });
  if (typeof program === "number") return program;
  if (options.target)
    try {
      return await buildTarget(file, program, options, io);
    } catch (e) {
      if (!(e instanceof TargetLimitError)) throw e;
      io.stderr.write(`ulc build: ${e.message}\n`);
      return EXIT.errors;
    }
  const entries = options.entry ? program.entries.filter((e) => e.name === options.entry) : program.entries;
  if (options.entry && entries.length === 0) {
    io.stderr.write(`ulc build: model ${program.model} has no entry '${options.entry}' (it has ${program.entries.map((e) => e.name).join(", ")})\n`);
    return EXIT.usage;
  }
  const parts = [
    `// ${program.model}, bound with ${Object.entries(program.bindings).map(([k, v]) => `${k}=${v}`).join(", ") || "nothing"}`,
    `// params: ${program.params.length}, ${program.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0)} values; hypers: ${program.hypers.map((h) => `${h.name}=${h.default}`).join(", ") || "none"}`,
    ...(options.entry ? [] : [printGraph(program.init, "init")]),
    ...entries.map((e) => `// ${e.name}: ${e.graph.nodes.length} nodes (${e.tracedNodes} as traced)\n${printGraph(e.graph, `${e.kind === "train" ? "train" : "entry"} ${e.name}`)}`),
  ];
  const text = parts.join("\n\n") + "\n";
  if (options.stats) io.stderr.write(statsTable(entries, (e) => fuse(e.graph).steps.length));
  if (!options.output) io.stdout.write(text);
  else
    try {
      writeFileSync(options.output, text);
    } catch (e) {
      const why = fsFailure(e);
      if (!why) throw e;
      io.stderr.write(`ulc build: cannot write ${options.output}: ${why}\n`);
      return EXIT.usage;
    }
  return EXIT.ok;
}
