// round_bf16 on hand-derived cases: [x, x rounded to bfloat16]. bfloat16 keeps 7 mantissa bits (8 significant),
// so its ulp in [1, 2) is 2^-7, and cvt.rn.bf16.f32 rounds a tie to the even neighbour (the one whose last kept bit
// is 0). Subnormal f32s round on bfloat16's subnormal grid, a step of 2^-133 (bit 16 of the f32).
// Inputs are f32 values, except the last, a float64 that rounds to an f32 tie first. Compare with sameTf32.
import { SPECIAL_CASES } from "./tf32.js";

const BF16_MAX = (2 - 2 ** -7) * 2 ** 127;

export const BF16_CASES: readonly (readonly [number, number])[] = [
  [1, 1],
  [1 + 2 ** -7, 1 + 2 ** -7], // already bfloat16
  [1 + 2 ** -8, 1], // a tie: to even (1.0000000), where TF32's cvt.rna would round away
  [-(1 + 2 ** -8), -1],
  [1 + 3 * 2 ** -8, 1 + 2 ** -6], // 1.5 ulp, a tie: to 2 ulp, the even one
  [-(1 + 3 * 2 ** -8), -(1 + 2 ** -6)],
  [1 + 2 ** -8 - 2 ** -23, 1], // one f32 ulp below the tie
  [1 + 2 ** -8 + 2 ** -23, 1 + 2 ** -7], // one f32 ulp above it
  [-(1 + 2 ** -8 + 2 ** -23), -(1 + 2 ** -7)],
  [2 - 2 ** -23, 2], // rounds up into the next binade
  [1 / 3, 171 / 512], // 1.0101010|1010... × 2^-2: the dropped bits are above half
  [0.1, 205 / 2048], // 1.1001100|1100... × 2^-4: above half
  [1000.3, 1000], // 1.1111010|0001... × 2^9: ulp 4, and 1000.3 is below 1002
  [2 ** -149, 0], // the smallest subnormal
  [-(2 ** -149), -0],
  [2 ** -134, 0], // half a bfloat16 subnormal step: a tie, to even (0)
  [3 * 2 ** -134, 2 ** -132], // 1.5 steps: a tie, to 2 steps
  [2 ** -134 + 2 ** -149, 2 ** -133], // just above half a step
  [2 ** -126 - 2 ** -149, 2 ** -126], // the largest subnormal rounds to the smallest normal
  [2 ** -126, 2 ** -126],
  [BF16_MAX, BF16_MAX],
  [BF16_MAX + 2 ** 119 - 2 ** 104, BF16_MAX], // one f32 ulp (2^104) below the tie with 2^128
  [(2 - 2 ** -8) * 2 ** 127, Infinity], // the tie with 2^128 (BF16_MAX's last bit is odd): past the largest finite
  ...SPECIAL_CASES,
  [1 + 2 ** -8 + 2 ** -40, 1], // float64: to f32 first (1 + 2^-8, a tie), then to even
];

/**
 * The float64 oracle of round_bf16 on an f32 value: the nearest multiple of bfloat16's ulp at f's binade (2^(e−7),
 * e at least −126 so subnormals share the smallest normal binade's grid), a tie to the even multiple, ±Infinity at
 * 2^128 or past. Independent of the bit arithmetic the implementations use.
 */
export function bf16Oracle(f: number): number {
  if (Number.isNaN(f)) return NaN;
  if (!Number.isFinite(f) || f === 0) return f;
  const a = Math.abs(f);
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -126) - 7);
  const q = a / ulp; // exact: f has 24 significant bits
  const below = Math.floor(q);
  const n = q - below > 0.5 || (q - below === 0.5 && below % 2 === 1) ? below + 1 : below;
  const v = n * ulp;
  return Math.sign(f) * (v >= 2 ** 128 ? Infinity : v);
}
