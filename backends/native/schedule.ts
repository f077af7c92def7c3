// What the host runtimes of the native targets (CUDA, CPU) load: `schedule.txt`, per graph its buffers (a
// scratch offset planned here with compiler/memory.ts, or -1: pinned, placed by the driver with each run) and
// its launches, each a kernel's name and the indices of the buffers it binds (inputs, then the output). Read by
// backends/native/cpp/ulc_serve.h.
import { size } from "../../compiler/ir.js";
import { planMemory } from "../../compiler/memory.js";
import type { GraphManifest, ProgramManifest } from "../program.js";

/** Bytes per element: every dtype is stored in 4 bytes (f32, i32; bools as 0/1 floats). */
export const ELEMENT_BYTES = 4;
/** Buffer offsets are multiples of this (a GPU's allocation granularity for coalesced access; a CPU's cache lines). */
export const ALIGNMENT = 256;

/** Scratch offsets of a graph's intermediates: liveness over its launches, greedy best fit (compiler/memory.ts). */
export function planScratch(g: GraphManifest): { offsets: Map<number, number>; bytes: number } {
  const bytes = new Map(g.buffers.map((b) => [b.id, size(b.shape) * ELEMENT_BYTES]));
  const pinned = new Set(g.buffers.filter((b) => b.role !== "intermediate").map((b) => b.id));
  const steps = g.dispatches.map((d) => {
    const written = d.outputs ?? 1;
    return { produces: d.buffers.slice(-written).map((id) => ({ id, bytes: bytes.get(id)! })), reads: d.buffers.slice(0, -written) };
  });
  const plan = planMemory(steps, { pinned, alignment: ALIGNMENT });
  return { offsets: plan.offsets, bytes: plan.arenaBytes };
}

/** Every graph of a manifest, in the order the host runtime numbers them: init, ema, the entries, then the gradients graphs of data-parallel ones. */
export function manifestGraphs(manifest: ProgramManifest): [string, GraphManifest][] {
  return [
    ["init", manifest.init],
    ["ema", manifest.ema],
    ...manifest.entries.map((e): [string, GraphManifest] => [e.name, e]),
    ...manifest.entries.flatMap((e): [string, GraphManifest][] => (e.parallel ? [[gradientsGraph(e.name), e.parallel.gradients]] : [])),
  ];
}

/** The schedule's name for a data-parallel entry's gradients graph. */
export function gradientsGraph(entry: string): string {
  return `${entry}.gradients`;
}

export function scheduleTxt(manifest: ProgramManifest): string {
  const graphs = manifestGraphs(manifest);
  const plans = graphs.map(([, g]) => planScratch(g));
  const lines = ["ulc-schedule 1", `scratch ${Math.max(0, ...plans.map((p) => p.bytes))}`, `graphs ${graphs.length}`];
  graphs.forEach(([name, g], i) => {
    const index = new Map(g.buffers.map((b, j) => [b.id, j]));
    lines.push(`graph ${name} ${g.buffers.length} ${g.dispatches.length}`);
    lines.push(g.buffers.map((b) => (b.role === "intermediate" ? plans[i]!.offsets.get(b.id)! : -1)).join(" "));
    for (const d of g.dispatches) lines.push(`launch ${d.kernel} ${d.buffers.length} ${d.buffers.map((b) => index.get(b)!).join(" ")}`);
  });
  return lines.join("\n") + "\n";
}
