// The VS Code side of ulc: starts `ulc lsp` for .ul files and lets vscode-languageclient speak the protocol
// with it over stdio (the client adds --stdio to the command line). Everything else is the server's.
const { workspace } = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

/** @type {LanguageClient | undefined} */
let client;

function activate() {
  const command = workspace.getConfiguration("ulc").get("path", "ulc");
  const server = { command, args: ["lsp"], transport: TransportKind.stdio };
  client = new LanguageClient("ulc", "ulc language server", server, { documentSelector: [{ scheme: "file", language: "ul" }] });
  return client.start();
}

function deactivate() {
  return client?.stop();
}

module.exports = { activate, deactivate };
