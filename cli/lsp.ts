// `ulc lsp`: the language server for .ul (lsp/), speaking the Language Server Protocol over stdin and stdout.
import { createConnection } from "vscode-languageserver/node";
import { serve } from "../lsp/server.js";

/**
 * Serves until the client says `exit` or closes stdin; the protocol library then ends the process, with exit
 * code 0 after a `shutdown` request and 1 without one, so this never returns.
 */
export function runLsp(): Promise<never> {
  serve(createConnection(process.stdin, process.stdout));
  return new Promise(() => {});
}
