// The memory planner (compiler/memory.ts): liveness, offsets in one arena, and the graph schedule.
//  - a property on random schedules: buffers live at the same time never share a byte, offsets are aligned,
//    the arena holds the peak, and the peak equals a naive count of live bytes step by step;
//  - hand-built schedules whose optimal arena is known;
//  - graphSchedule on small graphs (movement chains read through, constants folded, dead nodes left out);
//  - the models: memoryStats of every entry of ul_tiny and ul_small (printed), the benchmark target on the
//    train steps, and an end-to-end check that running the train step's schedule in the planned arena never
//    overwrites a buffer before its last read.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { GraphBuilder, type Graph } from "../compiler/ir.js";
import { lowerProgram, type Program } from "../compiler/lower.js";
import { graphSchedule, MemoryPlanError, memoryStats, planMemory, type GraphSchedule, type MemoryPlan, type Schedule, type Step } from "../compiler/memory.js";
import { isMovement } from "../compiler/view.js";

/** Lifetimes computed the plain way: producer index, last reader index (or the producer). */
function naiveLifetimes(schedule: Schedule): Map<number, { first: number; last: number; bytes: number }> {
  const out = new Map<number, { first: number; last: number; bytes: number }>();
  schedule.forEach((step, s) => step.produces.forEach((p) => out.set(p.id, { first: s, last: s, bytes: p.bytes })));
  schedule.forEach((step, s) => step.reads.forEach((r) => (out.get(r)!.last = Math.max(out.get(r)!.last, s))));
  return out;
}

/** Every invariant of a plan, checked against the schedule with no help from the planner. */
function checkPlan(schedule: Schedule, pinned: ReadonlySet<number>, alignment: number, plan: MemoryPlan): void {
  const lives = naiveLifetimes(schedule);
  const arena = [...lives].filter(([id]) => !pinned.has(id));
  // Every arena buffer has an aligned offset inside the arena; pinned buffers have none.
  expect(plan.offsets.size).toBe(arena.length);
  let end = 0;
  for (const [id, l] of arena) {
    const o = plan.offsets.get(id);
    expect(o).toBeDefined();
    expect(o! % alignment).toBe(0);
    end = Math.max(end, o! + l.bytes);
  }
  for (const id of pinned) expect(plan.offsets.has(id)).toBe(false);
  expect(plan.arenaBytes).toBe(end);
  // No two buffers live at the same step share a byte (every pair).
  for (let i = 0; i < arena.length; i++) {
    const [a, la] = arena[i]!;
    const oa = plan.offsets.get(a)!;
    for (let j = i + 1; j < arena.length; j++) {
      const [b, lb] = arena[j]!;
      if (la.last < lb.first || lb.last < la.first) continue;
      const ob = plan.offsets.get(b)!;
      const disjoint = oa + la.bytes <= ob || ob + lb.bytes <= oa;
      if (!disjoint) expect.fail(`buffers ${a} [${oa}, ${oa + la.bytes}) steps ${la.first}-${la.last} and ${b} [${ob}, ${ob + lb.bytes}) steps ${lb.first}-${lb.last} overlap`);
    }
  }
  // The peak: the largest sum, over steps, of the arena buffers live there.
  let peak = 0;
  for (let s = 0; s < schedule.length; s++) peak = Math.max(peak, arena.reduce((t, [, l]) => (l.first <= s && s <= l.last ? t + l.bytes : t), 0));
  expect(plan.peakLiveBytes).toBe(peak);
  expect(plan.arenaBytes).toBeGreaterThanOrEqual(plan.peakLiveBytes);
  expect(plan.totalBytes).toBe(arena.reduce((t, [, l]) => t + l.bytes, 0));
  expect(plan.pinnedBytes).toBe([...lives].reduce((t, [id, l]) => (pinned.has(id) ? t + l.bytes : t), 0));
}

/** A random well-formed schedule: ids are scattered (not step indices), reads only name earlier buffers. */
const arbSchedule = fc
  .record({
    steps: fc.array(
      fc.record({
        produce: fc.array(fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constantFrom(4, 256, 1024)), { maxLength: 3 }),
        reads: fc.array(fc.nat(), { maxLength: 4 }),
        readRecent: fc.boolean(),
      }),
      { minLength: 1, maxLength: 40 },
    ),
    pinnedMask: fc.array(fc.boolean(), { maxLength: 120 }),
    alignment: fc.constantFrom(1, 2, 4, 256),
  })
  .map(({ steps, pinnedMask, alignment }) => {
    const schedule: Step[] = [];
    const ids: number[] = [];
    let next = 0;
    for (const st of steps) {
      // Reads pick among what exists so far; readRecent favours the last few (short lifetimes, as in graphs).
      const reads = ids.length === 0 ? [] : st.reads.map((r) => (st.readRecent ? ids[Math.max(0, ids.length - 1 - (r % 4))]! : ids[r % ids.length]!));
      const produces = st.produce.map((bytes) => ({ id: (next++ * 7 + 3) % 1009, bytes }));
      schedule.push({ produces, reads });
      ids.push(...produces.map((p) => p.id));
    }
    const pinned = new Set(ids.filter((_, i) => pinnedMask[i] === true));
    return { schedule, pinned, alignment };
  });

