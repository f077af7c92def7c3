// Batches: independent kernels launched as one. Each launch costs the GPU a few microseconds however little it
// does, and a train step ends with one small kernel per parameter (Adam's update, then the moving average's),
// which no amount of vertical fusion merges: they share no index space. Launched as one, each kernel is a part
// that runs over a range of the launch's blocks of its own (kernel/ir.ts, Batch), as PyTorch's multi-tensor
// optimizers do by hand. A convolution's two gradients, which read the same output gradient, batch too, and the
// smaller (the weight's, a few blocks) runs beside the larger rather than after it. Tiled kernels (the target's
// GEMMs, whose blocks have a shape of their own) batch only with tiled kernels, a few at a time.
import { partsBuffers, stepBuffers, type Kernel, type Step } from "./ir.js";

export interface BatchOptions {
  /** The most buffers a batch binds. */
  readonly maxBuffers: number;
  /** The most tiled kernels in one batch (each holds its tiles in the block's shared memory). */
  readonly maxTiled: number;
}

/** How far back a kernel looks for a batch to join: it moves up past the steps in between. */
const WINDOW = 8;

function parts(step: Step): readonly Kernel[] | undefined {
  if (step.kind === "kernel") return [step.kernel];
  return step.kind === "batch" ? step.batch.parts : undefined;
}

/** Whether `k` may join a batch of `parts`. */
function fits(parts: readonly Kernel[], k: Kernel, options: BatchOptions): boolean {
  if (parts.some((p) => !p.tile !== !k.tile) || (k.tile && parts.length >= options.maxTiled)) return false;
  const { inputs, outputs } = partsBuffers([...parts, k]);
  return inputs.length + outputs.length <= options.maxBuffers;
}

/**
 * The steps with independent kernels batched. A kernel joins the nearest kernel or batch among the few before it
 * that comes after everything producing what it reads, moving up to it; nothing in between reads what it writes,
 * as it came later. Buffers are planned over the batched schedule
 * (backends/native/schedule.ts), so a part's outputs never overlap what another part reads.
 */
export function batchKernels(steps: readonly Step[], options: BatchOptions): Step[] {
  const out: Step[] = [];
  for (const step of steps) {
    const k = step.kind === "kernel" ? step.kernel : undefined;
    const at = k && partner(out, k, options);
    if (k === undefined || at === undefined) out.push(step);
    else out[at] = { kind: "batch", batch: { parts: [...parts(out[at]!)!, k] } };
  }
  return out;
}

function partner(out: readonly Step[], k: Kernel, options: BatchOptions): number | undefined {
  const reads = new Set(k.inputs.map((i) => i.node));
  for (let i = out.length - 1; i >= Math.max(0, out.length - WINDOW); i--) {
    const s = out[i]!;
    if (stepBuffers(s).outputs.some((b) => reads.has(b))) return undefined;
    const joined = parts(s);
    if (joined && fits(joined, k, options)) return i;
  }
  return undefined;
}
