// A fused kernel (compiler/kernel/ir.ts) as a CUDA `__global__` function. Expressions come from the shared
// C-like renderer (backends/c-like/expr.ts) in the C++ dialect the CPU target shares (backends/native/dialect.ts);
// what is CUDA's own is how a reduction is spread over threads:
//  - "thread": one thread per output element (element-wise kernels, short reductions, and reductions with
//    enough outputs to fill the GPU);
//  - "warp": a warp per output element, its 32 lanes striding over the terms, combined by shuffles
//    (ulc_warp_reduce in ulc_cuda.cuh): reductions with too few outputs to fill the GPU, such as a
//    small batch's matrix products;
//  - "block": a block of 256 threads per output element, combined by shuffles and shared memory
//    (ulc_block_reduce): long reductions with very few outputs (a loss, a bias gradient summed over the batch);
//  - a tiled kernel (the matmuls and convolutions of a Program lowered with precision tf32 or bf16) is a
//    tensor-core implicit GEMM (gemm.ts) on the mma.sync of the Program's precision, which the render functions take.
// Warps and blocks sum in another order than the interpreter, within float32 rounding. Buffers hold float
// (f32, f16, and bools as 0/1) or int (i32); index arithmetic is int, as in WGSL. Random streams read the
// launch's {seed, step} from device memory, so a captured CUDA Graph replays with new values.
import type { DType } from "../../compiler/ir.js";
import { kernelOutputs, partsBuffers, type Batch, type Chain, type Kernel } from "../../compiler/kernel/ir.js";
import type { ContractionPrecision } from "../../compiler/passes/precision.js";
import { literal, renderSx } from "../c-like/expr.js";
import { nestReduction } from "../../compiler/kernel/split.js";
import { CUDA, drawsRandom, STORAGE } from "../native/dialect.js";
import { GEMM_THREADS, renderGemmCuda } from "./gemm.js";

export const BLOCK_SIZE = 256;
const WARP = 32;

export type Strategy = "thread" | "warp" | "block";

/**
 * How a kernel's reduction is spread. A large GPU holds ~10^5 threads at once (an H100: 132 SMs x 2048): a
 * kernel with 64k outputs or more fills it a thread per output. Below that, a thread per output idles most
 * of the GPU while each walks the whole sum, so a warp takes each output once there are enough terms (64,
 * two per lane) to share; and a block when there are so many terms (4096: 16 per thread) and so few outputs
 * (2048 blocks: a few waves) that even a warp each would leave the GPU idle.
 */
export function strategy(k: Kernel): Strategy {
  const r = k.reduce;
  if (!r || r.count < 64 || k.size >= 65536) return "thread";
  return r.count >= 4096 && k.size <= 2048 ? "block" : "warp";
}

export interface CudaKernel {
  /**
   * The function's text (after a comment line) with `NAME` for its name, so identical kernels can share one
   * function; `NAME` also prefixes the device memory a kernel declares before its function.
   */
  readonly code: string;
  /** The C++ types of the kernel's buffer parameters: its inputs, then its outputs. */
  readonly buffers: readonly string[];
  /** It draws random numbers: a last parameter points to the launch's {seed, step}. */
  readonly draws: boolean;
  readonly grid: number;
  readonly block: number;
  /** Its threads synchronise (warp shuffles, `__syncthreads`): emulation runs them as fibers. */
  readonly cooperative: boolean;
}

export const KERNEL_NAME = "NAME";

/** The C++ types of buffer parameters of `dtypes`, the first `inputs` of them read-only. */
function bufferTypes(dtypes: readonly DType[], inputs: number): string[] {
  return dtypes.map((d, i) => `${i < inputs ? "const " : ""}${STORAGE[d]}*`);
}

/** A parameter list: `buffers` named `names`, then the rng words when the kernel draws; `shared` ones may alias another. */
function signature(buffers: readonly string[], names: readonly string[], draws: boolean, shared: ReadonlySet<number> = new Set()): string {
  return [...buffers.map((t, i) => `${t}${shared.has(i) ? "" : " __restrict__"} ${names[i]}`), ...(draws ? ["const unsigned* __restrict__ rng"] : [])].join(", ");
}

/**
 * A kernel's buffer parameters: its inputs (in0, in1, …), then its outputs (out, out1, …). An input among
 * `written` (a chain's earlier part wrote it, through a pointer of its own) is not `__restrict__`.
 */
function parameters(k: Kernel, written: ReadonlySet<number> = new Set()): { buffers: string[]; signature: string } {
  const outputs = kernelOutputs(k);
  const buffers = bufferTypes([...k.inputs.map((i) => i.dtype), ...outputs.map((o) => o.dtype)], k.inputs.length);
  const names = [...k.inputs.map((_, i) => `in${i}`), ...outputs.map((_, i) => `out${i || ""}`)];
  const shared = new Set(k.inputs.flatMap((input, i) => (written.has(input.node) ? [i] : [])));
  return { buffers, signature: signature(buffers, names, drawsRandom(k), shared) };
}

