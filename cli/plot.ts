// `ulc plot RUN_DIR... -o FILE.svg`: several runs' metrics in one SVG, to compare them (a sweep of a hyperparameter,
// two seeds): one panel per metric with each run's moving average in its own colour. One run is drawn as the
// loss.svg that `ulc train` writes.
import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../train/checkpoint.js";
import { hasMetric, lossCurveSvg, type Series } from "../train/plot.js";
import { METRICS_FILE, readMetrics, type MetricsRow } from "../train/run.js";
import { EXIT, plural } from "./args.js";
import type { CliIo } from "./io.js";

export interface PlotCommandOptions {
  readonly output: string;
  readonly metric?: readonly string[];
  readonly label?: readonly string[];
  readonly log?: boolean;
}

/** The metrics a run logged at every step, in the order of its first row. */
function metricsOf(rows: readonly MetricsRow[]): string[] {
  return Object.keys(rows[0]!).filter((k) => k !== "step" && hasMetric(rows, k));
}

export function runPlot(dirs: readonly string[], options: PlotCommandOptions, io: CliIo): number {
  const usage = (message: string) => {
    io.stderr.write(`ulc plot: ${message}\n`);
    return EXIT.usage;
  };
  if (options.label && options.label.length !== dirs.length) {
    return usage(`${plural(dirs.length, "run")} but ${plural(options.label.length, "--label")}: give one --label per run, in the runs' order, or none`);
  }
  const runs: (Series & { readonly dir: string; readonly metrics: readonly string[] })[] = [];
  for (const [i, dir] of dirs.entries()) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) return usage(`${dir} is not a directory (expected a run directory written by ulc train)`);
    if (!existsSync(join(dir, METRICS_FILE))) return usage(`${dir} has no ${METRICS_FILE}: it is not a run directory, or its run has not started`);
    const rows = readMetrics(dir);
    if (rows.length === 0) return usage(`${join(dir, METRICS_FILE)} is empty: the run has not finished a step`);
    runs.push({ dir, label: options.label?.[i] ?? basename(resolve(dir)), rows, metrics: metricsOf(rows) });
  }
  const described = (list: typeof runs) => list.map((r) => `${r.dir} has ${r.metrics.join(", ") || "none"}`).join("; ");
  for (const metric of options.metric ?? []) {
    const lacking = runs.filter((r) => !r.metrics.includes(metric));
    if (lacking.length > 0) return usage(`--metric ${metric}: ${lacking.map((r) => r.dir).join(", ")} ${lacking.length === 1 ? "does" : "do"} not have it (${described(lacking)})`);
  }
  const metrics = options.metric ? [...new Set(options.metric)] : runs[0]!.metrics.filter((m) => runs.every((r) => r.metrics.includes(m)));
  if (metrics.length === 0) return usage(`the runs have no metric in common (${described(runs)})`);
  if (existsSync(options.output) && statSync(options.output).isDirectory()) return usage(`-o ${options.output} is a directory; name the SVG file to write`);
  const title = runs.map((r) => r.label).join(", ");
  mkdirSync(dirname(resolve(options.output)), { recursive: true });
  writeFileAtomic(options.output, lossCurveSvg(runs, title, { metrics, log: options.log ?? false }));
  io.stdout.write(`${options.output}: ${plural(runs.length, "run")}, metric${metrics.length === 1 ? "" : "s"} ${metrics.join(", ")}\n`);
  return EXIT.ok;
}