describe("planMemory on random schedules", () => {
  test("live-together buffers never share bytes; offsets aligned; arena ≥ peak = the naive peak", () => {
    fc.assert(
      fc.property(arbSchedule, ({ schedule, pinned, alignment }) => {
        checkPlan(schedule, pinned, alignment, planMemory(schedule, { pinned, alignment }));
      }),
      { numRuns: 500 },
    );
  });
});

describe("planMemory on hand-built schedules", () => {
  const chain = (n: number, bytes: number): Step[] => Array.from({ length: n }, (_, i) => ({ produces: [{ id: i, bytes }], reads: i > 0 ? [i - 1] : [] }));

  test("buffers nobody reads after their step all reuse one slot", () => {
    const schedule: Step[] = Array.from({ length: 6 }, (_, i) => ({ produces: [{ id: i, bytes: 1024 }], reads: [] }));
    const plan = planMemory(schedule);
    expect([...plan.offsets.values()]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(plan).toMatchObject({ arenaBytes: 1024, peakLiveBytes: 1024, totalBytes: 6144 });
  });

  test("a chain where each buffer dies at its reader's step ping-pongs between two slots", () => {
    // Step i reads buffer i-1 and writes buffer i: both are live at step i (a kernel never writes over its input).
    const plan = planMemory(chain(8, 1024));
    expect(plan).toMatchObject({ arenaBytes: 2048, peakLiveBytes: 2048, totalBytes: 8192 });
    for (let i = 1; i < 8; i++) expect(plan.offsets.get(i)).not.toBe(plan.offsets.get(i - 1));
  });

  test("two buffers both live need both", () => {
    const plan = planMemory([
      { produces: [{ id: 10, bytes: 512 }], reads: [] },
      { produces: [{ id: 11, bytes: 768 }], reads: [] },
      { produces: [{ id: 12, bytes: 256 }], reads: [10, 11] },
    ]);
    expect(plan).toMatchObject({ arenaBytes: 1536, peakLiveBytes: 1536, totalBytes: 1536 });
    expect(new Set(plan.offsets.values()).size).toBe(3);
  });

  test("two small buffers reuse a dead large one's bytes", () => {
    // A (4096) dies at step 1, where B (1024) is born; C (1024) lives at steps 2-3 and fits where A was.
    const plan = planMemory([
      { produces: [{ id: 0, bytes: 4096 }], reads: [] },
      { produces: [{ id: 1, bytes: 1024 }], reads: [0] },
      { produces: [{ id: 2, bytes: 1024 }], reads: [1] },
      { produces: [{ id: 3, bytes: 256 }], reads: [2] },
    ]);
    expect(plan).toMatchObject({ arenaBytes: 5120, peakLiveBytes: 5120 });
    expect(plan.offsets.get(0)).toBe(0);
    expect(plan.offsets.get(2)).toBe(0);
  });

  test("a long-lived buffer (a forward activation the backward pass reads) holds its slot throughout", () => {
    // 0 is read at the last step; the chain 1..5 ping-pongs beside it.
    const schedule: Step[] = [{ produces: [{ id: 0, bytes: 2048 }], reads: [] }, ...chain(6, 1024).slice(1), { produces: [{ id: 9, bytes: 256 }], reads: [0, 5] }];
    const plan = planMemory(schedule);
    expect(plan).toMatchObject({ arenaBytes: 4096, peakLiveBytes: 4096 });
  });

  test("alignment pads small buffers; the peak counts their real bytes", () => {
    const schedule: Step[] = [{ produces: [0, 1, 2].map((id) => ({ id, bytes: 4 })), reads: [] }, { produces: [], reads: [0, 1, 2] }];
    const plan = planMemory(schedule);
    expect([...plan.offsets.values()].sort((a, b) => a - b)).toEqual([0, 256, 512]);
    expect(plan).toMatchObject({ arenaBytes: 516, peakLiveBytes: 12 });
    expect(planMemory(schedule, { alignment: 4 })).toMatchObject({ arenaBytes: 12, peakLiveBytes: 12 });
  });

  test("pinned buffers stay out of the arena and are counted apart", () => {
    const schedule: Step[] = [
      { produces: [{ id: 0, bytes: 1 << 20 }], reads: [] },
      { produces: [{ id: 1, bytes: 1024 }], reads: [0] },
      { produces: [{ id: 2, bytes: 1 << 20 }], reads: [1, 0] },
    ];
    const plan = planMemory(schedule, { pinned: new Set([0, 2]) });
    expect([...plan.offsets]).toEqual([[1, 0]]);
    expect(plan).toMatchObject({ arenaBytes: 1024, peakLiveBytes: 1024, totalBytes: 1024, pinnedBytes: 2 << 20 });
    // A pinned buffer the runtime provides may be read without a producing step.
    expect(planMemory([{ produces: [{ id: 1, bytes: 8 }], reads: [99] }], { pinned: new Set([99]) }).arenaBytes).toBe(8);
  });

  test("malformed schedules are refused", () => {
    expect(() => planMemory([{ produces: [], reads: [3] }])).toThrow(MemoryPlanError);
    expect(() => planMemory([{ produces: [{ id: 1, bytes: 4 }], reads: [] }, { produces: [{ id: 1, bytes: 4 }], reads: [] }])).toThrow(/twice/);
    expect(() => planMemory([{ produces: [{ id: 1, bytes: 2.5 }], reads: [] }])).toThrow(MemoryPlanError);
    expect(() => planMemory([], { alignment: 0 })).toThrow(MemoryPlanError);
  });
});

describe("graphSchedule", () => {
  test("movement chains are read through, constants folded, dead nodes left out, outputs pinned", () => {
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "x" }, [], [2, 3]); // 0
    const w = b.add({ kind: "param", name: "w" }, [], [2, 4]); // 1
    const c = b.add({ kind: "constant", value: 2 }, [], [3, 4]); // 2
    const t = b.add({ kind: "transpose", perm: [1, 0] }, [x]); // 3: [3, 2], an output, so materialised
    const m = b.add({ kind: "matmul" }, [t, w]); // 4: reads x through the view
    const r = b.add({ kind: "reshape" }, [m], [12]); // 5
    const r2 = b.add({ kind: "reshape" }, [r], [3, 4]); // 6
    const e = b.add({ kind: "unary", fn: "exp" }, [r2]); // 7: reads m
    const a = b.add({ kind: "binary", fn: "add" }, [e, c]); // 8: the constant is folded
    b.add({ kind: "unary", fn: "neg" }, [x]); // 9: dead
    const s = graphSchedule(b.build([
      { name: "out", node: a },
      { name: "tr", node: t },
    ]));
    expect(s.steps).toEqual([
      { produces: [{ id: x, bytes: 24 }, { id: w, bytes: 32 }], reads: [] },
      { produces: [{ id: t, bytes: 24 }], reads: [x] },
      { produces: [{ id: m, bytes: 48 }], reads: [x, w] },
      { produces: [{ id: e, bytes: 48 }], reads: [m] },
      { produces: [{ id: a, bytes: 48 }], reads: [e] },
    ]);
    expect(s.nodes).toEqual([-1, t, m, e, a]);
    expect([...s.pinned].sort((p, q) => p - q)).toEqual([x, w, t, a]);
  });

  test("a reshape that breaks a chain materialises the view it starts from; f16 is 2 bytes", () => {
    const b = new GraphBuilder();
    const x = b.add({ kind: "input", name: "x" }, [], [4, 3]); // 0
    const e = b.add({ kind: "unary", fn: "exp" }, [x]); // 1
    const h = b.add({ kind: "cast" }, [e], undefined, "f16"); // 2
    const tt = b.add({ kind: "transpose", perm: [1, 0] }, [h]); // 3: [3, 4], copied: the flatten below cannot stride it
    const f = b.add({ kind: "reshape" }, [tt], [12]); // 4: reads tt
    const sum = b.add({ kind: "reduce", fn: "sum", axes: [0] }, [f]); // 5
    const s = graphSchedule(b.build([{ name: "s", node: sum }]));
    expect(s.steps).toEqual([
      { produces: [{ id: x, bytes: 48 }], reads: [] },
      { produces: [{ id: e, bytes: 48 }], reads: [x] },
      { produces: [{ id: h, bytes: 24 }], reads: [e] },
      { produces: [{ id: tt, bytes: 24 }], reads: [h] },
      { produces: [{ id: sum, bytes: 2 }], reads: [tt] },
    ]);
    expect(memoryStats(b.build([{ name: "s", node: sum }]))).toEqual({ intermediates: 96, arena: 280, peak: 72, ratio: 280 / 96, pinned: 50 });
  });
});