function checkSize(k: Kernel): void {
  if (k.size > 2147483647) throw new Error(`${k.name} has ${k.size} elements: CUDA kernels index with int (at most 2^31 - 1)`);
}

/** A kernel's statements, with `block` its block's index, and what its launch needs; `name` prefixes its device memory. */
interface Body {
  /** Device memory it declares before its function (a split GEMM's partial sums). */
  readonly declarations: readonly string[];
  readonly lines: readonly string[];
  readonly grid: number;
  readonly block: number;
  readonly cooperative: boolean;
}

function body(k: Kernel, name: string, block: string, precision: ContractionPrecision): Body {
  checkSize(k);
  if (!k.tile) return { declarations: [], ...threadedBody(k, block), block: BLOCK_SIZE };
  const gemm = renderGemmCuda(k, name, block, precision);
  const rng = drawsRandom(k) ? ["  const unsigned seed = rng[0], step = rng[1];"] : [];
  return { declarations: gemm.declarations, lines: [...rng, ...gemm.lines], grid: gemm.grid, block: gemm.block, cooperative: true };
}

/** `__launch_bounds__` of a kernel of `block` threads. */
function launchBounds(block: number): string {
  // A GEMM: at least 4 blocks an SM, so up to 128 registers a thread: with the block size alone ptxas squeezed
  // some GEMMs into 40 registers, and spilled.
  return block === GEMM_THREADS ? `__launch_bounds__(${block}, 4)` : `__launch_bounds__(${block})`;
}

/** A kernel of a Program of `precision` (which picks a tiled kernel's mma.sync) as a `__global__` function. */
export function renderKernelCuda(k: Kernel, precision: ContractionPrecision): CudaKernel {
  const { buffers, signature: params } = parameters(k);
  const b = body(k, KERNEL_NAME, "blockIdx.x", precision);
  const lines = [`// ${k.name}: fuses %${k.fused.join(", %")}`, ...b.declarations, `__global__ void ${launchBounds(b.block)} ${KERNEL_NAME}(${params}) {`, ...b.lines, "}"];
  return { code: lines.join("\n") + "\n", buffers, draws: drawsRandom(k), grid: b.grid, block: b.block, cooperative: b.cooperative };
}

/**
 * A batch (compiler/kernel/batch.ts) as one kernel: each part a device function of its block index, called by
 * the blocks of its range. Its parameters are the batch's buffers (backends/program.ts partsBinding).
 */
export function renderBatchCuda(batch: Batch, precision: ContractionPrecision): CudaKernel {
  return renderParts(batch.parts, "batch", precision);
}

/**
 * A chain (compiler/kernel/chain.ts) as one kernel: each part a device function of its block index, called in
 * turn by every block, with a barrier between over the threads that share an output (none for a thread per
 * output: it reads what it wrote), so a part finds what the ones before it wrote.
 */
export function renderChainCuda(chain: Chain, precision: ContractionPrecision): CudaKernel {
  return renderParts(chain.parts, "chain", precision);
}

const BARRIER: Record<Strategy, string | undefined> = { thread: undefined, warp: "__syncwarp();", block: "__syncthreads();" };

function renderParts(parts: readonly Kernel[], mode: "batch" | "chain", precision: ContractionPrecision): CudaKernel {
  const { inputs, outputs } = partsBuffers(parts);
  const dtype = new Map(parts.flatMap((k) => [...k.inputs.map((i) => [i.node, i.dtype] as const), ...kernelOutputs(k).map((o) => [o.node, o.dtype] as const)]));
  const buffers = bufferTypes([...inputs, ...outputs].map((n) => dtype.get(n)!), inputs.length);
  const name = new Map([...inputs.map((n, i) => [n, `in${i}`] as const), ...outputs.map((n, i) => [n, `out${i}`] as const)]);
  const draws = parts.some(drawsRandom);
  const written = new Set(outputs);
  // Parts with the same code (the updates of parameters of one size) share a function; GEMMs never do, as each
  // declares the device memory its split sums meet in.
  const functions = new Map<string, { fn: string; code: string; declarations: readonly string[] }>();
  const calls: string[] = [];
  let [first, threads, cooperative] = [0, 0, false];
  parts.forEach((k, i) => {
    const b = body(k, `${KERNEL_NAME}_p${i}`, "block", precision);
    const code = [`(const unsigned block, ${parameters(k, written).signature}) {`, ...b.lines, "}"].join("\n");
    const key = k.tile ? String(i) : code;
    if (!functions.has(key)) functions.set(key, { fn: `${KERNEL_NAME}_p${i}`, code, declarations: b.declarations });
    const args = [...k.inputs.map((x) => name.get(x.node)!), ...kernelOutputs(k).map((o) => name.get(o.node)!), ...(drawsRandom(k) ? ["rng"] : [])];
    const call = (offset: number) => `${functions.get(key)!.fn}(${offset ? `block - ${offset}u` : "block"}, ${args.join(", ")});`;
    if (threads && threads !== b.block) throw new Error(`the parts of a ${mode} launch blocks of ${threads} and ${b.block} threads`);
    if (mode === "batch") {
      calls.push(`  ${calls.length ? "else if" : "if"} (block < ${first + b.grid}u) ${call(first)}`);
      first += b.grid;
    } else {
      const barrier = BARRIER[strategy(k)];
      if (i > 0 && barrier) calls.push(`  ${barrier}`);
      calls.push(`  ${call(0)}`);
      if (i > 0 && b.grid !== first) throw new Error(`the parts of a chain launch ${first} and ${b.grid} blocks`);
      first = b.grid;
    }
    [threads, cooperative] = [b.block, cooperative || b.cooperative];
  });
  const lines = [
    `// a ${mode} of ${parts.length} kernels: ${parts.map((k) => k.name).join(", ")}`,
    ...[...functions.values()].flatMap(({ fn, code, declarations }) => [...declarations, `static __device__ __forceinline__ void ${fn}${code}`]),
    `__global__ void ${launchBounds(threads)} ${KERNEL_NAME}(${signature(buffers, [...inputs, ...outputs].map((n) => name.get(n)!), draws)}) {`,
    "  const unsigned block = blockIdx.x;",
    ...calls,
    "}",
  ];
  return { code: lines.join("\n") + "\n", buffers, draws, grid: first, block: threads, cooperative };
}

