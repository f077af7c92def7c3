// Liveness of buffers over a schedule: an ordered list of steps that each produce some buffers and read others
// (a graph's nodes, or its kernel launches). A buffer is live from the step that produces it to the last step
// that reads it, both included, so a step's inputs and outputs are live together and a kernel never writes over
// what it reads. The compiler's arena planner (compiler/memory.ts) and the WebGPU runtime's buffer sharing
// (runtime/webgpu/buffers.ts) both start from it.

export interface BufferSpec {
  readonly id: number;
  readonly bytes: number;
}

export interface Step {
  readonly produces: readonly BufferSpec[];
  readonly reads: readonly number[];
}

export type Schedule = readonly Step[];

export interface Lifetime {
  /** The step that produces the buffer. */
  readonly first: number;
  /** The last step that reads it (its producing step when nothing reads it). */
  readonly last: number;
  readonly bytes: number;
}

export class MemoryPlanError extends Error {}

/**
 * Lifetimes of the buffers that are not pinned (graph inputs, parameters, outputs: the runtime owns them across
 * steps, so they are only counted), and the pinned bytes; checks that the schedule is well formed.
 */
export function lifetimes(schedule: Schedule, pinned: ReadonlySet<number> = new Set()): { lifetimes: Map<number, Lifetime>; pinnedBytes: number } {
  const born = new Map<number, { first: number; bytes: number }>();
  const last = new Map<number, number>();
  let pinnedBytes = 0;
  schedule.forEach((step, s) => {
    for (const r of step.reads) {
      const b = born.get(r);
      if (b === undefined) {
        if (pinned.has(r)) continue; // a pinned buffer the runtime provides without a producing step
        throw new MemoryPlanError(`step ${s} reads buffer ${r}, which no earlier step produces`);
      }
      last.set(r, s);
    }
    for (const p of step.produces) {
      if (born.has(p.id)) throw new MemoryPlanError(`buffer ${p.id} is produced twice (steps ${born.get(p.id)!.first} and ${s})`);
      if (!(Number.isInteger(p.bytes) && p.bytes >= 0)) throw new MemoryPlanError(`buffer ${p.id} has ${p.bytes} bytes`);
      born.set(p.id, { first: s, bytes: p.bytes });
      if (pinned.has(p.id)) pinnedBytes += p.bytes;
    }
  });
  const out = new Map<number, Lifetime>();
  for (const [id, b] of born) {
    if (pinned.has(id)) continue;
    out.set(id, { first: b.first, last: Math.max(b.first, last.get(id) ?? b.first), bytes: b.bytes });
  }
  return { lifetimes: out, pinnedBytes };
}
