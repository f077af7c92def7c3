import { test } from "vitest";
import { lowerProgram, NAMES } from "../compiler/lower.js";
import { evaluate, PROF } from "../runtime/_prof_interpreter.js";
import { interpret } from "../runtime/interpreter.js";
import type { Tensor } from "../runtime/tensor.js";
test("prof", () => {
  const program = lowerProgram("models/ul_tiny.ul", { bindings: { B: 8 } });
  for (const precision of ["f64", "f32"] as const) {
    const params = interpret(program.init, {}, { precision, seed: 1, step: 0 });
    const entry = program.entries.find((e) => e.training)!;
    console.log(entry.name, "nodes", entry.graph.nodes.length);
    const inputs = new Map<string, Tensor>();
    for (const n of entry.graph.nodes) if (n.op.kind === "input") {
      const len = n.shape.reduce((a, b) => a * b, 1);
      inputs.set(n.op.name, { dtype: n.dtype, shape: n.shape, data: new Float64Array(len).fill(n.op.name === NAMES.step ? 1 : 0.01) });
    }
    for (let rep = 0; rep < 4; rep++) {
      PROF.clear();
      const t0 = performance.now();
      evaluate(entry.graph, { inputs, params }, { precision, seed: 1, step: 1 });
      const total = performance.now() - t0;
      const t1 = performance.now();
      interpret(entry.graph, { inputs, params }, { precision, seed: 1, step: 1 });
      console.log(precision, "evaluate total", total.toFixed(0), "ms; interpret", (performance.now() - t1).toFixed(0), "ms");
    }
    console.log([...PROF.entries()].sort((a, b) => b[1][0] - a[1][0]).slice(0, 14).map(([k, [t, c, n]]) => `${k}: ${t.toFixed(1)}ms x${c} (${(n / 1e6).toFixed(2)}M elems)`).join("\n"));
  }
}, 300000);
