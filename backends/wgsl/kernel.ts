// A fused kernel (compiler/kernel/ir.ts) as a WGSL compute shader. One invocation per output element, or per
// register tile of a tiled kernel; the workgroups are folded over a 2-D dispatch grid past 65535. Buffers hold f32 (bools
// as 0/1) or i32; the random streams are Philox-4x32-10 written with u32 operations only, bit-exact with
// runtime/random.ts. Seed and step are uniforms, so a new step does not recompile.
import type { DType } from "../../compiler/ir.js";
import { tileFactors, type Kernel } from "../../compiler/kernel/ir.js";
import { C_BINARY, C_UNARY, call, calls, renderSx, type Dialect } from "../c-like/expr.js";

export const WORKGROUP_SIZE = 64;
/** WebGPU's maxComputeWorkgroupsPerDimension default. */
export const MAX_WORKGROUPS_PER_DIM = 65535;

const STORAGE: Record<DType, string> = { f32: "f32", f16: "f32", bool: "f32", i32: "i32" };

const WGSL: Dialect = {
  int: (v) => `${v}i`,
  float: (s) => s,
  // Infinities, NaN and subnormals have no WGSL literal (see ulc_bits).
  bits: (b) => `ulc_bits(0x${b.toString(16)}u)`,
  unary: { ...C_UNARY, ...calls({ exp: "exp", log: "log", sqrt: "sqrt", rsqrt: "inverseSqrt", sin: "sin", cos: "cos", tanh: "tanh", abs: "abs", floor: "floor", round_tf32: "ulc_round_tf32", round_bf16: "ulc_round_bf16" }) },
  binary: { ...C_BINARY, maximum: call("max"), minimum: call("min") },
  // WGSL's i32 arithmetic already wraps, and defines x / 0 = x.
  intBinary: {},
  absInt: (x) => `abs(${x})`,
  select: (c, a, b) => `select(${b}, ${a}, ${c})`,
  toInt: (x) => `ulc_to_i32(${x})`,
  toFloat: (x) => `f32(${x})`,
  toU32: (x) => `u32(${x})`,
  random: (dist, key, at) => `ulc_${dist}(${key}u, ${at})`,
};

/** Helpers, emitted only when a kernel uses them. */
const HELPERS: Record<string, string> = {
  // Infinities, NaN and subnormals have no WGSL literal, and a constant bitcast of them is rejected at
  // compile time; through a function they are ordinary run-time values.
  ulc_bits: `fn ulc_bits(b: u32) -> f32 {
  return bitcast<f32>(b);
}`,
  ulc_sigmoid: `fn ulc_sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}`,
  ulc_softplus: `fn ulc_softplus(x: f32) -> f32 {
  return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}`,
  // To TF32 as cvt.rna.tf32.f32 (compiler/scalar.ts, roundTf32): NaN, told by its bits, stays NaN.
  ulc_round_tf32: `fn ulc_round_tf32(x: f32) -> f32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return x; }
  return bitcast<f32>((u + 0x1000u) & 0xffffe000u);
}`,
  // To bfloat16 as cvt.rn.bf16.f32 (compiler/scalar.ts, roundBf16; ulc_scalar.h's ulc_round_bf16): ties to even;
  // NaN, told by its bits, stays a NaN whose low 16 bits are zero.
  ulc_round_bf16: `fn ulc_round_bf16(x: f32) -> f32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return bitcast<f32>((u | 0x00400000u) & 0xffff0000u); }
  return bitcast<f32>((u + 0x7fffu + ((u >> 16u) & 1u)) & 0xffff0000u);
}`,
  // WGSL's pow is undefined for a negative base; Math.pow gives ±|x|^y for an integer y, NaN otherwise.
  ulc_pow: `fn ulc_pow(x: f32, y: f32) -> f32 {
  if (x >= 0.0) { return pow(x, y); }
  if (y != floor(y)) { return ulc_bits(0x7fc00000u); }
  let p = pow(-x, y);
  return select(p, -p, abs(y % 2.0) == 1.0);
}`,
  // Truncate toward zero, saturate, NaN -> 0 (the interpreter's cast).
  ulc_to_i32: `fn ulc_to_i32(x: f32) -> i32 {
  if (x != x) { return 0i; }
  if (x >= 2147483648.0) { return 2147483647i; }
  return i32(max(trunc(x), -2147483648.0));
}`,
  ulc_philox: `fn ulc_mulhi(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu; let ah = a >> 16u; let bl = b & 0xffffu; let bh = b >> 16u;
  let ll = al * bl; let lh = al * bh; let hl = ah * bl; let hh = ah * bh;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}
fn ulc_philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter; var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) { k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u); }
    let hi0 = ulc_mulhi(0xD2511F53u, c.x); let lo0 = 0xD2511F53u * c.x;
    let hi1 = ulc_mulhi(0xCD9E8D57u, c.z); let lo1 = 0xCD9E8D57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}
fn ulc_uniform(key: u32, i: u32) -> f32 {
  let x = ulc_philox(vec4<u32>(i, key, params.step, 0u), vec2<u32>(params.seed, 0u));
  return f32(x.x >> 8u) * 5.9604644775390625e-8;
}
fn ulc_normal(key: u32, i: u32) -> f32 {
  let x = ulc_philox(vec4<u32>(i, key, params.step, 0u), vec2<u32>(params.seed, 0u));
  let u1 = f32((x.x >> 8u) + 1u) * 5.9604644775390625e-8;
  let u2 = f32(x.y >> 8u) * 5.9604644775390625e-8;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}`,
};

