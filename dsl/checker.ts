// The type and shape checker: a symbolic evaluator over the AST. Compile-time values (dims, ints, floats, bools)
// are computed, loops unrolled and `if`s folded; tensors are tracked by dtype and symbolic shape. Functions are
// checked per instantiation (memoised on argument types), like C++ templates; annotated parameters make errors
// appear at the call site. Declarations that no model reaches are checked with their generics as symbols.
import type * as A from "./ast.js";
import { BUILTINS, DTYPE_VALUES, elementwiseBinary, matmul, broadcastShapes, type OpContext } from "./builtins.js";
import { Dim } from "./dims.js";
import { DiagnosticBag, closest, diagnostic, didYouMean, suggest, type ErrorCode, type Note } from "./diagnostics.js";
import { misusedBuiltin } from "./foreign.js";
import { KEYWORD_WORDS } from "./lexer.js";
import { displayPath, type LoadResult, type LoadedFile } from "./loader.js";
import { isStackOverflow } from "./overflow.js";
import { joinSpans, type SourceFile, type Span } from "./source.js";
import { ERROR, Scope, describe, intValue, joinValues, shapeText, tensor, tensorText, typeKey, type CheckObserver, type DType, type Home, type Instance, type TensorValue, type Tracer, type Value } from "./values.js";

/** An evaluated type annotation. */
type TypeVal =
  | { readonly k: "tensor"; readonly dtype: DType; readonly shape: readonly Dim[]; readonly span: Span }
  | { readonly k: "int" | "float" | "bool"; readonly span: Span }
  | { readonly k: "tuple"; readonly items: readonly TypeVal[]; readonly span: Span }
  | { readonly k: "record"; readonly fields: ReadonlyMap<string, TypeVal>; readonly span: Span }
  | { readonly k: "instance"; readonly inst: Instance; readonly span: Span }
  | { readonly k: "array"; readonly inst: Instance; readonly count: Dim; readonly elements?: readonly Instance[]; readonly span: Span }
  | { readonly k: "error"; readonly span: Span };

/** Thrown to abandon the current declaration after an error that makes going on pointless. */
class Abort {}

/** Thrown by a failed `assert` to end its block: what follows relies on what it asserts. */
class FailedAssertion {}

const MAX_UNROLL = 4096;
/**
 * All loop iterations one check may unroll, nested loops multiplying: a budget for the whole program, since
 * loops that each pass MAX_UNROLL can still nest into billions of iterations (and a build into gigabytes).
 */
const MAX_TOTAL_UNROLL = 1 << 18;
const MAX_DEPTH = 200;

export interface CheckerOptions {
  /** Values for generic dims of models and entries (`--bind B=64`). */
  readonly bindings?: Readonly<Record<string, number>>;
  /** When set, every tensor operation is also recorded as a graph node (see lowering API below). */
  readonly tracer?: Tracer;
  /** The std module declaring each name, asked when a name is unknown: the import a diagnostic suggests. */
  readonly stdNames?: () => ReadonlyMap<string, string>;
  /** Told every value and name resolution (editors); absent when compiling. */
  readonly observer?: CheckObserver;
}

export interface CheckedEntry {
  readonly model: string;
  readonly name: string;
  readonly training: boolean;
  readonly inputs: { name: string; type: string }[];
  readonly output: string;
}

export class Checker {
  readonly diagnostics = new DiagnosticBag();
  readonly entries: CheckedEntry[] = [];
  private readonly fileHomes = new Map<string, Home>();
  private readonly instances = new Map<string, Instance | "active">();
  private readonly calls = new Map<string, Value>();
  private readonly activeFns: A.FnDecl[] = [];
  private readonly activeConsts = new Set<A.ConstDecl>();
  private readonly pendingConsts = new Map<Scope, Map<string, A.ConstDecl>>();
  /** Calls and component declarations being evaluated, innermost last: an error inside another file gets a note at the user's site. */
  private readonly sites: { span: Span; what: string }[] = [];
  private depth = 0;
  /** Loop iterations unrolled so far (MAX_TOTAL_UNROLL). */
  private unrolled = 0;
  /** The expression evaluated last: where a stack overflow is reported. */
  private lastSpan: Span | undefined;
  private overflowed = false;
  /** > 0 while generics are symbols: a value that needs them known (E0310) is not an error until they are bound. */
  private symbolic = 0;

  private readonly tracer: Tracer | undefined;
  /** The entry being evaluated, for `train_step()`; undefined while a function is checked on its own. */
  private entry: A.EntryMember | undefined;

  constructor(
    private readonly program: LoadResult,
    private readonly options: CheckerOptions = {},
  ) {
    this.tracer = options.tracer;
  }

  // ---------------------------------------------------------------- driver

  /** Declares every file's names and binds its imports. */
  prepare(): { d: A.Decl; home: Home }[] {
    const builtins = new Scope(undefined, this.options.observer);
    for (const name of BUILTINS.keys()) builtins.define(name, { k: "builtin", name }, undefined);
    for (const [name, v] of DTYPE_VALUES) builtins.define(name, v, undefined);
    const parsed = [...this.program.files.values()].filter((f) => f.ast);
    for (const f of parsed) this.declareFile(f, builtins);
    for (const f of parsed) this.bindImports(f);
    return parsed.flatMap((f) => f.ast!.decls.map((d) => ({ d, home: this.fileHomes.get(f.path)! })));
  }

  run(): void {
    const decls = this.prepare();
    // Models first: errors then carry concrete dims. Everything else is checked with symbolic generics.
    for (const { d, home } of decls) if (d.kind === "model") this.guarded(() => this.checkModel(d, home));
    for (const { d, home } of decls) {
      if (d.kind === "fn") this.guarded(() => this.checkFnAbstractly({ k: "fn", decl: d, home }), true);
      else if (d.kind === "module") this.guarded(() => this.checkModuleAbstractly(d, home), true);
      else if (d.kind === "optimizer") this.guarded(() => this.checkOptimizerAbstractly(d, home), true);
      else if (d.kind === "const") this.guarded(() => this.lookup(d.name.name, home.scope, d.name.span));
    }
  }

  private guarded(f: () => void, symbolic = false): void {
    if (this.overflowed) return; // one E0203 says it; the rest would be the same
    if (symbolic) this.symbolic++;
    try {
      f();
    } catch (e) {
      // A pathologically deep program exhausts the stack: say where, rather than crash.
      if (isStackOverflow(e) && this.lastSpan) {
        this.overflowed = true;
        this.diagnostics.add(diagnostic("E0203", this.lastSpan, "this program nests too deeply to check (expressions, calls or consts more than a few thousand levels deep)"));
      } else if (!(e instanceof Abort)) throw e;
    } finally {
      if (symbolic) this.symbolic--;
    }
  }

  private error(code: ErrorCode, span: Span, message: string, notes: Note[] = []): Value {
    if (code === "E0310" && this.symbolic > 0) return ERROR;
    const site = this.sites.findLast((s) => s.span.file !== span.file);
    const all = site ? [...notes, { span: site.span, message: site.what }] : notes;
    this.diagnostics.add(diagnostic(code, span, message, all));
    return ERROR;
  }

  private fatal(code: ErrorCode, span: Span, message: string, notes: Note[] = []): never {
    this.error(code, span, message, notes);
    throw new Abort();
  }

  // ---------------------------------------------------------------- files and imports

  private declareFile(f: LoadedFile, builtins: Scope): void {
    const scope = new Scope(builtins);
    const home: Home = { scope, filePath: f.path, key: f.path };
    this.fileHomes.set(f.path, home);
    const pending = new Map<string, A.ConstDecl>();
    this.pendingConsts.set(scope, pending);
    for (const d of f.ast!.decls) {
      if (d.kind === "import") continue;
      const prior = scope.ownBinding(d.name.name);
      if (prior) {
        this.error("E0302", d.name.span, `'${d.name.name}' is declared twice in this file`, prior.span ? [{ span: prior.span, message: "first declared here" }] : []);
        continue;
      }
      if (d.kind === "const") {
        pending.set(d.name.name, d);
        scope.define(d.name.name, ERROR, d.name.span);
      } else if (d.kind === "fn") scope.define(d.name.name, { k: "fn", decl: d, home }, d.name.span);
      else scope.define(d.name.name, { k: "decl", decl: d, home }, d.name.span);
    }
  }

  private bindImports(f: LoadedFile): void {
    const home = this.fileHomes.get(f.path)!;
    for (const d of f.ast!.decls) {
      if (d.kind !== "import") continue;
      const target = f.imports.get(d);
      const targetHome = target ? this.fileHomes.get(target) : undefined;
      if (!targetHome) continue; // not found or unparsable: already reported
      const bind = (name: A.Ident, value: Value) => {
        const prior = home.scope.ownBinding(name.name);
        if (prior) this.error("E0302", name.span, `'${name.name}' is already declared in this file`, prior.span ? [{ span: prior.span, message: "declared here" }] : []);
        else home.scope.define(name.name, value, name.span);
      };
      if (d.names) {
        for (const { name, alias } of d.names) {
          const b = targetHome.scope.ownBinding(name.name);
          if (!b) {
            const names = [...this.program.files.get(target!)!.ast!.decls].filter((x) => x.kind !== "import").map((x) => (x as { name: A.Ident }).name.name);
            this.error("E0502", name.span, `'${name.name}' is not declared in ${d.source.kind === "std" ? d.source.path.join(".") : d.source.path}${didYouMean(name.name, names)}`);
            continue;
          }
          if (b.span) this.options.observer?.resolved(name.span, b.span);
          // Imported consts resolve lazily through the target file's scope.
          const pending = this.pendingConsts.get(targetHome.scope)?.get(name.name);
          bind(alias ?? name, pending ? this.lookup(name.name, targetHome.scope, name.span) : b.value);
        }
      } else {
        const name = d.alias ?? (d.source.kind === "std" ? { name: d.source.path[d.source.path.length - 1]!, span: d.source.span } : undefined);
        if (!name) {
          this.error("E0201", d.source.span, "a file import needs a name: `import \"./x.ul\" as x`, or `from \"./x.ul\" import a, b`");
          continue;
        }
        bind(name, { k: "namespace", file: targetHome });
      }
    }
  }