// ------------------------------------------------------------------------------------------ the models

/**
 * Every data path into a step's node ends at a buffer the step reads, a pinned buffer or a folded constant,
 * walking raw IR inputs up through movement nodes without a buffer of their own: a missing read would let
 * the planner reuse bytes that are still needed. Checked without movementChains.
 */
function checkReadsComplete(g: Graph, s: GraphSchedule): void {
  const hasBuffer = new Set<number>(s.steps.flatMap((st) => st.produces.map((p) => p.id)));
  s.steps.forEach((st, k) => {
    const node = s.nodes[k]!;
    if (node < 0) return;
    const reads = new Set(st.reads);
    const walk = (x: number): void => {
      const n = g.nodes[x]!;
      if (reads.has(x) || s.pinned.has(x) || n.op.kind === "constant") return;
      if (isMovement(n.op) && !hasBuffer.has(x)) return walk(n.inputs[0]!);
      expect.fail(`step ${k} (%${node}) reaches %${x} (${n.op.kind}) without reading a buffer`);
    };
    const n = g.nodes[node]!;
    if (isMovement(n.op)) walk(n.inputs[0]!);
    else for (const x of n.inputs) walk(x);
  });
}

/**
 * Runs the schedule on an arena of tags: each step stamps its buffers' words; every read must find its own
 * stamp intact, before the step writes and after.
 */
