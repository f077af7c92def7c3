// CST -> typed AST. Only called on CSTs without syntax errors, so every mandatory child is present.
import type { CstElement, CstNode, IToken } from "./chevrotain.js";
import type * as A from "./ast.js";
import { diagnostic, type Diagnostic } from "./diagnostics.js";
import type { SourceFile, Span } from "./source.js";

type Children = Record<string, CstElement[] | undefined>;

/** An `if` is an expression when it has an else and its branches end in a value. */
function producesValue(e: Extract<A.Expr, { kind: "if" }>): boolean {
  return e.else !== undefined && e.then.value !== undefined;
}

function isToken(e: CstElement): e is IToken {
  return (e as IToken).image !== undefined;
}

export class AstBuilder {
  readonly diagnostics: Diagnostic[] = [];

  constructor(private readonly file: SourceFile) {}

  // ---------------------------------------------------------------- helpers

  private span(e: CstElement): Span {
    if (isToken(e)) return this.file.span(e.startOffset, e.startOffset + e.image.length);
    const loc = e.location!;
    return this.file.span(loc.startOffset, (loc.endOffset ?? loc.startOffset) + 1);
  }

  private nodes(c: Children, label: string): CstNode[] {
    return (c[label] ?? []) as CstNode[];
  }

  private node(c: Children, label: string): CstNode {
    return this.nodes(c, label)[0]!;
  }

  private tokens(c: Children, label: string): IToken[] {
    return (c[label] ?? []) as IToken[];
  }

  private token(c: Children, label: string): IToken | undefined {
    return this.tokens(c, label)[0];
  }

  private ident(t: IToken): A.Ident {
    return { name: t.image, span: this.span(t) };
  }

  /** Children of several labels in source order (chevrotain groups them by label). */
  private ordered(c: Children, labels: string[]): CstElement[] {
    const all = labels.flatMap((l) => c[l] ?? []);
    const offset = (e: CstElement) => (isToken(e) ? e.startOffset : e.location!.startOffset);
    return all.sort((a, b) => offset(a) - offset(b));
  }

  // ---------------------------------------------------------------- declarations

  build(cst: CstNode): A.FileAst {
    return { decls: this.nodes(cst.children, "decl").map((d) => this.decl(d)) };
  }

  private decl(n: CstNode): A.Decl {
    const c = n.children;
    if (c.importDecl) return this.importDecl(this.node(c, "importDecl"));
    if (c.fromImport) return this.fromImport(this.node(c, "fromImport"));
    if (c.constDecl) return this.constDecl(this.node(c, "constDecl"));
    if (c.fnDecl) return this.fnDecl(this.node(c, "fnDecl"));
    return this.containerDecl(this.node(c, "containerDecl"));
  }

  private modulePath(n: CstNode): A.ImportSource {
    const str = this.token(n.children, "StringLiteral");
    if (str) return { kind: "file", path: JSON.parse(str.image) as string, span: this.span(str) };
    return { kind: "std", path: this.tokens(n.children, "Identifier").map((t) => t.image), span: this.span(n) };
  }

  private importDecl(n: CstNode): A.ImportDecl {
    const alias = this.token(n.children, "alias");
    return { kind: "import", source: this.modulePath(this.node(n.children, "modulePath")), ...(alias && { alias: this.ident(alias) }), span: this.span(n) };
  }

  private fromImport(n: CstNode): A.ImportDecl {
    const names = this.nodes(n.children, "importName").map((m) => {
      const alias = this.token(m.children, "alias");
      return { name: this.ident(this.token(m.children, "name")!), ...(alias && { alias: this.ident(alias) }) };
    });
    return { kind: "import", source: this.modulePath(this.node(n.children, "modulePath")), names, span: this.span(n) };
  }

  private constDecl(n: CstNode): A.ConstDecl {
    const c = n.children;
    const type = c.type ? this.type(this.node(c, "type")) : undefined;
    return { kind: "const", name: this.ident(this.token(c, "Identifier")!), ...(type && { type }), value: this.expr(this.node(c, "expr")), span: this.span(n) };
  }

  private fnDecl(n: CstNode): A.FnDecl {
    const c = n.children;
    const returnType = c.type ? this.type(this.node(c, "type")) : undefined;
    return {
      kind: "fn",
      name: this.ident(this.token(c, "Identifier")!),
      generics: c.genericParams ? this.genericParams(this.node(c, "genericParams")) : [],
      params: this.paramList(this.node(c, "paramList")),
      ...(returnType && { returnType }),
      body: this.block(this.node(c, "block")),
      span: this.span(n),
    };
  }

