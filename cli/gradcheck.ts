// `ulc gradcheck FILE`: property-checks the gradients of a model's train entry over all its parameters.
import { loadProgram, diskHost, defaultStdRoot } from "../dsl/loader.js";
import { gradcheck, GradcheckUsageError, KINK_STEPS, type Kink, type ParamReport } from "../runtime/gradcheck.js";
import { EXIT, plural } from "./args.js";
import { checkAndLower } from "./build.js";
import type { CliIo } from "./io.js";

export interface GradcheckCommandOptions {
  readonly entry?: string;
  readonly model?: string;
  readonly runs: number;
  readonly seed: number;
  readonly bind?: Record<string, number>;
}

/** Small batches keep float64 finite differences fast; any dim left open defaults to 2. */
const DEFAULT_DIM = 2;

function openDims(file: string, bound: Record<string, number>): string[] {
  const program = loadProgram([file], diskHost, defaultStdRoot());
  const names = new Set<string>();
  for (const f of program.files.values())
    for (const d of f.ast?.decls ?? []) {
      if (d.kind !== "model") continue;
      for (const g of [...d.generics, ...d.members.flatMap((m) => (m.kind === "entry" ? m.generics : []))]) if (!g.default && bound[g.name.name] === undefined) names.add(g.name.name);
    }
  return [...names];
}

export function runGradcheck(file: string, options: GradcheckCommandOptions, io: CliIo): number {
  const bindings = { ...(options.bind ?? {}) };
  const defaulted = openDims(file, bindings);
  for (const n of defaulted) bindings[n] = DEFAULT_DIM;
  if (defaulted.length) io.stderr.write(`gradcheck: ${defaulted.map((n) => `${n}=${DEFAULT_DIM}`).join(", ")} (pass --bind to choose)\n`);
  const program = checkAndLower(file, bindings, options.model, io, "gradcheck");
  if (typeof program === "number") return program;

  const tty = io.stderr.isTTY === true;
  let report;
  try {
    report = gradcheck(program, { ...(options.entry && { entry: options.entry }), runs: options.runs, seed: options.seed }, (done, total, what) => {
      if (tty) io.stderr.write(`\r\x1b[K[${"#".repeat(Math.round((20 * done) / total)).padEnd(20)}] ${done}/${total} ${what}`);
    });
  } catch (e) {
    if (e instanceof GradcheckUsageError) {
      io.stderr.write(`ulc gradcheck: ${e.message}\n`);
      return EXIT.usage;
    }
    throw e;
  }
  if (tty) io.stderr.write("\r\x1b[K");

  const rows = report.params.map((p) => [p.name, `[${p.shape.join(", ")}]`, p.maxRelError.toExponential(2), p.maxScore.toFixed(3), String(p.worstSeed), status(p, options.runs)]);
  const head = ["parameter", "shape", "max rel err", "err/tol", "worst seed", ""];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  io.stdout.write(`${program.model}.${report.entry}: loss ${report.loss.toPrecision(6)} over ${options.runs} run${options.runs === 1 ? "" : "s"} from seed ${options.seed}\n`);
  io.stdout.write([line(head), ...rows.map(line)].join("\n") + "\n");
  for (const p of report.params) if (p.kink) io.stdout.write(describeKink(p, p.kink) + "\n");
  const bad = report.params.filter((p) => p.maxScore > 1);
  if (bad.length === 0) {
    const kinks = report.params.reduce((n, p) => n + p.kinks, 0);
    io.stdout.write(`ok: ${plural(report.params.length, "parameter")}, reverse mode agrees with central differences${kinks ? ` wherever they could be compared (${plural(kinks, "run")} straddled a kink)` : ""}\n`);
    return EXIT.ok;
  }
  for (const p of bad)
    io.stderr.write(`gradient mismatch in ${p.name} (seed ${p.worstSeed}): reverse mode gives ${p.analytic.toPrecision(8)}, finite differences ${p.numeric.toPrecision(8)}; rerun with --seed ${p.worstSeed} --runs 1\n`);
  return EXIT.errors;
}

function status(p: ParamReport, runs: number): string {
  if (p.maxScore > 1) return "MISMATCH";
  if (p.kinks === runs) return "kink: not compared";
  return p.kinks ? `ok (kink in ${p.kinks} of ${runs})` : "ok";
}

/** Where a run's finite-difference points straddled a kink, and what became of the run. */
function describeKink(p: ParamReport, k: Kink): string {
  const at = p.shape.length ? ` near element [${k.element.join(", ")}]` : "";
  const straddle = `${p.name}: seed ${k.seed}'s points at step ${k.epsilon.toExponential(0)} straddle a kink of the loss${at} (slopes ${k.left.toPrecision(6)} and ${k.right.toPrecision(6)} either side, reverse mode's ${k.analytic.toPrecision(6)} between)`;
  if (k.comparedAt !== undefined) return `${straddle}; at step ${k.comparedAt.toExponential(0)} they do not, and the run is compared there`;
  return `${straddle}, down to step ${(k.epsilon / 10 ** (KINK_STEPS - 1)).toExponential(0)}: central differences estimate no gradient across a kink (abs, maximum, relu have them), so the run is not compared and not a mismatch`;
}
