// Gradient checking of a user's train entry (`ulc gradcheck`): reverse-mode gradients of the loss with respect
// to every trained parameter, compared in float64 with central finite differences along random directions, at
// the initial parameters slightly perturbed.
// Inputs, parameters and the entry's own randomness are fixed per run by the run's seed, so the loss is a
// deterministic function of the parameters.
// A loss with kinks (abs, maximum, relu) has no derivative where a kink lies, and a central difference whose two
// points straddle one estimates a mean of the slopes on either side, not the gradient at the point: such a run
// is told apart from a wrong gradient by its one-sided differences, retried with smaller steps (which a kink at
// a fixed distance falls outside of), and reported as a kink, never as a mismatch, if every step straddles it.
import { vjp } from "../compiler/autodiff.js";
import { GraphBuilder, size, type Graph } from "../compiler/ir.js";
import { dce } from "../compiler/passes/dce.js";
import type { Program, ProgramEntry } from "../compiler/lower.js";
import { NAMES } from "../compiler/names.js";
import { interpret } from "./interpreter.js";
import { randomNormal, randomUniform } from "./random.js";
import type { Tensor } from "./tensor.js";

export interface GradcheckOptions {
  /** The train entry to check; default: the first one. */
  readonly entry?: string;
  readonly runs: number;
  readonly seed: number;
  /** Finite-difference step along a unit-variance direction. */
  readonly epsilon?: number;
}

export interface ParamReport {
  readonly name: string;
  readonly shape: readonly number[];
  /** The largest |analytic − numeric| / max(|analytic|, |numeric|) over the runs compared (those without a kink). */
  readonly maxRelError: number;
  /** The largest error as a fraction of the tolerance: above 1 is a mismatch. */
  readonly maxScore: number;
  /** The seed of the run that gave the largest score. */
  readonly worstSeed: number;
  /** The worst run's directional derivatives; NaN when no run was compared. */
  readonly analytic: number;
  readonly numeric: number;
  /** Runs not compared because every step tried straddled a kink of the loss. */
  readonly kinks: number;
  /** The first run whose points straddled a kink (compared at a smaller step, or not at all). */
  readonly kink?: Kink;
}

/** A kink between the finite-difference points of one run, at the smallest step tried. */
export interface Kink {
  readonly seed: number;
  readonly epsilon: number;
  /** The one-sided differences (L(x) − L(x − εd))/ε and (L(x + εd) − L(x))/ε, and reverse mode's slope at x. */
  readonly left: number;
  readonly right: number;
  readonly analytic: number;
  /** The parameter's element whose gradient jumps most between x − εd and x + εd: where the kink likely is. */
  readonly element: readonly number[];
  /** The smaller step at which the run was compared instead; absent when every step tried straddled the kink. */
  readonly comparedAt?: number;
}

export interface GradcheckReport {
  readonly entry: string;
  readonly loss: number;
  readonly params: readonly ParamReport[];
  readonly ok: boolean;
}

/**
 * Tolerance, for a central difference with step ε in float64 (unit roundoff u ≈ 1.1e-16): the truncation error
 * is O(ε²·f''') and the rounding error about u·|L|/ε per evaluation. With ε = 1e-5 the first is far below
 * RTOL for smooth losses; the second is covered by ATOL_FACTOR·u·(|L| + 1)/ε, whose factor allows for the
 * rounding of long float64 sums inside the loss.
 */
const RTOL = 1e-6;
const ATOL_FACTOR = 1e4;
const UNIT_ROUNDOFF = 2 ** -53;

export function findTrainEntry(program: Program, name?: string): ProgramEntry {
  const trains = program.entries.filter((e) => e.kind === "train");
  const entry = name ? program.entries.find((e) => e.name === name) : trains[0];
  if (!entry) throw new GradcheckUsageError(name ? `model ${program.model} has no entry '${name}'` : `model ${program.model} has no train entry`);
  if (entry.kind !== "train") throw new GradcheckUsageError(`entry '${entry.name}' is not a train entry, so it has no loss to differentiate; train entries: ${trains.map((e) => e.name).join(", ") || "none"}`);
  return entry;
}

export class GradcheckUsageError extends Error {}

