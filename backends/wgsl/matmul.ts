// The matmul kernel skeleton: C[b] = A[b] · B[b], f32, row-major, rendered from templates/matmul.wgsl.hbs.
//
// The kernel is register-blocked: each invocation accumulates a tile of `rowsPerThread` rows × `vec4Cols`
// vec4s of columns of C in registers, 4 steps of k at a time (a vec4 of A along k times four vec4 rows of B).
// Three ways to feed it:
//  - direct (`shared: false`): A and B are read straight from storage buffers; no barriers.
//  - shared (`shared: true`): the classic GPU kernel: tiles of A and B are staged in workgroup memory
//    (`tileK` deep), then every invocation reads its operands from there.
//  - texture (`operands: "texture"`): A and B are first packed into rgba32float textures (pack-texture.wgsl.hbs,
//    zero-padded to multiples of 4) and the direct kernel reads texels. On llvmpipe (Mesa 25.0) this is the
//    fastest by far: a storage-buffer load at an address that differs between invocations becomes a loop over
//    the SIMD lanes with a bounds check and a branch per element, while a texel fetch is vectorised.
// Which is fastest depends on the device, so the runtime tunes the tile per adapter (runtime/webgpu/matmul.ts,
// `tuneMatmul`).
//
// Shapes and batch strides are uniforms, so one pipeline serves every size. A buffer tile has two pipelines:
// the vec4 one (16-byte loads and stores; needs N and K to be multiples of 4) and a scalar-load one for other
// sizes; a texture tile has one for C stored as vec4 (N a multiple of 4) and one storing scalars. Edges (M, N,
// K not multiples of the tile) are handled everywhere: out-of-range rows and columns re-read the last valid one
// in the direct kernels (no branch in the inner loop), read zeros in the shared one and in the padded textures,
// and only what lies inside C is stored.
import { renderTemplate } from "./templates.js";

export interface MatmulTile {
  /** Rows of C per invocation. */
  rowsPerThread: number;
  /** vec4s of columns of C per invocation (4 × this many columns). */
  vec4Cols: number;
  /** Workgroup size: [x along columns, y along rows]. */
  workgroup: readonly [number, number];
  /** Stage tiles of A and B in workgroup memory. */
  shared: boolean;
  /** Depth of the staged tiles (shared only): a multiple of 4. */
  tileK?: number;
  /** Where the kernel reads A and B: storage buffers (default) or rgba32float textures packed first (direct only). */
  operands?: "buffer" | "texture";
}

export interface MatmulKernelSpec extends MatmulTile {
  /** vec4 loads (buffer operands) and stores: only for N % 4 === 0 and K % 4 === 0 (`canUseVec4`); texture
   * operands need only N % 4 === 0, for C. */
  vec4: boolean;
}

/** One matmul problem: C[b] = A[b] · B[b] for b < batch; strides are in elements (0 broadcasts an operand). */
export interface MatmulProblem {
  M: number;
  N: number;
  K: number;
  batch?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
}

/** A tile when nothing has been tuned: the register-blocked direct kernel (4 rows × 1 vec4 per invocation). */
export const DEFAULT_MATMUL_TILE: MatmulTile = { rowsPerThread: 4, vec4Cols: 1, workgroup: [16, 16], shared: false };

/**
 * The tiles `tuneMatmul` tries: register tiles from 4 × 4 to 16 × 16 elements per invocation, fed directly from
 * buffers, through workgroup memory (the classic GPU kernel, as in TF.js), or through textures.
 */
export const MATMUL_CANDIDATES: readonly MatmulTile[] = [
  { rowsPerThread: 4, vec4Cols: 1, workgroup: [16, 16], shared: false },
  { rowsPerThread: 8, vec4Cols: 1, workgroup: [8, 8], shared: false },
  { rowsPerThread: 4, vec4Cols: 1, workgroup: [16, 16], shared: true, tileK: 16 },
  { rowsPerThread: 4, vec4Cols: 2, workgroup: [8, 16], shared: true, tileK: 32 },
  { rowsPerThread: 4, vec4Cols: 1, workgroup: [16, 16], shared: false, operands: "texture" },
  { rowsPerThread: 8, vec4Cols: 2, workgroup: [8, 8], shared: false, operands: "texture" },
  { rowsPerThread: 16, vec4Cols: 4, workgroup: [8, 4], shared: false, operands: "texture" },
  { rowsPerThread: 8, vec4Cols: 4, workgroup: [8, 4], shared: false, operands: "texture" },
];

