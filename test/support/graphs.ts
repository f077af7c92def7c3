// Graphs for the fusion and native-target tests: random chains of element-wise ops, movement ops and reductions
// over one input `x`, and a convolution with both its gradients.
import fc from "fast-check";
import { GraphBuilder, size, type Graph } from "../../compiler/ir.js";

export type ElementwiseStep = { op: "unary" | "binary" | "reduce" | "transpose" | "reshape" | "broadcast" | "slice" | "twice"; seed: number };

export const elementwiseStepArb: fc.Arbitrary<ElementwiseStep> = fc.record({
  op: fc.constantFrom("unary", "binary", "reduce", "transpose", "reshape", "broadcast", "slice", "twice"),
  seed: fc.nat(1 << 16),
}) as fc.Arbitrary<ElementwiseStep>;

export function randomElementwiseGraph(shape: readonly number[], steps: readonly ElementwiseStep[]): Graph {
  const b = new GraphBuilder();
  const x = b.add({ kind: "input", name: "x" }, [], shape);
  let y = x;
  for (const s of steps) {
    const sh = b.node(y).shape;
    const r = sh.length;
    switch (s.op) {
      case "unary":
        y = b.add({ kind: "unary", fn: (["exp", "tanh", "sin", "abs", "neg"] as const)[s.seed % 5]! }, [y]);
        break;
      case "binary":
        y = b.add({ kind: "binary", fn: (["add", "mul", "sub", "maximum"] as const)[s.seed % 4]! }, [y, b.add({ kind: "unary", fn: "cos" }, [y])]);
        break;
      case "twice":
        y = b.add({ kind: "binary", fn: "add" }, [y, y]);
        break;
      case "reduce":
        y = b.add({ kind: "reduce", fn: s.seed % 2 ? "sum" : "max", axes: [s.seed % r] }, [y]);
        break;
      case "transpose":
        y = b.add({ kind: "transpose", perm: [...Array(r).keys()].reverse() }, [y]);
        break;
      case "reshape":
        y = b.add({ kind: "reshape" }, [y], [size(sh)]);
        break;
      case "broadcast": {
        const ones = sh.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
        if (ones.length) y = b.add({ kind: "broadcast" }, [y], sh.map((d, i) => (i === ones[0] ? 3 : d)));
        break;
      }
      case "slice":
        if (sh[0]! > 1) y = b.add({ kind: "slice", axis: 0, start: 1, end: sh[0]! }, [y]);
        break;
    }
  }
  return b.build([{ name: "y", node: y }]);
}

/** A convolution's shape: batch, groups, channels per group in and out, image size, square kernel, stride, padding. */
export interface ConvCase {
  readonly n: number;
  readonly groups: number;
  readonly cinG: number;
  readonly coutG: number;
  readonly h: number;
  readonly w: number;
  readonly k: number;
  readonly stride: number;
  readonly padding: number;
}

/** A convolution and both its gradients added to `b` (inputs x and w), dy = sin(y) so the gradients see values of both signs. */
export function addConvolution(b: GraphBuilder, c: ConvCase): { x: number; y: number; dx: number; dw: number; xShape: number[]; wShape: number[] } {
  const attrs = { stride: c.stride, padding: c.padding, groups: c.groups };
  const [xShape, wShape] = [[c.n, c.cinG * c.groups, c.h, c.w], [c.coutG * c.groups, c.cinG, c.k, c.k]];
  const x = b.add({ kind: "input", name: "x" }, [], xShape);
  const weights = b.add({ kind: "input", name: "w" }, [], wShape);
  const y = b.add({ kind: "conv2d", ...attrs }, [x, weights]);
  const dy = b.add({ kind: "unary", fn: "sin" }, [y]);
  const dx = b.add({ kind: "conv2d_grad_input", ...attrs }, [dy, weights], xShape);
  const dw = b.add({ kind: "conv2d_grad_weight", ...attrs }, [x, dy], wShape);
  return { x, y, dx, dw, xShape, wShape };
}

/** A convolution and both its gradients as one graph (addConvolution; outputs y, dx and dw), with the input shapes. */
export function convolutionGraph(c: ConvCase): { graph: Graph; xShape: number[]; wShape: number[] } {
  const b = new GraphBuilder();
  const { y, dx, dw, xShape, wShape } = addConvolution(b, c);
  return { graph: b.build([{ name: "y", node: y }, { name: "dx", node: dx }, { name: "dw", node: dw }]), xShape, wShape };
}
