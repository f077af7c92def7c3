// The typed AST. Every node carries the span of the source it came from.
import type { Span } from "./source.js";

export interface Ident {
  readonly name: string;
  readonly span: Span;
}

// ---------------------------------------------------------------- declarations

export type ImportSource = { readonly kind: "std"; readonly path: readonly string[]; readonly span: Span } | { readonly kind: "file"; readonly path: string; readonly span: Span };

export interface ImportDecl {
  readonly kind: "import";
  readonly source: ImportSource;
  /** `import std.layers as L` binds `L`; plain `import std.layers` binds `layers`. Absent for `from`. */
  readonly alias?: Ident;
  /** `from X import a, b as c`. */
  readonly names?: readonly { readonly name: Ident; readonly alias?: Ident }[];
  readonly span: Span;
}

export type GenericKind = "dim" | "int" | "float" | "bool" | "pack";

export interface GenericParam {
  readonly name: Ident;
  readonly kind: GenericKind;
  readonly default?: Expr;
  readonly span: Span;
}

export interface ParamDecl {
  readonly name: Ident;
  readonly type?: TypeExpr;
  readonly default?: Expr;
  readonly span: Span;
}

export interface ConstDecl {
  readonly kind: "const";
  readonly name: Ident;
  readonly type?: TypeExpr;
  readonly value: Expr;
  readonly span: Span;
}

export interface FnDecl {
  readonly kind: "fn";
  readonly name: Ident;
  readonly generics: readonly GenericParam[];
  readonly params: readonly ParamDecl[];
  readonly returnType?: TypeExpr;
  readonly body: Block;
  readonly span: Span;
}

/** `param w: f32[In, Out] = init` */
export interface ParamMember {
  readonly kind: "param";
  readonly name: Ident;
  readonly type: TypeExpr;
  readonly init: Expr;
  readonly span: Span;
}

/** `state m = 0.0` (optimizers only) */
export interface StateMember {
  readonly kind: "state";
  readonly name: Ident;
  readonly init: Expr;
  readonly span: Span;
}

/** `hyper loss_factor = 1.5` (models only): a run-time scalar with a default. */
export interface HyperMember {
  readonly kind: "hyper";
  readonly name: Ident;
  readonly value: Expr;
  readonly span: Span;
}

/** `encoder: Encoder<...>` or `layers: [Linear<H, H>; Depth]` */
export interface ComponentMember {
  readonly kind: "component";
  readonly name: Ident;
  readonly type: TypeExpr;
  readonly span: Span;
}

export interface EntryMember {
  readonly kind: "entry";
  readonly name: Ident;
  readonly generics: readonly GenericParam[];
  readonly params: readonly ParamDecl[];
  readonly returnType: TypeExpr;
  /** Present for `train` entries. */
  readonly training?: {
    readonly minimize: Ident;
    readonly optimizer: Expr;
    readonly over?: readonly Ident[];
  };
  readonly body: Block;
  readonly span: Span;
}

export type Member = ParamMember | StateMember | HyperMember | ComponentMember | ConstDecl | FnDecl | EntryMember;

export interface ContainerDecl {
  readonly kind: "module" | "model" | "optimizer";
  readonly name: Ident;
  readonly generics: readonly GenericParam[];
  /** Optimizer arguments: `optimizer Adam(lr = 1e-3)`. Empty for modules and models. */
  readonly params: readonly ParamDecl[];
  readonly members: readonly Member[];
  readonly span: Span;
}

export type Decl = ImportDecl | ConstDecl | FnDecl | ContainerDecl;

export interface FileAst {
  readonly decls: readonly Decl[];
}

// ---------------------------------------------------------------- types

export type DimItem = { readonly kind: "dim"; readonly expr: Expr } | { readonly kind: "spread"; readonly name: Ident; readonly span: Span };

export type TypeExpr =
  /** `f32[B, C]`, `f32` (shape null: a scalar), `Linear<In, Out>`, `int`, `L.Linear<3>` */
  | { readonly kind: "named"; readonly path: readonly Ident[]; readonly args: readonly GenericArg[]; readonly shape: readonly DimItem[] | null; readonly span: Span }
  | { readonly kind: "tuple"; readonly elements: readonly TypeExpr[]; readonly span: Span }
  | { readonly kind: "record"; readonly fields: readonly { readonly name: Ident; readonly type: TypeExpr }[]; readonly span: Span }
  | { readonly kind: "array"; readonly element: TypeExpr; readonly count: Expr; readonly span: Span };

export interface GenericArg {
  readonly name?: Ident;
  readonly value: Expr;
  readonly span: Span;
}

// ---------------------------------------------------------------- expressions

export type BinaryOp = "+" | "-" | "*" | "/" | "%" | "@" | "**" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "&&" | "||";
export type UnaryOp = "-" | "!";

export interface Arg {
  readonly name?: Ident;
  readonly value: Expr;
  readonly span: Span;
}

export type ListItem = { readonly kind: "item"; readonly expr: Expr } | { readonly kind: "spread"; readonly name: Ident; readonly span: Span };

export type Expr =
  | { readonly kind: "number"; readonly value: number; readonly isInt: boolean; readonly text: string; readonly span: Span }
  | { readonly kind: "bool"; readonly value: boolean; readonly span: Span }
  | { readonly kind: "string"; readonly value: string; readonly span: Span }
  | { readonly kind: "name"; readonly name: string; readonly span: Span }
  | { readonly kind: "unary"; readonly op: UnaryOp; readonly operand: Expr; readonly opSpan: Span; readonly span: Span }
  | { readonly kind: "binary"; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr; readonly opSpan: Span; readonly span: Span }
  | { readonly kind: "call"; readonly callee: Expr; readonly generics: readonly GenericArg[]; readonly args: readonly Arg[]; readonly span: Span }
  | { readonly kind: "field"; readonly object: Expr; readonly field: Ident; readonly span: Span }
  | { readonly kind: "index"; readonly object: Expr; readonly index: Expr; readonly span: Span }
  | { readonly kind: "tuple"; readonly elements: readonly Expr[]; readonly span: Span }
  | { readonly kind: "record"; readonly fields: readonly { readonly name: Ident; readonly value: Expr }[]; readonly span: Span }
  | { readonly kind: "list"; readonly items: readonly ListItem[]; readonly span: Span }
  | { readonly kind: "if"; readonly cond: Expr; readonly then: Block; readonly else?: Block; readonly span: Span };

// ---------------------------------------------------------------- statements

export interface Block {
  readonly stmts: readonly Stmt[];
  /** The block's value: its last item when that is an expression. */
  readonly value?: Expr;
  readonly span: Span;
}

export type Stmt =
  | { readonly kind: "let"; readonly names: readonly Ident[]; readonly tuple: boolean; readonly type?: TypeExpr; readonly value: Expr; readonly span: Span }
  | { readonly kind: "var"; readonly name: Ident; readonly type?: TypeExpr; readonly value: Expr; readonly span: Span }
  | { readonly kind: "assign"; readonly name: Ident; readonly value: Expr; readonly span: Span }
  | { readonly kind: "for"; readonly name: Ident; readonly from: Expr; readonly to: Expr; readonly body: Block; readonly span: Span }
  | { readonly kind: "if"; readonly expr: Extract<Expr, { kind: "if" }>; readonly span: Span }
  | { readonly kind: "assert"; readonly cond: Expr; readonly message?: string; readonly span: Span };
