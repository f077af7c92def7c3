// Memory planning: liveness-based buffer reuse in one arena.
//
// The planner works on a schedule, an ordered list of steps that each produce some buffers and read some
// others; it knows nothing of IR ops, so the same code plans a graph (one step per computed node, below) now
// and a list of fused kernels (one step per kernel launch) later.
//
//  1. Liveness (runtime/liveness.ts). A buffer is live from the step that produces it to the last step that reads it, both
//     included: a step's inputs and outputs are live together, so a kernel never writes over what it reads.
//     Pinned buffers (graph inputs, parameters, outputs: the runtime owns them across steps) stay out of the
//     arena and are only counted.
//  2. Offsets. Every arena buffer gets an offset in one arena, aligned (256 bytes by default: WebGPU's
//     minStorageBufferOffsetAlignment), such that two buffers whose lifetimes overlap never share a byte. This
//     is the greedy-by-size "offset calculation" of TFLite's arena planner and XLA's heap simulator: buffers
//     from the largest down, each at an aligned gap between the already placed buffers it overlaps in time.
//     Two gap rules are tried (first fit: the lowest gap; best fit: the smallest gap that holds it) and the
//     smaller arena is kept.
//
// The peak of live bytes (the largest sum of arena bytes live at one step) is a lower bound on any arena for
// this schedule; `arenaBytes` is what the heuristic reached, at least that, and more by alignment padding and
// fragmentation.
import { lifetimes, MemoryPlanError, type BufferSpec, type Lifetime, type Schedule, type Step } from "../runtime/liveness.js";
import { size, type Graph } from "./ir.js";
import { isMovement, movementChains } from "./view.js";

// Liveness is shared with the WebGPU runtime, which plans its buffers without the compiler.
export { MemoryPlanError, type Schedule, type Step } from "../runtime/liveness.js";

export interface PlanOptions {
  /** Graph inputs, parameters, outputs: never reused, live for the whole program, not in the arena. */
  readonly pinned?: ReadonlySet<number>;
  /** Offset alignment in bytes; default 256 (WebGPU's minStorageBufferOffsetAlignment). */
  readonly alignment?: number;
}

export interface MemoryPlan {
  /** The arena offset of every non-pinned buffer. */
  readonly offsets: Map<number, number>;
  /** The arena's size: the end of the highest placed buffer. */
  readonly arenaBytes: number;
  /** The largest sum of arena-buffer bytes live at one step: the lower bound of any arena for this schedule. */
  readonly peakLiveBytes: number;
  /** The sum of all arena (non-pinned) buffer bytes: the memory without reuse. */
  readonly totalBytes: number;
  /** The sum of the pinned buffers the schedule produces (held outside the arena). */
  readonly pinnedBytes: number;
  /** The lifetime of every non-pinned buffer, in step indices. */
  readonly lifetimes: Map<number, Lifetime>;
}

const DEFAULT_ALIGNMENT = 256;

function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/** The largest sum of bytes live at one step. */
function peakLive(lives: ReadonlyMap<number, Lifetime>, steps: number): number {
  const delta = new Float64Array(steps + 1);
  for (const l of lives.values()) {
    delta[l.first]! += l.bytes;
    delta[l.last + 1]! -= l.bytes;
  }
  let live = 0;
  let peak = 0;
  for (let s = 0; s < steps; s++) {
    live += delta[s]!;
    if (live > peak) peak = live;
  }
  return peak;
}

interface Placed {
  readonly id: number;
  readonly offset: number;
  readonly end: number;
  readonly first: number;
  readonly last: number;
}

/**
 * Greedy by size: the largest buffer first (ties: the longer-lived, then the earlier), each at an aligned gap
 * among the placed buffers whose lifetimes overlap its own. `bestFit` picks the smallest gap that holds the
 * buffer, else the lowest such gap; past the last overlapping buffer is always a gap.
 */
function assignOffsets(lives: ReadonlyMap<number, Lifetime>, alignment: number, bestFit: boolean): { offsets: Map<number, number>; arena: number } {
  const order = [...lives.entries()].sort(([ia, a], [ib, b]) => b.bytes - a.bytes || b.last - b.first - (a.last - a.first) || a.first - b.first || ia - ib);
  const placed: Placed[] = []; // sorted by offset
  const offsets = new Map<number, number>();
  let arena = 0;
  for (const [id, l] of order) {
    if (l.bytes === 0) {
      offsets.set(id, 0);
      continue;
    }
    let cursor = 0; // the lowest aligned offset above every overlapping buffer seen so far
    let best = -1;
    let bestGap = Infinity;
    for (const p of placed) {
      if (p.last < l.first || l.last < p.first) continue; // not live at the same time
      if (p.offset >= cursor + l.bytes) {
        const gap = p.offset - cursor;
        if (!bestFit) {
          best = cursor;
          break;
        }
        if (gap < bestGap) {
          bestGap = gap;
          best = cursor;
        }
      }
      cursor = Math.max(cursor, alignUp(p.end, alignment));
    }
    const offset = best >= 0 ? best : cursor;
    offsets.set(id, offset);
    const entry: Placed = { id, offset, end: offset + l.bytes, first: l.first, last: l.last };
    // Insert keeping `placed` sorted by offset (binary search for the first larger offset).
    let lo = 0;
    let hi = placed.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (placed[mid]!.offset <= offset) lo = mid + 1;
      else hi = mid;
    }
    placed.splice(lo, 0, entry);
    arena = Math.max(arena, entry.end);
  }
  return { offsets, arena };
}