function checkArenaRun(s: GraphSchedule, plan: MemoryPlan): void {
  const words = new Int32Array(Math.ceil(plan.arenaBytes / 4)).fill(-1);
  const bytes = new Map(s.steps.flatMap((st) => st.produces.map((p) => [p.id, p.bytes] as const)));
  const intact = (id: number) => {
    const o = plan.offsets.get(id)! / 4;
    const n = Math.ceil(bytes.get(id)! / 4);
    for (let i = o; i < o + n; i++) if (words[i] !== id) return false;
    return true;
  };
  s.steps.forEach((st, k) => {
    for (const r of st.reads) if (plan.offsets.has(r) && !intact(r)) expect.fail(`step ${k} reads buffer %${r}, overwritten before its last read`);
    for (const p of st.produces) {
      const o = plan.offsets.get(p.id);
      if (o !== undefined) words.fill(p.id, o / 4, o / 4 + Math.ceil(p.bytes / 4));
    }
    // A kernel reads while it writes: its outputs must not cover its inputs either.
    for (const r of st.reads) if (plan.offsets.has(r) && !intact(r)) expect.fail(`step ${k} writes over buffer %${r}, which it reads`);
  });
}

const MIB = 1 << 20;
const mib = (x: number) => `${(x / MIB).toFixed(2)} MiB`;

function report(model: string, program: Program): Map<string, ReturnType<typeof memoryStats>> {
  const stats = new Map<string, ReturnType<typeof memoryStats>>();
  const lines = [`${model} (B = 8): entry, intermediates, arena, peak, arena/intermediates, pinned`];
  for (const e of program.entries) {
    const st = memoryStats(e.graph);
    stats.set(e.name, st);
    lines.push(`  ${e.name.padEnd(18)} ${mib(st.intermediates).padStart(11)} ${mib(st.arena).padStart(10)} ${mib(st.peak).padStart(10)} ${st.ratio.toFixed(3).padStart(6)} ${mib(st.pinned).padStart(10)}`);
  }
  console.log(lines.join("\n"));
  return stats;
}

describe.each(["ul_tiny", "ul_small"])("%s at B = 8", (model) => {
  const program = lowerProgram(`models/${model}.ul`, { bindings: { B: 8 } });
  const fit = program.entries.find((e) => e.name === "fit")!;

  test("memoryStats of every entry; the train step's arena is at most 60% of its intermediates", () => {
    const stats = report(model, program);
    // The benchmark target (ISSUE: the planner's peak for the train step ≤ 60% of all intermediates). Measured
    // at the graph level in node order: ul_tiny fit 0.111, ul_small fit 0.170.
    expect(stats.get("fit")!.ratio).toBeLessThanOrEqual(0.6);
    expect(stats.get("evaluate")!.ratio).toBeLessThanOrEqual(0.6);
    // The heuristic lands close to the lower bound: within 10% of the peak plus alignment padding.
    for (const [name, st] of stats) {
      expect(st.arena, name).toBeGreaterThanOrEqual(st.peak);
      expect(st.arena, name).toBeLessThanOrEqual(1.1 * st.peak + 16 * 256);
    }
  });

  test("the train step's schedule reads every buffer it needs, and runs in the planned arena without clobbering", () => {
    const s = graphSchedule(fit.graph);
    checkReadsComplete(fit.graph, s);
    checkArenaRun(s, planMemory(s.steps, { pinned: s.pinned }));
  });
});