  private containerDecl(n: CstNode): A.ContainerDecl {
    const c = n.children;
    const kind = c.Module ? "module" : c.Model ? "model" : "optimizer";
    return {
      kind,
      name: this.ident(this.token(c, "Identifier")!),
      generics: c.genericParams ? this.genericParams(this.node(c, "genericParams")) : [],
      params: c.paramList ? this.paramList(this.node(c, "paramList")) : [],
      members: this.nodes(c, "member").map((m) => this.member(m)),
      span: this.span(n),
    };
  }

  private genericParams(n: CstNode): A.GenericParam[] {
    return this.nodes(n.children, "genericParam").map((g) => {
      const c = g.children;
      const pack = this.token(c, "pack");
      if (pack) return { name: this.ident(pack), kind: "pack" as const, span: this.span(g) };
      const kindTok = this.token(c, "kind");
      let kind: A.GenericKind = "dim";
      if (kindTok) {
        if (kindTok.image === "dim" || kindTok.image === "int" || kindTok.image === "float" || kindTok.image === "bool") kind = kindTok.image;
        else this.diagnostics.push(diagnostic("E0201", this.span(kindTok), `unknown generic parameter kind '${kindTok.image}': expected dim, int, float or bool`));
      }
      const def = c.additive ? this.additive(this.node(c, "additive")) : undefined;
      return { name: this.ident(this.token(c, "name")!), kind, ...(def && { default: def }), span: this.span(g) };
    });
  }

  private paramList(n: CstNode): A.ParamDecl[] {
    return this.nodes(n.children, "param").map((p) => {
      const c = p.children;
      const type = c.type ? this.type(this.node(c, "type")) : undefined;
      const def = c.expr ? this.expr(this.node(c, "expr")) : undefined;
      return { name: this.ident(this.token(c, "Identifier")!), ...(type && { type }), ...(def && { default: def }), span: this.span(p) };
    });
  }

  private member(n: CstNode): A.Member {
    const c = n.children;
    if (c.constDecl) return this.constDecl(this.node(c, "constDecl"));
    if (c.fnDecl) return this.fnDecl(this.node(c, "fnDecl"));
    if (c.entryMember) return this.entryMember(this.node(c, "entryMember"));
    const [label] = Object.keys(c);
    const m = this.node(c, label!);
    const mc = m.children;
    const name = this.ident(this.token(mc, "Identifier")!);
    const span = this.span(m);
    switch (label) {
      case "paramMember":
        return { kind: "param", name, type: this.type(this.node(mc, "type")), init: this.expr(this.node(mc, "expr")), span };
      case "stateMember":
        return { kind: "state", name, init: this.expr(this.node(mc, "expr")), span };
      case "hyperMember":
        return { kind: "hyper", name, value: this.expr(this.node(mc, "expr")), span };
      default:
        return { kind: "component", name, type: this.type(this.node(mc, "type")), span };
    }
  }

  private entryMember(n: CstNode): A.EntryMember {
    const c = n.children;
    const minimize = this.token(c, "minimize");
    const training = minimize
      ? {
          minimize: this.ident(minimize),
          optimizer: this.postfix(this.node(c, "optimizer")),
          ...(c.over && { over: this.tokens(c, "over").map((t) => this.ident(t)) }),
        }
      : undefined;
    if (c.Train && !training) this.diagnostics.push(diagnostic("E0601", this.span(this.token(c, "name")!), "a train entry needs `minimize FIELD with OPTIMIZER(...)` after its return type"));
    if (c.Entry && training) this.diagnostics.push(diagnostic("E0601", this.span(minimize!), "only `train` entries minimize a loss; write `train` instead of `entry`"));
    return {
      kind: "entry",
      name: this.ident(this.token(c, "name")!),
      generics: c.genericParams ? this.genericParams(this.node(c, "genericParams")) : [],
      params: this.paramList(this.node(c, "paramList")),
      returnType: this.type(this.node(c, "type")),
      ...(training && { training }),
      body: this.block(this.node(c, "block")),
      span: this.span(n),
    };
  }

  // ---------------------------------------------------------------- types

  private type(n: CstNode): A.TypeExpr {
    const c = n.children;
    const span = this.span(n);
    if (c.tupleType) {
      const t = this.node(c, "tupleType");
      return { kind: "tuple", elements: this.nodes(t.children, "type").map((e) => this.type(e)), span };
    }
    if (c.recordType) {
      const t = this.node(c, "recordType");
      const names = this.tokens(t.children, "Identifier");
      const types = this.nodes(t.children, "type");
      return { kind: "record", fields: names.map((nm, i) => ({ name: this.ident(nm), type: this.type(types[i]!) })), span };
    }
    if (c.arrayType) {
      const t = this.node(c, "arrayType");
      return { kind: "array", element: this.type(this.node(t.children, "type")), count: this.expr(this.node(t.children, "expr")), span };
    }
    const t = this.node(c, "namedType");
    const tc = t.children;
    const shape = tc.LBracket
      ? this.nodes(tc, "listItem").map((d): A.DimItem => {
          const id = this.token(d.children, "Identifier");
          if (id) return { kind: "spread", name: this.ident(id), span: this.span(d) };
          return { kind: "dim", expr: this.expr(this.node(d.children, "expr")) };
        })
      : null;
    return {
      kind: "named",
      path: this.tokens(tc, "Identifier").map((i) => this.ident(i)),
      args: tc.genericArgs ? this.genericArgs(this.node(tc, "genericArgs")) : [],
      shape,
      span,
    };
  }

