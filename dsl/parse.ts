// Source text -> AST, with lexical, bracket and syntax diagnostics in plain words.
import type { IToken, TokenType } from "./chevrotain.js";
import type { FileAst } from "./ast.js";
import { AstBuilder } from "./build-ast.js";
import { closest, diagnostic, type Diagnostic } from "./diagnostics.js";
import { FOREIGN_KEYWORDS } from "./foreign.js";
import * as T from "./lexer.js";
import { isStackOverflow } from "./overflow.js";
import { parseTokens, type ParseError } from "./parser.js";
import type { SourceFile, Span } from "./source.js";

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

/** Token types said in more words than their symbol. */
const DESCRIPTIONS: Record<string, string> = {
  ComparisonOp: "a comparison (== != < <= > >=)",
  AdditiveOp: "'+' or '-'",
  MultiplicativeOp: "'*', '/', '%' or '@'",
  // The one place .ul has a ';': said so, since statements have none.
  Semicolon: "';' (an array of modules is written [Module<...>; N])",
};

function describeTokenType(name: string): string {
  if (DESCRIPTIONS[name]) return DESCRIPTIONS[name];
  if (name === "Identifier") return "a name";
  if (name === "NumberLiteral") return "a number";
  if (name === "StringLiteral") return "a string";
  if (name === "EOF") return "the end of the file";
  const sym = SYMBOLS[name];
  if (sym) return `'${sym}'`;
  return `'${name.toLowerCase()}'`;
}

/** The keywords that start a declaration, a member of a module or model, and a statement. */
const STARTERS = {
  decl: [T.Import, T.From, T.Const, T.Fn, T.Module, T.Model, T.Optimizer],
  member: [T.Param, T.State, T.Hyper, T.Const, T.Fn, T.Train, T.Entry],
  blockItem: [T.Let, T.Var, T.For, T.If, T.Assert],
};
type Construct = keyof typeof STARTERS;

const starterWords = (c: Construct) => STARTERS[c].map(T.keywordText);