  // ---------------------------------------------------------------- names

  private lookup(name: string, scope: Scope, span: Span): Value {
    const b = scope.lookup(name);
    if (!b) return this.unknownName(name, scope, span);
    if (b.span) this.options.observer?.resolved(span, b.span);
    if (b.value.k === "error") {
      // A const not evaluated yet: find its declaring scope and evaluate it now.
      for (let s: Scope | undefined = scope; s; s = s.parent) {
        const decl = this.pendingConsts.get(s)?.get(name);
        if (decl && s.hasOwn(name)) return this.evalConst(decl, s);
        if (s.hasOwn(name)) break;
      }
    }
    return b.value;
  }

  /** E0301 with the name likeliest meant, and the import to add when that name (or the name itself) is in std. */
  private unknownName(name: string, scope: Scope, span: Span): Value {
    const std = this.options.stdNames?.() ?? new Map<string, string>();
    const guess = std.has(name) ? undefined : closest(name, [...scope.visible(), ...std.keys(), ...KEYWORD_WORDS]);
    const meant = guess ?? name;
    const module = scope.lookup(meant) ? undefined : std.get(meant);
    const notes = module === undefined ? [] : [this.importNote(meant, module, span.file)];
    return this.error("E0301", span, `unknown name '${name}'${suggest(guess)}`, notes);
  }

  /** Points where imports go, the file's first declaration, with the import that brings `name` from std. */
  private importNote(name: string, module: string, file: SourceFile): Note {
    const first = [...this.program.files.values()].find((f) => f.source === file)?.ast?.decls[0]?.span.start ?? 0;
    return { span: file.span(first, first), message: `'${name}' is in std.${module}: add \`from std.${module} import ${name}\`` };
  }

  private evalConst(decl: A.ConstDecl, scope: Scope): Value {
    const binding = scope.ownBinding(decl.name.name)!;
    if (this.activeConsts.has(decl)) return this.error("E0307", decl.name.span, `const '${decl.name.name}' depends on itself`);
    this.activeConsts.add(decl);
    try {
      let v = this.eval(decl.value, scope);
      if (decl.type) v = this.expectType(v, this.evalType(decl.type, scope), decl.value.span, `const '${decl.name.name}'`);
      if (v.k === "tensor") v = this.error("E0401", decl.value.span, `a const must be a compile-time value, but this is ${describe(v)}; use a let inside a function`);
      binding.value = v;
      this.options.observer?.value(decl.name.span, v, scope);
      this.pendingConsts.get(scope)?.delete(decl.name.name);
      return v;
    } finally {
      this.activeConsts.delete(decl);
    }
  }

  // ---------------------------------------------------------------- types

  /** `path` names the component being declared, so that traced instances get their own parameters. */
  private evalType(t: A.TypeExpr, scope: Scope, path = ""): TypeVal {
    const v = this.evalTypeExpr(t, scope, path);
    // A tensor or module annotation, as evaluated here (`f32[B, Zc, H, W]` as `f32[B, 4, 8, 8]`).
    if (v.k === "tensor" || v.k === "instance" || v.k === "array") this.options.observer?.value(t.span, this.valueOf(v), scope);
    return v;
  }

  private evalTypeExpr(t: A.TypeExpr, scope: Scope, path: string): TypeVal {
    const span = t.span;
    switch (t.kind) {
      case "tuple":
        return { k: "tuple", items: t.elements.map((e) => this.evalType(e, scope)), span };
      case "record": {
        const fields = new Map<string, TypeVal>();
        for (const f of t.fields) {
          if (fields.has(f.name.name)) this.error("E0302", f.name.span, `field '${f.name.name}' appears twice`);
          fields.set(f.name.name, this.evalType(f.type, scope));
        }
        return { k: "record", fields, span };
      }
      case "array": {
        const el = this.evalType(t.element, scope, `${path}.0`);
        if (el.k === "error") return el;
        if (el.k !== "instance") {
          this.error("E0401", t.element.span, `an array type [T; N] holds modules, but T here is not a module`);
          return { k: "error", span };
        }
        const count = this.eval(t.count, scope);
        if (count.k !== "int") {
          if (count.k !== "error") this.error("E0401", t.count.span, `an array's length is a compile-time integer, but got ${describe(count)}`);
          return { k: "error", span };
        }
        const n = count.value.value;
        if (n !== undefined && n < 0) this.error("E0407", t.count.span, `an array's length must be ≥ 0, got ${count.value}`);
        if (n !== undefined && n > MAX_UNROLL) {
          this.error("E0409", t.count.span, `an array of ${n} modules; the limit is ${MAX_UNROLL}`);
          return { k: "error", span };
        }
        if (!this.tracer || n === undefined) return { k: "array", inst: el.inst, count: count.value, span };
        const elements: Instance[] = [];
        for (let i = 0; i < n; i++) {
          const e = i === 0 ? el : this.evalType(t.element, scope, `${path}.${i}`);
          if (e.k === "instance") elements.push(e.inst);
        }
        return { k: "array", inst: el.inst, count: count.value, elements, span };
      }
      case "named":
        return this.evalNamedType(t, scope, path);
    }
  }

  private evalNamedType(t: Extract<A.TypeExpr, { kind: "named" }>, scope: Scope, path: string): TypeVal {
    const span = t.span;
    const head = t.path[0]!;
    if (t.path.length === 1 && DTYPE_VALUES.has(head.name) && (t.shape !== null || head.name !== "bool")) {
      if (t.args.length > 0) this.error("E0201", t.args[0]!.span, `a tensor type takes its shape in brackets: ${head.name}[...]`);
      const shape = t.shape ? this.evalShape(t.shape, scope) : [];
      return shape ? { k: "tensor", dtype: head.name as DType, shape, span } : { k: "error", span };
    }
    if (t.path.length === 1 && (head.name === "int" || head.name === "float" || head.name === "bool")) {
      if (t.shape) this.error("E0401", span, `${head.name} is a compile-time type and has no shape; for a tensor write f32[...]`);
      return { k: head.name, span };
    }
    let v = this.lookup(head.name, scope, head.span);
    for (const seg of t.path.slice(1)) v = this.member(v, seg, joinSpans(head.span, seg.span));
    if (v.k === "error") return { k: "error", span };
    if (v.k !== "decl" || v.decl.kind !== "module") {
      const hint = v.k === "decl" ? ` (${v.decl.kind === "optimizer" ? "an" : "a"} ${v.decl.kind} cannot be a component)` : "";
      this.error("E0303", span, `'${t.path.map((p) => p.name).join(".")}' is ${describe(v)}, not a type${hint}`);
      return { k: "error", span };
    }
    if (t.shape) this.error("E0401", span, `a module type takes no shape`);
    this.sites.push({ span, what: `while checking this ${v.decl.name.name}` });
    try {
      const inst = this.instantiate(v.decl, v.home, t.args, scope, span, path);
      return inst ? { k: "instance", inst, span } : { k: "error", span };
    } finally {
      this.sites.pop();
    }
  }

  /** The dims of a shape annotation; undefined when one of them was erroneous (already reported). */
  private evalShape(items: readonly A.DimItem[], scope: Scope): Dim[] | undefined {
    const out: Dim[] = [];
    let ok = true;
    for (const item of items) {
      if (item.kind === "spread") {
        const v = this.lookup(item.name.name, scope, item.name.span);
        if (v.k === "list" && v.items.every((i) => i.k === "int")) out.push(...v.items.map((i) => (i as { value: Dim }).value));
        else {
          if (v.k !== "error") this.error("E0401", item.span, `'...${item.name.name}' must be a shape pack (declared <...${item.name.name}>), but it is ${describe(v)}`);
          ok = false;
        }
        continue;
      }
      const v = this.eval(item.expr, scope);
      if (v.k === "int") {
        if (v.value.value !== undefined && v.value.value < 1) {
          this.error("E0407", item.expr.span, `dims must be ≥ 1, but this one is ${v.value}`);
          ok = false;
        }
        out.push(v.value);
      } else {
        if (v.k !== "error") this.error("E0401", item.expr.span, `a dim must be a compile-time integer, but this is ${describe(v)}`);
        ok = false;
      }
    }
    return ok ? out : undefined;
  }

  /** A value of the annotated type: how parameters, returns and entry inputs enter the evaluation. */
  private valueOf(t: TypeVal, name = "?"): Value {
    switch (t.k) {
      case "tensor":
        return tensor(t.dtype, t.shape, t.span);
      case "int":
        return { k: "int", value: Dim.symbol(name) };
      case "float":
        return { k: "float", value: undefined };
      case "bool":
        return { k: "bool", value: undefined };
      case "tuple":
        return { k: "tuple", items: t.items.map((i) => this.valueOf(i)) };
      case "record":
        return { k: "record", fields: new Map([...t.fields].map(([n, f]) => [n, this.valueOf(f)])) };
      case "instance":
        return { k: "instance", inst: t.inst };
      case "array":
        return { k: "array", element: t.inst, count: t.count, ...(t.elements && { elements: t.elements }) };
      case "error":
        return ERROR;
    }
  }

  private typeText(t: TypeVal): string {
    switch (t.k) {
      case "tensor":
        return tensorText(t);
      case "tuple":
        return `(${t.items.map((i) => this.typeText(i)).join(", ")})`;
      case "record":
        return `{ ${[...t.fields].map(([n, f]) => `${n}: ${this.typeText(f)}`).join(", ")} }`;
      case "instance":
        return t.inst.decl.name.name;
      case "array":
        return `[${t.inst.decl.name.name}; ${t.count}]`;
      default:
        return t.k;
    }
  }

