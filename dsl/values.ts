// What the checker computes for each expression: a tensor's type (dtype + symbolic shape + where the shape came
// from), or a compile-time value (int dims, floats, bools, lists), or a structure of those.
import type * as A from "./ast.js";
import { Dim } from "./dims.js";
import type { Span } from "./source.js";

export type DType = "f32" | "f16" | "i32" | "bool";
export const DTYPES: readonly DType[] = ["f32", "f16", "i32", "bool"];

export interface TensorValue {
  readonly k: "tensor";
  readonly dtype: DType;
  readonly shape: readonly Dim[];
  /** Where this shape was established: a declaration, or the expression that computed it. */
  readonly origin: Span;
  /** The graph node computing it, when the checker is tracing a graph (compiler/lower.ts). */
  readonly node?: number;
}

export type Value =
  | TensorValue
  | { readonly k: "int"; readonly value: Dim }
  | { readonly k: "float"; readonly value: number | undefined }
  | { readonly k: "bool"; readonly value: boolean | undefined }
  | { readonly k: "string"; readonly value: string }
  | { readonly k: "dtype"; readonly dtype: DType }
  | { readonly k: "list"; readonly items: readonly Value[] }
  | { readonly k: "tuple"; readonly items: readonly Value[] }
  | { readonly k: "record"; readonly fields: ReadonlyMap<string, Value> }
  | { readonly k: "instance"; readonly inst: Instance }
  /** `elements` holds one instance per index when tracing (each has its own parameters). */
  | { readonly k: "array"; readonly element: Instance; readonly count: Dim; readonly elements?: readonly Instance[] }
  | { readonly k: "fn"; readonly decl: A.FnDecl; readonly home: Home }
  | { readonly k: "builtin"; readonly name: string }
  | { readonly k: "decl"; readonly decl: A.ContainerDecl; readonly home: Home }
  | { readonly k: "namespace"; readonly file: Home }
  /** A value whose error was already reported: every use of it is silent. */
  | { readonly k: "error" };

export const ERROR: Value = { k: "error" };

/** Where a declaration's free names resolve: a file's scope, or a module instance's scope. */
export interface Home {
  readonly scope: Scope;
  readonly filePath: string;
  /** Stable identity for memo keys. */
  readonly key: string;
}

export interface Instance extends Home {
  readonly decl: A.ContainerDecl;
  /** Dotted name from the model down (`decoder.blocks.0`); "" for the model and when not tracing. */
  readonly path: string;
  /** Parameters, components, consts, functions, hypers by name. */
  readonly members: Map<string, Value>;
}

export interface Binding {
  value: Value;
  readonly mutable: boolean;
  readonly span: Span | undefined;
}

/**
 * Told what the checker computes, for editors (lsp/): hover shows a value's type, go-to-definition follows a
 * name to its binding. The checker calls it only when given one.
 */
export interface CheckObserver {
  /**
   * The value of an expression, an annotation or a name where it is bound, computed in `scope`; a function
   * checked at several instantiations reports each, in the scope that binds its generics.
   */
  value(span: Span, v: Value, scope: Scope): void;
  /** The name used at `use` is the one bound at `declared`. */
  resolved(use: Span, declared: Span): void;
}

export class Scope {
  private readonly names = new Map<string, Binding>();
  /** The root scope's observer, which every scope below it tells its definitions. */
  private readonly observer: CheckObserver | undefined;
  constructor(
    readonly parent: Scope | undefined,
    observer?: CheckObserver,
  ) {
    this.observer = observer ?? parent?.observer;
  }

  define(name: string, value: Value, span: Span | undefined, mutable = false): void {
    this.names.set(name, { value, mutable, span });
    if (span) this.observer?.value(span, value, this);
  }

  lookup(name: string): Binding | undefined {
    return this.names.get(name) ?? this.parent?.lookup(name);
  }

  hasOwn(name: string): boolean {
    return this.names.has(name);
  }

  ownBinding(name: string): Binding | undefined {
    return this.names.get(name);
  }

  /** All visible names, for "did you mean". */
  visible(): string[] {
    return [...this.names.keys(), ...(this.parent?.visible() ?? [])];
  }

  /** Every mutable binding visible from here (to snapshot around branches). */
  mutableBindings(): Binding[] {
    const own = [...this.names.values()].filter((b) => b.mutable);
    return [...own, ...(this.parent?.mutableBindings() ?? [])];
  }
}

export function tensor(dtype: DType, shape: readonly Dim[], origin: Span): TensorValue {
  return { k: "tensor", dtype, shape, origin };
}

export function intValue(n: number | Dim): Value {
  return { k: "int", value: typeof n === "number" ? Dim.const(n) : n };
}

export function shapeText(shape: readonly Dim[]): string {
  return `[${shape.map((d) => d.toString()).join(", ")}]`;
}

