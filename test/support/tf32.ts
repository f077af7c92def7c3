// round_tf32 on hand-derived cases: [x, x rounded to TF32]. TF32 keeps 10 mantissa bits, so its ulp in [1, 2) is
// 2^-10, and cvt.rna rounds a tie away from zero (where round-to-nearest-even would often go the other way).
// Subnormal f32s keep their 13 low bits too: the TF32 subnormal step is 2^-136 (bit 13 of the f32).
// Inputs are f32 values, except the last, a float64 that rounds to an f32 tie first.
const F32_MAX = (2 - 2 ** -23) * 2 ** 127;
const TF32_MAX = (2 - 2 ** -10) * 2 ** 127;

/** What every rounding (round_tf32, round_bf16) does alike: past the largest finite to infinity; Inf, NaN and zeros stay. */
export const SPECIAL_CASES: readonly (readonly [number, number])[] = [
  [F32_MAX, Infinity],
  [-F32_MAX, -Infinity],
  [Infinity, Infinity],
  [-Infinity, -Infinity],
  [NaN, NaN],
  [0, 0],
  [-0, -0],
];

export const TF32_CASES: readonly (readonly [number, number])[] = [
  [1, 1],
  [1 + 2 ** -10, 1 + 2 ** -10], // already TF32
  [1 + 2 ** -11, 1 + 2 ** -10], // a tie: away from zero (nearest-even would give 1)
  [-(1 + 2 ** -11), -(1 + 2 ** -10)],
  [1 + 5 * 2 ** -11, 1 + 3 * 2 ** -10], // 2.5 ulp, a tie: to 3 ulp (nearest-even would give 2)
  [-(1 + 5 * 2 ** -11), -(1 + 3 * 2 ** -10)],
  [1 + 2 ** -11 - 2 ** -23, 1], // one f32 ulp below the tie
  [1 + 2 ** -11 + 2 ** -23, 1 + 2 ** -10], // one f32 ulp above it
  [-(1 + 2 ** -11 - 2 ** -23), -1],
  [2 - 2 ** -23, 2], // rounds up into the next binade
  [1 / 3, 1365 / 4096], // 1.0101010101|0101... × 2^-2: the dropped bits are below half
  [0.1, 1638 / 16384], // 1.1001100110|0110... × 2^-4
  [1000.3, 1000.5], // 1111101000.0100110011...: ulp 2^-1 at 2^9, and .3 rounds to .5
  [2 ** -149, 0], // the smallest subnormal
  [-(2 ** -149), -0],
  [2 ** -137, 2 ** -136], // half a TF32 subnormal step: a tie, away from zero
  [3 * 2 ** -137, 2 ** -135], // 1.5 steps: a tie, to 2
  [2 ** -136 - 2 ** -149, 2 ** -136],
  [2 ** -126 - 2 ** -149, 2 ** -126], // the largest subnormal rounds to the smallest normal
  [2 ** -126, 2 ** -126],
  [TF32_MAX, TF32_MAX],
  [TF32_MAX + 2 ** 116 - 2 ** 104, TF32_MAX], // one f32 ulp (2^104) below the tie with 2^128
  [(2 - 2 ** -11) * 2 ** 127, Infinity], // the tie with 2^128: past the largest finite
  ...SPECIAL_CASES,
  [1 + 2 ** -11 - 2 ** -40, 1 + 2 ** -10], // float64: to f32 first (1 + 2^-11, a tie), then away from zero
];

/** Equal as round_tf32 and round_bf16 results are: NaN for NaN, otherwise the same value with the same sign of zero. */
export function sameTf32(got: number, want: number): boolean {
  return Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want);
}
