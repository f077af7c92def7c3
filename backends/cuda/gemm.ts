// A tiled kernel (compiler/kernel/ir.ts, Tile: a batch of m × n matrices, each output a sum over r of lhs · rhs)
// as a tensor-core implicit GEMM: a block of 128 threads computes a BM × BN block of one matrix; for each slice of
// BK terms it stages the lhs factors of its rows and the rhs factors of its columns in shared memory (a fused
// prologue, such as an upsample, a bias or a concatenation, runs once per staged element, not once per
// multiply-add), and each warp multiplies them with `mma.sync` into fp32 accumulators: in a tf32 Program two
// m16n8k8 TF32 steps per slice (ulc_mma_tf32 in ulc_cuda.cuh), in a bf16 Program one m16n8k16 BF16 step
// (ulc_mma_bf16); both emulated lane by lane on the CPU. The epilogue runs once per output.
//
// The factors must already be values of the Program's precision: a Program lowered with precision tf32 (bf16)
// reads every contraction's operands through round_tf32 (round_bf16; compiler/passes/precision.ts), so the
// reference interpreter computes the same products exactly and only the order of the fp32 sums differs. Staging
// stays in float either way; a bf16 fragment register packs two staged floats' high halves, which is exact.
import { tileFactors, type Kernel, type ParityClasses } from "../../compiler/kernel/ir.js";
import type { ContractionPrecision } from "../../compiler/passes/precision.js";
import { renderSx } from "../c-like/expr.js";
import { CUDA, STORAGE } from "../native/dialect.js";

/** Threads per block, and terms staged per slice (two m16n8k8 steps, or one m16n8k16). */
export const GEMM_THREADS = 128;
export const BK = 16;

/**
 * The mma.sync a precision's GEMM issues. Both take A 16 × k (row) and B k × 8 (column) as four and two .b32
 * registers a lane, and keep D 16 × 8 in four fp32 accumulators (row g, columns 2t and 2t + 1, then row g + 8);
 * a register holds k / 8 operands, the lower-numbered one in its low bits (PTX ISA, "Matrix Fragments for
 * mma.m16n8k8" and "Matrix Fragments for mma.m16n8k16 with floating point type"; g = lane / 4, t = lane % 4):
 *  - m16n8k8 TF32: a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4], a3 = A[g+8][t+4]; b0 = B[t][g], b1 = B[t+4][g];
 *  - m16n8k16 BF16: a0 = A[g][2t, 2t+1], a1 = A[g+8][2t, 2t+1], a2 = A[g][2t+8, 2t+9], a3 = A[g+8][2t+8, 2t+9];
 *    b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g].
 * So register r of A reads row g + 8·(r % 2) and register r of B (or A's r / 2) the k-block r of k / 2 terms,
 * element h of a register term (k / 8)·t + h of that block. The rows of the staged tiles are padded so a warp's
 * fragment reads spread over the 32 banks: for TF32 A's 8 rows × 4 terms at a stride of 20 words and B's 4 terms ×
 * 8 columns at 72 or 136; for BF16 B's rows 2t (then 2t + 1, 2t + 8, 2t + 9) at a stride of 68 or 132 words
 * (2·68 ≡ 8 mod 32). A BF16 A register reads two adjacent terms of a row: at a stride of 24 words a half-warp's
 * 8-byte pairs cover the 32 banks once, but nvcc 12 loads the two halves apart (a u16 and a u32 load), and 8 rows
 * × 4 even offsets cannot fill 32 banks at any stride, so those reads conflict two ways (loading pairs as float2
 * from 8-byte-aligned tiles would not: untried without a GPU to time it).
 */
interface Mma {
  readonly fn: string;
  /** Terms per mma. */
  readonly k: number;
  /** Words of padding of a staged row of A and of B. */
  readonly padA: number;
  readonly padB: number;
}

