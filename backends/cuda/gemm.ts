// A tiled kernel (compiler/kernel/ir.ts, Tile: a batch of m × n matrices, each output a sum over r of lhs · rhs)
// as a tensor-core implicit GEMM: a block of 128 threads computes a BM × BN block of one matrix; for each slice of
// BK terms it stages the lhs factors of its rows and the rhs factors of its columns in shared memory (a fused
// prologue, such as an upsample, a bias or a concatenation, runs once per staged element, not once per
// multiply-add), and each warp multiplies them with `mma.sync` m16n8k8 TF32 into fp32 accumulators
// (ulc_mma_tf32 in ulc_cuda.cuh; emulated lane by lane on the CPU). The epilogue runs once per output.
//
// The factors must already be TF32 values: a Program lowered with precision tf32 reads every contraction's
// operands through round_tf32 (compiler/passes/precision.ts), so the reference interpreter computes the same
// products exactly and only the order of the fp32 sums differs.
import { tileFactors, type Kernel } from "../../compiler/kernel/ir.js";
import { renderSx } from "../c-like/expr.js";
import { CPP as CUDA, STORAGE } from "../native/dialect.js";

const THREADS = 128;
/** Threads per block, and terms staged per slice (two m16n8k8 steps). */
export const GEMM_THREADS = THREADS;
export const BK = 16;

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

export interface GemmPlan {
  readonly bm: number;
  readonly bn: number;
  readonly fm: number;
  readonly warpCols: number;
  /** Blocks of outputs: matrices × row blocks × column blocks. */
  readonly tiles: number;
  /** Blocks per tile, each summing `termsPerSplit` of the terms (split-K); 1 when the tiles fill the GPU. */
  readonly splits: number;
  readonly termsPerSplit: number;
}

/**
 * How a tiled kernel runs. A GEMM with few output blocks and long sums (a weight gradient: 32 × 288 outputs, 65,536
 * terms) would leave most SMs idle, so its terms are split among blocks, at least 8 slices each, until there are
 * about two blocks per SM; the last block of a tile to finish sums the partial sums in split order (so the result
 * does not depend on timing) and runs the epilogue.
 */
export function gemmPlan(k: Kernel): GemmPlan {
  const { m, n } = k.tile!;
  const block = gemmBlock(m);
  const tiles = (k.size / (m * n)) * Math.ceil(m / block.bm) * Math.ceil(n / block.bn);
  const slices = Math.ceil(k.reduce!.count / BK);
  const wanted = tiles >= SPLIT_TARGET ? 1 : Math.max(1, Math.min(Math.ceil(SPLIT_TARGET / tiles), Math.floor(slices / 8)));
  const perSplit = Math.ceil(slices / wanted);
  return { ...block, tiles, splits: Math.ceil(slices / perSplit), termsPerSplit: perSplit * BK };
}

/**
 * The kernel: declarations before its `__global__` line (a split GEMM's partial sums and arrival counters, in
 * device memory), its body after its first lines (signature, {seed, step}), and its launch shape.
 */
