// Loop splitting: a kernel's output index gid (or its reduction counter r) as outer·L + inner, so that a
// renderer can run it as two nested loops. L is the largest block that every `counter / c` and `counter % c`
// of the kernel respects (the gcd of those c and the counter's extent): then `counter / c` is `outer / (c/L)`,
// constant across the inner loop, and `counter % c` is `(outer % (c/L))·L + inner`, so the inner loop reads
// memory contiguously or not at all, where the flat loop divided every index by constants. A broadcast of a
// per-channel value over an image, or a reduction over a batch of images, becomes a loop a compiler vectorises.
import { ixAdd, ixConst, ixDiv, ixMod, ixMul, kernelOutputs, sxNodes, type Ix, type Kernel, type Sx } from "./ir.js";

export type Counter = "gid" | "r";

/** The inner block below which splitting is not worth a second loop. */
const MIN_INNER = 8;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function ixOf(x: Sx): Ix[] {
  return sxNodes(x).flatMap((y) => ("at" in y ? [y.at] : []));
}

/** The c of every `counter / c` and `counter % c` in x. */
function divisors(x: Ix, counter: Counter, out: number[]): void {
  switch (x.k) {
    case "add":
      divisors(x.a, counter, out);
      divisors(x.b, counter, out);
      return;
    case "mul":
      divisors(x.a, counter, out);
      return;
    case "div":
    case "mod":
      if (x.a.k === counter) out.push(x.c);
      else divisors(x.a, counter, out);
      return;
    default:
      return;
  }
}

/** The expressions in which `counter` varies: the output value for gid, the reduction's term for r. */
function scope(k: Kernel, counter: Counter): Sx[] {
  return counter === "r" ? [k.reduce!.body] : [...kernelOutputs(k).map((o) => o.body), ...(k.reduce ? [k.reduce.body] : [])];
}

/** L, the inner block of `counter` in kernel k, or undefined where the kernel is better run as one flat loop. */
export function innerBlock(k: Kernel, counter: Counter): number | undefined {
  const extent = counter === "r" ? k.reduce!.count : k.size;
  const found: number[] = [];
  for (const x of scope(k, counter)) for (const ix of ixOf(x)) divisors(ix, counter, found);
  if (found.length === 0) return undefined;
  const block = found.reduce(gcd, extent);
  return block >= MIN_INNER && block < extent ? block : undefined;
}

/** The loop variables of a split counter, as renderers name them. */
export function splitNames(counter: Counter): { outer: string; inner: string } {
  return { outer: `${counter}_outer`, inner: `${counter}_inner` };
}

function splitIx(x: Ix, counter: Counter, block: number): Ix {
  const { outer, inner } = splitNames(counter);
  const [o, i]: Ix[] = [
    { k: "var", name: outer },
    { k: "var", name: inner },
  ];
  const walk = (y: Ix): Ix => {
    switch (y.k) {
      case "add":
        return ixAdd(walk(y.a), walk(y.b));
      case "mul":
        return ixMul(walk(y.a), y.c);
      case "div":
        return y.a.k === counter ? ixDiv(o, y.c / block) : ixDiv(walk(y.a), y.c);
      case "mod":
        return y.a.k === counter ? ixAdd(ixMul(ixMod(o, y.c / block), block), i) : ixMod(walk(y.a), y.c);
      default:
        return y.k === counter ? ixAdd(ixMul(o, block), i) : y;
    }
  };
  return walk(x);
}

/** x with `counter` written as outer·block + inner (block from innerBlock). */
export function splitCounter(x: Sx, counter: Counter, block: number): Sx {
  return mapIx(x, (ix) => splitIx(ix, counter, block));
}

// ---------------------------------------------------------------- loop nests

/**
 * The reduction counter r as a loop nest, where the kernel reads it only through mixed-radix digits: `r % c`,
 * `r / c` and `(r / c) % m` at points 1 = d₀ | d₁ | … | dₙ = count of one chain (a convolution's (channel, kh,
 * kw), unravelled). Digit i runs over [0, dᵢ₊₁/dᵢ) as a loop variable of its own, innermost first, and every
 * read of r becomes a sum of digits: no division or remainder is left per term. Undefined when r is read
 * otherwise, or the points do not divide one another.
 */
export interface Nest {
  /** Each digit's loop: its variable and extent, innermost first. */
  readonly loops: readonly { readonly name: string; readonly extent: number }[];
  /** A term of the reduction with r written in digits. */
  readonly term: Sx;
}

export function nestReduction(k: Kernel): Nest | undefined {
  const r = k.reduce;
  if (!r) return undefined;
  const points = new Set([1, r.count]);
  const collect = (x: Ix): void => {
    if (x.k === "mod" && x.a.k === "div" && x.a.a.k === "r") points.add(x.a.c).add(x.a.c * x.c);
    else if ((x.k === "div" || x.k === "mod") && x.a.k === "r") points.add(x.c);
    else if (x.k === "add") (collect(x.a), collect(x.b));
    else if (x.k === "mul" || x.k === "div" || x.k === "mod") collect(x.a);
  };
  for (const ix of ixOf(r.body)) collect(ix);
  const chain = [...points].sort((a, b) => a - b);
  if (chain.length === 2) return undefined; // no digit is read: the flat loop is the nest
  if (chain.some((d, i) => i > 0 && d % chain[i - 1]! !== 0) || chain.at(-1) !== r.count) return undefined;
  const loops = chain.slice(0, -1).map((d, i) => ({ name: `r${i}`, extent: chain[i + 1]! / d }));
  /** Σ over digits i with lo ≤ dᵢ < hi of digitᵢ·(dᵢ/lo). */
  const digits = (lo: number, hi: number): Ix =>
    chain.slice(0, -1).reduce<Ix>((acc, d, i) => (d >= lo && d < hi ? ixAdd(acc, ixMul({ k: "var", name: `r${i}` }, d / lo)) : acc), ixConst(0));
  const rewrite = (x: Ix): Ix => {
    if (x.k === "mod" && x.a.k === "div" && x.a.a.k === "r") return digits(x.a.c, x.a.c * x.c);
    if (x.k === "div" && x.a.k === "r") return digits(x.c, r.count);
    if (x.k === "mod" && x.a.k === "r") return digits(1, x.c);
    if (x.k === "r") return digits(1, r.count);
    if (x.k === "add") return ixAdd(rewrite(x.a), rewrite(x.b));
    if (x.k === "mul") return ixMul(rewrite(x.a), x.c);
    if (x.k === "div") return ixDiv(rewrite(x.a), x.c);
    if (x.k === "mod") return ixMod(rewrite(x.a), x.c);
    return x;
  };
  return { loops, term: mapIx(r.body, rewrite) };
}

/** x with every index expression mapped by f. */
function mapIx(x: Sx, f: (ix: Ix) => Ix): Sx {
  const sub = (y: Sx) => mapIx(y, f);
  switch (x.k) {
    case "load":
    case "index":
    case "random":
    case "inrange":
      return { ...x, at: f(x.at) };
    case "unary":
    case "cast":
      return { ...x, x: sub(x.x) };
    case "binary":
    case "compare":
      return { ...x, a: sub(x.a), b: sub(x.b) };
    case "select":
      return { ...x, c: sub(x.c), a: sub(x.a), b: sub(x.b) };
    default:
      return x;
  }
}