export interface WgslKernelOptions {
  /** The workgroup of a tiled kernel, [x along columns, y along rows]; default [8, 8]. */
  readonly tileWorkgroup?: readonly [number, number];
}

/** `groups` workgroups as a 2-D grid within WebGPU's per-dimension limit. */
function grid(groups: number): [number, number] {
  const x = Math.min(groups, MAX_WORKGROUPS_PER_DIM);
  return [x, Math.ceil(groups / x)];
}

/** The shader's text and the dispatch it needs. */
export function renderKernelWgsl(k: Kernel, options: WgslKernelOptions = {}): { code: string; workgroups: [number, number] } {
  if (k.siblings) throw new Error(`${k.name} has sibling outputs, which WGSL kernels do not write (fuse without FuseOptions.siblings)`);
  const inputs = k.inputs.map((i) => i.dtype);
  const body = renderSx(k.body, inputs, WGSL);
  const reduceBody = k.reduce ? renderSx(k.reduce.body, inputs, WGSL) : "";
  const accInit = k.reduce?.fn === "max" ? "ulc_bits(" : "";
  const used = (name: string) => body.includes(name) || reduceBody.includes(name) || (name === "ulc_bits" && (accInit !== "" || body.includes("ulc_pow") || reduceBody.includes("ulc_pow")));
  const helpers = Object.keys(HELPERS)
    .filter((h) => used(h) || (h === "ulc_philox" && (used("ulc_uniform") || used("ulc_normal"))))
    .map((h) => HELPERS[h]!);
  const out = k.dtype === "bool" ? `select(0.0, 1.0, ${body})` : body;
  const accType = STORAGE[k.dtype];
  const lines = [
    `// ${k.name}: fuses %${k.fused.join(", %")}`,
    "struct Params { seed: u32, step: u32 }",
    "@group(0) @binding(0) var<uniform> params: Params;",
    ...k.inputs.map((input, i) => `@group(0) @binding(${i + 1}) var<storage, read> in${i}: array<${STORAGE[input.dtype]}>;`),
    `@group(0) @binding(${k.inputs.length + 1}) var<storage, read_write> out: array<${STORAGE[k.dtype]}>;`,
    ...helpers,
  ];
  if (k.tile) return renderTiled(k, lines, out, options.tileWorkgroup ?? [8, 8]);
  lines.push(
    `@compute @workgroup_size(${WORKGROUP_SIZE})`,
    "fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {",
    // Every kernel binds the parameters; a kernel that draws no random numbers still "uses" them, so that
    // the automatic bind-group layout keeps binding 0.
    "  _ = params.seed;",
    // Index arithmetic is signed: a padded convolution reads row -1 (under a bounds check).
    `  let gid = i32(id.x + id.y * groups.x * ${WORKGROUP_SIZE}u);`,
    `  if (gid >= ${k.size}i) { return; }`,
  );
  if (k.reduce) {
    const init = k.reduce.fn === "sum" ? (accType === "i32" ? "0i" : "0.0") : accType === "i32" ? "-2147483647i - 1i" : "ulc_bits(0xff800000u)";
    lines.push(`  var acc: ${accType} = ${init};`, `  for (var r = 0i; r < ${k.reduce.count}i; r++) {`);
    lines.push(k.reduce.fn === "sum" ? `    acc += ${reduceBody};` : `    acc = max(acc, ${reduceBody});`, "  }");
  }
  lines.push(`  out[gid] = ${out};`, "}");
  return { code: lines.join("\n") + "\n", workgroups: grid(Math.ceil(k.size / WORKGROUP_SIZE)) };
}

