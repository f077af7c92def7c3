// Chains: kernels that the same threads run one after another. A norm's statistics are two sums over the same
// groups, the variance's reading the mean: two kernels of one size and one number of terms, the second reading
// the first's output only at its own index. Run by the same threads, with a barrier between (the renderer's),
// the second finds the mean already written, and the pair takes one launch.
import { atOwnIndex, stepBuffers, sxNodes, type Kernel, type Step } from "./ir.js";

/** How far back a kernel looks for the kernel whose output it reads. */
const WINDOW = 8;

/** `k` reads `nodes` only at its own output index (each thread reads what it wrote). */
function readsAtOwnIndex(k: Kernel, nodes: ReadonlySet<number>): boolean {
  const buffers = new Set(k.inputs.flatMap((input, i) => (nodes.has(input.node) ? [i] : [])));
  const bodies = [k.body, ...(k.siblings ?? []).map((s) => s.body), ...(k.reduce ? [k.reduce.body] : [])];
  return bodies.every((b) => sxNodes(b).every((x) => x.k !== "load" || !buffers.has(x.buffer) || atOwnIndex(x.at, k.size)));
}

function parts(step: Step): readonly Kernel[] | undefined {
  if (step.kind === "kernel") return step.kernel.tile ? undefined : [step.kernel];
  return step.kind === "chain" ? step.chain.parts : undefined;
}

/**
 * The steps with chains. A kernel joins the step that last wrote what it reads, moving up to it, when that step
 * is a kernel or chain of its size and number of terms (so a target spreads both over its threads alike) and
 * the kernel reads its outputs only at its own index. The steps it moves past write nothing it reads (the one it
 * joins is the last that does) and read nothing it writes (they came before it).
 */
export function chainKernels(steps: readonly Step[]): Step[] {
  const out: Step[] = [];
  for (const step of steps) {
    const k = step.kind === "kernel" && !step.kernel.tile ? step.kernel : undefined;
    const at = k && producer(out, k);
    if (k === undefined || at === undefined) out.push(step);
    else out[at] = { kind: "chain", chain: { parts: [...parts(out[at]!)!, k] } };
  }
  return out;
}

function producer(out: readonly Step[], k: Kernel): number | undefined {
  const reads = new Set(k.inputs.map((i) => i.node));
  for (let i = out.length - 1; i >= Math.max(0, out.length - WINDOW); i--) {
    const written = stepBuffers(out[i]!).outputs;
    if (!written.some((b) => reads.has(b))) continue;
    const joined = parts(out[i]!);
    const alike = joined?.every((p) => p.size === k.size && p.reduce?.count === k.reduce?.count);
    return alike && readsAtOwnIndex(k, new Set(written)) ? i : undefined;
  }
  return undefined;
}