export const MATMUL_TEMPLATE = "matmul.wgsl.hbs";
export const PACK_TEMPLATE = "pack-texture.wgsl.hbs";
/** Workgroup size of the pack kernel: [texels along a row, rows]. */
export const PACK_WORKGROUP: readonly [number, number] = [16, 4];

/** The device limits a tile must fit (WebGPU's defaults are the guaranteed minimums). */
export interface TileLimits {
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupStorageSize: number;
}

/** Texture limits for `operands: "texture"` (beyond them the runtime falls back to buffer operands). */
export interface TextureLimits {
  maxTextureDimension2D: number;
  maxTextureArrayLayers: number;
}

export function canUseVec4(N: number, K: number): boolean {
  return N % 4 === 0 && K % 4 === 0;
}

/** A short name for tables: "direct 4x1v4 wg16x16", "shared 4x1v4 wg16x16 k16", "texture 16x4v4 wg8x4". */
export function tileName(tile: MatmulTile): string {
  const base = `${tile.rowsPerThread}x${tile.vec4Cols}v4 wg${tile.workgroup[0]}x${tile.workgroup[1]}`;
  if (tile.shared) return `shared ${base} k${tile.tileK ?? 16}`;
  return tile.operands === "texture" ? `texture ${base}` : `direct ${base}`;
}

/** Rows × columns of C one workgroup computes. */
export function workgroupTile(tile: MatmulTile): { rows: number; cols: number } {
  return { rows: tile.rowsPerThread * tile.workgroup[1], cols: 4 * tile.vec4Cols * tile.workgroup[0] };
}

/** Bytes of workgroup memory the tile uses (0 for direct kernels). */
export function workgroupBytes(tile: MatmulTile): number {
  if (!tile.shared) return 0;
  const { rows, cols } = workgroupTile(tile);
  const k = tile.tileK ?? 16;
  return 4 * (rows * k + k * cols);
}

/** The textures `operands: "texture"` packs A and B into: [width in texels, height, layers]. */
export function textureShapes(problem: MatmulProblem): { a: [number, number, number]; b: [number, number, number] } {
  const u = matmulUniforms(problem);
  const batch = u[3]!;
  const k4 = Math.ceil(problem.K / 4);
  return {
    a: [Math.max(1, k4), Math.max(1, problem.M), u[4] === 0 ? 1 : batch],
    b: [Math.max(1, Math.ceil(problem.N / 4)), Math.max(4, 4 * k4), u[5] === 0 ? 1 : batch],
  };
}

/** Why texture operands cannot serve `problem` on a device with `limits` (empty when they can). */
export function textureProblems(problem: MatmulProblem, limits: TextureLimits): string[] {
  const { a, b } = textureShapes(problem);
  const problems: string[] = [];
  const max = limits.maxTextureDimension2D;
  if (Math.max(a[0], a[1], b[0], b[1]) > max) problems.push(`a texture side exceeds maxTextureDimension2D ${max}`);
  if (Math.max(a[2], b[2]) > limits.maxTextureArrayLayers)
    problems.push(`batch ${Math.max(a[2], b[2])} exceeds maxTextureArrayLayers ${limits.maxTextureArrayLayers}`);
  return problems;
}