  /** Checks a value against an annotation; returns the value to continue with (the annotation's, on success). */
  private expectType(v: Value, t: TypeVal, span: Span, what: string): Value {
    if (v.k === "error" || t.k === "error") return v.k === "error" ? v : ERROR;
    const declared: Note = { span: t.span, message: `declared as ${this.typeText(t)} here` };
    switch (t.k) {
      case "tensor": {
        const x = v.k === "tensor" ? v : (v.k === "int" || v.k === "float") && t.shape.length === 0 && t.dtype !== "bool" ? this.constant(v, tensor(t.dtype, [], span)) : undefined;
        if (!x) return this.error("E0401", span, `${what} should be ${tensorText(t)}, but it is ${describe(v)}`, [declared]);
        const from: Note[] = x.origin.start === span.start && x.origin.end === span.end ? [] : [{ span: x.origin, message: `its shape ${shapeText(x.shape)} comes from here` }];
        if (x.dtype !== t.dtype) return this.error("E0401", span, `${what} should be ${tensorText(t)}, but it is ${tensorText(x)} (dtype ${x.dtype}, not ${t.dtype})`, [declared, ...from]);
        if (x.shape.length !== t.shape.length) return this.error("E0404", span, `${what} should be ${tensorText(t)} (rank ${t.shape.length}), but it is ${tensorText(x)} (rank ${x.shape.length})`, [declared, ...from]);
        const bad = t.shape.findIndex((d, i) => d.differs(x.shape[i]!));
        if (bad >= 0) return this.error("E0402", span, `${what} should be ${tensorText(t)}, but it is ${tensorText(x)}: dim ${bad} is ${x.shape[bad]}, not ${t.shape[bad]}`, [declared, ...from]);
        return x;
      }
      case "int":
        if (v.k !== "int") return this.error("E0401", span, `${what} should be a compile-time int, but it is ${describe(v)}`, [declared]);
        return v;
      case "float":
        if (v.k === "int") return { k: "float", value: v.value.value };
        if (v.k !== "float") return this.error("E0401", span, `${what} should be a compile-time float, but it is ${describe(v)}`, [declared]);
        return v;
      case "bool":
        if (v.k !== "bool") return this.error("E0401", span, `${what} should be a compile-time bool, but it is ${describe(v)}`, [declared]);
        return v;
      case "tuple": {
        if (v.k !== "tuple" || v.items.length !== t.items.length) return this.error("E0401", span, `${what} should be a tuple of ${t.items.length}, but it is ${describe(v)}`, [declared]);
        return { k: "tuple", items: t.items.map((it, i) => this.expectType(v.items[i]!, it, span, `element ${i} of ${what}`)) };
      }
      case "record": {
        if (v.k !== "record") return this.error("E0401", span, `${what} should be a record { ${[...t.fields.keys()].join(", ")} }, but it is ${describe(v)}`, [declared]);
        const missing = [...t.fields.keys()].filter((n) => !v.fields.has(n));
        const extra = [...v.fields.keys()]
          .filter((n) => !t.fields.has(n))
          .map((n) => {
            const meant = closest(n, missing);
            return meant === undefined ? n : `${n} (did you mean '${meant}'?)`;
          });
        if (missing.length || extra.length)
          return this.error("E0401", span, `${what} should have the fields { ${[...t.fields.keys()].join(", ")} }${missing.length ? `; missing ${missing.join(", ")}` : ""}${extra.length ? `; unexpected ${extra.join(", ")}` : ""}`, [declared]);
        return { k: "record", fields: new Map([...t.fields].map(([n, f]) => [n, this.expectType(v.fields.get(n)!, f, span, `field '${n}' of ${what}`)])) };
      }
      case "instance":
      case "array":
        return this.error("E0303", t.span, `modules are components, not values: declare '${this.typeText(t)}' as a component and call it`);
    }
  }

  // ---------------------------------------------------------------- generics

  /** Binds explicit generic arguments to declared parameters, then defaults; unbound ones stay absent. */
  private bindGenerics(params: readonly A.GenericParam[], args: readonly { name?: A.Ident; value: Value; span: Span }[], what: string): Map<string, Value> | undefined {
    const bound = new Map<string, Value>();
    let ok = true;
    let positional = 0;
    for (const a of args) {
      const p = a.name ? params.find((q) => q.name.name === a.name!.name) : params[positional++];
      if (!p) {
        if (a.name) this.error("E0305", a.name.span, `${what} has no generic parameter '${a.name.name}'${didYouMean(a.name.name, params.map((q) => q.name.name))}`);
        else this.error("E0304", a.span, `${what} takes ${params.length} generic argument${params.length === 1 ? "" : "s"}, but got ${args.length}`);
        ok = false;
        continue;
      }
      if (bound.has(p.name.name)) {
        this.error("E0305", a.span, `generic parameter '${p.name.name}' is given twice`);
        ok = false;
        continue;
      }
      const v = this.checkGenericKind(p, a.value, a.span);
      if (v.k === "error") ok = false;
      bound.set(p.name.name, v);
    }
    return ok ? bound : undefined;
  }

  private checkGenericKind(p: A.GenericParam, v: Value, span: Span): Value {
    if (v.k === "error") return v;
    switch (p.kind) {
      case "dim":
      case "int":
        if (v.k !== "int") return this.error("E0401", span, `generic parameter '${p.name.name}' is ${p.kind === "dim" ? "a dim" : "an int"}, but got ${describe(v)}`);
        if (p.kind === "dim" && v.value.value !== undefined && v.value.value < 1) return this.error("E0407", span, `'${p.name.name}' is a dim and must be ≥ 1, but got ${v.value}`);
        return v;
      case "float":
        if (v.k === "int") return { k: "float", value: v.value.value };
        if (v.k !== "float") return this.error("E0401", span, `generic parameter '${p.name.name}' is a float, but got ${describe(v)}`);
        return v;
      case "bool":
        if (v.k !== "bool") return this.error("E0401", span, `generic parameter '${p.name.name}' is a bool, but got ${describe(v)}`);
        return v;
      case "pack":
        if (v.k !== "list" || !v.items.every((i) => i.k === "int")) return this.error("E0401", span, `'...${p.name.name}' is a shape pack, but got ${describe(v)}`);
        return v;
    }
  }

  /** Fills defaults (evaluated with the earlier generics in scope) and reports the ones still missing. */
  private completeGenerics(params: readonly A.GenericParam[], bound: Map<string, Value>, home: Scope, at: Span, what: string, symbolic: boolean): Scope | undefined {
    const scope = new Scope(home);
    let ok = true;
    for (const p of params) {
      let v = bound.get(p.name.name);
      if (!v && p.default) v = this.checkGenericKind(p, this.eval(p.default, scope), p.default.span);
      if (!v && symbolic) v = this.symbolFor(p);
      if (!v) {
        this.error("E0408", at, `cannot infer ${what}'s generic parameter '${p.name.name}'; pass it explicitly, e.g. ${what}::<${p.name.name} = ...>`, [{ span: p.span, message: "declared here" }]);
        ok = false;
        continue;
      }
      scope.define(p.name.name, v, p.name.span);
    }
    return ok ? scope : undefined;
  }

  /** `--bind` values of a model's or an entry's generics; they win over the declared defaults. */
  private userBindings(params: readonly A.GenericParam[]): Map<string, Value> {
    const bound = new Map<string, Value>();
    for (const p of params) if ((p.kind === "dim" || p.kind === "int") && this.options.bindings?.[p.name.name] !== undefined) bound.set(p.name.name, this.symbolFor(p));
    return bound;
  }

  private symbolFor(p: A.GenericParam): Value {
    const bound = this.options.bindings?.[p.name.name];
    switch (p.kind) {
      case "dim":
      case "int":
        return intValue(bound !== undefined ? Dim.const(bound) : Dim.symbol(p.name.name));
      case "float":
        return { k: "float", value: undefined };
      case "bool":
        return { k: "bool", value: undefined };
      case "pack":
        return ERROR;
    }
  }

  // ---------------------------------------------------------------- modules

  private instantiate(decl: A.ContainerDecl, home: Home, args: readonly A.GenericArg[], scope: Scope, span: Span, path: string): Instance | undefined {
    const values = args.map((a) => ({ ...(a.name && { name: a.name }), value: this.eval(a.value, scope), span: a.span }));
    if (values.some((v) => v.value.k === "error")) return undefined;
    const bound = this.bindGenerics(decl.generics, values, decl.name.name);
    if (!bound) return undefined;
    const genScope = this.completeGenerics(decl.generics, bound, home.scope, span, decl.name.name, false);
    if (!genScope) return undefined;
    return this.buildInstance(decl, home, genScope, span, path);
  }

  private buildInstance(decl: A.ContainerDecl, home: Home, genScope: Scope, span: Span, path = ""): Instance | undefined {
    // Checking shares one instance per type; tracing needs one per place, each with its own parameters.
    const key = `${home.key}.${decl.name.name}<${decl.generics.map((g) => typeKey(genScope.ownBinding(g.name.name)!.value)).join(",")}>${this.tracer ? `@${path}` : ""}`;
    const memo = this.instances.get(key);
    if (memo === "active") {
      this.error("E0307", span, `module '${decl.name.name}' contains itself`);
      return undefined;
    }
    if (memo) return memo;
    this.instances.set(key, "active");
    const members = new Map<string, Value>();
    const inst: Instance = { decl, members, scope: genScope, filePath: home.filePath, key, path };
    const pending = new Map<string, A.ConstDecl>();
    this.pendingConsts.set(genScope, pending);
    try {
      for (const m of decl.members) this.declareMember(inst, m, pending);
    } finally {
      this.instances.set(key, inst);
    }
    return inst;
  }

