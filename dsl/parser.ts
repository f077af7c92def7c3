// The .ul grammar as a chevrotain CstParser with error recovery, so one run reports several syntax errors.
// build-ast.ts turns the CST into the typed AST.
import { CstParser, type IToken, type CstNode } from "./chevrotain.js";
import * as T from "./lexer.js";

class UlParser extends CstParser {
  constructor() {
    super(T.ALL_TOKENS, { recoveryEnabled: true, maxLookahead: 3, nodeLocationTracking: "onlyOffset" });
    this.performSelfAnalysis();
  }

  /** A `(` or `[` continues the previous expression only on the same line, so a tuple on a new line is not a call. */
  private sameLine(): boolean {
    const prev = this.LA(0);
    const next = this.LA(1);
    return prev.endLine === undefined || next.startLine === prev.endLine;
  }

  file = this.RULE("file", () => {
    this.MANY(() => this.SUBRULE(this.decl));
  });

  decl = this.RULE("decl", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.importDecl) },
      { ALT: () => this.SUBRULE(this.fromImport) },
      { ALT: () => this.SUBRULE(this.constDecl) },
      { ALT: () => this.SUBRULE(this.fnDecl) },
      { ALT: () => this.SUBRULE(this.containerDecl) },
    ]);
  });

  importDecl = this.RULE("importDecl", () => {
    this.CONSUME(T.Import);
    this.SUBRULE(this.modulePath);
    this.OPTION(() => {
      this.CONSUME(T.As);
      this.CONSUME(T.Identifier, { LABEL: "alias" });
    });
  });

  fromImport = this.RULE("fromImport", () => {
    this.CONSUME(T.From);
    this.SUBRULE(this.modulePath);
    this.CONSUME(T.Import);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.importName) });
  });

  importName = this.RULE("importName", () => {
    this.CONSUME(T.Identifier, { LABEL: "name" });
    this.OPTION(() => {
      this.CONSUME(T.As);
      this.CONSUME2(T.Identifier, { LABEL: "alias" });
    });
  });

  modulePath = this.RULE("modulePath", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.AT_LEAST_ONE_SEP({ SEP: T.Dot, DEF: () => this.CONSUME(T.Identifier) }) },
    ]);
  });

  constDecl = this.RULE("constDecl", () => {
    this.CONSUME(T.Const);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.type);
    });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  fnDecl = this.RULE("fnDecl", () => {
    this.CONSUME(T.Fn);
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.SUBRULE(this.genericParams));
    this.SUBRULE(this.paramList);
    this.OPTION2(() => {
      this.CONSUME(T.Arrow);
      this.SUBRULE(this.type);
    });
    this.SUBRULE(this.block);
  });

  containerDecl = this.RULE("containerDecl", () => {
    this.OR([{ ALT: () => this.CONSUME(T.Module) }, { ALT: () => this.CONSUME(T.Model) }, { ALT: () => this.CONSUME(T.Optimizer) }]);
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.SUBRULE(this.genericParams));
    this.OPTION2(() => this.SUBRULE(this.paramList));
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.member));
    this.CONSUME(T.RBrace);
  });

  genericParams = this.RULE("genericParams", () => {
    this.CONSUME(T.Lt);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.genericParam) });
    this.CONSUME(T.Gt);
  });

  genericParam = this.RULE("genericParam", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Ellipsis);
          this.CONSUME(T.Identifier, { LABEL: "pack" });
        },
      },
      {
        ALT: () => {
          this.CONSUME2(T.Identifier, { LABEL: "name" });
          this.OPTION(() => {
            this.CONSUME(T.Colon);
            this.CONSUME3(T.Identifier, { LABEL: "kind" });
          });
          this.OPTION2(() => {
            this.CONSUME(T.Equals);
            this.SUBRULE(this.additive);
          });
        },
      },
    ]);
  });

  paramList = this.RULE("paramList", () => {
    this.CONSUME(T.LParen);
    this.MANY(() => {
      this.SUBRULE(this.param);
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    this.CONSUME(T.RParen);
  });

  param = this.RULE("param", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.type);
    });
    this.OPTION2(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expr);
    });
  });

  member = this.RULE("member", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.paramMember) },
      { ALT: () => this.SUBRULE(this.stateMember) },
      { ALT: () => this.SUBRULE(this.hyperMember) },
      { ALT: () => this.SUBRULE(this.constDecl) },
      { ALT: () => this.SUBRULE(this.fnDecl) },
      { ALT: () => this.SUBRULE(this.entryMember) },
      { ALT: () => this.SUBRULE(this.componentMember) },
    ]);
  });

  paramMember = this.RULE("paramMember", () => {
    this.CONSUME(T.Param);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.type);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  stateMember = this.RULE("stateMember", () => {
    this.CONSUME(T.State);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  hyperMember = this.RULE("hyperMember", () => {
    this.CONSUME(T.Hyper);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  componentMember = this.RULE("componentMember", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.type);
  });

  entryMember = this.RULE("entryMember", () => {
    this.OR([{ ALT: () => this.CONSUME(T.Train) }, { ALT: () => this.CONSUME(T.Entry) }]);
    this.CONSUME(T.Identifier, { LABEL: "name" });
    this.OPTION(() => this.SUBRULE(this.genericParams));
    this.SUBRULE(this.paramList);
    this.CONSUME(T.Arrow);
    this.SUBRULE(this.type);
    this.OPTION2(() => {
      this.CONSUME(T.Minimize);
      this.CONSUME2(T.Identifier, { LABEL: "minimize" });
      this.CONSUME(T.With);
      this.SUBRULE(this.postfix, { LABEL: "optimizer" });
      this.OPTION3(() => {
        this.CONSUME(T.Over);
        this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME3(T.Identifier, { LABEL: "over" }) });
      });
    });
    this.SUBRULE(this.block);
  });

  // ---------------------------------------------------------------- types

  type = this.RULE("type", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.tupleType) },
      { ALT: () => this.SUBRULE(this.recordType) },
      { ALT: () => this.SUBRULE(this.arrayType) },
      { ALT: () => this.SUBRULE(this.namedType) },
    ]);
  });

  tupleType = this.RULE("tupleType", () => {
    this.CONSUME(T.LParen);
    this.MANY(() => {
      this.SUBRULE(this.type);
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    this.CONSUME(T.RParen);
  });

  recordType = this.RULE("recordType", () => {
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.CONSUME(T.Identifier);
      this.CONSUME(T.Colon);
      this.SUBRULE(this.type);
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    this.CONSUME(T.RBrace);
  });

  arrayType = this.RULE("arrayType", () => {
    this.CONSUME(T.LBracket);
    this.SUBRULE(this.type);
    this.CONSUME(T.Semicolon);
    this.SUBRULE(this.expr);
    this.CONSUME(T.RBracket);
  });

  namedType = this.RULE("namedType", () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Dot, DEF: () => this.CONSUME(T.Identifier) });
    this.OPTION(() => this.SUBRULE(this.genericArgs));
    this.OPTION2(() => {
      this.CONSUME(T.LBracket);
      this.MANY(() => {
        this.SUBRULE(this.listItem);
        this.OPTION3(() => this.CONSUME(T.Comma));
      });
      this.CONSUME(T.RBracket);
    });
  });

  genericArgs = this.RULE("genericArgs", () => {
    this.CONSUME(T.Lt);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.genericArg) });
    this.CONSUME(T.Gt);
  });

  genericArg = this.RULE("genericArg", () => {
    this.OPTION({
      GATE: () => this.LA(2).tokenType === T.Equals,
      DEF: () => {
        this.CONSUME(T.Identifier, { LABEL: "name" });
        this.CONSUME(T.Equals);
      },
    });
    // Additive level: a `>` inside would end the argument list.
    this.SUBRULE(this.additive);
  });

  // ---------------------------------------------------------------- statements

  block = this.RULE("block", () => {
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.blockItem));
    this.CONSUME(T.RBrace);
  });

  blockItem = this.RULE("blockItem", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.letStmt) },
      { ALT: () => this.SUBRULE(this.varStmt) },
      { ALT: () => this.SUBRULE(this.forStmt) },
      { ALT: () => this.SUBRULE(this.assertStmt) },
      { ALT: () => this.SUBRULE(this.exprOrAssign) },
    ]);
  });

  letStmt = this.RULE("letStmt", () => {
    this.CONSUME(T.Let);
    this.OR([
      { ALT: () => this.CONSUME(T.Identifier, { LABEL: "name" }) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME2(T.Identifier, { LABEL: "tupleName" }) });
          this.CONSUME(T.RParen);
        },
      },
    ]);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.type);
    });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  varStmt = this.RULE("varStmt", () => {
    this.CONSUME(T.Var);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.type);
    });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  forStmt = this.RULE("forStmt", () => {
    this.CONSUME(T.For);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.In);
    this.SUBRULE(this.additive, { LABEL: "from" });
    this.CONSUME(T.DotDot);
    this.SUBRULE2(this.additive, { LABEL: "to" });
    this.SUBRULE(this.block);
  });

  assertStmt = this.RULE("assertStmt", () => {
    this.CONSUME(T.Assert);
    this.SUBRULE(this.expr);
    this.OPTION(() => {
      this.CONSUME(T.Comma);
      this.CONSUME(T.StringLiteral);
    });
  });

  exprOrAssign = this.RULE("exprOrAssign", () => {
    this.SUBRULE(this.expr, { LABEL: "target" });
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE2(this.expr, { LABEL: "value" });
    });
  });

  // ---------------------------------------------------------------- expressions

  expr = this.RULE("expr", () => {
    this.SUBRULE(this.andExpr, { LABEL: "operand" });
    this.MANY(() => {
      this.CONSUME(T.OrOr, { LABEL: "op" });
      this.SUBRULE2(this.andExpr, { LABEL: "operand" });
    });
  });

  andExpr = this.RULE("andExpr", () => {
    this.SUBRULE(this.comparison, { LABEL: "operand" });
    this.MANY(() => {
      this.CONSUME(T.AndAnd, { LABEL: "op" });
      this.SUBRULE2(this.comparison, { LABEL: "operand" });
    });
  });

  comparison = this.RULE("comparison", () => {
    this.SUBRULE(this.additive, { LABEL: "operand" });
    // Comparisons do not chain: `a < b < c` is an error, not ((a < b) < c).
    this.OPTION(() => {
      this.CONSUME(T.ComparisonOp, { LABEL: "op" });
      this.SUBRULE2(this.additive, { LABEL: "operand" });
    });
  });

  additive = this.RULE("additive", () => {
    this.SUBRULE(this.multiplicative, { LABEL: "operand" });
    this.MANY(() => {
      this.CONSUME(T.AdditiveOp, { LABEL: "op" });
      this.SUBRULE2(this.multiplicative, { LABEL: "operand" });
    });
  });

  multiplicative = this.RULE("multiplicative", () => {
    this.SUBRULE(this.unary, { LABEL: "operand" });
    this.MANY(() => {
      this.CONSUME(T.MultiplicativeOp, { LABEL: "op" });
      this.SUBRULE2(this.unary, { LABEL: "operand" });
    });
  });

  unary = this.RULE("unary", () => {
    this.OR([
      {
        ALT: () => {
          this.OR2([{ ALT: () => this.CONSUME(T.Minus, { LABEL: "op" }) }, { ALT: () => this.CONSUME(T.Bang, { LABEL: "op" }) }]);
          this.SUBRULE(this.unary, { LABEL: "operand" });
        },
      },
      { ALT: () => this.SUBRULE(this.power, { LABEL: "power" }) },
    ]);
  });

  power = this.RULE("power", () => {
    this.SUBRULE(this.postfix, { LABEL: "base" });
    this.OPTION(() => {
      this.CONSUME(T.StarStar);
      this.SUBRULE(this.unary, { LABEL: "exponent" });
    });
  });

  postfix = this.RULE("postfix", () => {
    this.SUBRULE(this.primary);
    this.MANY({
      GATE: () => {
        const next = this.LA(1).tokenType;
        return (next !== T.LParen && next !== T.LBracket) || this.sameLine();
      },
      DEF: () => {
        this.OR([
          { ALT: () => this.SUBRULE(this.callSuffix) },
          { ALT: () => this.SUBRULE(this.turbofishCall) },
          { ALT: () => this.SUBRULE(this.fieldSuffix) },
          { ALT: () => this.SUBRULE(this.indexSuffix) },
        ]);
      },
    });
  });

  turbofishCall = this.RULE("turbofishCall", () => {
    this.CONSUME(T.ColonColon);
    this.SUBRULE(this.genericArgs);
    this.SUBRULE(this.callSuffix);
  });

  callSuffix = this.RULE("callSuffix", () => {
    this.CONSUME(T.LParen);
    this.MANY(() => {
      this.SUBRULE(this.arg);
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    this.CONSUME(T.RParen);
  });

  arg = this.RULE("arg", () => {
    this.OPTION({
      GATE: () => this.LA(2).tokenType === T.Equals,
      DEF: () => {
        this.CONSUME(T.Identifier, { LABEL: "name" });
        this.CONSUME(T.Equals);
      },
    });
    this.SUBRULE(this.expr);
  });

  fieldSuffix = this.RULE("fieldSuffix", () => {
    this.CONSUME(T.Dot);
    this.OR([{ ALT: () => this.CONSUME(T.Identifier) }, { ALT: () => this.CONSUME(T.NumberLiteral) }]);
  });

  indexSuffix = this.RULE("indexSuffix", () => {
    this.CONSUME(T.LBracket);
    this.SUBRULE(this.expr);
    this.CONSUME(T.RBracket);
  });

  primary = this.RULE("primary", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLiteral) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.CONSUME(T.Identifier) },
      { ALT: () => this.SUBRULE(this.parenExpr) },
      { ALT: () => this.SUBRULE(this.recordExpr) },
      { ALT: () => this.SUBRULE(this.listExpr) },
      { ALT: () => this.SUBRULE(this.ifExpr) },
    ]);
  });

  parenExpr = this.RULE("parenExpr", () => {
    this.CONSUME(T.LParen);
    this.MANY(() => {
      this.SUBRULE(this.expr);
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    this.CONSUME(T.RParen);
  });

  recordExpr = this.RULE("recordExpr", () => {
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.SUBRULE(this.recordField);
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    this.CONSUME(T.RBrace);
  });

  recordField = this.RULE("recordField", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.expr);
    });
  });

  listExpr = this.RULE("listExpr", () => {
    this.CONSUME(T.LBracket);
    this.MANY(() => {
      this.SUBRULE(this.listItem);
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    this.CONSUME(T.RBracket);
  });

  /** An element of a list literal or a shape: an expression, or `...S` spreading a shape pack. */
  listItem = this.RULE("listItem", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Ellipsis);
          this.CONSUME(T.Identifier);
        },
      },
      { ALT: () => this.SUBRULE(this.expr) },
    ]);
  });

  ifExpr = this.RULE("ifExpr", () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expr, { LABEL: "cond" });
    this.SUBRULE(this.block, { LABEL: "then" });
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR([{ ALT: () => this.SUBRULE(this.ifExpr, { LABEL: "elseIf" }) }, { ALT: () => this.SUBRULE2(this.block, { LABEL: "else" }) }]);
    });
  });
}

export const parser = new UlParser();

export interface ParseError {
  token: IToken;
  message: string;
  previous: IToken | undefined;
  ruleStack: string[];
}

export interface ParseOutput {
  cst: CstNode;
  errors: ParseError[];
}

export function parseTokens(tokens: IToken[]): ParseOutput {
  parser.input = tokens;
  const cst = parser.file();
  const errors = parser.errors.map((e) => ({
    token: e.token,
    message: e.message,
    previous: (e as { previousToken?: IToken }).previousToken,
    ruleStack: e.context.ruleStack,
  }));
  return { cst, errors };
}


