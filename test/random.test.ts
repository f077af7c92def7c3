// Philox-4x32-10 and the IR's random streams (runtime/random.ts): Random123's known-answer vectors, the
// 32-bit-only multiply against BigInt, an independent BigInt Philox, and distribution checks with stated
// tolerances. All streams are deterministic, so the statistical checks are fixed tests, not flaky ones.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { mulhi32, mullo32, philox4x32, randomNormal, randomUniform } from "../runtime/random.js";

const hex = (xs: readonly number[]) => xs.map((x) => x.toString(16).padStart(8, "0")).join(" ");
const u32 = fc.integer({ min: 0, max: 0xffffffff });

/** Philox-4x32-10 with BigInt 64-bit products: an implementation independent of the 16-bit split. */
function philoxBig(counter: readonly number[], key: readonly number[]): number[] {
  const M = 0xffffffffn;
  let [c0, c1, c2, c3] = counter.map(BigInt) as [bigint, bigint, bigint, bigint];
  let [k0, k1] = key.map(BigInt) as [bigint, bigint];
  for (let r = 0; r < 10; r++) {
    const p0 = 0xd2511f53n * c0;
    const p1 = 0xcd9e8d57n * c2;
    [c0, c1, c2, c3] = [(p1 >> 32n) ^ c1 ^ k0, p1 & M, (p0 >> 32n) ^ c3 ^ k1, p0 & M];
    k0 = (k0 + 0x9e3779b9n) & M;
    k1 = (k1 + 0xbb67ae85n) & M;
  }
  return [c0, c1, c2, c3].map(Number);
}

describe("philox4x32-10", () => {
  // Random123 1.x, examples/kat_vectors, lines "philox4x32 10 ...". (The pi-digits answer is
  // d16cfe09 94fdcceb 5001e420 24126ea1; a copy that reads "... 94bdc4a6 7a2ddf22 e0c2da10" is mistaken.)
  test.each([
    [[0, 0, 0, 0], [0, 0], "6627e8d5 e169c58d bc57ac4c 9b00dbd8"],
    [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], "408f276d 41c83b0e a20bc7c6 6d5451fd"],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], "d16cfe09 94fdcceb 5001e420 24126ea1"],
  ] as const)("known answer %#", (counter, key, expected) => {
    expect(hex(philox4x32(counter as [number, number, number, number], key as [number, number]))).toBe(expected);
  });

  test("mulhi32 and mullo32 agree with BigInt on random u32 pairs", () => {
    fc.assert(
      fc.property(u32, u32, (a, b) => {
        const p = BigInt(a) * BigInt(b);
        expect(mulhi32(a, b)).toBe(Number(p >> 32n));
        expect(mullo32(a, b)).toBe(Number(p & 0xffffffffn));
      }),
      { numRuns: 2000, seed: 1 },
    );
    // The extremes, where a carry out of the low word matters most.
    for (const [a, b] of [
      [0xffffffff, 0xffffffff],
      [0xffffffff, 1],
      [0x0000ffff, 0xffff0001],
      [0x8000ffff, 0x8000ffff],
      [0, 0xffffffff],
    ] as const) {
      expect(mulhi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
    }
  });

  test("agrees with a BigInt implementation on random counters and keys", () => {
    fc.assert(
      fc.property(fc.tuple(u32, u32, u32, u32), fc.tuple(u32, u32), (c, k) => {
        expect(philox4x32(c, k)).toEqual(philoxBig(c, k));
      }),
      { numRuns: 300, seed: 2 },
    );
  });

  test("outputs are u32 numbers", () => {
    for (const x of philox4x32([1, 2, 3, 4], [5, 6])) expect(Number.isInteger(x) && x >= 0 && x <= 0xffffffff).toBe(true);
  });
});

