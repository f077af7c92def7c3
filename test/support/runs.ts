// Comparing the run directories `ulc train` writes.
import { expect } from "vitest";
import { readCheckpoint } from "../../train/checkpoint.js";

/** Two runs' checkpoints hold the same step and the same tensors, bit for bit. */
export function expectSameState(a: string, b: string): void {
  const x = readCheckpoint(a).state, y = readCheckpoint(b).state;
  expect(y.step).toBe(x.step);
  expect([...y.tensors.keys()].sort()).toEqual([...x.tensors.keys()].sort());
  for (const [name, t] of x.tensors) expect(Buffer.from(y.tensors.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true);
}
