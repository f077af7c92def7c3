// A fused kernel (compiler/kernel/ir.ts) as a C++ function for the CPU: a loop over its outputs (each of an
// element-wise kernel's sibling outputs stored per index too), parallel with OpenMP once there is enough work to
// pay for waking the threads, and, for a reduction, an inner loop over its terms that the compiler may vectorise
// (`omp simd`: sums in another order than the interpreter, within float32 rounding). A reduction with too few outputs to share among the threads shares its terms instead. Where every
// division of the output index (or of the reduction counter) is by a multiple of a block, the loop runs as two,
// outer and inner (compiler/kernel/split.ts), and the inner one reads memory contiguously. Expressions come from
// the shared C-like renderer in the C++ dialect the CUDA target also uses (backends/native/dialect.ts).
import { kernelOutputs, type Kernel, type Sx } from "../../compiler/kernel/ir.js";
import { innerBlock, splitCounter, splitNames } from "../../compiler/kernel/split.js";
import { literal, renderSx } from "../c-like/expr.js";
import { CPP, drawsRandom, STORAGE } from "../native/dialect.js";

/** Work (outputs × terms) below which a loop runs on one thread: waking a team costs a few microseconds. */
const PARALLEL_WORK = 32768;

const indent = (lines: readonly string[]) => lines.map((l) => (l.startsWith("#") ? l : `  ${l}`));

/**
 * The loop of `counter` over [0, extent) around `body` (which uses the counter), split into outer and inner
 * loops at `block` when given; `pragma` goes on the outer loop, `simd` on the innermost.
 */
function loop(counter: "gid" | "r", extent: number, block: number | undefined, pragma: string | undefined, simd: string | undefined, body: readonly string[]): string[] {
  const pragmas = (...p: (string | undefined)[]) => p.filter((x): x is string => x !== undefined);
  // One loop both parallel and vector lanes: `omp parallel for simd` (a pragma's clauses cover the simd one's).
  // Without `simd` there, GCC left such loops scalar (measured: ul_tiny's step 1.6x slower).
  const flat = pragma && simd ? pragma.replace("omp parallel for", "omp parallel for simd") : (pragma ?? simd);
  if (block === undefined) return [...pragmas(flat), `for (int ${counter} = 0; ${counter} < ${extent}; ++${counter}) {`, ...indent(body), "}"];
  const { outer, inner } = splitNames(counter);
  return [
    ...pragmas(pragma),
    `for (int ${outer} = 0; ${outer} < ${extent / block}; ++${outer}) {`,
    ...indent([...pragmas(simd), `for (int ${inner} = 0; ${inner} < ${block}; ++${inner}) {`, ...indent(body), "}"]),
    "}",
  ];
}

/** The function `name(buffers, rng)`, with its buffers cast from the kernel table's `void*`s. */
export function renderKernelCpu(k: Kernel, name: string): string {
  const inputs = k.inputs.map((i) => i.dtype);
  const render = (x: Sx) => renderSx(x, inputs, CPP);
  const lines = [`// ${k.name}: fuses %${k.fused.join(", %")}`, `static void ${name}(void* const* b, const unsigned* rng) {`];
  k.inputs.forEach((input, i) => lines.push(`  const ${STORAGE[input.dtype]}* __restrict in${i} = (const ${STORAGE[input.dtype]}*)b[${i}];`));
  const outputs = kernelOutputs(k);
  outputs.forEach((o, i) => lines.push(`  ${STORAGE[o.dtype]}* __restrict out${i || ""} = (${STORAGE[o.dtype]}*)b[${k.inputs.length + i}];`));
  lines.push(drawsRandom(k) ? "  const unsigned seed = rng[0], step = rng[1];" : "  (void)rng;");
  const store = (value: string, i = 0) => `out${i || ""}[gid] = ${outputs[i]!.dtype === "bool" ? `(${value} ? 1.0f : 0.0f)` : value};`;
  const r = k.reduce;
  const work = k.size * (r?.count ?? 1);
  const parallel = "#pragma omp parallel for schedule(static)";
  if (!r) {
    // Element-wise: every output on its own, so the inner loop is vector lanes.
    const block = innerBlock(k, "gid");
    const stores = outputs.map((o, i) => store(render(block === undefined ? o.body : splitCounter(o.body, "gid", block)), i));
    const { outer, inner } = splitNames("gid");
    const at = block === undefined ? [] : [`const int gid = ${outer} * ${block} + ${inner};`];
    lines.push(...indent(loop("gid", k.size, block, work >= PARALLEL_WORK ? parallel : undefined, "#pragma omp simd", [...at, ...stores])));
  } else {
    const sum = r.fn === "sum";
    const acc = STORAGE[k.dtype];
    const init = sum ? literal(0, acc === "int" ? "i32" : "f32", CPP) : acc === "int" ? CPP.int(-2147483648) : CPP.bits(0xff800000);
    const block = innerBlock(k, "r");
    const term = render(block === undefined ? r.body : splitCounter(r.body, "r", block));
    // A sum with fewer outputs than threads (a loss, a bias gradient over a small batch) splits its terms.
    const splitTerms = sum && k.size < 8 && work >= PARALLEL_WORK;
    const terms = loop("r", r.count, block, splitTerms ? "#pragma omp parallel for schedule(static) reduction(+ : acc)" : undefined, sum ? "#pragma omp simd reduction(+ : acc)" : undefined, [
      sum ? `acc += ${term};` : `acc = ulc_max(acc, ${term});`,
    ]);
    const body = [`${acc} acc = ${init};`, ...terms, store(render(k.body))];
    lines.push(...indent(loop("gid", k.size, undefined, !splitTerms && work >= PARALLEL_WORK ? parallel : undefined, undefined, body)));
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}