  private declareMember(inst: Instance, m: A.Member, pending: Map<string, A.ConstDecl>): void {
    const scope = inst.scope;
    const kind = inst.decl.kind;
    if (m.kind === "entry") {
      // Models check their entries once every member exists.
      if (kind !== "model") this.error("E0601", m.span, `entries belong in a model, not in a ${kind}`);
      return;
    }
    const prior = scope.ownBinding(m.name.name);
    if (prior) {
      this.error("E0302", m.name.span, `'${m.name.name}' is declared twice in ${kind} ${inst.decl.name.name}`, prior.span ? [{ span: prior.span, message: "first declared here" }] : []);
      return;
    }
    const define = (v: Value) => {
      scope.define(m.name.name, v, m.name.span);
      inst.members.set(m.name.name, v);
    };
    const childPath = inst.path ? `${inst.path}.${m.name.name}` : m.name.name;
    switch (m.kind) {
      case "const":
        pending.set(m.name.name, m);
        scope.define(m.name.name, ERROR, m.name.span);
        inst.members.set(m.name.name, this.lookup(m.name.name, scope, m.name.span));
        return;
      case "fn":
        define({ k: "fn", decl: m, home: inst });
        return;
      case "param": {
        if (kind === "optimizer") {
          this.error("E0602", m.span, "an optimizer has no learnable params; use `state NAME = INIT`");
          return;
        }
        const t = this.evalType(m.type, scope);
        if (t.k !== "tensor") {
          if (t.k !== "error") this.error("E0401", m.type.span, `a param is a tensor, like f32[In, Out], but this type is ${this.typeText(t)}`);
          define(ERROR);
          return;
        }
        const value = tensor(t.dtype, t.shape, t.span);
        if (this.tracer) define(this.tracer.param(childPath, value, () => this.eval(m.init, scope)));
        else {
          this.checkInit(m.init, value, scope, `the initial value of param '${m.name.name}'`);
          define(value);
        }
        return;
      }
      case "component": {
        if (kind === "optimizer") {
          this.error("E0602", m.span, "an optimizer cannot have components");
          return;
        }
        const t = this.evalType(m.type, scope, childPath);
        if (t.k === "instance" || t.k === "array") define(this.valueOf(t));
        else {
          if (t.k !== "error") this.error("E0401", m.type.span, `a component's type is a module (Linear<In, Out>) or an array of modules ([Linear<H, H>; N]), but this is ${this.typeText(t)}${t.k === "tensor" ? `; for a learnable tensor write \`param ${m.name.name}: ${this.typeText(t)} = ...\`` : ""}`);
          define(ERROR);
        }
        return;
      }
      case "hyper": {
        if (kind !== "model") {
          this.error("E0601", m.span, `'hyper' declares a run-time hyperparameter of a model; in a ${kind} use a generic parameter or a const`);
          return;
        }
        const v = this.eval(m.value, scope);
        if (v.k !== "int" && v.k !== "float" && v.k !== "error") this.error("E0401", m.value.span, `a hyper's default is a number, but this is ${describe(v)}`);
        else if (v.k === "int" && v.value.value === undefined) this.error("E0310", m.value.span, "a hyper's default must be known at compile time");
        const h = tensor("f32", [], m.name.span);
        const value = v.k === "int" ? v.value.value : v.k === "float" ? v.value : undefined;
        define(this.tracer ? this.tracer.input(m.name.name, h, value) : h);
        return;
      }
      case "state": {
        if (kind !== "optimizer") this.error("E0601", m.span, "'state' belongs in an optimizer");
        return;
      }
    }
  }

  /** An initialiser must broadcast to its tensor's shape and have its dtype. */
  private checkInit(init: A.Expr, target: TensorValue, scope: Scope, what: string): void {
    const v = this.eval(init, scope);
    if (v.k === "error") return;
    if (v.k === "int" || v.k === "float") return;
    if (v.k !== "tensor") {
      this.error("E0401", init.span, `${what} must be a number or a tensor, but it is ${describe(v)}`);
      return;
    }
    if (v.dtype !== target.dtype) {
      this.error("E0401", init.span, `${what} is ${tensorText(v)}, but the param is ${tensorText(target)}`);
      return;
    }
    const r = broadcastShapes(v.shape, target.shape);
    if ("bad" in r || r.shape.length !== target.shape.length || r.shape.some((d, i) => d.differs(target.shape[i]!)))
      this.error("E0402", init.span, `${what} is ${tensorText(v)}, which does not broadcast to the declared ${tensorText(target)}`, [{ span: target.origin, message: "declared here" }]);
  }

  private checkModuleAbstractly(decl: A.ContainerDecl, home: Home): void {
    const genScope = this.completeGenerics(decl.generics, this.userBindings(decl.generics), home.scope, decl.name.span, decl.name.name, true);
    if (!genScope) return;
    const inst = this.buildInstance(decl, home, genScope, decl.name.span);
    if (!inst) return;
    for (const m of decl.members) if (m.kind === "fn") this.guarded(() => this.checkFnAbstractly({ k: "fn", decl: m, home: inst }));
  }

  /** A function whose parameters are all annotated is checked once with symbolic generics. */
  private checkFnAbstractly(fn: Extract<Value, { k: "fn" }>): void {
    const d = fn.decl;
    if (d.generics.some((g) => g.kind === "pack") || d.params.some((p) => !p.type)) return;
    const genScope = this.completeGenerics(d.generics, new Map(), fn.home.scope, d.name.span, d.name.name, true);
    if (!genScope) return;
    const args = d.params.map((p) => ({ value: this.valueOf(this.evalType(p.type!, genScope), p.name.name), span: p.span }));
    if (args.some((a) => a.value.k === "error")) return;
    this.invoke(fn, genScope, args.map((a) => a.value), d.name.span);
  }

  // ---------------------------------------------------------------- models, entries, optimizers

  private checkModel(decl: A.ContainerDecl, home: Home): void {
    const genScope = this.completeGenerics(decl.generics, this.userBindings(decl.generics), home.scope, decl.name.span, decl.name.name, true);
    if (!genScope) return;
    const inst = this.buildInstance(decl, home, genScope, decl.name.span);
    if (!inst) return;
    const unbound = (gs: readonly A.GenericParam[]) => gs.some((g) => !g.default && this.options.bindings?.[g.name.name] === undefined);
    for (const m of decl.members) if (m.kind === "entry") this.guarded(() => this.checkEntry(inst, m), unbound(decl.generics) || unbound(m.generics));
  }

  private checkEntry(model: Instance, e: A.EntryMember): void {
    const scope = this.completeGenerics(e.generics, this.userBindings(e.generics), model.scope, e.name.span, e.name.name, true)!;
    const inputs: CheckedEntry["inputs"] = [];
    for (const p of e.params) {
      if (!p.type) {
        this.error("E0601", p.name.span, `entry input '${p.name.name}' needs a type, like ${p.name.name}: f32[B, 1, 28, 28]`);
        scope.define(p.name.name, ERROR, p.name.span);
        continue;
      }
      const t = this.evalType(p.type, scope);
      if (t.k !== "tensor" && t.k !== "error") this.error("E0601", p.type.span, `entry inputs are tensors, but '${p.name.name}' is ${this.typeText(t)}`);
      if (p.default) this.error("E0601", p.default.span, "entry inputs have no defaults");
      scope.define(p.name.name, this.valueOf(t), p.name.span);
      inputs.push({ name: p.name.name, type: this.typeText(t) });
    }
    const ret = this.evalType(e.returnType, scope);
    const body = this.inEntry(e, () => this.evalBlockValue(e.body, new Scope(scope), `entry '${e.name.name}'`));
    this.expectType(body, ret, e.body.value?.span ?? e.body.span, `the result of entry '${e.name.name}'`);
    if (e.training) this.checkTraining(model, e, ret);
    this.entries.push({ model: model.decl.name.name, name: e.name.name, training: !!e.training, inputs, output: this.typeText(ret) });
  }

  private inEntry<T>(e: A.EntryMember, body: () => T): T {
    const outer = this.entry;
    this.entry = e;
    try {
      return body();
    } finally {
      this.entry = outer;
    }
  }

  private checkTraining(model: Instance, e: A.EntryMember, ret: TypeVal): void {
    const tr = e.training!;
    if (ret.k === "record") {
      const loss = ret.fields.get(tr.minimize.name);
      if (!loss) this.error("E0601", tr.minimize.span, `'${tr.minimize.name}' is not a field of the result { ${[...ret.fields.keys()].join(", ")} }${didYouMean(tr.minimize.name, ret.fields.keys())}`);
      else if (loss.k !== "tensor" || loss.dtype !== "f32" || loss.shape.length !== 0)
        this.error("E0601", tr.minimize.span, `the minimised field '${tr.minimize.name}' must be an f32 scalar (f32), but it is ${this.typeText(loss)}`, [{ span: loss.span, message: "declared here" }]);
    } else if (ret.k !== "error") this.error("E0601", e.returnType.span, `a train entry returns a record of scalars, like { loss: f32, bpp: f32 }, but this is ${this.typeText(ret)}`);

    this.checkOptimizerUse(tr.optimizer, model.scope, this.trainedParams(model, e));
  }

  /** The parameters a train entry updates: all of the model's, or those of the components after `over`. */
  private trainedParams(model: Instance, e: A.EntryMember): { name: string; value: TensorValue }[] {
    const trained: { name: string; value: TensorValue }[] = [];
    const collect = (inst: Instance, prefix: string) => {
      for (const [name, v] of inst.members) {
        if (v.k === "tensor" && inst.decl.members.some((m) => m.kind === "param" && m.name.name === name)) trained.push({ name: prefix + name, value: v });
        else if (v.k === "instance") collect(v.inst, `${prefix}${name}.`);
        else if (v.k === "array" && v.elements) v.elements.forEach((el, i) => collect(el, `${prefix}${name}.${i}.`));
        else if (v.k === "array" && (v.count.value ?? 1) > 0) collect(v.element, `${prefix}${name}.*.`);
      }
    };
    const over = e.training?.over;
    if (!over) {
      collect(model, "");
      return trained;
    }
    for (const o of over) {
      const v = model.members.get(o.name);
      if (!v || (v.k !== "instance" && v.k !== "array" && v.k !== "tensor")) {
        const names = [...model.members].filter(([, x]) => x.k === "instance" || x.k === "array" || x.k === "tensor").map(([n]) => n);
        this.error("E0601", o.span, `'${o.name}' is not a component or param of model ${model.decl.name.name}${didYouMean(o.name, names)}`);
      } else if (v.k === "tensor") trained.push({ name: o.name, value: v });
      else if (v.k === "instance") collect(v.inst, `${o.name}.`);
      else if (v.elements) v.elements.forEach((el, i) => collect(el, `${o.name}.${i}.`));
      else collect(v.element, `${o.name}.*.`);
    }
    return trained;
  }

  private checkOptimizerUse(expr: A.Expr, scope: Scope, trained: { name: string; value: TensorValue }[]): void {
    const callee = expr.kind === "call" ? expr.callee : expr;
    const v = this.eval(callee, scope);
    if (v.k === "error") return;
    if (v.k !== "decl" || v.decl.kind !== "optimizer") {
      this.error("E0303", callee.span, `'with' takes an optimizer, like Adam(lr = 1e-3), but this is ${describe(v)}`);
      return;
    }
    const args = expr.kind === "call" ? expr.args : [];
    const opt = this.optimizerInstance(v.decl, v.home, args, scope, expr.span);
    if (!opt) return;
    const shapes = new Map<string, TensorValue>();
    for (const t of trained) shapes.set(tensorText(t.value), t.value);
    if (shapes.size === 0) shapes.set("f32[P]", tensor("f32", [Dim.symbol("P")], expr.span));
    for (const p of shapes.values()) this.guarded(() => this.checkUpdate(opt, p, expr.span));
  }

  /**
   * The optimizer's arguments become run-time scalars in its scope: a number an input (`optimizer.NAME`, which
   * `--lr` sets), an f32 scalar expression (a schedule of train_step() and hypers) its value at each step; an
   * argument declared with a type is a compile-time value.
   */
  private optimizerInstance(decl: A.ContainerDecl, home: Home, args: readonly A.Arg[], scope: Scope | undefined, at: Span): Instance | undefined {
    const genScope = this.completeGenerics(decl.generics, new Map(), home.scope, at, decl.name.name, true);
    if (!genScope) return undefined;
    const given = new Map<string, A.Arg>();
    let positional = 0;
    for (const a of args) {
      const p = a.name ? decl.params.find((q) => q.name.name === a.name!.name) : decl.params[positional++];
      if (!p) {
        if (a.name) this.error("E0305", a.name.span, `optimizer ${decl.name.name} has no argument '${a.name.name}'${didYouMean(a.name.name, decl.params.map((q) => q.name.name))}`);
        else this.error("E0304", a.span, `optimizer ${decl.name.name} takes ${decl.params.length} arguments, but got more`);
        continue;
      }
      if (given.has(p.name.name)) this.error("E0305", a.span, `argument '${p.name.name}' is given twice`);
      given.set(p.name.name, a);
    }
    for (const p of decl.params) {
      const a = given.get(p.name.name);
      const expr = a?.value ?? p.default;
      if (!expr) {
        this.error("E0306", at, `optimizer ${decl.name.name} needs the argument '${p.name.name}'`, [{ span: p.span, message: "declared here" }]);
        continue;
      }
      const v = this.eval(expr, a && scope ? scope : genScope);
      // An argument declared with a type (`max_grad_norm: float`) is a compile-time value, as a function's is: what
      // it switches off is not built.
      if (p.type) {
        genScope.define(p.name.name, this.expectType(v, this.evalType(p.type, genScope), expr.span, `argument '${p.name.name}' of ${decl.name.name}`), p.name.span);
        continue;
      }
      if (v.k === "tensor" && v.dtype === "f32" && v.shape.length === 0) {
        genScope.define(p.name.name, v, p.name.span);
        continue;
      }
      if (v.k !== "int" && v.k !== "float" && v.k !== "error")
        this.error("E0401", expr.span, `optimizer arguments are numbers or f32 scalars (a schedule: 3e-4 * cosine_decay(train_step(), 10000.0, 0.1)), but '${p.name.name}' is ${describe(v)}`);
      const arg = tensor("f32", [], p.span);
      const value = v.k === "int" ? v.value.value : v.k === "float" ? v.value : undefined;
      genScope.define(p.name.name, this.tracer ? this.tracer.input(`optimizer.${p.name.name}`, arg, value) : arg, p.name.span);
    }
    return this.buildInstance(decl, home, genScope, at);
  }

  private checkUpdate(opt: Instance, p: TensorValue, at: Span): void {
    const decl = opt.decl;
    const update = opt.members.get("update");
    if (!update || update.k !== "fn") this.fatal("E0602", decl.name.span, `optimizer ${decl.name.name} needs \`fn update(p, g, step)\``);
    if (update.decl.params.length !== 3) this.fatal("E0602", update.decl.name.span, `an optimizer's update takes (p, g, step): the parameter, its gradient and the step count`);
    const states = decl.members.filter((m): m is A.StateMember => m.kind === "state");
    const scope = new Scope(opt.scope);
    for (const s of states) {
      const init = this.eval(s.init, opt.scope);
      if (init.k === "tensor" || (init.k !== "int" && init.k !== "float" && init.k !== "error")) this.error("E0602", s.init.span, `a state's initial value is a number (the state is a tensor shaped like the parameter), but this is ${describe(init)}`);
      scope.define(s.name.name, tensor(p.dtype, p.shape, s.name.span), s.name.span);
    }
    const fn: Extract<Value, { k: "fn" }> = { k: "fn", decl: update.decl, home: { ...opt, scope } };
    const result = this.invoke(fn, new Scope(scope), [tensor(p.dtype, p.shape, at), tensor(p.dtype, p.shape, at), tensor("f32", [], at)], at);
    if (result.k === "error") return;
    const where = update.decl.body.value?.span ?? update.decl.body.span;
    if (result.k !== "record") this.fatal("E0602", where, `update must return a record { ${["p", ...states.map((s) => s.name.name)].map((n) => `${n}: ...`).join(", ")} }, but returns ${describe(result)}`);
    for (const name of ["p", ...states.map((s) => s.name.name)]) {
      const f = result.fields.get(name);
      if (!f) this.error("E0602", where, `update's result has no field '${name}': it must return the new parameter p and every state`);
      else this.expectType(f, { k: "tensor", dtype: p.dtype, shape: p.shape, span: at }, where, `field '${name}' of update's result`);
    }
  }

  private checkOptimizerAbstractly(decl: A.ContainerDecl, home: Home): void {
    const opt = this.optimizerInstance(decl, home, [], undefined, decl.name.span);
    if (opt) this.checkUpdate(opt, tensor("f32", [Dim.symbol("P")], decl.name.span), decl.name.span);
  }

  // ---------------------------------------------------------------- lowering API
  // With a tracer, evaluating an entry builds its graph. After `prepare`, `traceModel` turns parameters and
  // hypers into graph nodes, `traceEntry` evaluates an entry, and `traceUpdate` one parameter's optimizer step.
  // The program must have checked clean with the same bindings; an error here is a compiler bug.

  traceModel(name: string): Instance {
    for (const f of this.program.files.values())
      for (const d of f.ast?.decls ?? []) {
        if (d.kind !== "model" || d.name.name !== name) continue;
        const home = this.fileHomes.get(f.path)!;
        const genScope = this.completeGenerics(d.generics, this.userBindings(d.generics), home.scope, d.name.span, name, true);
        const inst = genScope && this.buildInstance(d, home, genScope, d.name.span);
        if (inst) return inst;
      }
    throw new Error(`no model named ${name}`);
  }

  traceEntry(model: Instance, e: A.EntryMember): { inputs: { name: string; value: TensorValue }[]; result: Value } {
    const scope = this.completeGenerics(e.generics, this.userBindings(e.generics), model.scope, e.name.span, e.name.name, true)!;
    const inputs = e.params.map((p) => {
      const t = this.evalType(p.type!, scope);
      if (t.k !== "tensor") throw new Error(`entry input ${p.name.name} is not a tensor`);
      const value = this.tracer ? this.tracer.input(p.name.name, tensor(t.dtype, t.shape, t.span)) : tensor(t.dtype, t.shape, t.span);
      scope.define(p.name.name, value, p.name.span);
      return { name: p.name.name, value };
    });
    return { inputs, result: this.inEntry(e, () => this.evalBlockValue(e.body, new Scope(scope), `entry '${e.name.name}'`)) };
  }

  /** The parameters a train entry updates, with their dotted names. */
  trainedParamsOf(model: Instance, e: A.EntryMember): { name: string; value: TensorValue }[] {
    return this.trainedParams(model, e);
  }

  /** A train entry's optimizer; with a tracer its arguments become inputs named `optimizer.ARG`. */
  traceOptimizer(model: Instance, e: A.EntryMember): Instance {
    const expr = e.training!.optimizer;
    const callee = this.eval(expr.kind === "call" ? expr.callee : expr, model.scope);
    if (callee.k !== "decl") throw new Error("the optimizer is not a declaration");
    return this.optimizerInstance(callee.decl, callee.home, expr.kind === "call" ? expr.args : [], model.scope, expr.span)!;
  }

  /** One parameter's update: `states` holds the current optimizer state by state name. */
  traceUpdate(opt: Instance, p: TensorValue, g: TensorValue, step: TensorValue, states: ReadonlyMap<string, TensorValue>): Value {
    const update = opt.members.get("update") as Extract<Value, { k: "fn" }>;
    const scope = new Scope(opt.scope);
    for (const [name, v] of states) scope.define(name, v, undefined);
    return this.invoke({ k: "fn", decl: update.decl, home: { ...opt, scope } }, new Scope(scope), [p, g, step], opt.decl.name.span);
  }

  /** The names of an optimizer's state tensors, in declaration order. */
  stateNames(opt: Instance): string[] {
    return opt.decl.members.filter((m) => m.kind === "state").map((m) => m.name.name);
  }

  // ---------------------------------------------------------------- calls

  private callValue(callee: Value, expr: Extract<A.Expr, { kind: "call" }>, scope: Scope): Value {
    const args = expr.args.map((a) => ({ ...(a.name && { name: a.name }), value: this.eval(a.value, scope), span: a.span }));
    const generics = expr.generics.map((g) => ({ ...(g.name && { name: g.name }), value: this.eval(g.value, scope), span: g.span }));
    if (callee.k === "error" || args.some((a) => hasError(a.value)) || generics.some((g) => hasError(g.value))) return ERROR;
    switch (callee.k) {
      case "builtin":
        if (generics.length > 0) return this.error("E0304", expr.generics[0]!.span, `${callee.name} takes no generic arguments`);
        return this.callBuiltin(callee.name, args, expr.span);
      case "fn":
        return this.callFn(callee, generics, args, expr.span);
      case "instance": {
        const fwd = callee.inst.members.get("forward");
        if (!fwd || fwd.k !== "fn") return this.error("E0303", expr.callee.span, `module ${callee.inst.decl.name.name} has no \`fn forward\`, so it cannot be called; call one of its functions by name`);
        return this.callFn(fwd, generics, args, expr.span);
      }
      case "decl":
        if (callee.decl.kind === "module")
          return this.error("E0303", expr.callee.span, `${callee.decl.name.name} is a module: declare a component \`name: ${callee.decl.name.name}<...>\` and call the component`);
        return this.error("E0303", expr.callee.span, `${describe(callee)} cannot be called here`);
      default:
        return this.error("E0303", expr.callee.span, `${describe(callee)} is not a function`);
    }
  }

  private callBuiltin(name: string, args: { name?: A.Ident; value: Value; span: Span }[], span: Span): Value {
    const b = BUILTINS.get(name)!;
    if (name === "train_step" && this.entry && !this.entry.training)
      return this.error("E0603", span, `train_step() is the number of the optimizer step being taken, so it exists only while a train entry runs; entry '${this.entry.name.name}' is not a train entry`, [
        { span: this.entry.name.span, message: "the entry evaluated here" },
      ]);
    if (name === "grad_norm" && this.entry)
      return this.error("E0604", span, `grad_norm() is the norm of a step's gradients, which exist only once the entry's loss is computed: use it in an optimizer (its update or arguments), not in entry '${this.entry.name.name}'`, [
        { span: this.entry.name.span, message: "the entry evaluated here" },
      ]);
    const misuse = misusedBuiltin(name, args);
    if (misuse) return this.error("E0401", misuse.span, misuse.message);
    const bound = new Map<string, Value>();
    const spans = new Map<string, Span>();
    let positional = 0;
    for (const a of args) {
      const p = a.name ? b.params.find((q) => q.name === a.name!.name) : b.params[positional++];
      if (!p) {
        if (a.name) return this.error("E0305", a.name.span, `${name} has no argument '${a.name.name}'; it takes (${b.params.map((q) => q.name).join(", ")})${didYouMean(a.name.name, b.params.map((q) => q.name))}`);
        return this.error("E0304", a.span, `${name} takes ${b.params.length} argument${b.params.length === 1 ? "" : "s"} (${b.params.map((q) => q.name).join(", ")}), but got ${args.length}`);
      }
      if (bound.has(p.name)) return this.error("E0305", a.span, `argument '${p.name}' of ${name} is given twice`);
      bound.set(p.name, a.value);
      spans.set(p.name, a.span);
    }
    for (const p of b.params) {
      if (bound.has(p.name)) continue;
      if (!p.default) return this.error("E0306", span, `${name} needs the argument '${p.name}': ${name}(${b.params.map((q) => (q.default ? `${q.name} = ...` : q.name)).join(", ")})`);
      bound.set(p.name, p.default);
    }
    const result = b.run(bound, this.opContext(span, (n) => spans.get(n) ?? span));
    return this.tracer && result.k !== "error" ? this.tracer.builtin(name, bound, result) : result;
  }

  private opContext(span: Span, argSpan: (name: string) => Span): OpContext {
    return { span, argSpan, error: (code, s, message, notes) => this.error(code, s, message, notes) };
  }

  private callFn(fn: Extract<Value, { k: "fn" }>, generics: { name?: A.Ident; value: Value; span: Span }[], args: { name?: A.Ident; value: Value; span: Span }[], span: Span): Value {
    const d = fn.decl;
    // Arguments to parameters.
    const bound: (Value | undefined)[] = d.params.map(() => undefined);
    const argSpans: Span[] = d.params.map(() => span);
    let positional = 0;
    for (const a of args) {
      const i = a.name ? d.params.findIndex((p) => p.name.name === a.name!.name) : positional++;
      if (i < 0 || i >= d.params.length) {
        if (a.name) return this.error("E0305", a.name.span, `${d.name.name} has no parameter '${a.name.name}'${didYouMean(a.name.name, d.params.map((p) => p.name.name))}`, [{ span: d.name.span, message: "declared here" }]);
        return this.error("E0304", a.span, `${d.name.name} takes ${d.params.length} argument${d.params.length === 1 ? "" : "s"}, but got ${args.length}`, [{ span: d.name.span, message: "declared here" }]);
      }
      if (bound[i]) return this.error("E0305", a.span, `argument '${d.params[i]!.name.name}' is given twice`);
      bound[i] = a.value;
      argSpans[i] = a.span;
    }
    // Explicit generics, then unification with the annotations, then defaults.
    const gens = this.bindGenerics(d.generics, generics, d.name.name);
    if (!gens) return ERROR;
    const unknown = new Set(d.generics.map((g) => g.name.name).filter((n) => !gens.has(n)));
    d.params.forEach((p, i) => {
      const v = bound[i];
      if (p.type && v) this.unify(p.type, v, gens, unknown);
    });
    // A rank mismatch explains a generic that could not be inferred better than "cannot infer" would.
    for (const [i, p] of d.params.entries()) {
      const v = bound[i];
      const rank = p.type?.kind === "named" && p.type.shape ? p.type.shape : undefined;
      if (!rank || v?.k !== "tensor" || d.generics.every((g) => gens.has(g.name.name))) continue;
      const spread = rank.some((r) => r.kind === "spread");
      const fixed = rank.length - (spread ? 1 : 0);
      if (spread ? v.shape.length < fixed : v.shape.length !== fixed)
        return this.error("E0404", argSpans[i]!, `argument '${p.name.name}' of ${d.name.name} needs rank ${spread ? `≥ ${fixed}` : fixed}, but it is ${tensorText(v)} (rank ${v.shape.length})`, [
          { span: p.type!.span, message: "declared here" },
        ]);
    }
    const scope = this.completeGenerics(d.generics, gens, fn.home.scope, span, d.name.name, false);
    if (!scope) return ERROR;
    const values: Value[] = [];
    for (const [i, p] of d.params.entries()) {
      let v = bound[i];
      if (!v) {
        if (!p.default) return this.error("E0306", span, `${d.name.name} needs the argument '${p.name.name}'`, [{ span: p.span, message: "declared here" }]);
        v = this.eval(p.default, scope);
      }
      if (p.type) v = this.expectType(v, this.evalType(p.type, scope), argSpans[i]!, `argument '${p.name.name}' of ${d.name.name}`);
      if (v.k === "error") return ERROR;
      values.push(v);
    }
    return this.invoke(fn, scope, values, span);
  }

  /** Binds generic names that appear bare in an annotation to the argument's dims. */
  private unify(t: A.TypeExpr, v: Value, gens: Map<string, Value>, unknown: Set<string>): void {
    const bindName = (e: A.Expr, value: Value) => {
      if (e.kind === "name" && unknown.has(e.name) && !gens.has(e.name)) gens.set(e.name, value);
    };
    if (t.kind === "named" && t.shape && v.k === "tensor") {
      const spread = t.shape.findIndex((s) => s.kind === "spread");
      const fixed = t.shape.length - (spread >= 0 ? 1 : 0);
      if (spread < 0 ? v.shape.length !== fixed : v.shape.length < fixed) return; // reported by expectType
      t.shape.forEach((item, i) => {
        if (item.kind === "spread") {
          const len = v.shape.length - fixed;
          if (unknown.has(item.name.name) && !gens.has(item.name.name)) gens.set(item.name.name, { k: "list", items: v.shape.slice(i, i + len).map((d) => intValue(d)) });
          return;
        }
        const at = spread >= 0 && i > spread ? v.shape.length - (t.shape!.length - i) : i;
        bindName(item.expr, intValue(v.shape[at]!));
      });
    } else if (t.kind === "named" && t.path.length === 1 && !t.shape && (v.k === "int" || v.k === "float" || v.k === "bool")) {
      // `fn f(n: int)`: nothing to bind.
    } else if (t.kind === "tuple" && v.k === "tuple") t.elements.forEach((e, i) => v.items[i] && this.unify(e, v.items[i]!, gens, unknown));
    else if (t.kind === "record" && v.k === "record") for (const f of t.fields) if (v.fields.has(f.name.name)) this.unify(f.type, v.fields.get(f.name.name)!, gens, unknown);
  }

  /** Runs a function body with its generics and parameters bound; memoised on everything that matters. */
  private invoke(fn: Extract<Value, { k: "fn" }>, genScope: Scope, args: Value[], span: Span): Value {
    const d = fn.decl;
    // An entry checks its calls afresh: there grad_norm() is an error, and in a plain entry train_step() too.
    const context = this.entry ? (this.entry.training ? "train " : "plain ") : "";
    const key = `${context}${fn.home.key}::${d.name.name}<${d.generics.map((g) => typeKey(genScope.ownBinding(g.name.name)?.value ?? ERROR)).join(",")}>(${args.map(typeKey).join(",")})`;
    // Tracing evaluates every call afresh: equal types do not mean equal tensors.
    const memo = this.tracer ? undefined : this.calls.get(key);
    if (memo) return withOrigin(memo, span);
    if (this.activeFns.includes(d)) return this.error("E0307", span, `${d.name.name} calls itself: .ul functions cannot recurse (loops unroll at compile time: use \`for\`)`, [{ span: d.name.span, message: "declared here" }]);
    if (this.depth >= MAX_DEPTH) return this.error("E0307", span, `calls nest deeper than ${MAX_DEPTH}`);
    const scope = new Scope(genScope);
    d.params.forEach((p, i) => scope.define(p.name.name, args[i]!, p.name.span));
    this.activeFns.push(d);
    this.depth++;
    this.sites.push({ span, what: `while checking this call of ${d.name.name}` });
    let result: Value;
    try {
      result = this.evalBlockValue(d.body, scope, `function ${d.name.name}`);
      if (d.returnType) {
        // Callers go on with the declared type even when the body failed: their own errors still show.
        const ret = this.evalType(d.returnType, genScope);
        const checked = this.expectType(result, ret, d.body.value?.span ?? d.body.span, `the result of ${d.name.name}`);
        result = this.tracer ? checked : this.valueOf(ret);
      }
    } finally {
      this.activeFns.pop();
      this.depth--;
      this.sites.pop();
    }
    this.calls.set(key, result);
    return withOrigin(result, span);
  }

  // ---------------------------------------------------------------- blocks and statements

  private evalBlockValue(b: A.Block, scope: Scope, what: string): Value {
    try {
      this.execStmts(b.stmts, scope);
    } catch (e) {
      // The assertion said what is wrong; the rest of the block would only repeat its consequences (`D / H`
      // not divisible after `assert D % H == 0`).
      if (e instanceof FailedAssertion) return ERROR;
      throw e;
    }
    if (!b.value) return this.error("E0311", b.span, `${what} has no value: end the block with an expression`);
    return this.eval(b.value, scope);
  }

  private execStmts(stmts: readonly A.Stmt[], scope: Scope): void {
    for (const s of stmts) this.exec(s, scope);
  }

  private exec(s: A.Stmt, scope: Scope): void {
    switch (s.kind) {
      case "let": {
        let v = this.eval(s.value, scope);
        if (s.type) v = this.expectType(v, this.evalType(s.type, scope), s.value.span, `'${s.names.map((n) => n.name).join(", ")}'`);
        if (!s.tuple) {
          this.defineLocal(scope, s.names[0]!, v, false);
          return;
        }
        if (v.k !== "tuple" && v.k !== "error") this.error("E0401", s.value.span, `let (${s.names.map((n) => n.name).join(", ")}) needs a tuple, but this is ${describe(v)}`);
        else if (v.k === "tuple" && v.items.length !== s.names.length) this.error("E0401", s.value.span, `let (${s.names.map((n) => n.name).join(", ")}) needs a tuple of ${s.names.length}, but this is a tuple of ${v.items.length}`);
        s.names.forEach((n, i) => this.defineLocal(scope, n, v.k === "tuple" ? (v.items[i] ?? ERROR) : ERROR, false));
        return;
      }
      case "var": {
        let v = this.eval(s.value, scope);
        if (s.type) v = this.expectType(v, this.evalType(s.type, scope), s.value.span, `'${s.name.name}'`);
        this.defineLocal(scope, s.name, v, true);
        return;
      }
      case "assign": {
        const v = this.eval(s.value, scope);
        const b = scope.lookup(s.name.name);
        if (!b) {
          this.error("E0301", s.name.span, `unknown name '${s.name.name}'${didYouMean(s.name.name, scope.visible())}; declare it first with \`var ${s.name.name} = ...\``);
          return;
        }
        if (!b.mutable) {
          this.error("E0308", s.name.span, `'${s.name.name}' is not a var, so it cannot be reassigned; declare it with \`var\``, b.span ? [{ span: b.span, message: "declared here" }] : []);
          return;
        }
        b.value = v;
        this.options.observer?.value(s.name.span, v, scope);
        if (b.span) this.options.observer?.resolved(s.name.span, b.span);
        return;
      }
      case "for":
        this.execFor(s, scope);
        return;
      case "if":
        this.execIf(s.expr, scope);
        return;
      case "assert": {
        const c = this.eval(s.cond, scope);
        if (c.k === "error") return;
        if (c.k !== "bool") {
          this.error("E0401", s.cond.span, `assert needs a compile-time bool, but this is ${describe(c)}`);
          return;
        }
        if (c.value !== false) return;
        this.error("E0312", s.cond.span, s.message ? `assertion failed: ${s.message}` : "assertion failed");
        throw new FailedAssertion();
      }
    }
  }

  private defineLocal(scope: Scope, name: A.Ident, v: Value, mutable: boolean): void {
    if (scope.hasOwn(name.name)) {
      const prior = scope.ownBinding(name.name)!;
      this.error("E0302", name.span, `'${name.name}' is already defined in this block; ${prior.mutable ? "assign to it" : "use another name, or declare it with var"}`, prior.span ? [{ span: prior.span, message: "first defined here" }] : []);
    }
    scope.define(name.name, v, name.span, mutable);
  }

  private execFor(s: Extract<A.Stmt, { kind: "for" }>, scope: Scope): void {
    const from = this.eval(s.from, scope);
    const to = this.eval(s.to, scope);
    for (const [v, e] of [
      [from, s.from],
      [to, s.to],
    ] as const)
      if (v.k !== "int") {
        if (v.k !== "error") this.error("E0401", e.span, `loop bounds are compile-time integers, but this is ${describe(v)}`);
        return;
      }
    const a = (from as { value: Dim }).value;
    const count = (to as { value: Dim }).value.sub(a).value;
    if (count !== undefined) {
      if (count > MAX_UNROLL) {
        this.error("E0409", s.to.span, `this loop would unroll ${count} times; the limit is ${MAX_UNROLL}`);
        return;
      }
      if (this.unrolled + count > MAX_TOTAL_UNROLL) {
        this.error("E0409", s.to.span, `this loop would take the program past ${MAX_TOTAL_UNROLL} unrolled iterations in all (nested loops multiply; ${this.unrolled} so far)`);
        return;
      }
      this.unrolled += count;
      for (let i = 0; i < count; i++) {
        const body = new Scope(scope);
        body.define(s.name.name, intValue(a.add(Dim.const(i))), s.name.span);
        this.execStmts(s.body.stmts, body);
        if (s.body.value) this.error("E0201", s.body.value.span, "a loop body has no value; this expression does nothing");
      }
      return;
    }
    // Symbolic trip count: check one representative iteration; carried vars must keep their types.
    const carried = scope.mutableBindings();
    const before = carried.map((b) => b.value);
    const body = new Scope(scope);
    body.define(s.name.name, intValue(Dim.symbol(s.name.name)), s.name.span);
    this.execStmts(s.body.stmts, body);
    carried.forEach((b, i) => {
      const joined = joinValues(before[i]!, b.value);
      if (!joined) this.error("E0310", s.to.span, `the loop count is not known at compile time, and a variable changes type in the loop (from ${describe(before[i]!)} to ${describe(b.value)}); make the bound a constant`);
      b.value = joined ?? ERROR;
    });
  }

  private execIf(e: Extract<A.Expr, { kind: "if" }>, scope: Scope): void {
    const c = this.eval(e.cond, scope);
    if (c.k === "error") return;
    if (c.k !== "bool") {
      this.error("E0401", e.cond.span, `if needs a compile-time bool; for an element-wise choice between tensors use select(cond, a, b). This condition is ${describe(c)}`);
      return;
    }
    const runBranch = (b: A.Block | undefined) => {
      if (!b) return;
      this.execStmts(b.stmts, new Scope(scope));
      if (b.value) {
        if (b.value.kind === "if") this.execIf(b.value, new Scope(scope));
        else this.error("E0201", b.value.span, "this `if` is used as a statement, so its branches have no value; this expression does nothing");
      }
    };
    if (c.value !== undefined) {
      runBranch(c.value ? e.then : e.else);
      return;
    }
    // Unknown condition: check both branches from the same starting state.
    const cells = scope.mutableBindings();
    const start = cells.map((b) => b.value);
    runBranch(e.then);
    const afterThen = cells.map((b) => b.value);
    cells.forEach((b, i) => (b.value = start[i]!));
    runBranch(e.else);
    cells.forEach((b, i) => {
      const joined = joinValues(afterThen[i]!, b.value);
      if (!joined) this.error("E0401", e.cond.span, `the branches leave a variable with different types (${describe(afterThen[i]!)} vs ${describe(b.value)}) and the condition is not known at compile time`);
      b.value = joined ?? ERROR;
    });
  }

  // ---------------------------------------------------------------- expressions

  eval(e: A.Expr, scope: Scope): Value {
    const v = this.evalExpr(e, scope);
    this.options.observer?.value(e.span, v, scope);
    return v;
  }

  private evalExpr(e: A.Expr, scope: Scope): Value {
    this.lastSpan = e.span;
    switch (e.kind) {
      case "number":
        if (e.isInt) return Number.isSafeInteger(e.value) ? intValue(e.value) : this.error("E0103", e.span, `the integer ${e.text} is too large`);
        return Number.isFinite(e.value) ? { k: "float", value: e.value } : this.error("E0103", e.span, `the number ${e.text} is out of range`);
      case "bool":
        return { k: "bool", value: e.value };
      case "string":
        return { k: "string", value: e.value };
      case "name":
        return this.lookup(e.name, scope, e.span);
      case "unary":
        return this.evalUnary(e, scope);
      case "binary":
        return this.evalBinary(e, scope);
      case "call":
        return this.callValue(this.eval(e.callee, scope), e, scope);
      case "field":
        return this.member(this.eval(e.object, scope), e.field, e.span);
      case "index":
        return this.index(e, scope);
      case "tuple":
        return { k: "tuple", items: e.elements.map((x) => this.eval(x, scope)) };
      case "record": {
        const fields = new Map<string, Value>();
        for (const f of e.fields) {
          if (fields.has(f.name.name)) this.error("E0302", f.name.span, `field '${f.name.name}' appears twice`);
          fields.set(f.name.name, this.eval(f.value, scope));
        }
        return { k: "record", fields };
      }
      case "list": {
        const items: Value[] = [];
        for (const it of e.items) {
          if (it.kind === "item") items.push(this.eval(it.expr, scope));
          else {
            const v = this.lookup(it.name.name, scope, it.name.span);
            if (v.k === "list") items.push(...v.items);
            else if (v.k !== "error") this.error("E0401", it.span, `'...${it.name.name}' spreads a list or shape pack, but it is ${describe(v)}`);
          }
        }
        return { k: "list", items };
      }
      case "if":
        return this.evalIfExpr(e, scope);
    }
  }

  private evalIfExpr(e: Extract<A.Expr, { kind: "if" }>, scope: Scope): Value {
    const c = this.eval(e.cond, scope);
    if (c.k === "error") return c;
    if (c.k !== "bool") return this.error("E0401", e.cond.span, `if needs a compile-time bool; for an element-wise choice between tensors use select(cond, a, b). This condition is ${describe(c)}`);
    if (!e.else) return this.error("E0311", e.span, "an `if` used as a value needs an `else`");
    if (c.value !== undefined) return this.evalBlockValue(c.value ? e.then : e.else, new Scope(scope), "this branch");
    const a = this.evalBlockValue(e.then, new Scope(scope), "this branch");
    const b = this.evalBlockValue(e.else, new Scope(scope), "this branch");
    return joinValues(a, b) ?? this.error("E0401", e.span, `the branches give ${describe(a)} and ${describe(b)}, and the condition is not known at compile time`);
  }

  private member(obj: Value, field: A.Ident, span: Span): Value {
    const name = field.name;
    switch (obj.k) {
      case "error":
        return obj;
      case "record": {
        const f = obj.fields.get(name);
        return f ?? this.error("E0309", field.span, `the record has no field '${name}'; it has ${[...obj.fields.keys()].join(", ") || "none"}${didYouMean(name, obj.fields.keys())}`);
      }
      case "tuple": {
        const i = /^\d+$/.test(name) ? Number(name) : NaN;
        if (Number.isNaN(i)) return this.error("E0309", field.span, `a tuple's elements are read with .0, .1, ...; '${name}' is not one`);
        return obj.items[i] ?? this.error("E0309", field.span, `the tuple has ${obj.items.length} element${obj.items.length === 1 ? "" : "s"}, so .${i} does not exist`);
      }
      case "instance": {
        const m = obj.inst.members.get(name);
        const declared = obj.inst.scope.ownBinding(name)?.span;
        if (m && declared) this.options.observer?.resolved(field.span, declared);
        return m ?? this.error("E0309", field.span, `module ${obj.inst.decl.name.name} has no member '${name}'${didYouMean(name, obj.inst.members.keys())}`);
      }
      case "namespace": {
        const b = obj.file.scope.ownBinding(name);
        if (!b) return this.error("E0309", field.span, `'${name}' is not declared in ${displayPath(obj.file.filePath)}${didYouMean(name, obj.file.scope.visible())}`);
        return this.lookup(name, obj.file.scope, span);
      }
      case "tensor":
        return this.error("E0309", field.span, `tensors have no fields; shape(x) gives the shape, and slice(x, axis, start, end) a part`);
      default:
        return this.error("E0309", field.span, `${describe(obj)} has no field '${name}'`);
    }
  }

  private index(e: Extract<A.Expr, { kind: "index" }>, scope: Scope): Value {
    const obj = this.eval(e.object, scope);
    const idx = this.eval(e.index, scope);
    if (obj.k === "error" || idx.k === "error") return ERROR;
    if (obj.k === "tensor") return this.error("E0303", e.span, "tensors cannot be indexed with [...]; use slice(x, axis, start, end) or reshape");
    if (obj.k !== "array" && obj.k !== "list" && obj.k !== "tuple") return this.error("E0303", e.object.span, `${describe(obj)} cannot be indexed`);
    if (idx.k !== "int") return this.error("E0401", e.index.span, `an index is a compile-time integer, but this is ${describe(idx)}`);
    const i = idx.value.value;
    const len = obj.k === "array" ? obj.count.value : obj.items.length;
    if (i !== undefined && len !== undefined && (i < 0 || i >= len)) return this.error("E0409", e.index.span, `index ${i} is out of range: there ${len === 1 ? "is 1 element" : `are ${len} elements`}`);
    if (obj.k === "array") return { k: "instance", inst: (i !== undefined && obj.elements?.[i]) || obj.element };
    if (i === undefined) return this.error("E0310", e.index.span, `this index (${idx.value}) must be known at compile time to pick an element`);
    return obj.items[i]!;
  }

  private evalUnary(e: Extract<A.Expr, { kind: "unary" }>, scope: Scope): Value {
    const v = this.eval(e.operand, scope);
    switch (v.k) {
      case "error":
        return v;
      case "int":
        return e.op === "-" ? { k: "int", value: v.value.neg() } : this.error("E0401", e.opSpan, "'!' needs a bool, but this is an integer");
      case "float":
        return e.op === "-" ? { k: "float", value: v.value === undefined ? undefined : -v.value } : this.error("E0401", e.opSpan, "'!' needs a bool, but this is a float");
      case "bool":
        return e.op === "!" ? { k: "bool", value: v.value === undefined ? undefined : !v.value } : this.error("E0401", e.opSpan, "'-' needs a number, but this is a bool");
      case "tensor":
        if (e.op === "!") return this.error("E0401", e.opSpan, "'!' works on compile-time bools; for a bool tensor c use select(c, 0.0, 1.0) > 0.5 or compare directly");
        if (v.dtype === "bool") return this.error("E0401", e.opSpan, "'-' needs a numeric tensor, not bool");
        return this.tracer ? this.tracer.negate(v, tensor(v.dtype, v.shape, e.span)) : tensor(v.dtype, v.shape, e.span);
      default:
        return this.error("E0401", e.operand.span, `'${e.op}' cannot be applied to ${describe(v)}`);
    }
  }

  private evalBinary(e: Extract<A.Expr, { kind: "binary" }>, scope: Scope): Value {
    const a = this.eval(e.left, scope);
    const b = this.eval(e.right, scope);
    if (a.k === "error" || b.k === "error") return ERROR;
    const op = e.op;
    const ctx = this.opContext(e.span, () => e.span);
    if (a.k === "tensor" || b.k === "tensor") {
      const result = this.tensorBinary(op, a, b, e, ctx);
      return this.tracer && result.k !== "error" ? this.tracer.binary(op, a, b, result) : result;
    }
    if (op === "@") return this.error("E0401", e.opSpan, `'@' multiplies tensors, but got ${describe(a)} and ${describe(b)}`);
    if (op === "&&" || op === "||") {
      if (a.k !== "bool" || b.k !== "bool") return this.error("E0401", e.opSpan, `'${op}' needs bools, but got ${describe(a)} and ${describe(b)}`);
      if (a.value === undefined || b.value === undefined) return { k: "bool", value: op === "&&" && (a.value === false || b.value === false) ? false : op === "||" && (a.value || b.value) ? true : undefined };
      return { k: "bool", value: op === "&&" ? a.value && b.value : a.value || b.value };
    }
    if (a.k === "bool" && b.k === "bool" && (op === "==" || op === "!=")) return { k: "bool", value: a.value === undefined || b.value === undefined ? undefined : (a.value === b.value) === (op === "==") };
    if ((a.k !== "int" && a.k !== "float") || (b.k !== "int" && b.k !== "float")) return this.error("E0401", e.opSpan, `'${op}' needs numbers or tensors, but got ${describe(a)} and ${describe(b)}`);
    if (a.k === "int" && b.k === "int") return this.intOp(op, a.value, b.value, e);
    const x = a.k === "int" ? a.value.value : a.value;
    const y = b.k === "int" ? b.value.value : b.value;
    if (op === "%") return this.error("E0401", e.opSpan, "'%' needs integers");
    if (x === undefined || y === undefined) return ["==", "!=", "<", "<=", ">", ">="].includes(op) ? { k: "bool", value: undefined } : { k: "float", value: undefined };
    return floatOp(op, x, y);
  }

  private tensorBinary(op: A.BinaryOp, a: Value, b: Value, e: Extract<A.Expr, { kind: "binary" }>, ctx: OpContext): Value {
    if (op === "@") return matmul(a, b, e.left.span, e.right.span, ctx);
    if (op === "%") return this.error("E0401", e.opSpan, "'%' is for compile-time integers; for tensors write x - floor(x / y) * y");
    if (op === "&&" || op === "||") return this.error("E0401", e.opSpan, `'${op}' is for compile-time bools; for tensors combine conditions with select`);
    const compare = op === "==" || op === "!=" || op === "<" || op === "<=" || op === ">" || op === ">=";
    return elementwiseBinary(op, a, b, e.left.span, e.right.span, ctx, compare ? "compare" : "arith");
  }

  /** A compile-time number that becomes a tensor (an argument annotated f32, say). */
  private constant(v: Value, t: TensorValue): TensorValue {
    return this.tracer ? this.tracer.constant(v, t) : t;
  }

  private intOp(op: A.BinaryOp, x: Dim, y: Dim, e: Extract<A.Expr, { kind: "binary" }>): Value {
    const int = (d: Dim | undefined, why: string): Value => (d ? { k: "int", value: d } : this.error("E0407", e.span, why));
    switch (op) {
      case "+":
        return { k: "int", value: x.add(y) };
      case "-":
        return { k: "int", value: x.sub(y) };
      case "*":
        return { k: "int", value: x.mul(y) };
      case "/":
        if (y.value === 0) return this.error("E0407", e.span, "division by zero");
        return int(x.divExact(y), `${x} is not divisible by ${y}: '/' on integers must be exact (use floordiv(a, b) to round down, or float(a) / b)`);
      case "%":
        return int(x.mod(y), "remainder of a division by zero");
      case "**":
        return y.value !== undefined && y.value < 0 ? { k: "float", value: x.value === undefined ? undefined : x.value ** y.value } : int(x.pow(y), "bad exponent");
      default: {
        const c = x.compare(y);
        const xv = x.value;
        const yv = y.value;
        if (op === "==" || op === "!=") return { k: "bool", value: c === "unknown" || (c === "different" && (xv === undefined || yv === undefined)) ? undefined : (c === "equal") === (op === "==") };
        if (xv === undefined || yv === undefined) return { k: "bool", value: undefined };
        return floatOp(op, xv, yv);
      }
    }
  }
}

/** An error anywhere inside a value (a list of tensors, say) was reported already. */
function hasError(v: Value): boolean {
  if (v.k === "error") return true;
  if (v.k === "list" || v.k === "tuple") return v.items.some(hasError);
  if (v.k === "record") return [...v.fields.values()].some(hasError);
  return false;
}

function floatOp(op: A.BinaryOp, x: number, y: number): Value {
  switch (op) {
    case "+":
      return { k: "float", value: x + y };
    case "-":
      return { k: "float", value: x - y };
    case "*":
      return { k: "float", value: x * y };
    case "/":
      return { k: "float", value: x / y };
    case "**":
      return { k: "float", value: x ** y };
    case "==":
      return { k: "bool", value: x === y };
    case "!=":
      return { k: "bool", value: x !== y };
    case "<":
      return { k: "bool", value: x < y };
    case "<=":
      return { k: "bool", value: x <= y };
    case ">":
      return { k: "bool", value: x > y };
    default:
      return { k: "bool", value: x >= y };
  }
}

/** Tensors produced by a call get the call's span as their origin; names keep where their value came from. */
function withOrigin(v: Value, span: Span): Value {
  if (v.k === "tensor") return { ...v, origin: span };
  if (v.k === "tuple") return { k: "tuple", items: v.items.map((i) => withOrigin(i, span)) };
  if (v.k === "record") return { k: "record", fields: new Map([...v.fields].map(([n, f]) => [n, withOrigin(f, span)])) };
  return v;
}