const MMA: { readonly [P in Exclude<ContractionPrecision, "fp32">]: Mma } = {
  tf32: { fn: "ulc_mma_tf32", k: 8, padA: 4, padB: 8 },
  bf16: { fn: "ulc_mma_bf16", k: 16, padA: 8, padB: 4 },
};

/**
 * The statements that read one mma's fragments at slice offset `ks`: a[f][r] for the warp's fm row tiles
 * (row i = wrow + 16·f + g) and b[f][r] for its four column tiles (column j = wcol + 8·f + g), as Mma lays them out.
 */
function fragmentReads(mma: Mma, fm: number): string[] {
  const per = mma.k / 8;
  const term = (block: number, h: number) => {
    const offset = block * (mma.k / 2) + h;
    return `ks + ${per > 1 ? `${per} * t` : "t"}${offset ? ` + ${offset}` : ""}`;
  };
  // A register: its `per` operands, packed two bfloat16 to a .b32 (ulc_bf16x2) when there are two.
  const register = (at: (term: string) => string, block: number) => {
    const values = Array.from({ length: per }, (_, h) => at(term(block, h)));
    return per > 1 ? `ulc_bf16x2(${values.join(", ")})` : values[0]!;
  };
  const a = [0, 1, 2, 3].map((r) => `a[f][${r}] = ${register((k) => `As[i${r % 2 ? " + 8" : ""}][${k}]`, r >> 1)};`);
  const b = [0, 1].map((r) => `b[f][${r}] = ${register((k) => `Bs[${k}][j]`, r)};`);
  return [
    `${per > 1 ? "unsigned" : "float"} a[${fm}][4], b[4][2];`,
    `ULC_UNROLL for (int f = 0; f < ${fm}; ++f) {`,
    "  const int i = wrow + f * 16 + g;",
    `  ${a.join(" ")}`,
    "}",
    "ULC_UNROLL for (int f = 0; f < 4; ++f) {",
    "  const int j = wcol + f * 8 + g;",
    `  ${b.join(" ")}`,
    "}",
  ];
}

/**
 * The block's shape for an m × n matrix: each warp computes 16·fm rows × 32 columns (fm m16 tiles by four n8
 * tiles); four warps stack 2 × 2 for 64 × 64 blocks, or side by side (32 or 16 rows × 128 columns) when the
 * matrix has few rows, as a convolution's output channels often are.
 */
function gemmBlock(m: number): { bm: number; bn: number; fm: number; warpCols: number } {
  if (m > 32) return { bm: 64, bn: 64, fm: 2, warpCols: 2 };
  if (m > 16) return { bm: 32, bn: 128, fm: 2, warpCols: 4 };
  return { bm: 16, bn: 128, fm: 1, warpCols: 4 };
}

/** SMs of the GPU the split is sized for (an H100's 132), and the blocks a split-K GEMM aims at: two per SM. */
const SMS = 132;
const SPLIT_TARGET = 2 * SMS;

/** One parity class of a strided input gradient's GEMM (or the whole matrix): its columns, blocks and terms. */
export interface GemmClass {
  readonly columns: number;
  readonly columnBlocks: number;
  readonly terms: number;
}

export interface GemmPlan {
  readonly bm: number;
  readonly bn: number;
  readonly fm: number;
  readonly warpCols: number;
  /** Each matrix's column classes (one, or a strided input gradient's s² parity classes), in block order. */
  readonly classes: readonly GemmClass[];
  /** Blocks of outputs: matrices × row blocks × every class's column blocks. */
  readonly tiles: number;
  /** Blocks per tile, each summing `termsPerSplit` of the terms (split-K); 1 when the tiles fill the GPU. */
  readonly splits: number;
  readonly termsPerSplit: number;
}