export function tensorText(t: { dtype: DType; shape: readonly Dim[] }): string {
  return t.shape.length === 0 ? t.dtype : `${t.dtype}${shapeText(t.shape)}`;
}

/**
 * Receives every tensor operation the checker evaluates, so that the same evaluation that checks a program
 * also builds its graph. Each hook returns the value with its `node` set. Implemented in compiler/lower.ts.
 */
export interface Tracer {
  /** An entry input, a hyper or an optimizer argument (with its default value), by name. */
  input(name: string, t: TensorValue, defaultValue?: number): TensorValue;
  /** A learnable parameter; `init` evaluates its initialiser (the tracer records it in the init graph). */
  param(path: string, t: TensorValue, init: () => Value): TensorValue;
  /** A compile-time number used where a tensor of type `t` is needed. */
  constant(v: Value, t: TensorValue): TensorValue;
  builtin(name: string, args: ReadonlyMap<string, Value>, result: Value): Value;
  binary(op: A.BinaryOp, a: Value, b: Value, result: Value): Value;
  negate(a: TensorValue, result: TensorValue): TensorValue;
}

/** How a value is named in messages. */
export function describe(v: Value): string {
  switch (v.k) {
    case "tensor":
      return `a tensor ${tensorText(v)}`;
    case "int":
      return `the integer ${v.value}`;
    case "float":
      return v.value === undefined ? "a compile-time float" : `the float ${v.value}`;
    case "bool":
      return v.value === undefined ? "a compile-time bool" : `the bool ${v.value}`;
    case "string":
      return "a string";
    case "dtype":
      return `the dtype ${v.dtype}`;
    case "list":
      return `a list of ${v.items.length}`;
    case "tuple":
      return `a tuple of ${v.items.length}`;
    case "record":
      return `a record {${[...v.fields.keys()].join(", ")}}`;
    case "instance":
      return `the module ${v.inst.decl.name.name}`;
    case "array":
      return `an array of ${v.count} ${v.element.decl.name.name}`;
    case "fn":
      return `the function ${v.decl.name.name}`;
    case "builtin":
      return `the builtin ${v.name}`;
    case "decl":
      return `the ${v.decl.kind} ${v.decl.name.name}`;
    case "namespace":
      return `the namespace ${v.file.filePath}`;
    case "error":
      return "an erroneous value";
  }
}

/** A key that identifies a value's type (and compile-time value) for memoising template instantiations. */
export function typeKey(v: Value): string {
  switch (v.k) {
    case "tensor":
      return tensorText(v);
    case "int":
      return `i:${v.value}`;
    case "float":
      return `f:${v.value ?? "?"}`;
    case "bool":
      return `b:${v.value ?? "?"}`;
    case "string":
      return `s:${JSON.stringify(v.value)}`;
    case "dtype":
      return `d:${v.dtype}`;
    case "list":
      return `[${v.items.map(typeKey).join(",")}]`;
    case "tuple":
      return `(${v.items.map(typeKey).join(",")})`;
    case "record":
      return `{${[...v.fields].map(([k, f]) => `${k}:${typeKey(f)}`).join(",")}}`;
    case "instance":
      return `m:${v.inst.key}`;
    case "array":
      return `a:${v.element.key};${v.count}`;
    case "fn":
      return `fn:${v.home.key}.${v.decl.name.name}`;
    case "builtin":
      return `builtin:${v.name}`;
    case "decl":
      return `decl:${v.home.key}.${v.decl.name.name}`;
    case "namespace":
      return `ns:${v.file.key}`;
    case "error":
      return "error";
  }
}

/**
 * Where control flow depends on an unknown condition, the two outcomes merge: compile-time numbers that differ
 * become unknown; anything else must have the same type. `undefined` when they cannot merge.
 */
export function joinValues(a: Value, b: Value): Value | undefined {
  if (a.k === "error" || b.k === "error") return ERROR;
  if (a.k === "int" && b.k === "int") return a.value.compare(b.value) === "equal" ? a : { k: "int", value: Dim.symbol(`?`) };
  if (a.k === "float" && b.k === "float") return a.value === b.value ? a : { k: "float", value: undefined };
  if (a.k === "bool" && b.k === "bool") return a.value === b.value ? a : { k: "bool", value: undefined };
  if (a.k === "tuple" && b.k === "tuple" && a.items.length === b.items.length) {
    const items = a.items.map((x, i) => joinValues(x, b.items[i]!));
    return items.every((x) => x !== undefined) ? { k: "tuple", items: items as Value[] } : undefined;
  }
  if (a.k === "record" && b.k === "record" && a.fields.size === b.fields.size) {
    const fields = new Map<string, Value>();
    for (const [n, x] of a.fields) {
      const y = b.fields.get(n);
      const j = y && joinValues(x, y);
      if (!j) return undefined;
      fields.set(n, j);
    }
    return { k: "record", fields };
  }
  return typeKey(a) === typeKey(b) ? a : undefined;
}