export function renderGemmCuda(k: Kernel, name: string): { declarations: string[]; lines: string[]; grid: number; block: number } {
  const { m, n } = k.tile!;
  const count = k.reduce!.count;
  const { lhs, rhs } = tileFactors(k);
  const inputs = k.inputs.map((i) => i.dtype);
  const { bm, bn, fm, warpCols, tiles, splits, termsPerSplit } = gemmPlan(k);
  const rowBlocks = Math.ceil(m / bm), colBlocks = Math.ceil(n / bn);
  const split = splits > 1;
  const [partials, arrivals] = [`${name}_partials`, `${name}_arrivals`];
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
    `  __shared__ float As[${bm}][${BK + 4}];`,
    `  __shared__ float Bs[${BK}][${bn + 8}];`,
    "  const int tid = (int)threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;",
    // Block w sums split w % splits of tile w / splits, which covers rows block (tile / colBlocks) % rowBlocks and
    // columns block tile % colBlocks of matrix tile / (rowBlocks · colBlocks).
    `  const int tile = (int)blockIdx.x / ${splits}, begin = (int)blockIdx.x % ${splits} * ${termsPerSplit}, end = ulc_min(begin + ${termsPerSplit}, ${count});`,
    `  const int base = tile / ${rowBlocks * colBlocks} * ${m * n}, row0 = tile / ${colBlocks} % ${rowBlocks} * ${bm}, col0 = tile % ${colBlocks} * ${bn};`,
    `  const int wrow = warp / ${warpCols} * ${16 * fm}, wcol = warp % ${warpCols} * 32;`,
    `  float acc[${fm}][4][4] = {};`,
    `  for (int k0 = begin; k0 < end; k0 += ${BK}) {`,
    // Out-of-range rows, columns and terms stage zeros: they add nothing, and their outputs are never stored.
    `    ULC_NO_UNROLL for (int e = tid; e < ${bm * BK}; e += ${THREADS}) {`,
    `      const int i = e / ${BK}, kk = e % ${BK}, row = row0 + i, r = k0 + kk;`,
    `      As[i][kk] = row < ${m} && r < end ? lhs(base + row * ${n}, r) : 0.0f;`,
    "    }",
    `    ULC_NO_UNROLL for (int e = tid; e < ${BK * bn}; e += ${THREADS}) {`,
    `      const int kk = e / ${bn}, j = e % ${bn}, col = col0 + j, r = k0 + kk;`,
    `      Bs[kk][j] = col < ${n} && r < end ? rhs(base + col, r) : 0.0f;`,
    "    }",
    "    __syncthreads();",
    `    ULC_UNROLL for (int ks = 0; ks < ${BK}; ks += 8) {`,
    `      float a[${fm}][4], b[4][2];`,
    `      ULC_UNROLL for (int f = 0; f < ${fm}; ++f) {`,
    "        const int i = wrow + f * 16 + g;",
    "        a[f][0] = As[i][ks + t]; a[f][1] = As[i + 8][ks + t]; a[f][2] = As[i][ks + t + 4]; a[f][3] = As[i + 8][ks + t + 4];",
    "      }",
    "      ULC_UNROLL for (int f = 0; f < 4; ++f) {",
    "        const int j = wcol + f * 8 + g;",
    "        b[f][0] = Bs[ks + t][j]; b[f][1] = Bs[ks + t + 4][j];",
    "      }",
    `      ULC_UNROLL for (int i = 0; i < ${fm}; ++i)`,
    "        ULC_UNROLL for (int j = 0; j < 4; ++j) ulc_mma_tf32(acc[i][j], a[i], b[j]);",
    "    }",
    "    __syncthreads();",
    "  }",
    ...(split
      ? [
          // Each split stores its partial sums; the tile's last block to arrive adds them up in split order.
          `  float* const mine = ${partials} + (size_t)blockIdx.x * ${bm * bn};`,
          ...eachAccumulator([`mine[i0 * ${bn} + j0] = acc[i][j][q];`]),
          "  __shared__ bool last;",
          "  __threadfence();",
          "  __syncthreads();",
          `  if (tid == 0) last = atomicAdd(&${arrivals}[tile], 1u) == ${splits - 1}u;`,
          "  __syncthreads();",
          "  if (!last) return;",
          "  __threadfence();",
          `  const volatile float* const all = ${partials} + (size_t)tile * ${splits * bm * bn};`,
          ...eachAccumulator([`float sum = 0.0f;`, `for (int s = 0; s < ${splits}; ++s) sum += all[s * ${bm * bn} + i0 * ${bn} + j0];`, "acc[i][j][q] = sum;"]),
          // Ready for the next launch (a CUDA Graph's replay).
          `  if (tid == 0) ${arrivals}[tile] = 0u;`,
        ]
      : []),
    ...eachAccumulator([
      "const int row = row0 + i0, col = col0 + j0;",
      `if (row < ${m} && col < ${n}) {`,
      `  const int gid = base + row * ${n} + col;`,
      "  out[gid] = result(gid, acc[i][j][q]);",
      "}",
    ]),
  ];
  const declarations = split ? [`__device__ float ${partials}[${tiles * splits * bm * bn}];`, `__device__ unsigned ${arrivals}[${tiles}];`] : [];
  return { declarations, lines, grid: tiles * splits, block: THREADS };
}