describe("random streams", () => {
  const N = 200_000;

  test("the stream definition: element i uses counter [i, key, step, 0] and philox key [seed, 0]", () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 1000 }), (seed, step, key) => {
        const n = 7;
        const u = randomUniform(seed, step, key, n);
        const z = randomNormal(seed, step, key, n);
        for (let i = 0; i < n; i++) {
          const [x0, x1] = philox4x32([i, key, step, 0], [seed, 0]);
          expect(u[i]).toBe((x0 >>> 8) / 2 ** 24);
          const u1 = ((x0 >>> 8) + 1) / 2 ** 24;
          const u2 = (x1 >>> 8) / 2 ** 24;
          expect(z[i]).toBe(Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
        }
      }),
      { numRuns: 50, seed: 3 },
    );
  });

  test("pinned values (a change here changes every backend's random numbers)", () => {
    const u = randomUniform(0, 0, 0, 1);
    // counter [0,0,0,0], key [0,0] -> x0 = 0x6627e8d5.
    expect(u[0]).toBe((0x6627e8d5 >>> 8) / 2 ** 24);
    const z = randomNormal(0, 0, 0, 1);
    expect(z[0]).toBeCloseTo(Math.sqrt(-2 * Math.log(((0x6627e8d5 >>> 8) + 1) / 2 ** 24)) * Math.cos((2 * Math.PI * (0xe169c58d >>> 8)) / 2 ** 24), 15);
  });

  test("seed, step and key are taken mod 2^32", () => {
    expect(randomUniform(-1, 3, 4, 5)).toEqual(randomUniform(0xffffffff, 3, 4, 5));
    expect(randomUniform(1, 2 ** 32 + 3, 4, 5)).toEqual(randomUniform(1, 3, 4, 5));
    expect(randomNormal(1, 3, 2 ** 32 + 4, 5)).toEqual(randomNormal(1, 3, 4, 5));
  });

  test("uniforms lie in [0, 1) on the 2^-24 grid; mean 1/2 ± 0.003, variance 1/12 ± 0.001 over 200k", () => {
    const u = randomUniform(12345, 7, 1, N);
    let s = 0;
    let s2 = 0;
    let min = Infinity;
    let max = -Infinity;
    let offGrid = 0;
    for (const x of u) {
      if (!Number.isInteger(x * 2 ** 24)) offGrid++;
      s += x;
      s2 += x * x;
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
    const mean = s / N;
    const variance = s2 / N - mean * mean;
    // Standard errors: 0.289/sqrt(N) = 6.5e-4 for the mean, 1.7e-4 for the variance; the tolerances are ≥ 4.5σ.
    expect(offGrid).toBe(0);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.003);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.001);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(min).toBeLessThan(1e-4);
    expect(max).toBeGreaterThan(1 - 1e-4);
  });

  test("uniform histogram: chi-square over 100 bins below the 0.999 quantile (148.2 for 99 d.o.f.)", () => {
    const u = randomUniform(99, 0, 3, N);
    const bins = new Array<number>(100).fill(0);
    for (const x of u) bins[Math.floor(x * 100)]!++;
    const expected = N / 100;
    const chi2 = bins.reduce((acc, b) => acc + (b - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(148.2);
  });

  test("normals: finite; mean 0 ± 0.012, variance 1 ± 0.016, kurtosis 3 ± 0.06 over 200k", () => {
    const z = randomNormal(2024, 11, 2, N);
    let s = 0;
    let nonFinite = 0;
    for (const x of z) {
      if (!Number.isFinite(x)) nonFinite++;
      s += x;
    }
    expect(nonFinite).toBe(0);
    const mean = s / N;
    let m2 = 0;
    let m4 = 0;
    let below = 0;
    for (const x of z) {
      const d = x - mean;
      m2 += d * d;
      m4 += d ** 4;
      if (x < 1) below++;
    }
    m2 /= N;
    m4 /= N;
    // Standard errors: 1/sqrt(N) = 2.2e-3 (mean), sqrt(2/N) = 3.2e-3 (variance), sqrt(24/N) = 0.011 (kurtosis): ≥ 5σ.
    expect(Math.abs(mean)).toBeLessThan(0.012);
    expect(Math.abs(m2 - 1)).toBeLessThan(0.016);
    expect(Math.abs(m4 / (m2 * m2) - 3)).toBeLessThan(0.06);
    // P(z < 1) = 0.841345; standard error sqrt(p(1-p)/N) = 8.2e-4.
    expect(Math.abs(below / N - 0.841345)).toBeLessThan(0.004);
  });

  test("same (seed, step, key) gives identical streams; a prefix is a prefix", () => {
    expect(randomUniform(5, 6, 7, 1000)).toEqual(randomUniform(5, 6, 7, 1000));
    expect(randomNormal(5, 6, 7, 1000)).toEqual(randomNormal(5, 6, 7, 1000));
    expect(randomNormal(5, 6, 7, 10)).toEqual(randomNormal(5, 6, 7, 1000).subarray(0, 10));
  });

  test("different seeds, steps or keys give different, uncorrelated streams", () => {
    const n = 20_000;
    const base = randomUniform(5, 6, 7, n);
    const others = [randomUniform(6, 6, 7, n), randomUniform(5, 7, 7, n), randomUniform(5, 6, 8, n), randomUniform(5, 6, 0, n), randomUniform(2 ** 31 + 5, 6, 7, n)];
    for (const o of others) {
      let equal = 0;
      let cov = 0;
      for (let i = 0; i < n; i++) {
        if (o[i] === base[i]) equal++;
        cov += (o[i]! - 0.5) * (base[i]! - 0.5);
      }
      // Equal 24-bit values happen with probability 2^-24 per element; correlation standard error 1/sqrt(n) = 0.007.
      expect(equal).toBeLessThan(3);
      expect(Math.abs(cov / n / (1 / 12))).toBeLessThan(0.04);
    }
    // Neighbouring elements of one stream are uncorrelated too (lag-1 correlation).
    let lag = 0;
    for (let i = 1; i < n; i++) lag += (base[i]! - 0.5) * (base[i - 1]! - 0.5);
    expect(Math.abs(lag / (n - 1) / (1 / 12))).toBeLessThan(0.04);
  });

  test("rejects a bad count", () => {
    expect(() => randomUniform(0, 0, 0, -1)).toThrow(/count/);
    expect(() => randomNormal(0, 0, 0, 1.5)).toThrow(/count/);
  });
});