/** Liveness, then greedy-by-size offsets in one arena (see the top of this file). */
export function planMemory(schedule: Schedule, options: PlanOptions = {}): MemoryPlan {
  const alignment = options.alignment ?? DEFAULT_ALIGNMENT;
  if (!(Number.isInteger(alignment) && alignment >= 1)) throw new MemoryPlanError(`alignment ${alignment} is not a positive integer`);
  const { lifetimes: lives, pinnedBytes } = lifetimes(schedule, options.pinned);
  let totalBytes = 0;
  for (const l of lives.values()) totalBytes += l.bytes;
  const first = assignOffsets(lives, alignment, false);
  const best = assignOffsets(lives, alignment, true);
  const chosen = best.arena < first.arena ? best : first;
  return { offsets: chosen.offsets, arenaBytes: chosen.arena, peakLiveBytes: peakLive(lives, schedule.length), totalBytes, pinnedBytes, lifetimes: lives };
}

// ------------------------------------------------------------------------------------------ graphs

/** Bytes per element on the device: f16 is 2, f32, i32 and bool (stored as u32 in WGSL) are 4. */
export function elementBytes(dtype: string): number {
  return dtype === "f16" ? 2 : 4;
}

export interface GraphSchedule {
  readonly steps: Step[];
  /** The node each step computes; -1 for step 0, which produces the graph's inputs and parameters. */
  readonly nodes: number[];
  /** Inputs, parameters and outputs (buffer id = node id). */
  readonly pinned: Set<number>;
}

/**
 * The schedule of a graph in node order: buffer ids are node ids. Step 0 produces every input and parameter
 * (pinned). Each computed node the outputs need is then a step producing its own buffer, except:
 *  - movement nodes produce nothing: a reader reads the source of the node's chain through the composed view
 *    (compiler/view.ts); a movement node gets a buffer (a copy step) only where it must exist in memory: as a
 *    graph output, or where a reshape broke a chain and a later chain starts from it;
 *  - constants are scalars folded into the kernels that read them: no buffer, no read (unless an output).
 * Graph outputs are pinned. Nodes no output needs are left out, as the interpreter leaves them out.
 */
export function graphSchedule(g: Graph): GraphSchedule {
  const n = g.nodes.length;
  const chains = movementChains(g);
  const isOutput = new Uint8Array(n);
  for (const o of g.outputs) isOutput[o.node] = 1;
  const deps = (i: number) => {
    const c = chains[i];
    return c ? [c.source] : g.nodes[i]!.inputs;
  };
  const needed = new Uint8Array(n);
  for (const o of g.outputs) needed[o.node] = 1;
  for (let i = n - 1; i >= 0; i--) if (needed[i]) for (const x of deps(i)) needed[x] = 1;
  // A movement node that a (broken) chain starts from holds data of its own.
  const chainSource = new Uint8Array(n);
  for (let i = 0; i < n; i++) if (needed[i] && chains[i]) chainSource[chains[i]!.source] = 1;
  const materialised = (i: number) => !isMovement(g.nodes[i]!.op) || isOutput[i] === 1 || chainSource[i] === 1;

  // The buffer a read of node x touches, or undefined when it touches none (a folded constant). A movement
  // node is read through its chain's view even where it has a copy of its own (an output).
  const bufferOf = (x: number): number | undefined => {
    const b = chains[x]?.source ?? x;
    return g.nodes[b]!.op.kind === "constant" && !isOutput[b] ? undefined : b;
  };
  const bytes = (i: number) => size(g.nodes[i]!.shape) * elementBytes(g.nodes[i]!.dtype);

  const pinned = new Set<number>();
  for (const o of g.outputs) pinned.add(o.node);
  const first: BufferSpec[] = [];
  for (const node of g.nodes) {
    if (node.op.kind === "input" || node.op.kind === "param") {
      pinned.add(node.id);
      first.push({ id: node.id, bytes: bytes(node.id) });
    }
  }
  const steps: Step[] = [{ produces: first, reads: [] }];
  const nodes = [-1];
  for (const node of g.nodes) {
    const i = node.id;
    if (!needed[i] || node.op.kind === "input" || node.op.kind === "param" || !materialised(i)) continue;
    if (node.op.kind === "constant" && !isOutput[i]) continue;
    const reads = new Set<number>();
    for (const x of deps(i)) {
      const b = bufferOf(x);
      if (b !== undefined) reads.add(b);
    }
    steps.push({ produces: [{ id: i, bytes: bytes(i) }], reads: [...reads] });
    nodes.push(i);
  }
  return { steps, nodes, pinned };
}

export interface MemoryStats {
  /** The sum of all non-pinned buffer bytes: what the graph needs with no reuse. */
  readonly intermediates: number;
  /** The planned arena. */
  readonly arena: number;
  /** The peak of live intermediate bytes: the lower bound of any arena for this schedule. */
  readonly peak: number;
  /** arena / intermediates. */
  readonly ratio: number;
  /** Inputs, parameters and outputs, held outside the arena. */
  readonly pinned: number;
}

export function memoryStats(g: Graph, options: { alignment?: number } = {}): MemoryStats {
  const s = graphSchedule(g);
  const plan = planMemory(s.steps, { pinned: s.pinned, ...(options.alignment !== undefined ? { alignment: options.alignment } : {}) });
  return {
    intermediates: plan.totalBytes,
    arena: plan.arenaBytes,
    peak: plan.peakLiveBytes,
    ratio: plan.totalBytes === 0 ? 0 : plan.arenaBytes / plan.totalBytes,
    pinned: plan.pinnedBytes,
  };
}
