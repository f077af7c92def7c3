// Source text -> AST, with lexical, bracket and syntax diagnostics in plain words.
import type { IToken, TokenType } from "./chevrotain.js";
import type { FileAst } from "./ast.js";
import { AstBuilder } from "./build-ast.js";
import { diagnostic, type Diagnostic } from "./diagnostics.js";
import * as T from "./lexer.js";
import { isStackOverflow } from "./overflow.js";
import { parseTokens } from "./parser.js";
import type { SourceFile } from "./source.js";

export interface ParseResult {
  /** Absent when the file has syntax errors: later stages would only add noise. */
  ast?: FileAst;
  diagnostics: Diagnostic[];
}

const SYMBOLS: Record<string, string> = {
  Arrow: "->",
  Ellipsis: "...",
  DotDot: "..",
  Dot: ".",
  ColonColon: "::",
  Colon: ":",
  Semicolon: ";",
  Comma: ",",
  LParen: "(",
  RParen: ")",
  LBrace: "{",
  RBrace: "}",
  LBracket: "[",
  RBracket: "]",
  StarStar: "**",
  Star: "*",
  Slash: "/",
  Percent: "%",
  At: "@",
  Plus: "+",
  Minus: "-",
  EqEq: "==",
  NotEq: "!=",
  LtEq: "<=",
  GtEq: ">=",
  Lt: "<",
  Gt: ">",
  AndAnd: "&&",
  OrOr: "||",
  Bang: "!",
  Equals: "=",
};

const CATEGORIES: Record<string, string> = {
  ComparisonOp: "a comparison (== != < <= > >=)",
  AdditiveOp: "'+' or '-'",
  MultiplicativeOp: "'*', '/', '%' or '@'",
};

function describeTokenType(name: string): string {
  if (CATEGORIES[name]) return CATEGORIES[name];
  if (name === "Identifier") return "a name";
  if (name === "NumberLiteral") return "a number";
  if (name === "StringLiteral") return "a string";
  if (name === "EOF") return "the end of the file";
  const sym = SYMBOLS[name];
  if (sym) return `'${sym}'`;
  return `'${name.toLowerCase()}'`;
}

function describeToken(t: IToken): string {
  if (t.tokenType.name === "EOF") return "the end of the file";
  return `'${t.image}'`;
}

const RULE_WANTS: Record<string, string> = {
  file: "a declaration (import, from, const, fn, module, model, optimizer)",
  decl: "a declaration (import, from, const, fn, module, model, optimizer)",
  member: "a member (param, state, hyper, const, fn, train, entry, or a component `name: Type`)",
  blockItem: "a statement (let, var, for, if, assert) or an expression",
  primary: "an expression",
  unary: "an expression",
  type: "a type",
  namedType: "a type",
  modulePath: "a module path (std.NAME or \"./file.ul\")",
  genericParam: "a generic parameter",
  listItem: "an expression or a ...pack",
  letStmt: "a name or a tuple of names",
  fieldSuffix: "a field name or tuple index",
};

const OPENERS = new Map<TokenType, TokenType>([
  [T.LParen, T.RParen],
  [T.LBracket, T.RBracket],
  [T.LBrace, T.RBrace],
]);
const CLOSERS = new Set<TokenType>([T.RParen, T.RBracket, T.RBrace]);

/** Deeper bracket nesting than this is refused before parsing: the parser is recursive. */
const MAX_NESTING = 100;

/** Unclosed and mismatched brackets, reported at the bracket itself rather than at the end of the file. */
function bracketDiagnostics(file: SourceFile, tokens: IToken[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const stack: IToken[] = [];
  const span = (t: IToken) => file.span(t.startOffset, t.startOffset + t.image.length);
  for (const t of tokens) {
    if (OPENERS.has(t.tokenType)) {
      stack.push(t);
      if (stack.length > MAX_NESTING) return [diagnostic("E0203", span(t), `brackets nest more than ${MAX_NESTING} deep here`)];
    }
    else if (CLOSERS.has(t.tokenType)) {
      const open = stack[stack.length - 1];
      if (open && OPENERS.get(open.tokenType) === t.tokenType) stack.pop();
      else if (open && stack.some((o) => OPENERS.get(o.tokenType) === t.tokenType)) {
        // Closing an outer bracket: the inner ones were left open.
        while (stack.length > 0 && OPENERS.get(stack[stack.length - 1]!.tokenType) !== t.tokenType) {
          const inner = stack.pop()!;
          out.push(diagnostic("E0202", span(inner), `this '${inner.image}' is never closed`, [{ span: span(t), message: `'${t.image}' closes an outer bracket here` }]));
        }
        stack.pop();
      } else out.push(diagnostic("E0201", span(t), `'${t.image}' has no matching opening bracket`));
    }
  }
  for (const open of stack) out.push(diagnostic("E0202", span(open), `this '${open.image}' is never closed`));
  return out;
}

function tooDeep(file: SourceFile): Diagnostic {
  return diagnostic("E0203", file.span(0, Math.min(1, file.text.length)), "this file nests too deeply to parse (a very long chain of operators or brackets)");
}

export function parseFile(file: SourceFile): ParseResult {
  const lexed = T.tokenize(file);
  const diagnostics = [...lexed.diagnostics];
  const brackets = bracketDiagnostics(file, lexed.tokens);
  for (const d of brackets) diagnostics.push(d); // a spread of 10^5 would overflow the stack
  if (brackets.some((d) => d.code === "E0203")) return { diagnostics };
  let parsed: ReturnType<typeof parseTokens>;
  try {
    parsed = parseTokens(lexed.tokens);
  } catch (e) {
    if (!isStackOverflow(e)) throw e;
    return { diagnostics: [...diagnostics, tooDeep(file)] };
  }
  const last = lexed.tokens[lexed.tokens.length - 1];
  const bracketAt = new Set(brackets.map((d) => d.span.start));
  for (const e of parsed.errors) {
    if (bracketAt.has(e.token.startOffset)) continue; // the bracket diagnostic already names this token
    const atEof = e.token.tokenType.name === "EOF";
    // A bracket or lexical diagnostic already explains a parse that runs off the end.
    if (atEof && diagnostics.length > 0) continue;
    const span = atEof ? file.span(last ? last.startOffset + last.image.length : 0, file.text.length) : file.span(e.token.startOffset, e.token.startOffset + e.token.image.length);
    const expected = /Expecting token of type --> (\w+) <--/.exec(e.message)?.[1];
    const topLevel = expected === "EOF" && e.ruleStack.length <= 1;
    const rule = topLevel ? "decl" : [...e.ruleStack].reverse().find((r) => RULE_WANTS[r]);
    const want = expected && !topLevel ? describeTokenType(expected) : rule ? RULE_WANTS[rule]! : "something else";
    const hint = e.token.tokenType === T.Semicolon ? " (.ul has no semicolons: a statement ends with its line)" : "";
    diagnostics.push(diagnostic("E0201", span, `expected ${want}, found ${describeToken(e.token)}${hint}`));
  }
  if (diagnostics.length > 0) return { diagnostics };
  const builder = new AstBuilder(file);
  let ast: FileAst;
  try {
    ast = builder.build(parsed.cst);
  } catch (e) {
    if (!isStackOverflow(e)) throw e;
    return { diagnostics: [tooDeep(file)] };
  }
  if (builder.diagnostics.length > 0) return { diagnostics: builder.diagnostics };
  return { ast, diagnostics: [] };
}