/** Why `tile` is not a valid tile on a device with `limits` (empty when it is). */
export function tileProblems(tile: MatmulTile, limits?: TileLimits): string[] {
  const problems: string[] = [];
  const intIn = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!intIn(tile.rowsPerThread, 1, 16)) problems.push(`rowsPerThread ${tile.rowsPerThread} is not an integer in 1..16`);
  if (!intIn(tile.vec4Cols, 1, 8)) problems.push(`vec4Cols ${tile.vec4Cols} is not an integer in 1..8`);
  const [x, y] = tile.workgroup;
  if (!intIn(x, 1, 1024) || !intIn(y, 1, 1024)) problems.push(`workgroup [${x}, ${y}] is not two integers in 1..1024`);
  if (tile.operands !== undefined && tile.operands !== "buffer" && tile.operands !== "texture")
    problems.push(`operands '${String(tile.operands)}' is not "buffer" or "texture"`);
  if (tile.shared && tile.operands === "texture") problems.push("texture operands apply only to direct (not shared) tiles");
  if (tile.shared) {
    const k = tile.tileK ?? 16;
    if (!intIn(k, 4, 256) || k % 4 !== 0) problems.push(`tileK ${k} is not a multiple of 4 in 4..256`);
  } else if (tile.tileK !== undefined) problems.push("tileK applies only to shared tiles");
  if (limits !== undefined) {
    if (x * y > limits.maxComputeInvocationsPerWorkgroup)
      problems.push(`workgroup of ${x * y} invocations exceeds maxComputeInvocationsPerWorkgroup ${limits.maxComputeInvocationsPerWorkgroup}`);
    if (x > limits.maxComputeWorkgroupSizeX) problems.push(`workgroup x ${x} exceeds maxComputeWorkgroupSizeX ${limits.maxComputeWorkgroupSizeX}`);
    if (y > limits.maxComputeWorkgroupSizeY) problems.push(`workgroup y ${y} exceeds maxComputeWorkgroupSizeY ${limits.maxComputeWorkgroupSizeY}`);
    const bytes = workgroupBytes(tile);
    if (bytes > limits.maxComputeWorkgroupStorageSize)
      problems.push(`${bytes} bytes of workgroup memory exceed maxComputeWorkgroupStorageSize ${limits.maxComputeWorkgroupStorageSize}`);
  }
  return problems;
}

/** The WGSL source of one matmul kernel (entry point `main`; bindings: 0 uniform dims, 1 A, 2 B, 3 C). */
export function renderMatmul(spec: MatmulKernelSpec): string {
  const problems = tileProblems(spec);
  if (problems.length > 0) throw new Error(`invalid matmul tile (${tileName(spec)}): ${problems.join("; ")}`);
  const TM = spec.rowsPerThread;
  const TN = spec.vec4Cols;
  const [WGX, WGY] = spec.workgroup;
  const BK = spec.tileK ?? 16;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const texture = spec.operands === "texture";
  const view = {
    summary: `${tileName(spec)}, ${texture ? (spec.vec4 ? "vec4 stores" : "scalar stores") : spec.vec4 ? "vec4 loads" : "scalar loads"}`,
    TM,
    TN,
    WGX,
    WGY,
    BM: TM * WGY,
    BN: 4 * TN * WGX,
    BN4: TN * WGX,
    BK,
    threads: WGX * WGY,
    tileASize: (TM * WGY * BK) / 4,
    tileBSize: BK * TN * WGX,
    shared: spec.shared,
    texture,
    direct: !spec.shared && !texture,
    vec4: spec.vec4,
    vec4Buffers: !spec.shared && !texture && spec.vec4,
    scalarBuffers: !spec.shared && !texture && !spec.vec4,
    elem: spec.vec4 ? "vec4<f32>" : "f32",
    cElem: spec.vec4 ? "vec4<f32>" : "f32",
    rows: range(TM).map((r) => ({ r })),
    cols: range(TN).map((c) => ({ c })),
    comps: ["x", "y", "z", "w"].map((comp, e) => ({ e, comp })),
  };
  return renderTemplate(MATMUL_TEMPLATE, view);
}

/** The WGSL source of the kernel that packs a matrix into an rgba32float texture (see `textureShapes`). */
export function renderPack(): string {
  return renderTemplate(PACK_TEMPLATE, { WGX: PACK_WORKGROUP[0], WGY: PACK_WORKGROUP[1] });
}

/** The pack kernel's uniform block: rows, cols, batch stride, texture height. */
export function packUniforms(rows: number, cols: number, stride: number, height: number): Uint32Array {
  return Uint32Array.of(rows, cols, stride, height);
}

/** Workgroups to dispatch for `problem` with `tile`: [columns, rows, batch]. */
export function matmulWorkgroups(tile: MatmulTile, problem: MatmulProblem): [number, number, number] {
  const { rows, cols } = workgroupTile(tile);
  return [Math.ceil(problem.N / cols), Math.ceil(problem.M / rows), problem.batch ?? 1];
}

/** The uniform block `Dims` of the kernel: M, N, K, batch, strideA, strideB, strideC, (padding). */
export function matmulUniforms(problem: MatmulProblem): Uint32Array {
  const { M, N, K } = problem;
  const batch = problem.batch ?? 1;
  return Uint32Array.of(M, N, K, batch, problem.strideA ?? M * K, problem.strideB ?? K * N, problem.strideC ?? M * N, 0);
}