/** An untiled kernel's statements: a thread, warp or block per output (strategy), `block` the block's index. */
function threadedBody(k: Kernel, block: string): { lines: string[]; grid: number; cooperative: boolean } {
  const inputs = k.inputs.map((i) => i.dtype);
  const stores = kernelOutputs(k).map((o, i) => {
    const value = renderSx(o.body, inputs, CUDA);
    return `  out${i || ""}[gid] = ${o.dtype === "bool" ? `(${value} ? 1.0f : 0.0f)` : value};`;
  });
  const how = strategy(k);
  const lines: string[] = [];
  if (how === "thread") lines.push(`  const int gid = (int)(${block} * ${BLOCK_SIZE}u + threadIdx.x);`);
  if (how === "warp") lines.push(`  const int gid = (int)(${block} * ${BLOCK_SIZE / WARP}u + (threadIdx.x >> 5)), lane = (int)(threadIdx.x & 31u);`);
  if (how === "block") lines.push(`  const int gid = (int)${block};`);
  // A warp leaves whole (gid is the same on its lanes); a block's threads all take part in its reduction.
  if (how !== "block") lines.push(`  if (gid >= ${k.size}) return;`);
  if (drawsRandom(k)) lines.push("  const unsigned seed = rng[0], step = rng[1];");
  if (k.reduce) {
    const accType = STORAGE[k.dtype];
    const sum = k.reduce.fn === "sum";
    const init = sum ? literal(0, accType === "int" ? "i32" : "f32", CUDA) : accType === "int" ? CUDA.int(-2147483648) : CUDA.bits(0xff800000);
    const first = { thread: "0", warp: "lane", block: "(int)threadIdx.x" }[how];
    const stride = { thread: "1", warp: String(WARP), block: String(BLOCK_SIZE) }[how];
    const op = sum ? "ulc_sum_op()" : "ulc_max_op()";
    const fold = (term: string) => (sum ? `acc += ${term};` : `acc = ulc_max(acc, ${term});`);
    // A thread that walks the whole sum runs it as a nest of its digits' loops (split.ts): in the same order,
    // without a division per term.
    const nest = how === "thread" ? nestReduction(k) : undefined;
    lines.push(`  ${accType} acc = ${init};`);
    if (nest) {
      // Only the innermost loop unrolls: unrolling a whole nest of short loops (45 taps of a 5-channel 3 × 3
      // convolution) runs out of registers.
      const loops = [...nest.loops].reverse().map((l, i, all) => `${i < all.length - 1 ? "ULC_NO_UNROLL " : ""}for (int ${l.name} = 0; ${l.name} < ${l.extent}; ++${l.name})`);
      lines.push(`  ${loops.join("\n  ")} {`, `    ${fold(renderSx(nest.term, inputs, CUDA))}`, "  }");
    } else lines.push(`  for (int r = ${first}; r < ${k.reduce.count}; r += ${stride}) {`, `    ${fold(renderSx(k.reduce.body, inputs, CUDA))}`, "  }");
    if (how === "warp") lines.push(`  acc = ulc_warp_reduce(acc, ${op});`, "  if (lane != 0) return;");
    if (how === "block") lines.push(`  acc = ulc_block_reduce(acc, ${op}, ${init});`, "  if (threadIdx.x != 0) return;");
  }
  lines.push(...stores);
  const grid = { thread: Math.ceil(k.size / BLOCK_SIZE), warp: Math.ceil(k.size / (BLOCK_SIZE / WARP)), block: k.size }[how];
  return { lines, grid, cooperative: how !== "thread" };
}