/**
 * A tiled kernel (kernel/ir.ts, Tile): each invocation holds `rows` consecutive rows × `cols` columns, those
 * `wx` apart (neighbouring invocations read neighbouring columns), of one matrix in registers. The two factors
 * and the stored value are functions of the output index, called once per row, per column and per output.
 * Rows and columns past the edge evaluate their factor at the last valid one and are not stored, so the loop
 * has no branches.
 */
function renderTiled(k: Kernel, lines: string[], out: string, [wx, wy]: readonly [number, number]): { code: string; workgroups: [number, number] } {
  const { m, n, rows, cols, parity } = k.tile!;
  if (parity) throw new Error(`${k.name}: WGSL tiles no parity classes (fused without FuseOptions.tile.parity)`);
  const { lhs, rhs } = tileFactors(k);
  const inputs = k.inputs.map((i) => i.dtype);
  const blockRows = Math.ceil(m / (rows * wy));
  const blockCols = Math.ceil(n / (cols * wx));
  const groups = (k.size / (m * n)) * blockRows * blockCols;
  const is = Array.from({ length: rows }, (_, i) => i);
  const js = Array.from({ length: cols }, (_, j) => j);
  const all = is.flatMap((i) => js.map((j) => [i, j] as const));
  lines.push(
    `fn lhs(gid: i32, r: i32) -> f32 { return ${renderSx(lhs, inputs, WGSL)}; }`,
    `fn rhs(gid: i32, r: i32) -> f32 { return ${renderSx(rhs, inputs, WGSL)}; }`,
    `fn result(gid: i32, acc: f32) -> ${STORAGE[k.dtype]} { return ${out}; }`,
    `@compute @workgroup_size(${wx}, ${wy})`,
    "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {",
    "  _ = params.seed;",
    // Workgroup w covers block (w / blockCols) % blockRows of rows, block w % blockCols of columns, of matrix w / (blockRows · blockCols).
    "  let w = i32(wid.x + wid.y * groups.x);",
    `  let row = ((w / ${blockCols}i) % ${blockRows}i * ${wy}i + i32(lid.y)) * ${rows}i;`,
    `  let col = (w % ${blockCols}i) * ${wx * cols}i + i32(lid.x);`,
    `  if (w >= ${groups}i || row >= ${m}i || col >= ${n}i) { return; }`,
    `  let base = (w / ${blockRows * blockCols}i) * ${m * n}i;`,
    ...is.map((i) => `  let gr${i} = base + ${i === 0 ? "row" : `min(row + ${i}i, ${m - 1}i)`} * ${n}i + col;`),
    ...js.map((j) => `  let gc${j} = base + row * ${n}i + ${j === 0 ? "col" : `min(col + ${j * wx}i, ${n - 1}i)`};`),
    ...all.map(([i, j]) => `  var acc${i}_${j} = 0.0;`),
    `  for (var r = 0i; r < ${k.reduce!.count}i; r++) {`,
    ...is.map((i) => `    let a${i} = lhs(gr${i}, r);`),
    ...js.map((j) => `    let b${j} = rhs(gc${j}, r);`),
    ...all.map(([i, j]) => `    acc${i}_${j} += a${i} * b${j};`),
    "  }",
    // The stores in a loop, not unrolled: each is a bounds check, a per-lane scatter on a CPU adapter and the
    // inlined epilogue, which unrolled took lavapipe seconds to compile per kernel.
    `  let accs = array<f32, ${rows * cols}>(${all.map(([i, j]) => `acc${i}_${j}`).join(", ")});`,
    `  for (var t = 0i; t < ${rows * cols}i; t++) {`,
    `    let i = t / ${cols}i;`,
    `    let j = t % ${cols}i * ${wx}i;`,
    `    if (row + i < ${m}i && col + j < ${n}i) {`,
    `      let g = base + (row + i) * ${n}i + col + j;`,
    "      out[g] = result(g, accs[t]);",
    "    }",
    "  }",
    "}",
  );
  return { code: lines.join("\n") + "\n", workgroups: grid(groups) };
}
