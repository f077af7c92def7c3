// Counter-based random numbers: Philox-4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011; the Random123 library), and the streams the IR's `random` op draws from.
//
// Everything below uses 32-bit unsigned integer operations only (multiply low, add, xor, shift), so the WGSL
// backend (which has no 64-bit integers) and the CUDA backend can reproduce the same bits. The high half of a
// 32x32-bit product is computed from 16-bit halves (see `mulhi32`), which maps one-to-one onto u32 code.
//
// ---------------------------------------------------------------------------------------------------------
// Philox-4x32-10, bit-exactly. All values are u32; `+` wraps mod 2^32; mulhi/mullo are the high/low 32 bits
// of the 64-bit product.
//
//   M0 = 0xD2511F53, M1 = 0xCD9E8D57        (round multipliers)
//   W0 = 0x9E3779B9, W1 = 0xBB67AE85        (Weyl key increments)
//
//   philox4x32(c = [c0, c1, c2, c3], k = [k0, k1]):
//     repeat 10 times:
//       if this is not the first round: k0 = k0 + W0; k1 = k1 + W1
//       hi0 = mulhi(M0, c0); lo0 = mullo(M0, c0)
//       hi1 = mulhi(M1, c2); lo1 = mullo(M1, c2)
//       c = [hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0]
//     return c
//
// Known answers (Random123's examples/kat_vectors, "philox4x32 10"):
//   counter 00000000 00000000 00000000 00000000, key 00000000 00000000 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8
//   counter ffffffff ffffffff ffffffff ffffffff, key ffffffff ffffffff -> 408f276d 41c83b0e a20bc7c6 6d5451fd
//   counter 243f6a88 85a308d3 13198a2e 03707344, key a4093822 299f31d0 -> d16cfe09 94fdcceb 5001e420 24126ea1
// and the first uniform of stream 0 at seed 0, step 0 is (0x6627e8d5 >>> 8) * 2^-24 = 0.3990464210510254.
//
// ---------------------------------------------------------------------------------------------------------
// The IR's random streams. `random{dist, key: K}` of n elements, at the runtime's (seed, step), gives for its
// element i (the flat row-major index, 0 <= i < 2^32):
//
//   [x0, x1, x2, x3] = philox4x32(counter = [i, K >>> 0, step >>> 0, 0], key = [seed >>> 0, 0])
//
//   uniform:  u = (x0 >>> 8) * 2^-24                                  in [0, 1), a multiple of 2^-24 (f32-exact)
//   normal:   u1 = ((x0 >>> 8) + 1) * 2^-24                          in (0, 1], so log(u1) is finite
//             u2 = (x1 >>> 8) * 2^-24                                in [0, 1)
//             z  = sqrt(-2 * ln(u1)) * cos(2 * pi * u2)              (Box-Muller, first output only)
//
// x2 and x3 are unused. `seed`, `step` and `K` are taken mod 2^32 (`>>> 0`; a non-integer is truncated).
// The reference computes z in float64; the f32 interpreter rounds it to float32 once. A GPU computing z in
// f32 arithmetic differs in the last bits (log/cos are not correctly rounded there), so compare normals with
// a tolerance and uniforms exactly.
// ---------------------------------------------------------------------------------------------------------

export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;
export const PHILOX_ROUNDS = 10;

/** 2^-24: the spacing of the uniforms. */
const INV_2_24 = 1 / 16777216;
const TWO_PI = 2 * Math.PI;

/**
 * The high 32 bits of the 64-bit product of two u32 values, with 32-bit operations only:
 * a = aH·2^16 + aL, b = bH·2^16 + bL, and
 *   a·b = aH·bH·2^32 + (aH·bL + aL·bH)·2^16 + aL·bL.
 * Every partial product of two 16-bit halves fits in a u32; `mid` is at most 3·(2^16 - 1) < 2^18, and the
 * final sum is the true high word (< 2^32), so no u32 addition below overflows.
 */
export function mulhi32(a: number, b: number): number {
  const aL = a & 0xffff;
  const aH = a >>> 16;
  const bL = b & 0xffff;
  const bH = b >>> 16;
  const ll = Math.imul(aL, bL) >>> 0;
  const lh = Math.imul(aL, bH) >>> 0;
  const hl = Math.imul(aH, bL) >>> 0;
  const hh = Math.imul(aH, bH) >>> 0;
  // Carry out of bit 31 of the low word: bits 16..31 of the low word are (ll >>> 16) + low16(lh) + low16(hl).
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/** The low 32 bits of the product of two u32 values. */
export function mullo32(a: number, b: number): number {
  return Math.imul(a, b) >>> 0;
}

/**
 * Philox-4x32-10 into `out` (no allocation). Inputs are taken mod 2^32.
 */
export function philox4x32Into(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): void {
  c0 >>>= 0;
  c1 >>>= 0;
  c2 >>>= 0;
  c3 >>>= 0;
  k0 >>>= 0;
  k1 >>>= 0;
  for (let r = 0; r < PHILOX_ROUNDS; r++) {
    if (r > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, c0);
    const lo0 = mullo32(PHILOX_M0, c0);
    const hi1 = mulhi32(PHILOX_M1, c2);
    const lo1 = mullo32(PHILOX_M1, c2);
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/** Philox-4x32-10 of one counter block under one key; u32 values as JS numbers. */
export function philox4x32(counter: readonly [number, number, number, number], key: readonly [number, number]): [number, number, number, number] {
  const out = new Uint32Array(4);
  philox4x32Into(counter[0], counter[1], counter[2], counter[3], key[0], key[1], out);
  return [out[0]!, out[1]!, out[2]!, out[3]!];
}

/** Checks the count of a stream; at most 2^32 elements (the counter's first word). */
function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > 0x100000000) throw new RangeError(`random stream: bad element count ${count}`);
}

/** Element i of the uniform stream `key` at (seed, step): (x0 >>> 8) · 2^-24 ∈ [0, 1). `x` is scratch space. */
export function uniformAt(seed: number, step: number, key: number, i: number, x: Uint32Array): number {
  philox4x32Into(i, key, step, 0, seed, 0, x);
  return (x[0]! >>> 8) * INV_2_24;
}

/** Element i of the normal stream `key` at (seed, step): Box–Muller's first output (see the header). */
export function normalAt(seed: number, step: number, key: number, i: number, x: Uint32Array): number {
  philox4x32Into(i, key, step, 0, seed, 0, x);
  const u1 = ((x[0]! >>> 8) + 1) * INV_2_24;
  const u2 = (x[1]! >>> 8) * INV_2_24;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(TWO_PI * u2);
}

/** Elements 0..count-1 of the uniform stream `key` at (seed, step). */
export function randomUniform(seed: number, step: number, key: number, count: number): Float64Array {
  return stream(uniformAt, seed, step, key, count);
}

/** Elements 0..count-1 of the normal stream `key` at (seed, step). */
export function randomNormal(seed: number, step: number, key: number, count: number): Float64Array {
  return stream(normalAt, seed, step, key, count);
}

function stream(at: typeof uniformAt, seed: number, step: number, key: number, count: number): Float64Array {
  checkCount(count);
  const out = new Float64Array(count);
  const x = new Uint32Array(4);
  for (let i = 0; i < count; i++) out[i] = at(seed, step, key, i, x);
  return out;
}
