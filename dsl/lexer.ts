// Tokens of .ul. Keywords are declared before Identifier with `longer_alt` so `format` is a name, not `for`.
import { createToken, Lexer, type IToken, type TokenType } from "./chevrotain.js";
import { diagnostic, type Diagnostic } from "./diagnostics.js";
import type { SourceFile } from "./source.js";

export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/ });

const keyword = (word: string) => createToken({ name: word[0]!.toUpperCase() + word.slice(1), pattern: new RegExp(word), longer_alt: Identifier });

export const Import = keyword("import");
export const From = keyword("from");
export const As = keyword("as");
export const Fn = keyword("fn");
export const Module = keyword("module");
export const Model = keyword("model");
export const Optimizer = keyword("optimizer");
export const Param = keyword("param");
export const State = keyword("state");
export const Hyper = keyword("hyper");
export const Const = keyword("const");
export const Let = keyword("let");
export const Var = keyword("var");
export const For = keyword("for");
export const In = keyword("in");
export const If = keyword("if");
export const Else = keyword("else");
export const Assert = keyword("assert");
export const Train = keyword("train");
export const Entry = keyword("entry");
export const Minimize = keyword("minimize");
export const With = keyword("with");
export const Over = keyword("over");
export const True = keyword("true");
export const False = keyword("false");

export const KEYWORDS = [Import, From, As, Fn, Module, Model, Optimizer, Param, State, Hyper, Const, Let, Var, For, In, If, Else, Assert, Train, Entry, Minimize, With, Over, True, False];

/** The word a keyword token stands for. */
export function keywordText(k: TokenType): string {
  return (k.PATTERN as RegExp).source;
}

/** The keywords as words, for "did you mean". */
export const KEYWORD_WORDS: readonly string[] = KEYWORDS.map(keywordText);

export function isKeyword(t: TokenType): boolean {
  return KEYWORDS.includes(t);
}

export const NumberLiteral = createToken({ name: "NumberLiteral", pattern: /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/ });
export const StringLiteral = createToken({ name: "StringLiteral", pattern: /"(?:[^"\\\n]|\\.)*"/ });
// Matched only when the proper string pattern failed: reported as E0102 instead of a cascade of E0101.
const UnterminatedString = createToken({ name: "UnterminatedString", pattern: /"(?:[^"\\\n]|\\.)*/ });
const UnterminatedComment = createToken({ name: "UnterminatedComment", pattern: /\/\*[\s\S]*/ });

export const Arrow = createToken({ name: "Arrow", pattern: /->/ });
export const Ellipsis = createToken({ name: "Ellipsis", pattern: /\.\.\./ });
export const DotDot = createToken({ name: "DotDot", pattern: /\.\./ });
export const Dot = createToken({ name: "Dot", pattern: /\./ });
export const ColonColon = createToken({ name: "ColonColon", pattern: /::/ });
export const Colon = createToken({ name: "Colon", pattern: /:/ });
export const Semicolon = createToken({ name: "Semicolon", pattern: /;/ });
export const Comma = createToken({ name: "Comma", pattern: /,/ });
export const LParen = createToken({ name: "LParen", pattern: /\(/ });
export const RParen = createToken({ name: "RParen", pattern: /\)/ });
export const LBrace = createToken({ name: "LBrace", pattern: /\{/ });
export const RBrace = createToken({ name: "RBrace", pattern: /\}/ });
export const LBracket = createToken({ name: "LBracket", pattern: /\[/ });
export const RBracket = createToken({ name: "RBracket", pattern: /\]/ });
// Operator categories: one grammar alternative per precedence level (chevrotain's token categories).
export const ComparisonOp = createToken({ name: "ComparisonOp", pattern: Lexer.NA });
export const AdditiveOp = createToken({ name: "AdditiveOp", pattern: Lexer.NA });
export const MultiplicativeOp = createToken({ name: "MultiplicativeOp", pattern: Lexer.NA });

