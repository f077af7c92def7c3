// The contractions the CPU target leaves to oneDNN (through backends/cpu/cpp/ulc_cpu.h): matmul as its sgemm,
// conv2d and its two gradients as its convolution primitives, each created on its first call. Each call is a
// generated function with the op's shapes as constants, so the host runtime launches it like any kernel.
import type { Graph } from "../../compiler/ir.js";
import type { LibraryCall } from "../../compiler/kernel/ir.js";

/** The ops a CPU build runs as library calls (compiler/kernel/fuse.ts materialises their inputs). */
export const CPU_LIBRARY: ReadonlySet<string> = new Set(["matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight"]);

/** The function `name(buffers, rng)` computing the call's node from its operands' buffers. */
export function renderLibraryCpu(call: LibraryCall, g: Graph, name: string): string {
  const n = g.nodes[call.node]!;
  const shape = (i: number) => g.nodes[n.inputs[i]!]!.shape;
  const op = n.op;
  if (n.dtype !== "f32") throw new Error(`%${n.id} (${op.kind}) is ${n.dtype}: the CPU's BLAS calls take f32`);
  const lines = [`// %${n.id} = ${op.kind} [${n.shape.join(", ")}]`, `static void ${name}(void* const* b, const unsigned*) {`];
  const buffers = ["(const float*)b[0]", "(const float*)b[1]", "(float*)b[2]"].join(", ");
  switch (op.kind) {
    case "matmul": {
      const a = shape(0);
      const rank = a.length;
      const batch = a.slice(0, rank - 2).reduce((x, y) => x * y, 1);
      const [ta, tb] = call.operands.map((o) => o.transposed);
      lines.push(`  ulc_matmul(${buffers}, ${batch}, ${a[rank - 2]}, ${n.shape[rank - 1]}, ${a[rank - 1]}, ${ta}, ${tb});`);
      break;
    }
    case "conv2d":
    case "conv2d_grad_input":
    case "conv2d_grad_weight": {
      // The geometry from x, w and y, whichever of them are the op's inputs and output.
      const [x, w, y] = { conv2d: [shape(0), shape(1), n.shape], conv2d_grad_input: [n.shape, shape(1), shape(0)], conv2d_grad_weight: [shape(0), n.shape, shape(1)] }[op.kind];
      const geometry = [x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], op.stride, op.padding, op.groups];
      const pass = { conv2d: "forward", conv2d_grad_input: "backward_data", conv2d_grad_weight: "backward_weights" }[op.kind];
      lines.push(`  static ulc_dnnl_conv conv({${geometry.join(", ")}}, ulc_conv_${pass});`, `  conv.run(${buffers});`);
      break;
    }
    default:
      throw new Error(`%${n.id} (${op.kind}) has no library call on the CPU`);
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}