const RULE_WANTS: Record<string, string> = {
  file: `a declaration (${starterWords("decl").join(", ")})`,
  decl: `a declaration (${starterWords("decl").join(", ")})`,
  member: `a member (${starterWords("member").join(", ")}, or a component \`name: Type\`)`,
  blockItem: `a statement (${starterWords("blockItem").join(", ")}) or an expression`,
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

function tokenSpan(file: SourceFile, t: IToken): Span {
  return file.span(t.startOffset, t.startOffset + t.image.length);
}

/** Unclosed and mismatched brackets, reported at the bracket itself rather than at the end of the file. */
function bracketDiagnostics(file: SourceFile, tokens: IToken[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const stack: IToken[] = [];
  for (const t of tokens) {
    if (OPENERS.has(t.tokenType)) {
      stack.push(t);
      if (stack.length > MAX_NESTING) return [diagnostic("E0203", tokenSpan(file, t), `brackets nest more than ${MAX_NESTING} deep here`)];
    }
    else if (CLOSERS.has(t.tokenType)) {
      const open = stack[stack.length - 1];
      if (open && OPENERS.get(open.tokenType) === t.tokenType) stack.pop();
      else if (open && stack.some((o) => OPENERS.get(o.tokenType) === t.tokenType)) {
        // Closing an outer bracket: the inner ones were left open.
        while (stack.length > 0 && OPENERS.get(stack[stack.length - 1]!.tokenType) !== t.tokenType) {
          const inner = stack.pop()!;
          out.push(diagnostic("E0202", tokenSpan(file, inner), `this '${inner.image}' is never closed`, [{ span: tokenSpan(file, t), message: `'${t.image}' closes an outer bracket here` }]));
        }
        stack.pop();
      } else out.push(diagnostic("E0201", tokenSpan(file, t), `'${t.image}' has no matching opening bracket`));
    }
  }
  for (const open of stack) out.push(diagnostic("E0202", tokenSpan(file, open), `this '${open.image}' is never closed`));
  return out;
}

/** The token stream with the questions syntax errors ask of it: where a token stands in its line. */
class TokenLines {
  private readonly index: Map<IToken, number>;

  constructor(readonly tokens: readonly IToken[]) {
    this.index = new Map(tokens.map((t, i) => [t, i]));
  }

  get last(): IToken | undefined {
    return this.tokens[this.tokens.length - 1];
  }

  before(t: IToken): IToken | undefined {
    const i = this.index.get(t);
    return i === undefined ? undefined : this.tokens[i - 1];
  }

  after(t: IToken): IToken | undefined {
    const i = this.index.get(t);
    return i === undefined ? undefined : this.tokens[i + 1];
  }

  startsLine(t: IToken): boolean {
    const prev = this.before(t);
    return prev === undefined || prev.endLine! < t.startLine!;
  }

  /** The first token of t's line. */
  lineStart(t: IToken): IToken {
    let first = t;
    while (!this.startsLine(first)) first = this.before(first)!;
    return first;
  }
}

function isEof(t: IToken): boolean {
  return t.tokenType.name === "EOF";
}

/** Where each top-level declaration starts: a declaration keyword that begins a line outside all brackets. */
function declarationStarts(tokens: TokenLines): number[] {
  const starts: number[] = [];
  let depth = 0;
  for (const t of tokens.tokens) {
    if (OPENERS.has(t.tokenType)) depth++;
    else if (CLOSERS.has(t.tokenType)) depth = Math.max(0, depth - 1);
    else if (depth === 0 && STARTERS.decl.includes(t.tokenType) && tokens.startsLine(t)) starts.push(t.startOffset);
  }
  return starts;
}

/**
 * The first error in each top-level declaration: after one, the parser's recovery guesses, and most of what it
 * reports next is noise. Errors come in source order.
 */
function firstPerDeclaration(errors: readonly ParseError[], tokens: TokenLines): ParseError[] {
  const starts = declarationStarts(tokens);
  let next = 0; // the first declaration that starts after the last error kept
  let kept = false;
  return errors.filter((e) => {
    const at = isEof(e.token) ? Infinity : e.token.startOffset;
    if (kept && !(next < starts.length && starts[next]! <= at)) return false; // in the last kept error's declaration
    while (next < starts.length && starts[next]! <= at) next++;
    kept = true;
    return true;
  });
}

/** The expected token type a mismatch names, if it names one. */
function expectedType(e: ParseError): string | undefined {
  return /Expecting token of type --> (\w+) <--/.exec(e.message)?.[1];
}

/** The parser ran out of declarations and found something else at the top level. */
function atTopLevel(e: ParseError): boolean {
  return expectedType(e) === "EOF" && e.ruleStack.length <= 1;
}

/** The rules that read a list of declarations, members or statements, or one of them, and which they read. */
const CONSTRUCTS: Record<string, Construct> = { file: "decl", decl: "decl", containerDecl: "member", member: "member", block: "blockItem", blockItem: "blockItem" };

/** The kind of declaration, member or statement the parser was reading, or looking for. */
function constructOf(e: ParseError): Construct | undefined {
  if (atTopLevel(e)) return "decl";
  const rule = [...e.ruleStack].reverse().find((r) => Object.hasOwn(CONSTRUCTS, r));
  return rule === undefined ? undefined : CONSTRUCTS[rule];
}

/**
 * A rejected keyword that stands where a name belongs: the parser wanted a name, or the keyword is inside a line
 * (one that starts a declaration, member or statement out of place stands at the start of its line).
 */
function keywordAsName(e: ParseError, tokens: TokenLines): boolean {
  return T.isKeyword(e.token.tokenType) && (expectedType(e) === "Identifier" || !tokens.startsLine(e.token));
}

/** The first word of the error's line when a name follows it, as one follows a keyword: `trian fit`, `def f(x):`, `fro i in`. */
function leadingWord(e: ParseError, tokens: TokenLines): IToken | undefined {
  const first = tokens.lineStart(e.token);
  const second = tokens.after(first);
  return first.tokenType === T.Identifier && second?.tokenType === T.Identifier && second.startLine === first.startLine ? first : undefined;
}

/** The keyword a construct's first word was meant to be: a misspelling of one, or another language's word for it. */
function intendedKeyword(word: string, construct: Construct): string | undefined {
  const keywords = starterWords(construct);
  const foreign = FOREIGN_KEYWORDS.get(word);
  return foreign !== undefined && keywords.includes(foreign) ? foreign : closest(word, keywords);
}

function syntaxError(file: SourceFile, tokens: TokenLines, e: ParseError): Diagnostic {
  const t = e.token;
  if (isEof(t)) {
    const last = tokens.last;
    return diagnostic("E0201", file.span(last ? last.startOffset + last.image.length : 0, file.text.length), `expected ${wanted(e)}, found the end of the file`);
  }
  const word = leadingWord(e, tokens);
  const construct = constructOf(e);
  const keyword = word && construct && intendedKeyword(word.image, construct);
  if (word && keyword) return diagnostic("E0201", tokenSpan(file, word), `'${word.image}' is not a keyword; did you mean '${keyword}'?`);
  if (keywordAsName(e, tokens)) return diagnostic("E0201", tokenSpan(file, t), `'${t.image}' is a keyword, so it cannot be used as a name`);
  const hint = t.tokenType === T.Semicolon ? " (a statement ends with its line, without ';')" : "";
  return diagnostic("E0201", tokenSpan(file, t), `expected ${wanted(e)}, found '${t.image}'${hint}`);
}

/** What the parser wanted, in words: the token it expected, or what the rule it was in starts with. */
function wanted(e: ParseError): string {
  const expected = expectedType(e);
  if (expected && !atTopLevel(e)) return describeTokenType(expected);
  const rule = atTopLevel(e) ? "decl" : [...e.ruleStack].reverse().find((r) => RULE_WANTS[r]);
  return rule ? RULE_WANTS[rule]! : "something else";
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
  const bracketAt = new Set(brackets.map((d) => d.span.start));
  const tokens = new TokenLines(lexed.tokens);
  for (const e of firstPerDeclaration(parsed.errors, tokens)) {
    if (bracketAt.has(e.token.startOffset)) continue; // the bracket diagnostic already names this token
    // A bracket or lexical diagnostic already explains a parse that runs off the end.
    if (isEof(e.token) && diagnostics.length > 0) continue;
    diagnostics.push(syntaxError(file, tokens, e));
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
