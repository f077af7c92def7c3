// The matmul kernel skeleton (backends/wgsl/matmul.ts, templates/matmul.wgsl.hbs) run on the machine's WebGPU
// adapter (runtime/webgpu/matmul.ts) against a float64 matmul on the host, for every candidate tile, on sizes
// that are and are not multiples of the tile (1, 7, 33, 257, ...), batched and broadcast; and the tuner.
//
// Tolerance: |C − C64| ≤ 2(K + 1)·u·S elementwise, u = 2^-24, S = Σ_k |A_ik|·|B_kj| (in float64). The kernels
// sum the K products of an element in some order with one rounding per fused multiply-add (or two for a
// multiply then an add), so the error is at most γ_K·S with γ_K = K·u / (1 − K·u) (Higham, Accuracy and
// Stability, §3.1), plus the padding zeros' exact terms; 2(K + 1)·u·S covers γ_K with a factor 2 to spare for
// a separate multiply and add. The bound is absolute in S, so cancellation does not loosen it, and a wrong
// index (an element read from the wrong place) is off by O(S), far above it.
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { afterAll, describe, expect, test } from "vitest";
import {
  DEFAULT_MATMUL_TILE,
  MATMUL_CANDIDATES,
  renderMatmul,
  tileName,
  tileProblems,
  type MatmulProblem,
  type MatmulTile,
} from "../backends/wgsl/matmul.js";
import { createStorageBuffer } from "../runtime/webgpu/buffers.js";
import type { WebGpu } from "../runtime/webgpu/device.js";
import { matmulF32, matmulTuningKey, prepareMatmul, tuneMatmul, vec4Applies, type TuningStore } from "../runtime/webgpu/matmul.js";
import { mulberry32 } from "./support/prng.js";
import { testDevice } from "./support/webgpu.js";

const U = 2 ** -24;

function randomMatrix(length: number, rng: () => number): Float32Array {
  return Float32Array.from({ length }, () => Math.fround(rng() * 2 - 1));
}

/** C = A · B in float64, with S = |A| · |B| for the tolerance. */
function reference(a: Float32Array, b: Float32Array, p: Required<MatmulProblem>): { c: Float64Array; s: Float64Array } {
  const { M, N, K, batch, strideA, strideB, strideC } = p;
  const length = batch === 0 ? 0 : (batch - 1) * strideC + M * N;
  const c = new Float64Array(length);
  const s = new Float64Array(length);
  for (let z = 0; z < batch; z++)
    for (let i = 0; i < M; i++)
      for (let k = 0; k < K; k++) {
        const x = a[z * strideA + i * K + k]!;
        for (let j = 0; j < N; j++) {
          const y = b[z * strideB + k * N + j]!;
          c[z * strideC + i * N + j]! += x * y;
          s[z * strideC + i * N + j]! += Math.abs(x * y);
        }
      }
  return { c, s };
}

/** Runs `problem` on the device with `tile`; returns the worst error relative to the tolerance (≤ 1 passes). */
async function check(device: GPUDevice, tile: MatmulTile, problem: MatmulProblem, seed: number): Promise<number> {
  const rng = mulberry32(seed);
  const batch = problem.batch ?? 1;
  const p = {
    batch,
    strideA: problem.M * problem.K,
    strideB: problem.K * problem.N,
    strideC: problem.M * problem.N,
    ...problem,
  };
  const a = randomMatrix(Math.max(1, (batch - 1) * p.strideA + p.M * p.K), rng);
  const b = randomMatrix(Math.max(1, (batch - 1) * p.strideB + p.K * p.N), rng);
  const got = await matmulF32(device, a, b, p, tile);
  const { c, s } = reference(a, b, p);
  expect(got.length).toBe(c.length);
  let worst = 0;
  for (let i = 0; i < c.length; i++) {
    const tolerance = 2 * (p.K + 1) * U * s[i]!;
    const err = Math.abs(got[i]! - c[i]!);
    if (!(err <= tolerance)) return Infinity; // NaN too
    if (tolerance > 0) worst = Math.max(worst, err / tolerance);
  }
  return worst;
}

const td = await testDevice();

// The default tile and every candidate, once each.
const TILES: readonly MatmulTile[] = [
  ...new Map([DEFAULT_MATMUL_TILE, ...MATMUL_CANDIDATES].map((t) => [tileName(t), t] as const)).values(),
];

