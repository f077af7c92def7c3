// The native session's traffic with its host program: a run's inputs go up as one copy, and several train
// steps go in one request. Oracles: the bytes each write would have placed (packWrites), the requests a real
// session sends, and the same steps taken one request at a time (bit for bit).
import fc from "fast-check";
import { describe, expect, test, vi } from "vitest";
import { lowerProgram } from "../compiler/lower.js";
import { openCpuSession } from "../runtime/cpu/session.js";
import { openCudaSession } from "../runtime/cuda/session.js";
import type { NativeSession } from "../runtime/native/session.js";
import { HostProcess, packWrites, type Write } from "../runtime/native/host.js";
import { entryInputs } from "./support/native.js";

/** The arena bytes `writes` leave in [0, size), zero where none writes. */
function apply(writes: readonly Write[], size: number): Uint8Array {
  const arena = new Uint8Array(size);
  for (const w of writes) arena.set(w.data, w.offset);
  return arena;
}

describe("packWrites", () => {
  test("writes a slack apart become one that leaves the same bytes; writes far apart stay as they are", () => {
    const layout = fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.uint8Array({ minLength: 1, maxLength: 40 })), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(layout, fc.integer({ min: 0, max: 256 }), (pieces, slack) => {
        let at = 0;
        const writes = pieces.map(([gap, data]) => {
          const w = { offset: at + gap, data };
          at = w.offset + data.length;
          return w;
        });
        const packed = packWrites([...writes].reverse(), slack);
        expect(apply(packed, at)).toEqual(apply(writes, at));
        const gaps = pieces.slice(1).reduce((n, [gap]) => n + gap, 0);
        expect(packed.length).toBe(writes.length === 1 || gaps <= slack * writes.length ? 1 : writes.length);
      }),
      { numRuns: 200, seed: 3 },
    );
  });
});

describe("a native session's requests", () => {
  test("a train step's inputs (data, hypers, step, optimizer arguments) go up in one write", async () => {
    const program = lowerProgram("models/ul_tiny.ul", { bindings: { B: 2, Width: 16, PriorWidth: 8 } });
    const session = await openCpuSession(program, { seed: 1 });
    const run = vi.spyOn(HostProcess.prototype, "run");
    try {
      await session.trainStep("fit", entryInputs(program, "fit"));
      expect(run).toHaveBeenCalledTimes(1);
      const [writes] = run.mock.calls[0]![0].map((r) => r.writes);
      expect(writes).toHaveLength(1);
      const fit = program.entries.find((e) => e.name === "fit")!;
      // Every graph input that is not training state is in it: the image batch and the scalars.
      const scalars = fit.graph.nodes.filter((n) => n.op.kind === "input" && n.shape.length === 0).length;
      expect(writes![0]!.data.byteLength).toBeGreaterThanOrEqual(4 * (2 * 28 * 28 + scalars));
    } finally {
      run.mockRestore();
      session.dispose();
    }
  }, 120_000);
});

describe("several train steps in one request", () => {
  const program = lowerProgram("models/ul_tiny.ul", { bindings: { B: 2, Width: 16, PriorWidth: 8 } });
  const batch = (k: number) => new Map([...entryInputs(program, "fit")].map(([name, t]) => [name, { ...t, data: Array.from(t.data, (v) => v * (1 + k / 10)) }]));
  const decays = [0.5, 0.6, 0.7, 0.8];
  for (const [target, open] of [
    ["CPU", () => openCpuSession(program, { seed: 2 })],
    ["emulated CUDA", () => openCudaSession(program, { seed: 2, flavour: "emulated" })],
  ] as const) {
    test(`${target}: trainSteps equals trainStep and updateEma one by one, bit for bit, in one request after the first`, async () => {
      const [one, many]: NativeSession[] = [await open(), await open()];
      try {
        const want: Map<string, number>[] = [];
        for (const [i, d] of decays.entries()) {
          want.push(await one.trainStep("fit", batch(i)));
          await one.updateEma(d);
        }
        // The first step goes alone (the average starts as a copy of the parameters); the other three together.
        const run = vi.spyOn(HostProcess.prototype, "run");
        const got = [...(await many.trainSteps("fit", [batch(0)], decays.slice(0, 1))), ...(await many.trainSteps("fit", [1, 2, 3].map(batch), decays.slice(1)))];
        expect(run.mock.calls.at(-1)![0]).toHaveLength(6);
        run.mockRestore();
        expect(got).toEqual(want);
        const [a, b] = [await one.exportState(), await many.exportState()];
        expect(b.step).toBe(4);
        for (const [name, t] of a.tensors) expect(Buffer.from(b.tensors.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true);
      } finally {
        one.dispose();
        many.dispose();
      }
    }, 300_000);
  }
});
