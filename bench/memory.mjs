// The memory planner on the models' graphs: the planned arena of intermediate buffers against the sum of
// those buffers (what a runtime without reuse would allocate) and the peak of live bytes (the lower bound).
//
//   npm run build && npm run bench:memory [-- --write] [-- --batch 64]
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { machine, writeSection } from "./docs.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DOC = join(ROOT, "docs", "benchmarks.md");
const args = process.argv.slice(2);
const write = args.includes("--write");
const batch = Number(args[args.indexOf("--batch") + 1] ?? 64) || 64;

const { lowerProgram } = await import(pathToFileURL(join(ROOT, "dist", "compiler", "lower.js")).href);
const mib = (b) => (b / 2 ** 20).toFixed(1);
const rows = [];
for (const model of ["models/ul_tiny.ul", "models/ul_small.ul"]) {
  const program = lowerProgram(join(ROOT, model), { bindings: { B: batch } });
  for (const e of program.entries.filter((x) => ["fit", "evaluate", "decoder_step"].includes(x.name))) {
    const m = e.memory;
    rows.push(`| ${model} | ${e.name} | ${mib(m.intermediates)} | ${mib(m.peak)} | ${mib(m.arena)} | ${(100 * m.ratio).toFixed(1)}% |`);
  }
}
const table = ["| model | entry | intermediates MiB | peak live MiB | arena MiB | arena / intermediates |", "| --- | --- | ---: | ---: | ---: | ---: |", ...rows].join("\n");
process.stdout.write(`batch ${batch}\n\n${table}\n`);
if (write) {
  writeSection(DOC, "memory", [
    "## Memory planning",
    "",
    `Batch ${batch}; measured ${new Date().toISOString().slice(0, 10)} on ${machine()}. Intermediates are every buffer of a ` +
      "graph that is not an input, parameter or output (each node that is not a view, a constant or an input); the arena " +
      "holds them all with liveness-based reuse (best-fit offsets, 256-byte alignment); the peak of live bytes is the " +
      "lower bound of any arena for the same order. Target: the ul_small train step's arena at most 60% of its intermediates.",
    "",
    table,
    "",
    "Reproduce: `npm run build && npm run bench:memory -- --write`.",
  ]);
  process.stdout.write(`\nwrote ${relative(ROOT, DOC)}\n`);
}
