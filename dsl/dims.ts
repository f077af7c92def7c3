// Symbolic integers for dims: polynomials with integer coefficients over symbols (`B`, `C`) and opaque atoms
// for what a polynomial cannot say (`(H+1)/2` with H unknown). Comparison is three-valued so that the checker
// reports a mismatch only when two dims differ for sure.

/** An opaque atom: an operation that could not be simplified because an operand is symbolic. */
interface Atom {
  readonly key: string;
}

export class Dim {
  /** Monomial key ("" for the constant, "B", "B*C", "{(H+1)/2}") -> coefficient. */
  private constructor(
    private readonly terms: ReadonlyMap<string, number>,
    private readonly opaque: boolean,
  ) {}

  static const(n: number): Dim {
    return new Dim(n === 0 ? new Map() : new Map([["", n]]), false);
  }

  static symbol(name: string): Dim {
    return new Dim(new Map([[name, 1]]), false);
  }

  private static atom(a: Atom): Dim {
    // `*` separates monomial factors, so an atom's own products are written with `·`.
    return new Dim(new Map([[`{${a.key.replaceAll("*", "·")}}`, 1]]), true);
  }

  get isConst(): boolean {
    return this.terms.size === 0 || (this.terms.size === 1 && this.terms.has(""));
  }

  /** The value when constant, otherwise undefined. */
  get value(): number | undefined {
    return this.isConst ? (this.terms.get("") ?? 0) : undefined;
  }

  /** Names of the plain symbols it mentions (not those hidden inside opaque atoms). */
  get symbols(): string[] {
    const out = new Set<string>();
    for (const k of this.terms.keys()) for (const f of k.split("*")) if (f !== "" && !f.startsWith("{")) out.add(f);
    return [...out];
  }

  add(o: Dim): Dim {
    const t = new Map(this.terms);
    for (const [k, c] of o.terms) {
      const s = (t.get(k) ?? 0) + c;
      if (s === 0) t.delete(k);
      else t.set(k, s);
    }
    return new Dim(t, this.opaque || o.opaque);
  }

  neg(): Dim {
    return new Dim(new Map([...this.terms].map(([k, c]) => [k, -c])), this.opaque);
  }

  sub(o: Dim): Dim {
    return this.add(o.neg());
  }

  mul(o: Dim): Dim {
    const t = new Map<string, number>();
    for (const [ka, ca] of this.terms)
      for (const [kb, cb] of o.terms) {
        const k = [...ka.split("*"), ...kb.split("*")]
          .filter((f) => f !== "")
          .sort()
          .join("*");
        const s = (t.get(k) ?? 0) + ca * cb;
        if (s === 0) t.delete(k);
        else t.set(k, s);
      }
    return new Dim(t, this.opaque || o.opaque);
  }

  /** Exact division. `undefined` when both are known and do not divide; symbolic quotients stay opaque. */
  divExact(o: Dim): Dim | undefined {
    const d = o.value;
    if (d !== undefined && d !== 0 && [...this.terms.values()].every((c) => c % d === 0)) {
      return new Dim(new Map([...this.terms].map(([k, c]) => [k, c / d])), this.opaque);
    }
    if (this.isConst && o.isConst) return undefined;
    const same = this.sub(o);
    if (same.isZero) return Dim.const(1);
    // `(C*H)/C`: divide a monomial factor out when every term has it.
    const oneTerm = o.terms.size === 1 ? [...o.terms][0] : undefined;
    if (oneTerm && oneTerm[0] !== "" && !oneTerm[0].startsWith("{")) {
      const [factor, coeff] = oneTerm;
      const t = new Map<string, number>();
      let ok = true;
      for (const [k, c] of this.terms) {
        const fs = k.split("*");
        const i = fs.indexOf(factor);
        if (i < 0 || c % coeff !== 0) {
          ok = false;
          break;
        }
        fs.splice(i, 1);
        t.set(fs.join("*"), c / coeff);
      }
      if (ok) return new Dim(t, this.opaque);
    }
    return Dim.atom({ key: `(${this})/(${o})` });
  }

  floorDiv(o: Dim): Dim | undefined {
    const a = this.value;
    const b = o.value;
    if (b === 0) return undefined;
    if (a !== undefined && b !== undefined) return Dim.const(Math.floor(a / b));
    const exact = b !== undefined && [...this.terms.values()].every((c) => c % b === 0);
    if (exact) return this.divExact(o);
    return Dim.atom({ key: `floor((${this})/(${o}))` });
  }

  mod(o: Dim): Dim | undefined {
    const a = this.value;
    const b = o.value;
    if (b === 0) return undefined;
    if (a !== undefined && b !== undefined) return Dim.const(((a % b) + b) % b);
    return Dim.atom({ key: `(${this})%(${o})` });
  }

  pow(o: Dim): Dim | undefined {
    const e = o.value;
    if (e !== undefined && e < 0) return undefined;
    if (e !== undefined && e <= 16) {
      let r = Dim.const(1);
      for (let i = 0; i < e; i++) r = r.mul(this);
      return r;
    }
    const b = this.value;
    if (b !== undefined && e !== undefined) return Dim.const(b ** e);
    return Dim.atom({ key: `(${this})**(${o})` });
  }

  get isZero(): boolean {
    return this.terms.size === 0;
  }

  /** "equal" and "different" are certain; "unknown" when an opaque atom is involved. */
  compare(o: Dim): "equal" | "different" | "unknown" {
    const d = this.sub(o);
    if (d.isZero) return "equal";
    if (d.opaque) return "unknown";
    return "different";
  }

  /** Definitely not equal; unknown counts as possibly equal. */
  differs(o: Dim): boolean {
    return this.compare(o) === "different";
  }

  private text: string | undefined;

  /** A stable text form: constants last, `2*C + 1`. Memo keys use it, so it is computed once. */
  toString(): string {
    return (this.text ??= this.render());
  }

  private render(): string {
    if (this.terms.size === 0) return "0";
    const parts = [...this.terms]
      .sort(([a], [b]) => (a === "" ? 1 : b === "" ? -1 : a.localeCompare(b)))
      .map(([k, c], i) => {
        const mag = Math.abs(c);
        const name = k.replace(/[{}]/g, "").replaceAll("·", "*");
        const body = k === "" ? String(mag) : mag === 1 ? name : `${mag}*${name}`;
        if (i === 0) return c < 0 ? `-${body}` : body;
        return c < 0 ? ` - ${body}` : ` + ${body}`;
      });
    return parts.join("");
  }
}