/** The loss graph (forward only) and the loss-and-gradients graph of a train entry. */
function lossGraphs(entry: ProgramEntry): { forward: Graph; withGrads: Graph; params: { name: string; node: number }[] } {
  const training = entry.training!;
  // The forward pass alone: what the loss depends on (a parameter it does not reach gets a zero gradient).
  const forward = dce({ nodes: entry.graph.nodes, outputs: [{ name: "loss", node: entry.graph.outputs.find((o) => o.name === training.loss)!.node }] });
  const lossNode = forward.outputs[0]!.node;
  const b = new GraphBuilder();
  for (const n of forward.nodes) b.add(n.op, n.inputs, n.shape, n.dtype);
  const params = training.params.map((name) => {
    const spec = entry.graph.nodes.find((n) => n.op.kind === "param" && n.op.name === name)!;
    const node = b.nodes.find((n) => n.op.kind === "param" && n.op.name === name)?.id ?? b.add({ kind: "param", name }, [], spec.shape, spec.dtype);
    return { name, node };
  });
  const grads = vjp(
    b,
    lossNode,
    params.map((p) => p.node),
  );
  const withGrads = b.build([{ name: "loss", node: lossNode }, ...params.map((p, i) => ({ name: `grad:${p.name}`, node: grads[i]! }))]);
  return { forward, withGrads, params };
}

/** The train step the loss is taken at: the first, as a run's first step would see it (train_step(), randomness). */
const STEP = 1;

/** Data inputs drawn uniform in [-1, 1] (the range images are scaled to); hypers at their defaults; the step. */
function inputsFor(program: Program, entry: ProgramEntry, graph: Graph, seed: number): Map<string, Tensor> {
  const inputs = new Map<string, Tensor>([[NAMES.step, { dtype: "f32", shape: [], data: Float64Array.of(STEP) }]]);
  entry.inputs.forEach((spec, i) => {
    const u = randomUniform(seed, 0, 1_000_000 + i, size(spec.shape));
    inputs.set(spec.name, { dtype: spec.dtype, shape: spec.shape, data: u.map((x) => 2 * x - 1) });
  });
  for (const h of program.hypers) inputs.set(h.name, { dtype: "f32", shape: [], data: Float64Array.of(h.default) });
  for (const n of graph.nodes) if (n.op.kind === "input" && !inputs.has(n.op.name)) throw new Error(`the loss of ${entry.name} needs the input ${n.op.name}, which gradcheck cannot supply`);
  return inputs;
}

/**
 * The initial parameters plus N(0, PERTURBATION²) noise: layers initialised to zero (a common choice for
 * output layers) would otherwise make every upstream gradient exactly zero, and the check vacuous.
 */
const PERTURBATION = 0.05;

function perturbed(params: Map<string, Tensor>, seed: number): Map<string, Tensor> {
  let key = 0;
  const out = new Map<string, Tensor>();
  for (const [name, t] of params) {
    const noise = randomNormal(seed, 3, key++, t.data.length);
    out.set(name, { ...t, data: t.data.map((x, i) => x + PERTURBATION * noise[i]!) });
  }
  return out;
}

/** Steps tried when a run straddles a kink: ε, ε/10, ε/100 (a kink at a fixed distance drops out of the smaller intervals). */
export const KINK_STEPS = 3;

/** A central difference at step ε, with its tolerance and the one-sided differences either side. */
interface Difference {
  readonly numeric: number;
  readonly err: number;
  /** err as a fraction of the tolerance: above 1 is a mismatch, unless `kinked`. */
  readonly score: number;
  readonly left: number;
  readonly right: number;
  /**
   * The one-sided differences part by more than the tolerance and reverse mode's slope lies between them: the slope
   * changes inside [x − εd, x + εd]. Smooth, they part only by about ε·|L''|, far below the tolerance, so a wrong
   * gradient stays a mismatch.
   */
  readonly kinked: boolean;
}

/** A mismatch that a kink between the points explains: no verdict on the gradient. */
function straddles(d: Difference): boolean {
  return d.score > 1 && d.kinked;
}

function difference(analytic: number, l0: number, lPlus: number, lMinus: number, eps: number): Difference {
  const numeric = (lPlus - lMinus) / (2 * eps);
  const [left, right] = [(l0 - lMinus) / eps, (lPlus - l0) / eps];
  const err = Math.abs(analytic - numeric);
  const tol = RTOL * Math.max(Math.abs(analytic), Math.abs(numeric)) + (ATOL_FACTOR * UNIT_ROUNDOFF * (Math.abs(l0) + 1)) / eps;
  const kinked = Math.abs(right - left) > tol && analytic >= Math.min(left, right) - tol && analytic <= Math.max(left, right) + tol;
  return { numeric, err, score: Number.isFinite(err) ? err / tol : Infinity, left, right, kinked };
}

/**
 * The central difference along d at step ε, or, while its points straddle a kink, at ε/10 and ε/100; with the kink
 * met first (`where` says whose and where it lies).
 */
