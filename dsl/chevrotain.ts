// chevrotain's package entry loads some 300 lodash-es modules one by one (about 0.5 s of a `ulc check`);
// the same release ships a single-file bundle that loads in a tenth of that. Types come from the package.
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type * as Chevrotain from "chevrotain";

const entry = createRequire(import.meta.url).resolve("chevrotain"); // .../chevrotain/lib/src/api.js
const bundle = path.join(path.dirname(entry), "..", "chevrotain.mjs");
const chevrotain = (await import(pathToFileURL(bundle).href)) as typeof Chevrotain;

export const { createToken, Lexer, CstParser, EOF } = chevrotain;
export type { CstElement, CstNode, IToken, TokenType } from "chevrotain";
