// The matmul kernel skeleton: C[b] = A[b] · B[b], f32, row-major, rendered from templates/matmul.wgsl.hbs.
//
// The kernel is register-blocked: each invocation accumulates a tile of `rowsPerThread` rows × `vec4Cols`
// vec4s of columns of C in registers. Two ways to feed it, chosen by `shared`:
//  - direct: A and B are read straight from storage buffers, no barriers. When the workgroup is one row of
//    invocations (`workgroup[1] === 1`), A's addresses depend on the workgroup only, which lets drivers such as
//    llvmpipe load them once for all invocations instead of gathering them per invocation.
//  - shared: the classic GPU kernel: tiles of A and B are staged in workgroup memory (`tileK` deep), then
//    every invocation reads its operands from there.
// Which is faster depends on the device (see DESIGN.md §5: on llvmpipe the direct kernel wins by 2×), so the
// runtime tunes the tile per adapter (runtime/webgpu/matmul.ts, `tuneMatmul`).
//
// Shapes and batch strides are uniforms, so one pipeline serves every size. A tile has two pipelines: the
// vec4 one (16-byte loads and stores; needs N and K to be multiples of 4) and a scalar-load one for other
// sizes. Edges (M, N, K not multiples of the tile) are handled in both: out-of-range rows and columns re-read
// the last valid one in the direct kernel (no branch in the inner loop) or read zeros in the shared one, and
// only what lies inside C is stored.
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
}

export interface MatmulKernelSpec extends MatmulTile {
  /** vec4 loads and stores: only for N % 4 === 0 and K % 4 === 0 (`canUseVec4`). */
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

/** A good tile when nothing has been tuned: the register-blocked direct kernel (4 rows × 1 vec4 per invocation). */
export const DEFAULT_MATMUL_TILE: MatmulTile = { rowsPerThread: 4, vec4Cols: 1, workgroup: [64, 1], shared: false };

/** The tiles `tuneMatmul` tries: direct kernels of several register-tile shapes, and classic shared-memory ones. */
export const MATMUL_CANDIDATES: readonly MatmulTile[] = [
  { rowsPerThread: 4, vec4Cols: 1, workgroup: [64, 1], shared: false },
  { rowsPerThread: 8, vec4Cols: 1, workgroup: [64, 1], shared: false },
  { rowsPerThread: 4, vec4Cols: 2, workgroup: [32, 1], shared: false },
  { rowsPerThread: 8, vec4Cols: 2, workgroup: [32, 1], shared: false },
  { rowsPerThread: 4, vec4Cols: 1, workgroup: [16, 16], shared: false },
  { rowsPerThread: 4, vec4Cols: 1, workgroup: [16, 16], shared: true, tileK: 16 },
  { rowsPerThread: 4, vec4Cols: 2, workgroup: [8, 16], shared: true, tileK: 16 },
];

export const MATMUL_TEMPLATE = "matmul.wgsl.hbs";

/** The device limits a tile must fit (WebGPU's defaults are the guaranteed minimums). */
export interface TileLimits {
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupStorageSize: number;
}

export function canUseVec4(N: number, K: number): boolean {
  return N % 4 === 0 && K % 4 === 0;
}

/** A short name for tables: "direct 4x1v4 wg64x1", "shared 4x1v4 wg16x16 k16". */
export function tileName(tile: MatmulTile): string {
  const base = `${tile.rowsPerThread}x${tile.vec4Cols}v4 wg${tile.workgroup[0]}x${tile.workgroup[1]}`;
  return tile.shared ? `shared ${base} k${tile.tileK ?? 16}` : `direct ${base}`;
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

/** Why `tile` is not a valid tile on a device with `limits` (empty when it is). */
export function tileProblems(tile: MatmulTile, limits?: TileLimits): string[] {
  const problems: string[] = [];
  const intIn = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!intIn(tile.rowsPerThread, 1, 16)) problems.push(`rowsPerThread ${tile.rowsPerThread} is not an integer in 1..16`);
  if (!intIn(tile.vec4Cols, 1, 8)) problems.push(`vec4Cols ${tile.vec4Cols} is not an integer in 1..8`);
  const [x, y] = tile.workgroup;
  if (!intIn(x, 1, 1024) || !intIn(y, 1, 1024)) problems.push(`workgroup [${x}, ${y}] is not two integers in 1..1024`);
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
  const view = {
    summary: `${tileName(spec)}, ${spec.vec4 ? "vec4" : "scalar"} loads`,
    TM,
    TN,
    WGX,
    WGY,
    BM: TM * WGY,
    BN: 4 * TN * WGX,
    BN4: TN * WGX,
    BK,
    threads: WGX * WGY,
    tileASize: TM * WGY * BK,
    tileBSize: BK * TN * WGX,
    shared: spec.shared,
    vec4: spec.vec4,
    elem: spec.vec4 ? "vec4<f32>" : "f32",
    uniformRows: WGY === 1,
    rows: range(TM).map((r) => ({ r })),
    cols: range(TN).map((c) => ({ c })),
    comps: ["x", "y", "z", "w"].map((comp, e) => ({ e, comp })),
  };
  return renderTemplate(MATMUL_TEMPLATE, view);
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