  private genericArgs(n: CstNode): A.GenericArg[] {
    return this.nodes(n.children, "genericArg").map((g) => {
      const name = this.token(g.children, "name");
      return { ...(name && { name: this.ident(name) }), value: this.additive(this.node(g.children, "additive")), span: this.span(g) };
    });
  }

  // ---------------------------------------------------------------- statements

  private block(n: CstNode): A.Block {
    const items = this.nodes(n.children, "blockItem");
    const stmts: A.Stmt[] = [];
    let value: A.Expr | undefined;
    items.forEach((item, i) => {
      const last = i === items.length - 1;
      const s = this.blockItem(item);
      if (s.kind !== "expr") {
        stmts.push(s);
        return;
      }
      if (last) value = s.expr;
      else if (s.expr.kind === "if") stmts.push({ kind: "if", expr: s.expr, span: s.expr.span });
      else this.diagnostics.push(diagnostic("E0201", s.expr.span, "this expression's value is never used: name it with `let`, or make it the last line of the block"));
    });
    // A trailing `if` without else, or whose branches end in statements, is a statement too.
    if (value?.kind === "if" && !producesValue(value)) {
      stmts.push({ kind: "if", expr: value, span: value.span });
      value = undefined;
    }
    return { stmts, ...(value && { value }), span: this.span(n) };
  }

  private blockItem(n: CstNode): A.Stmt | { kind: "expr"; expr: A.Expr } {
    const c = n.children;
    const [label] = Object.keys(c);
    const s = this.node(c, label!);
    const sc = s.children;
    const span = this.span(s);
    const type = sc.type ? this.type(this.node(sc, "type")) : undefined;
    switch (label) {
      case "letStmt": {
        const tupleNames = this.tokens(sc, "tupleName");
        const names = tupleNames.length > 0 ? tupleNames : this.tokens(sc, "name");
        return { kind: "let", names: names.map((t) => this.ident(t)), tuple: tupleNames.length > 0, ...(type && { type }), value: this.expr(this.node(sc, "expr")), span };
      }
      case "varStmt":
        return { kind: "var", name: this.ident(this.token(sc, "Identifier")!), ...(type && { type }), value: this.expr(this.node(sc, "expr")), span };
      case "forStmt":
        return {
          kind: "for",
          name: this.ident(this.token(sc, "Identifier")!),
          from: this.additive(this.node(sc, "from")),
          to: this.additive(this.node(sc, "to")),
          body: this.block(this.node(sc, "block")),
          span,
        };
      case "assertStmt": {
        const msg = this.token(sc, "StringLiteral");
        return { kind: "assert", cond: this.expr(this.node(sc, "expr")), ...(msg && { message: JSON.parse(msg.image) as string }), span };
      }
      default: {
        const target = this.expr(this.node(sc, "target"));
        if (!sc.value) return { kind: "expr", expr: target };
        const value = this.expr(this.node(sc, "value"));
        if (target.kind !== "name") {
          this.diagnostics.push(diagnostic("E0308", target.span, "only a `var` name can be assigned to"));
          return { kind: "expr", expr: value };
        }
        return { kind: "assign", name: { name: target.name, span: target.span }, value, span };
      }
    }
  }

  // ---------------------------------------------------------------- expressions

  private expr(n: CstNode): A.Expr {
    return this.binaryChain(n);
  }

  /** Left-associative chains: `operand (op operand)*`. */
  private binaryChain(n: CstNode): A.Expr {
    const c = n.children;
    const operands = this.nodes(c, "operand");
    const ops = this.tokens(c, "op");
    let left = this.sub(operands[0]!);
    for (let i = 0; i < ops.length; i++) {
      const right = this.sub(operands[i + 1]!);
      left = { kind: "binary", op: ops[i]!.image as A.BinaryOp, left, right, opSpan: this.span(ops[i]!), span: { file: this.file, start: left.span.start, end: right.span.end } };
    }
    return left;
  }

  private sub(n: CstNode): A.Expr {
    switch (n.name) {
      case "expr":
      case "andExpr":
      case "comparison":
      case "additive":
      case "multiplicative":
        return this.binaryChain(n);
      case "unary":
        return this.unary(n);
      default:
        throw new Error(`unexpected CST node ${n.name}`);
    }
  }

