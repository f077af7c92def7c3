// Sibling outputs: nearby element-wise kernels of the same size become one kernel with several outputs, each
// written at the invocation's index. An optimizer's update of a parameter (Adam: the new parameter, m and v) is
// three kernels that read the same gradient and state; as one, it launches once and reads them once. A later
// kernel that reads an earlier one's output at its own index computes that value instead of loading it (the
// earlier output is still written: it is a graph output, or read elsewhere).
import { atOwnIndex, kernelOutputs, stepBuffers, type Kernel, type KernelInput, type Step, type Sx } from "./ir.js";

/** `x` reading the merged kernel's inputs: loads of `outputs` (at gid) become their bodies; undefined if one is read elsewhere. */
function rebase(x: Sx, inputs: readonly KernelInput[], index: ReadonlyMap<number, number>, outputs: ReadonlyMap<number, Sx>, size: number): Sx | undefined {
  const sub = (y: Sx) => rebase(y, inputs, index, outputs, size);
  switch (x.k) {
    case "load": {
      const node = inputs[x.buffer]!.node;
      const value = outputs.get(node);
      if (value !== undefined) return atOwnIndex(x.at, size) ? value : undefined;
      return { ...x, buffer: index.get(node)! };
    }
    case "unary":
    case "cast": {
      const a = sub(x.x);
      return a && { ...x, x: a };
    }
    case "binary":
    case "compare": {
      const [a, b] = [sub(x.a), sub(x.b)];
      return a && b && { ...x, a, b };
    }
    case "select": {
      const [c, a, b] = [sub(x.c), sub(x.a), sub(x.b)];
      return c && a && b && { ...x, c, a, b };
    }
    default:
      return x;
  }
}

/**
 * `b` folded into `a` as siblings, or undefined when they cannot share one loop, it would bind too many buffers,
 * or (unless `unrelated`) `b` reads neither what `a` writes nor a buffer of their size that `a` reads (a shared
 * scalar, such as a learning rate, relates nothing).
 */
function merge(a: Kernel, b: Kernel, maxBuffers: number, unrelated: boolean): Kernel | undefined {
  if (a.reduce || a.tile || b.reduce || b.tile || a.size !== b.size) return undefined;
  const outputs = new Map(kernelOutputs(a).map((o) => [o.node, o.body]));
  const inputs = [...a.inputs];
  const index = new Map(inputs.map((input, i) => [input.node, i]));
  if (!unrelated && !b.inputs.some((i) => outputs.has(i.node) || (index.has(i.node) && i.size === b.size))) return undefined;
  for (const input of b.inputs)
    if (!outputs.has(input.node) && !index.has(input.node)) {
      index.set(input.node, inputs.length);
      inputs.push(input);
    }
  const bodies = kernelOutputs(b).map((o) => rebase(o.body, b.inputs, index, outputs, b.size));
  if (bodies.some((x) => x === undefined) || inputs.length + outputs.size + bodies.length > maxBuffers) return undefined;
  const added = kernelOutputs(b).map((o, i) => ({ node: o.node, dtype: o.dtype, body: bodies[i]! }));
  return { ...a, inputs, siblings: [...(a.siblings ?? []), ...added], fused: [...a.fused, ...b.fused] };
}

/** How far back a kernel looks for one to merge with: the steps between cost a scan each. */
const WINDOW = 8;

/**
 * The steps with mergeable kernels as one. A kernel merges with one of the few before it that it can join, the
 * earlier one moving down to it: allowed when no step in between reads what the earlier one writes (they are
 * SSA values, so nothing in between writes what it reads). A kernel binds at most `maxBuffers` buffers.
 * `unrelated`: kernels that share no buffer merge too, which saves launches where nothing else does (a target
 * that batches launches, kernel/batch.ts, would rather keep them apart: one may read what the other's
 * sibling writes, and then they cannot share a batch).
 */
export function mergeSiblings(steps: readonly Step[], maxBuffers: number, unrelated: boolean): Step[] {
  const out: Step[] = [];
  for (const step of steps) {
    const partner = step.kind === "kernel" ? findPartner(out, step.kernel, maxBuffers, unrelated) : undefined;
    if (partner) out.splice(partner.index, 1);
    out.push(partner ? { kind: "kernel", kernel: partner.merged } : step);
  }
  return out;
}

function findPartner(out: readonly Step[], b: Kernel, maxBuffers: number, unrelated: boolean): { index: number; merged: Kernel } | undefined {
  const readAfter = new Set<number>();
  for (let i = out.length - 1; i >= Math.max(0, out.length - WINDOW); i--) {
    const s = out[i]!;
    if (s.kind === "kernel" && !kernelOutputs(s.kernel).some((o) => readAfter.has(o.node))) {
      const merged = merge(s.kernel, b, maxBuffers, unrelated);
      if (merged) return { index: i, merged };
    }
    for (const n of stepBuffers(s).inputs) readAfter.add(n);
  }
  return undefined;
}