function probe(analytic: number, l0: number, lossAlong: (step: number) => number, eps: number, where: (step: number) => Pick<Kink, "seed" | "element">): { d: Difference; kink?: Kink } {
  const at = (step: number) => difference(analytic, l0, lossAlong(step), lossAlong(-step), step);
  let d = at(eps);
  if (!straddles(d)) return { d };
  const kink: Kink = { ...where(eps), analytic, epsilon: eps, left: d.left, right: d.right };
  let step = eps;
  for (let k = 1; k < KINK_STEPS && straddles(d); k++) d = at((step /= 10));
  return { d, kink: straddles(d) ? kink : { ...kink, comparedAt: step } };
}

/** The multi-index of flat element `i` of a tensor of `shape`. */
function unravel(i: number, shape: readonly number[]): number[] {
  const index = shape.map(() => 0);
  for (let a = shape.length - 1; a >= 0; a--) {
    index[a] = i % shape[a]!;
    i = Math.floor(i / shape[a]!);
  }
  return index;
}

export function gradcheck(program: Program, options: GradcheckOptions, onProgress?: (done: number, total: number, what: string) => void): GradcheckReport {
  const entry = findTrainEntry(program, options.entry);
  const eps = options.epsilon ?? 1e-5;
  const { forward, withGrads, params } = lossGraphs(entry);
  const stats = new Map<string, ParamReport>(params.map((p) => [p.name, { name: p.name, shape: [], maxRelError: 0, maxScore: 0, worstSeed: options.seed, analytic: NaN, numeric: NaN, kinks: 0 }]));
  let loss = NaN;
  const total = options.runs * params.length;
  let done = 0;
  for (let r = 0; r < options.runs; r++) {
    const seed = (options.seed + r) >>> 0;
    const run = { precision: "f64" as const, seed, step: STEP };
    const values = perturbed(interpret(program.init, {}, { precision: "f64", seed, step: 0 }), seed);
    const inputs = inputsFor(program, entry, forward, seed);
    const out = interpret(withGrads, { inputs, params: values }, run);
    loss = out.get("loss")!.data[0]!;
    const lossAt = (p: Map<string, Tensor>) => interpret(forward, { inputs, params: p }, run).get("loss")!.data[0]!;
    // From the graph the shifted losses come from: the one-sided differences see its rounding alone.
    const l0 = lossAt(values);
    params.forEach((p, i) => {
      onProgress?.(done++, total, p.name);
      const value = values.get(p.name)!;
      const dir = randomNormal(seed, 2, i, value.data.length);
      const g = out.get(`grad:${p.name}`)!.data;
      let analytic = 0;
      for (let j = 0; j < dir.length; j++) analytic += g[j]! * dir[j]!;
      const shifted = (step: number) => new Map(values).set(p.name, { ...value, data: value.data.map((x, j) => x + step * dir[j]!) });
      const lossAlong = (step: number) => lossAt(shifted(step));
      const { d, kink } = probe(analytic, l0, lossAlong, eps, (step) => ({ seed, element: kinkElement(withGrads, inputs, shifted, step, p.name, run, value.shape) }));
      const prev = { ...stats.get(p.name)!, shape: value.shape, kink: stats.get(p.name)!.kink ?? kink };
      if (straddles(d)) {
        stats.set(p.name, { ...prev, kinks: prev.kinks + 1 });
        return;
      }
      const rel = d.err / Math.max(Math.abs(analytic), Math.abs(d.numeric), Number.MIN_VALUE);
      const worst = d.score > prev.maxScore || Number.isNaN(prev.analytic) ? { maxScore: d.score, worstSeed: seed, analytic, numeric: d.numeric } : {};
      stats.set(p.name, { ...prev, ...worst, maxRelError: Math.max(rel, prev.maxRelError) });
    });
  }
  const reports = params.map((p) => stats.get(p.name)!);
  return { entry: entry.name, loss, params: reports, ok: reports.every((r) => r.maxScore <= 1) };
}

/** The element whose gradient changes most between the two finite-difference points: the kink's likely place. */
function kinkElement(withGrads: Graph, inputs: Map<string, Tensor>, shifted: (step: number) => Map<string, Tensor>, step: number, name: string, run: { precision: "f64"; seed: number; step: number }, shape: readonly number[]): number[] {
  const [plus, minus] = [step, -step].map((s) => interpret(withGrads, { inputs, params: shifted(s) }, run).get(`grad:${name}`)!.data);
  let worst = 0;
  plus!.forEach((v, j) => {
    if (Math.abs(v - minus![j]!) > Math.abs(plus![worst]! - minus![worst]!)) worst = j;
  });
  return unravel(worst, shape);
}