  private additive(n: CstNode): A.Expr {
    return this.binaryChain(n);
  }

  private unary(n: CstNode): A.Expr {
    const c = n.children;
    const op = this.token(c, "op");
    if (op) {
      const operand = this.unary(this.node(c, "operand"));
      return { kind: "unary", op: op.image as A.UnaryOp, operand, opSpan: this.span(op), span: this.span(n) };
    }
    const p = this.node(c, "power").children;
    const base = this.postfix(this.node(p, "base"));
    if (!p.exponent) return base;
    const exponent = this.unary(this.node(p, "exponent"));
    return { kind: "binary", op: "**", left: base, right: exponent, opSpan: this.span(this.token(p, "StarStar")!), span: { file: this.file, start: base.span.start, end: exponent.span.end } };
  }

  private postfix(n: CstNode): A.Expr {
    const c = n.children;
    let e = this.primary(this.node(c, "primary"));
    for (const s of this.ordered(c, ["callSuffix", "turbofishCall", "fieldSuffix", "indexSuffix"]) as CstNode[]) {
      const span = { file: this.file, start: e.span.start, end: this.span(s).end };
      const sc = s.children;
      switch (s.name) {
        case "callSuffix":
          e = { kind: "call", callee: e, generics: [], args: this.args(s), span };
          break;
        case "turbofishCall":
          e = { kind: "call", callee: e, generics: this.genericArgs(this.node(sc, "genericArgs")), args: this.args(this.node(sc, "callSuffix")), span };
          break;
        case "fieldSuffix": {
          const t = this.token(sc, "Identifier") ?? this.token(sc, "NumberLiteral")!;
          e = { kind: "field", object: e, field: this.ident(t), span };
          break;
        }
        default:
          e = { kind: "index", object: e, index: this.expr(this.node(sc, "expr")), span };
      }
    }
    return e;
  }

  private args(call: CstNode): A.Arg[] {
    return this.nodes(call.children, "arg").map((a) => {
      const name = this.token(a.children, "name");
      return { ...(name && { name: this.ident(name) }), value: this.expr(this.node(a.children, "expr")), span: this.span(a) };
    });
  }

  private primary(n: CstNode): A.Expr {
    const c = n.children;
    const span = this.span(n);
    const num = this.token(c, "NumberLiteral");
    if (num) {
      const isInt = /^\d+$/.test(num.image);
      return { kind: "number", value: Number(num.image), isInt, text: num.image, span };
    }
    if (c.True) return { kind: "bool", value: true, span };
    if (c.False) return { kind: "bool", value: false, span };
    const str = this.token(c, "StringLiteral");
    if (str) return { kind: "string", value: JSON.parse(str.image) as string, span };
    const id = this.token(c, "Identifier");
    if (id) return { kind: "name", name: id.image, span };
    if (c.parenExpr) {
      const p = this.node(c, "parenExpr");
      const elements = this.nodes(p.children, "expr").map((e) => this.expr(e));
      const commas = this.tokens(p.children, "Comma").length;
      if (elements.length === 1 && commas === 0) return elements[0]!;
      return { kind: "tuple", elements, span };
    }
    if (c.recordExpr) {
      const r = this.node(c, "recordExpr");
      const fields = this.nodes(r.children, "recordField").map((f) => {
        const name = this.ident(this.token(f.children, "Identifier")!);
        const value: A.Expr = f.children.expr ? this.expr(this.node(f.children, "expr")) : { kind: "name", name: name.name, span: name.span };
        return { name, value };
      });
      return { kind: "record", fields, span };
    }
    if (c.listExpr) {
      const l = this.node(c, "listExpr");
      const items = this.nodes(l.children, "listItem").map((it): A.ListItem => {
        const id = this.token(it.children, "Identifier");
        if (id) return { kind: "spread", name: this.ident(id), span: this.span(it) };
        return { kind: "item", expr: this.expr(this.node(it.children, "expr")) };
      });
      return { kind: "list", items, span };
    }
    return this.ifExpr(this.node(c, "ifExpr"));
  }

  private ifExpr(n: CstNode): Extract<A.Expr, { kind: "if" }> {
    const c = n.children;
    const elseIf = c.elseIf ? this.ifExpr(this.node(c, "elseIf")) : undefined;
    const elseBlock: A.Block | undefined = elseIf
      ? producesValue(elseIf)
        ? { stmts: [], value: elseIf, span: elseIf.span }
        : { stmts: [{ kind: "if", expr: elseIf, span: elseIf.span }], span: elseIf.span }
      : c.else
        ? this.block(this.node(c, "else"))
        : undefined;
    return { kind: "if", cond: this.expr(this.node(c, "cond")), then: this.block(this.node(c, "then")), ...(elseBlock && { else: elseBlock }), span: this.span(n) };
  }
}
