// The graph-IR optimiser: simplify -> fold -> cse -> dce, repeated while the graph keeps shrinking.
// Each pass is a pure function from a graph to a new, renumbered, verified graph with the same outputs.
import { verify, type Graph } from "../ir.js";
import { cse } from "./cse.js";
import { dce } from "./dce.js";
import { fold } from "./fold.js";
import { simplify } from "./simplify.js";

export { cse, dce, fold, simplify };

export type PassName = "simplify" | "fold" | "cse" | "dce";

export const PASSES: readonly { readonly name: PassName; readonly run: (g: Graph) => Graph }[] = [
  { name: "simplify", run: simplify },
  { name: "fold", run: fold },
  { name: "cse", run: cse },
  { name: "dce", run: dce },
];

export interface PassRun {
  readonly pass: PassName;
  /** 1-based round of the pipeline. */
  readonly round: number;
  readonly before: number;
  readonly after: number;
  readonly ms: number;
}

export interface PassStats {
  /** Node counts of the input and the result. */
  readonly before: number;
  readonly after: number;
  readonly rounds: number;
  readonly runs: readonly PassRun[];
}

export interface OptimizeOptions {
  /** The most rounds of the pipeline (default 8). */
  readonly maxRounds?: number;
  /** Verify the graph after every pass (default true; a pass that breaks an invariant throws IrError). */
  readonly verify?: boolean;
}

/** Runs the pipeline until a round no longer reduces the node count (at most `maxRounds` rounds). */
export function optimize(g: Graph, options: OptimizeOptions = {}): { graph: Graph; stats: PassStats } {
  const maxRounds = options.maxRounds ?? 8;
  const check = options.verify ?? true;
  const runs: PassRun[] = [];
  let cur = g;
  let rounds = 0;
  while (rounds < maxRounds) {
    rounds++;
    const start = cur.nodes.length;
    for (const p of PASSES) {
      const t0 = performance.now();
      const next = p.run(cur);
      const ms = performance.now() - t0;
      if (check) verify(next);
      runs.push({ pass: p.name, round: rounds, before: cur.nodes.length, after: next.nodes.length, ms });
      cur = next;
    }
    if (cur.nodes.length >= start) break;
  }
  return { graph: cur, stats: { before: g.nodes.length, after: cur.nodes.length, rounds, runs } };
}

/** A one-line-per-pass text of the stats. */
export function formatStats(s: PassStats): string {
  const lines = s.runs.map((r) => `round ${r.round} ${r.pass.padEnd(8)} ${String(r.before).padStart(6)} -> ${String(r.after).padStart(6)}  ${r.ms.toFixed(1)} ms`);
  lines.push(`total ${s.before} -> ${s.after} nodes in ${s.rounds} round${s.rounds === 1 ? "" : "s"}`);
  return lines.join("\n");
}