/** Parity class (a, b)'s numbers: its output rows h ≡ a − p (mod s), from h0, meet taps a, a + s, ... below KH. */
function parityClass(p: ParityClasses, a: number, b: number, bn: number): GemmClass {
  const { stride: s, padding, height, width, taps, groupOutputs } = p;
  const first = (x: number) => (((x - padding) % s) + s) % s;
  const count = (from: number, size: number) => Math.max(0, Math.ceil((size - from) / s));
  const columns = count(first(a), height) * count(first(b), width);
  return { columns, columnBlocks: Math.ceil(columns / bn), terms: groupOutputs * count(a, taps[0]) * count(b, taps[1]) };
}

/**
 * How a tiled kernel runs. A GEMM with few output blocks and long sums (a weight gradient: 32 × 288 outputs, 65,536
 * terms) would leave most SMs idle, so its terms are split among blocks, at least 8 slices each, until there are
 * about two blocks per SM; the last block of a tile to finish sums the partial sums in split order (so the result
 * does not depend on timing) and runs the epilogue. A strided input gradient runs each parity class of its
 * columns with only the taps that class meets (never split: it has blocks enough).
 */
export function gemmPlan(k: Kernel): GemmPlan {
  const { m, n, parity } = k.tile!;
  const block = gemmBlock(m);
  const s = parity?.stride ?? 1;
  const classes = parity
    ? Array.from({ length: s * s }, (_, c) => parityClass(parity, Math.floor(c / s), c % s, block.bn))
    : [{ columns: n, columnBlocks: Math.ceil(n / block.bn), terms: k.reduce!.count }];
  const tiles = (k.size / (m * n)) * Math.ceil(m / block.bm) * classes.reduce((t, c) => t + c.columnBlocks, 0);
  const slices = Math.ceil(k.reduce!.count / BK);
  const wanted = parity || tiles >= SPLIT_TARGET ? 1 : Math.max(1, Math.min(Math.ceil(SPLIT_TARGET / tiles), Math.floor(slices / 8)));
  const perSplit = Math.ceil(slices / wanted);
  return { ...block, classes, tiles, splits: Math.ceil(slices / perSplit), termsPerSplit: perSplit * BK };
}

/**
 * A parity-class GEMM's setup: which class (ta, tb) block `cb` of a matrix falls in, and for that class the first
 * output row and column (h0, w0), its columns per row (nw), its count of terms and the r of the full tap range its
 * term rc stands for: rc counts (og, jh, jw) over the class's own taps, r over ⌈KH/s⌉ × ⌈KW/s⌉ of them.
 */
function paritySetup(p: ParityClasses, bn: number): string[] {
  const { stride: s, padding, height, width, taps, groupOutputs } = p;
  const [JH, JW] = [Math.ceil(taps[0] / s), Math.ceil(taps[1] / s)];
  return [
    "  int ta = 0, tb = 0, h0 = 0, w0 = 0, nw = 0, columns = 0;",
    `  for (int c = 0; c < ${s * s}; ++c) {`,
    `    ta = c / ${s}; tb = c % ${s};`,
    `    h0 = ((ta - ${padding}) % ${s} + ${s}) % ${s}; w0 = ((tb - ${padding}) % ${s} + ${s}) % ${s};`,
    `    nw = ulc_max(0, (${width} - w0 + ${s - 1}) / ${s}); columns = ulc_max(0, (${height} - h0 + ${s - 1}) / ${s}) * nw;`,
    `    const int blocks = (columns + ${bn - 1}) / ${bn};`,
    "    if (cb < blocks) break;",
    "    cb -= blocks;",
    "  }",
    `  const int jh = ulc_max(0, (${taps[0]} - ta + ${s - 1}) / ${s}), jw = ulc_max(0, (${taps[1]} - tb + ${s - 1}) / ${s}), count = ${groupOutputs} * jh * jw;`,
    `  auto term = [=](int rc) { return ((rc / (jh * jw)) * ${JH} + rc / jw % jh) * ${JW} + rc % jw; };`,
    `  auto position = [=](int jc) { return (h0 + ${s} * (jc / nw)) * ${width} + w0 + ${s} * (jc % nw); };`,
  ];
}