describe("matmul kernel rendering", () => {
  test("every candidate renders, for vec4 and scalar access", () => {
    for (const tile of TILES) {
      expect(tileProblems(tile)).toEqual([]);
      for (const vec4 of [true, false]) {
        const code = renderMatmul({ ...tile, vec4 });
        expect(code).toContain("@compute @workgroup_size(");
        expect(code).not.toMatch(/\{\{|\}\}/);
      }
    }
  });

  test("invalid tiles are refused with the reason", () => {
    expect(() => renderMatmul({ rowsPerThread: 0, vec4Cols: 1, workgroup: [8, 8], shared: false, vec4: true })).toThrow(
      /rowsPerThread 0 is not an integer in 1\.\.16/,
    );
    expect(() => renderMatmul({ rowsPerThread: 4, vec4Cols: 1, workgroup: [8, 8], shared: true, tileK: 6, vec4: true })).toThrow(
      /tileK 6 is not a multiple of 4/,
    );
    const limits = {
      maxComputeInvocationsPerWorkgroup: 256,
      maxComputeWorkgroupSizeX: 256,
      maxComputeWorkgroupSizeY: 256,
      maxComputeWorkgroupStorageSize: 16384,
    };
    expect(tileProblems({ rowsPerThread: 4, vec4Cols: 1, workgroup: [64, 32], shared: true, operands: "texture" }, limits)).toEqual([
      "texture operands apply only to direct (not shared) tiles",
      "workgroup of 2048 invocations exceeds maxComputeInvocationsPerWorkgroup 256",
      "24576 bytes of workgroup memory exceed maxComputeWorkgroupStorageSize 16384",
    ]);
  });

  test("the embedded templates are current (scripts/embed-templates.mjs --check)", () => {
    const r = spawnSync(process.execPath, ["scripts/embed-templates.mjs", "--check"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

describe.skipIf(td.gpu === undefined)("matmul on WebGPU", () => {
  // Collected even when skipped: nothing here may touch the device outside the tests.
  const gpu = td.gpu as WebGpu;
  const device = gpu?.device as GPUDevice;
  afterAll(() => device?.destroy());

  // Sizes that are and are not multiples of 4 and of the tiles, including 1 and sizes past one tile.
  const SHAPES: readonly MatmulProblem[] = [
    { M: 1, N: 1, K: 1 },
    { M: 7, N: 33, K: 5 },
    { M: 33, N: 7, K: 257 },
    { M: 64, N: 64, K: 64 },
    { M: 65, N: 68, K: 12 },
    { M: 257, N: 36, K: 33 },
    { M: 3, N: 8, K: 0 }, // an empty sum: C = 0
    { M: 5, N: 12, K: 9, batch: 3 },
    { M: 6, N: 7, K: 10, batch: 2, strideA: 0 }, // A broadcast over the batch
    { M: 9, N: 16, K: 8, batch: 3, strideB: 0 }, // B broadcast (a weight matrix)
  ];

  for (const tile of TILES) {
    test(`${tileName(tile)}: fixed shapes`, async () => {
      for (const [i, shape] of SHAPES.entries()) {
        const worst = await check(device, tile, shape, 1000 + i);
        expect(worst, `${JSON.stringify(shape)} (vec4: ${vec4Applies(shape, tile)})`).toBeLessThanOrEqual(1);
      }
    });

    test(`${tileName(tile)}: random shapes`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            M: fc.integer({ min: 1, max: 70 }),
            N: fc.integer({ min: 1, max: 70 }),
            K: fc.integer({ min: 1, max: 70 }),
            batch: fc.integer({ min: 1, max: 3 }),
            broadcast: fc.constantFrom("none", "A", "B"),
            aligned: fc.boolean(),
            seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          }),
          async ({ M, N, K, batch, broadcast, aligned, seed }) => {
            // Half the cases are rounded up to multiples of 4, so the vec4 pipeline is exercised as often.
            const r4 = (n: number) => (aligned ? Math.ceil(n / 4) * 4 : n);
            const shape: MatmulProblem = { M, N: r4(N), K: r4(K), batch };
            if (broadcast === "A") shape.strideA = 0;
            if (broadcast === "B") shape.strideB = 0;
            const worst = await check(device, tile, shape, seed);
            expect(worst, JSON.stringify(shape)).toBeLessThanOrEqual(1);
          },
        ),
        { seed: 4, numRuns: 12 },
      );
    });
  }

  test("a dispatch beyond maxComputeWorkgroupsPerDimension is a clear error, before any GPU work", async () => {
    const tiny = { a: createStorageBuffer(device, 4), b: createStorageBuffer(device, 4), c: createStorageBuffer(device, 4) };
    await expect(prepareMatmul(device, { M: 1, N: 2 ** 30, K: 1 }, tiny)).rejects.toThrow(
      /workgroups exceed maxComputeWorkgroupsPerDimension \(\d+\); use a larger tile/,
    );
    await expect(prepareMatmul(device, { M: 2.5, N: 1, K: 1 }, tiny)).rejects.toThrow(/M = 2\.5 is not an integer/);
    for (const b of Object.values(tiny)) b.destroy();
  });

  test("a tile the device cannot run is refused with the reason", async () => {
    const big: MatmulTile = { rowsPerThread: 4, vec4Cols: 1, workgroup: [1024, 1024], shared: false };
    await expect(matmulF32(device, new Float32Array(1), new Float32Array(1), { M: 1, N: 1, K: 1 }, big)).rejects.toThrow(
      /does not fit this device: workgroup of 1048576 invocations exceeds maxComputeInvocationsPerWorkgroup/,
    );
  });

  test("tuneMatmul picks a candidate, caches it per adapter, and uses the store", async () => {
    const candidates = [MATMUL_CANDIDATES[0]!, MATMUL_CANDIDATES[MATMUL_CANDIDATES.length - 1]!];
    const saved = new Map<string, MatmulTile>();
    const store: TuningStore = { get: (k) => saved.get(k), set: (k, t) => void saved.set(k, t) };
    const first = tuneMatmul(gpu, { size: 64, candidates, runs: 1, store });
    expect(tuneMatmul(gpu, { size: 64, candidates, runs: 1, store })).toBe(first); // one tuning per adapter and size
    const tuning = await first;
    expect(tuning.adapter).toBe(gpu.adapterInfo.name);
    expect(candidates).toContain(tuning.tile);
    expect(tuning.timings.map((t) => t.name).sort()).toEqual(candidates.map(tileName).sort());
    for (const t of tuning.timings) expect(t.ms).toBeGreaterThan(0);
    expect(tuning.timings[0]!.tile).toBe(tuning.tile); // fastest first
    expect([...saved.values()]).toEqual([tuning.tile]);
    // Another process with the same store takes the stored tile without timing anything.
    const other = new Map([[matmulTuningKey(gpu.adapterInfo.name, 48), candidates[1]!]]);
    const fromStore = await tuneMatmul(gpu, { size: 48, candidates, runs: 1, store: { get: (k) => other.get(k), set: () => {} } });
    expect(fromStore.tile).toBe(candidates[1]);
    expect(fromStore.timings).toEqual([]);
  });
});
