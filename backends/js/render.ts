// A renderer of the kernel IR to JavaScript: the third C-like target, which runs fused kernels on the CPU so
// that fusion is tested against the reference interpreter without a GPU. Its arithmetic is float64 with the
// interpreter's scalar semantics (compiler/scalar.ts), i32 wrapping included.
import { kernelOutputs, tileFactors, type Ix, type Kernel, type Sx } from "../../compiler/kernel/ir.js";

export function renderIx(ix: Ix): string {
  switch (ix.k) {
    case "gid":
      return "gid";
    case "r":
      return "r";
    case "var":
      return ix.name;
    case "const":
      return String(ix.v);
    case "add":
      return `(${renderIx(ix.a)} + ${renderIx(ix.b)})`;
    case "mul":
      return `${renderIx(ix.a)} * ${ix.c}`;
    case "div":
      return `Math.floor(${renderIx(ix.a)} / ${ix.c})`;
    case "mod":
      return `(${renderIx(ix.a)} % ${ix.c})`;
  }
}

const COMPARE_OPS = { lt: "<", le: "<=", gt: ">", ge: ">=", eq: "===", ne: "!==" } as const;

export function renderSx(x: Sx): string {
  switch (x.k) {
    case "load":
      return `in${x.buffer}[${renderIx(x.at)}]`;
    case "const":
      return Number.isNaN(x.v) ? "NaN" : Object.is(x.v, -0) ? "-0" : x.v === Infinity ? "Infinity" : x.v === -Infinity ? "-Infinity" : String(x.v);
    case "index":
      return `(${renderIx(x.at)})`;
    case "random":
      return `${x.dist === "normal" ? "normalAt" : "uniformAt"}(seed, step, ${x.key}, ${renderIx(x.at)}, scratch)`;
    case "unary":
      return x.t === "i32" ? `(U.${x.fn}(${renderSx(x.x)}) | 0)` : `U.${x.fn}(${renderSx(x.x)})`;
    case "binary": {
      const a = renderSx(x.a);
      const b = renderSx(x.b);
      if (x.t !== "i32") return `B.${x.fn}(${a}, ${b})`;
      return `((BI.${x.fn} ?? B.${x.fn})(${a}, ${b}) | 0)`;
    }
    case "compare":
      return `(${renderSx(x.a)} ${COMPARE_OPS[x.fn]} ${renderSx(x.b)} ? 1 : 0)`;
    case "select":
      return `(${renderSx(x.c)} !== 0 ? ${renderSx(x.a)} : ${renderSx(x.b)})`;
    case "cast":
      return x.t === "i32" ? `toI32(${renderSx(x.x)})` : x.t === "bool" ? `(${renderSx(x.x)} !== 0 ? 1 : 0)` : renderSx(x.x);
    case "inrange":
      return `(${renderIx(x.at)} >= ${x.lo} && ${renderIx(x.at)} < ${x.hi} ? 1 : 0)`;
    case "acc":
      return "acc";
  }
}

/** The statements storing each output's element `gid` as the interpreter stores a result of its dtype: i32 wraps, bool is 0 or 1. */
function store(k: Kernel): string {
  return kernelOutputs(k)
    .map((o, i) => {
      const value = renderSx(o.body);
      return `outs[${i}][gid] = ${o.dtype === "i32" ? `${value} | 0` : o.dtype === "bool" ? `(${value} !== 0 ? 1 : 0)` : value};`;
    })
    .join(" ");
}

/** The body of `function (ins, outs, seed, step, U, B, BI, toI32, uniformAt, normalAt)`: `outs` holds the kernel's outputs (kernelOutputs). */
export function renderKernel(k: Kernel): string {
  const lines = [`// ${k.name}: fuses %${k.fused.join(", %")}`, ...k.inputs.map((_, i) => `const in${i} = ins[${i}];`), "const scratch = new Uint32Array(4);"];
  if (k.tile) return [...lines, ...renderTiled(k)].join("\n");
  lines.push(`for (let gid = 0; gid < ${k.size}; gid++) {`);
  if (k.reduce) {
    lines.push(`  let acc = ${k.reduce.fn === "sum" ? "0" : "-Infinity"};`, `  for (let r = 0; r < ${k.reduce.count}; r++) {`);
    lines.push(k.reduce.fn === "sum" ? `    acc += ${renderSx(k.reduce.body)};` : `    acc = Math.max(acc, ${renderSx(k.reduce.body)});`, "  }");
  }
  lines.push(`  ${store(k)}`, "}");
  return lines.join("\n");
}

/**
 * A tiled kernel: one iteration of the outer loops per invocation. Rows and columns past the matrix's edge
 * evaluate their factor at the last one (as the WGSL kernel does) and are not stored.
 */
function renderTiled(k: Kernel): string[] {
  const { m, n, rows, cols } = k.tile!;
  const { lhs, rhs } = tileFactors(k);
  return [
    `const a = new Float64Array(${rows}), b = new Float64Array(${cols}), accs = new Float64Array(${rows * cols});`,
    `for (let base = 0; base < ${k.size}; base += ${m * n})`,
    `for (let row = 0; row < ${m}; row += ${rows})`,
    `for (let col = 0; col < ${n}; col += ${cols}) {`,
    "  accs.fill(0);",
    `  for (let r = 0; r < ${k.reduce!.count}; r++) {`,
    `    for (let i = 0; i < ${rows}; i++) { const gid = base + Math.min(row + i, ${m - 1}) * ${n} + col; a[i] = ${renderSx(lhs)}; }`,
    `    for (let j = 0; j < ${cols}; j++) { const gid = base + row * ${n} + Math.min(col + j, ${n - 1}); b[j] = ${renderSx(rhs)}; }`,
    `    for (let i = 0; i < ${rows}; i++) for (let j = 0; j < ${cols}; j++) accs[i * ${cols} + j] += a[i] * b[j];`,
    "  }",
    `  for (let i = 0; i < ${rows} && row + i < ${m}; i++)`,
    `    for (let j = 0; j < ${cols} && col + j < ${n}; j++) {`,
    `      const gid = base + (row + i) * ${n} + col + j, acc = accs[i * ${cols} + j];`,
    `      ${store(k)}`,
    "    }",
    "}",
  ];
}