export const StarStar = createToken({ name: "StarStar", pattern: /\*\*/ });
export const Star = createToken({ name: "Star", pattern: /\*/, categories: MultiplicativeOp });
export const Slash = createToken({ name: "Slash", pattern: /\//, categories: MultiplicativeOp });
export const Percent = createToken({ name: "Percent", pattern: /%/, categories: MultiplicativeOp });
export const At = createToken({ name: "At", pattern: /@/, categories: MultiplicativeOp });
export const Plus = createToken({ name: "Plus", pattern: /\+/, categories: AdditiveOp });
export const Minus = createToken({ name: "Minus", pattern: /-/, categories: AdditiveOp });
export const EqEq = createToken({ name: "EqEq", pattern: /==/, categories: ComparisonOp });
export const NotEq = createToken({ name: "NotEq", pattern: /!=/, categories: ComparisonOp });
export const LtEq = createToken({ name: "LtEq", pattern: /<=/, categories: ComparisonOp });
export const GtEq = createToken({ name: "GtEq", pattern: />=/, categories: ComparisonOp });
export const Lt = createToken({ name: "Lt", pattern: /</, categories: ComparisonOp });
export const Gt = createToken({ name: "Gt", pattern: />/, categories: ComparisonOp });
export const AndAnd = createToken({ name: "AndAnd", pattern: /&&/ });
export const OrOr = createToken({ name: "OrOr", pattern: /\|\|/ });
export const Bang = createToken({ name: "Bang", pattern: /!/ });
export const Equals = createToken({ name: "Equals", pattern: /=/ });

const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
const LineComment = createToken({ name: "LineComment", pattern: /\/\/[^\n]*/, group: Lexer.SKIPPED });
const BlockComment = createToken({ name: "BlockComment", pattern: /\/\*[\s\S]*?\*\//, group: Lexer.SKIPPED });

export const ALL_TOKENS: TokenType[] = [
  ComparisonOp,
  AdditiveOp,
  MultiplicativeOp,
  WhiteSpace,
  BlockComment,
  UnterminatedComment,
  LineComment,
  StringLiteral,
  UnterminatedString,
  ...[...KEYWORDS].sort((a, b) => String(b.PATTERN).length - String(a.PATTERN).length),
  Identifier,
  NumberLiteral,
  Arrow,
  Ellipsis,
  DotDot,
  Dot,
  ColonColon,
  Colon,
  Semicolon,
  Comma,
  LParen,
  RParen,
  LBrace,
  RBrace,
  LBracket,
  RBracket,
  StarStar,
  Star,
  Slash,
  Percent,
  At,
  Plus,
  Minus,
  EqEq,
  NotEq,
  LtEq,
  GtEq,
  Lt,
  Gt,
  AndAnd,
  OrOr,
  Bang,
  Equals,
];

const lexer = new Lexer(ALL_TOKENS, { positionTracking: "full", ensureOptimizations: false });

export interface LexResult {
  tokens: IToken[];
  diagnostics: Diagnostic[];
}

/** Tokenises a file. Errors become diagnostics; the token stream skips the bad characters. */
export function tokenize(file: SourceFile): LexResult {
  const result = lexer.tokenize(file.text);
  const diagnostics: Diagnostic[] = [];
  for (const e of result.errors) {
    const ch = file.text.slice(e.offset, e.offset + e.length);
    const shown = ch.length > 12 ? ch.slice(0, 12) + "…" : ch;
    diagnostics.push(diagnostic("E0101", file.span(e.offset, e.offset + Math.max(1, e.length)), `unexpected character${e.length > 1 ? "s" : ""} ${JSON.stringify(shown)}`));
  }
  const tokens: IToken[] = [];
  for (let i = 0; i < result.tokens.length; i++) {
    const t = result.tokens[i]!;
    const span = file.span(t.startOffset, t.startOffset + t.image.length);
    if (t.tokenType === UnterminatedString) {
      diagnostics.push(diagnostic("E0102", span, "this string has no closing quote on its line"));
      continue;
    }
    if (t.tokenType === UnterminatedComment) {
      diagnostics.push(diagnostic("E0102", file.span(t.startOffset, t.startOffset + 2), "this block comment is never closed with */"));
      continue;
    }
    if (t.tokenType === NumberLiteral) {
      const next = result.tokens[i + 1];
      const adjacent = next !== undefined && next.startOffset === t.startOffset + t.image.length;
      if (adjacent && (next.tokenType === Identifier || isKeyword(next.tokenType))) {
        diagnostics.push(diagnostic("E0103", file.span(t.startOffset, next.startOffset + next.image.length), `malformed number '${t.image}${next.image}'`));
        // Keep the number and drop the rest, so parsing goes on without a second, spurious error.
        tokens.push(t);
        i++;
        continue;
      }
      if (adjacent && next.tokenType === Dot && result.tokens[i + 2]?.tokenType !== NumberLiteral) {
        diagnostics.push(diagnostic("E0103", file.span(t.startOffset, next.startOffset + 1), `malformed number '${t.image}.': a float needs digits after the point, as in ${t.image}.0`));
        tokens.push(t);
        i++;
        continue;
      }
    }
    tokens.push(t);
  }
  return { tokens, diagnostics };
}
