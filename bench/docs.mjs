// Writes one marked section of docs/benchmarks.md, replacing the old one or appending it: each benchmark
// script owns its section between `<!-- bench:NAME:begin ... -->` and `<!-- bench:NAME:end -->`.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";

export const DOC_HEADER = `# Benchmarks

Timings of ulc itself, measured on the development machine (2 CPU cores, no GPU) unless a section says
otherwise; each section names the machine and the date it was measured on. Times are wall-clock
milliseconds: min, median and 90th percentile over the stated number of runs, after warm-up runs.

Each section is written by a script under \`bench/\`; reproduce it with the command the section gives
(always after \`npm run build\`, since the scripts time the compiled \`dist/\`).
`;

/** The markers of section `name`. */
export function markers(name) {
  return {
    begin: `<!-- bench:${name}:begin (written by \`npm run bench:${name} -- --write\`; do not edit by hand) -->`,
    end: `<!-- bench:${name}:end -->`,
  };
}

/** Replaces (or appends) section `name` of `file` with `lines`, wrapped in its markers. */
export function writeSection(file, name, lines) {
  const { begin, end } = markers(name);
  const section = [begin, ...lines, end].join("\n");
  let doc = existsSync(file) ? readFileSync(file, "utf8") : DOC_HEADER;
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a >= 0 && b > a) doc = doc.slice(0, a) + section + doc.slice(b + end.length);
  else doc = doc.trimEnd() + "\n\n" + section + "\n";
  writeFileSync(file, doc);
}

/** The machine, for a section's heading. */
export function machine() {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? "unknown CPU"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}`;
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Times `runs` rounds of two contenders taking turns (so load changes hit both alike); ms per run of each. */
export async function alternate(runs, ours, peer) {
  const [tOurs, tPeer] = [[], []];
  for (let r = 0; r < runs; r++) {
    let t0 = performance.now();
    await ours();
    tOurs.push(performance.now() - t0);
    t0 = performance.now();
    await peer();
    tPeer.push(performance.now() - t0);
  }
  return [tOurs, tPeer];
}
