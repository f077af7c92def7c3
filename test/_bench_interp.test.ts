import { test } from "vitest";
import { GraphBuilder } from "../compiler/ir.js";
import { interpret } from "../runtime/interpreter.js";
import { tensorOf } from "../runtime/tensor.js";
const r = (shape: number[]) => tensorOf("f32", shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.random() - 0.5));
function time(label: string, f: () => void, reps = 5) {
  f();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); f(); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b);
  console.log(label, "median", ts[Math.floor(reps / 2)]!.toFixed(1), "ms, min", ts[0]!.toFixed(1));
}
test("bench", () => {
  for (const precision of ["f64", "f32"] as const) {
    {
      const b = new GraphBuilder();
      const x = b.add({ kind: "input", name: "a" }, [], [256, 512]);
      const y = b.add({ kind: "input", name: "b" }, [], [512, 256]);
      const m = b.add({ kind: "matmul" }, [x, y]);
      const g = b.build([{ name: "m", node: m }]);
      const env = { inputs: new Map([["a", r([256, 512])], ["b", r([512, 256])]]) };
      time(`matmul 256x512 @ 512x256 ${precision}`, () => interpret(g, env, { precision, seed: 0, step: 0 }));
    }
    {
      const b = new GraphBuilder();
      const x = b.add({ kind: "input", name: "x" }, [], [8, 32, 16, 16]);
      const w = b.add({ kind: "input", name: "w" }, [], [32, 32, 3, 3]);
      const dy = b.add({ kind: "input", name: "dy" }, [], [8, 32, 16, 16]);
      const c = b.add({ kind: "conv2d", stride: 1, padding: 1, groups: 1 }, [x, w]);
      const gi = b.add({ kind: "conv2d_grad_input", stride: 1, padding: 1, groups: 1 }, [dy, w], [8, 32, 16, 16]);
      const gw = b.add({ kind: "conv2d_grad_weight", stride: 1, padding: 1, groups: 1 }, [x, dy], [32, 32, 3, 3]);
      const env = { inputs: new Map([["x", r([8, 32, 16, 16])], ["w", r([32, 32, 3, 3])], ["dy", r([8, 32, 16, 16])]]) };
      for (const [name, node] of [["conv2d", c], ["conv2d_grad_input", gi], ["conv2d_grad_weight", gw]] as const) {
        const g = b.build([{ name, node }]);
        time(`${name} [8,32,16,16]*[32,32,3,3] p1 ${precision}`, () => interpret(g, env, { precision, seed: 0, step: 0 }));
      }
    }
    {
      // An MLP train-step-shaped graph: ~3.2M params, batch 8, forward + backward matmuls + elementwise.
      const b = new GraphBuilder();
      const dims = [784, 1024, 1024, 1024, 784];
      let h = b.add({ kind: "input", name: "x" }, [], [8, 784]);
      const env = { inputs: new Map([["x", r([8, 784])]]), params: new Map<string, ReturnType<typeof r>>() };
      const acts: number[] = [h];
      const ws: number[] = [];
      let nparams = 0;
      for (let i = 0; i + 1 < dims.length; i++) {
        const w = b.add({ kind: "param", name: `w${i}` }, [], [dims[i]!, dims[i + 1]!]);
        env.params.set(`w${i}`, r([dims[i]!, dims[i + 1]!]));
        nparams += dims[i]! * dims[i + 1]!;
        ws.push(w);
        const z = b.add({ kind: "matmul" }, [h, w]);
        h = b.add({ kind: "unary", fn: "tanh" }, [z]);
        acts.push(h);
      }
      let d = b.add({ kind: "constant", value: 1 }, [], [8, 784]);
      const outs: { name: string; node: number }[] = [];
      for (let i = dims.length - 2; i >= 0; i--) {
        const hsq = b.add({ kind: "binary", fn: "mul" }, [acts[i + 1]!, acts[i + 1]!]);
        const one = b.add({ kind: "constant", value: 1 }, [], b.node(hsq).shape);
        const dz = b.add({ kind: "binary", fn: "mul" }, [d, b.add({ kind: "binary", fn: "sub" }, [one, hsq])]);
        const xt = b.add({ kind: "transpose", perm: [1, 0] }, [acts[i]!]);
        outs.push({ name: `gw${i}`, node: b.add({ kind: "matmul" }, [xt, dz]) });
        const wt = b.add({ kind: "transpose", perm: [1, 0] }, [ws[i]!]);
        d = b.add({ kind: "matmul" }, [dz, wt]);
      }
      const g = b.build(outs);
      console.log("mlp params", nparams);
      time(`mlp fwd+bwd batch 8 ${precision}`, () => interpret(g, env, { precision, seed: 0, step: 0 }));
    }
  }
}, 120000);