/**
 * The kernel: declarations before its `__global__` line (a split GEMM's partial sums and arrival counters, in
 * device memory), its body after its first lines (signature, {seed, step}), and its launch shape; `block` is the
 * block's index (blockIdx.x, or a batch part's own).
 */
export function renderGemmCuda(k: Kernel, name: string, block: string, precision: ContractionPrecision): { declarations: string[]; lines: string[]; grid: number; block: number } {
  if (precision === "fp32") throw new Error(`${k.name} is tiled in an fp32 Program: tensor cores multiply operands rounded to TF32 or bfloat16 (compiler/passes/precision.ts)`);
  const mma = MMA[precision];
  const { m, n, parity } = k.tile!;
  const count = k.reduce!.count;
  const { lhs, rhs } = tileFactors(k);
  const inputs = k.inputs.map((i) => i.dtype);
  const { bm, bn, fm, warpCols, classes, tiles, splits, termsPerSplit } = gemmPlan(k);
  const rowBlocks = Math.ceil(m / bm), colBlocks = classes.reduce((t, c) => t + c.columnBlocks, 0);
  const split = splits > 1;
  const [partials, arrivals] = [`${name}_partials`, `${name}_arrivals`];
  // How a column (within the block's class) becomes an output position, a term r of the class the reduction's,
  // and the row's factor is read: for a parity class at its first position (any of the class would do).
  const position = (column: string) => (parity ? `position(${column})` : column);
  const [term, lhsColumn, columns] = parity ? ["term(r)", `h0 * ${parity.width} + w0`, "columns"] : ["r", "0", String(n)];
  // Accumulator q of tile (i, j) is row g (+8 for q ≥ 2), column 2t (+1 for odd q) of that 16 × 8 tile.
  const eachAccumulator = (body: string[]) => [
    `  ULC_UNROLL for (int i = 0; i < ${fm}; ++i)`,
    "    ULC_UNROLL for (int j = 0; j < 4; ++j)",
    "      ULC_UNROLL for (int q = 0; q < 4; ++q) {",
    "        const int i0 = wrow + i * 16 + g + (q >> 1) * 8, j0 = wcol + j * 8 + 2 * t + (q & 1);",
    ...body.map((l) => `        ${l}`),
    "      }",
  ];
  const lines = [
    `  auto lhs = [=](int gid, int r) -> float { return ${renderSx(lhs, inputs, CUDA)}; };`,
    `  auto rhs = [=](int gid, int r) -> float { return ${renderSx(rhs, inputs, CUDA)}; };`,
    `  auto result = [=](int gid, float acc) -> ${STORAGE[k.dtype]} { return ${renderSx(k.body, inputs, CUDA)}; };`,
    // Padded rows keep a warp's fragment reads (8 rows × 4 terms of A, 4 terms × 8 columns of B) on 32 banks.
    `  __shared__ float As[${bm}][${BK + mma.padA}];`,
    `  __shared__ float Bs[${BK}][${bn + mma.padB}];`,
    "  const int tid = (int)threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;",
    // Block w sums split w % splits of tile w / splits, which covers rows block (tile / colBlocks) % rowBlocks and
    // column block tile % colBlocks (the classes' blocks one after another) of matrix tile / (rowBlocks · colBlocks).
    `  const int tile = (int)${block} / ${splits};`,
    `  const int base = tile / ${rowBlocks * colBlocks} * ${m * n}, row0 = tile / ${colBlocks} % ${rowBlocks} * ${bm};`,
    `  ${parity ? "int" : "const int"} cb = tile % ${colBlocks};`,
    ...(parity ? paritySetup(parity, bn) : [`  const int count = ${count};`]),
    `  const int col0 = cb * ${bn}, begin = (int)${block} % ${splits} * ${termsPerSplit}, end = ulc_min(begin + ${termsPerSplit}, count);`,
    `  const int wrow = warp / ${warpCols} * ${16 * fm}, wcol = warp % ${warpCols} * 32;`,
    `  float acc[${fm}][4][4] = {};`,
    // A thread stages the same term of its rows of A and the same column of B in every slice, so what depends only
    // on the row or the column (a convolution's output position, its channel and tap) is computed once, before
    // the loop; the passes unroll.
    `  const int ak = tid % ${BK}, ai = tid / ${BK}, bj = tid % ${bn}, bk = tid / ${bn}, bcol = col0 + bj;`,
    "  for (int k0 = begin; k0 < end; k0 += " + BK + ") {",
    // Out-of-range rows, columns and terms stage zeros: they add nothing, and their outputs are never stored.
    `    ULC_UNROLL for (int pass = 0; pass < ${(bm * BK) / GEMM_THREADS}; ++pass) {`,
    `      const int i = ai + pass * ${GEMM_THREADS / BK}, row = row0 + i, r = k0 + ak;`,
    `      As[i][ak] = row < ${m} && r < end ? lhs(base + row * ${n} + ${lhsColumn}, ${term}) : 0.0f;`,
    "    }",
    `    ULC_UNROLL for (int pass = 0; pass < ${(BK * bn) / GEMM_THREADS}; ++pass) {`,
    `      const int kk = bk + pass * ${GEMM_THREADS / bn}, r = k0 + kk;`,
    `      Bs[kk][bj] = bcol < ${columns} && r < end ? rhs(base + ${position("bcol")}, ${term}) : 0.0f;`,
    "    }",
    "    __syncthreads();",
    `    ULC_UNROLL for (int ks = 0; ks < ${BK}; ks += ${mma.k}) {`,
    ...fragmentReads(mma, fm).map((l) => `      ${l}`),
    `      ULC_UNROLL for (int i = 0; i < ${fm}; ++i)`,
    `        ULC_UNROLL for (int j = 0; j < 4; ++j) ${mma.fn}(acc[i][j], a[i], b[j]);`,
    "    }",
    "    __syncthreads();",
    "  }",
    ...(split
      ? [
          // Each split stores its partial sums; the tile's last block to arrive adds them up in split order.
          `  float* const mine = ${partials} + (size_t)${block} * ${bm * bn};`,
          ...eachAccumulator([`mine[i0 * ${bn} + j0] = acc[i][j][q];`]),
          "  __shared__ bool last;",
          "  __threadfence();",
          "  __syncthreads();",
          `  if (tid == 0) last = atomicAdd(&${arrivals}[tile], 1u) == ${splits - 1}u;`,
          "  __syncthreads();",
          "  if (!last) return;",
          "  __threadfence();",
          `  const volatile float* const all = ${partials} + (size_t)tile * ${splits * bm * bn};`,
          // Split by split (each output's sum still in split order), so only the accumulators stay live.
          `  ULC_UNROLL for (int i = 0; i < ${fm}; ++i) ULC_UNROLL for (int j = 0; j < 4; ++j) ULC_UNROLL for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;`,
          `  ULC_NO_UNROLL for (int s = 0; s < ${splits}; ++s) {`,
          ...eachAccumulator([`acc[i][j][q] += all[s * ${bm * bn} + i0 * ${bn} + j0];`]).map((l) => `  ${l}`),
          "  }",
          // Ready for the next launch (a CUDA Graph's replay).
          `  if (tid == 0) ${arrivals}[tile] = 0u;`,
        ]
      : []),
    ...eachAccumulator([
      "const int row = row0 + i0, col = col0 + j0;",
      `if (row < ${m} && col < ${columns}) {`,
      `  const int gid = base + row * ${n} + ${position("col")};`,
      "  out[gid] = result(gid, acc[i][j][q]);",
      "}",
    ]),
  ];
  const declarations = split ? [`__device__ float ${partials}[${tiles * splits * bm * bn}];`, `__device__ unsigned ${arrivals}[${tiles}];`] : [];
  return { declarations, lines, grid: tiles * splits, block: GEMM_THREADS };
}
