// A fused kernel (compiler/kernel/ir.ts) as a C++ function for the CPU: a loop over its outputs, parallel with
// OpenMP once there is enough work to pay for waking the threads, and, for a reduction, an inner loop over its
// terms that the compiler may vectorise (`omp simd`: sums in another order than the interpreter, within float32
// rounding). A reduction with too few outputs to share among the threads shares its terms instead. Expressions
// come from the shared C-like renderer in the C++ dialect the CUDA target also uses (backends/native/dialect.ts).
import type { Kernel } from "../../compiler/kernel/ir.js";
import { literal, renderSx } from "../c-like/expr.js";
import { CPP, drawsRandom, STORAGE } from "../native/dialect.js";

/** Work (outputs × terms) below which a loop runs on one thread: waking a team costs a few microseconds. */
export const PARALLEL_WORK = 32768;

/** The function `name(buffers, rng)`, with its buffers cast from the kernel table's `void*`s. */
export function renderKernelCpu(k: Kernel, name: string): string {
  const inputs = k.inputs.map((i) => i.dtype);
  const body = renderSx(k.body, inputs, CPP);
  const value = k.dtype === "bool" ? `(${body} ? 1.0f : 0.0f)` : body;
  const lines = [`// ${k.name}: fuses %${k.fused.join(", %")}`, `static void ${name}(void* const* b, const unsigned* rng) {`];
  k.inputs.forEach((input, i) => lines.push(`  const ${STORAGE[input.dtype]}* __restrict in${i} = (const ${STORAGE[input.dtype]}*)b[${i}];`));
  lines.push(`  ${STORAGE[k.dtype]}* __restrict out = (${STORAGE[k.dtype]}*)b[${k.inputs.length}];`);
  lines.push(drawsRandom(k) ? "  const unsigned seed = rng[0], step = rng[1];" : "  (void)rng;");
  const r = k.reduce;
  const work = k.size * (r?.count ?? 1);
  // A sum with fewer outputs than threads (a loss, a bias gradient over a small batch) splits its terms.
  const splitTerms = r !== undefined && r.fn === "sum" && k.size < 8 && work >= PARALLEL_WORK;
  if (!splitTerms && work >= PARALLEL_WORK) lines.push("#pragma omp parallel for schedule(static)");
  lines.push(`  for (int gid = 0; gid < ${k.size}; ++gid) {`);
  if (r) {
    const acc = STORAGE[k.dtype];
    const sum = r.fn === "sum";
    const init = sum ? literal(0, acc === "int" ? "i32" : "f32", CPP) : acc === "int" ? CPP.int(-2147483648) : CPP.bits(0xff800000);
    const term = renderSx(r.body, inputs, CPP);
    lines.push(`    ${acc} acc = ${init};`);
    if (splitTerms) lines.push("#pragma omp parallel for simd schedule(static) reduction(+ : acc)");
    else if (sum) lines.push("#pragma omp simd reduction(+ : acc)");
    lines.push(`    for (int r = 0; r < ${r.count}; ++r) ${sum ? `acc += ${term};` : `acc = ulc_max(acc, ${term});`}`);
  }
  lines.push(`    out[gid] = ${value};`, "  }", "}");
  return lines.join("\n") + "\n";
}
