// The language server: open documents, checks debounced after edits, diagnostics published per file, and the
// requests (hover, definition, completion, symbols) answered from the document's current analysis.
import { TextDocument } from "vscode-languageserver-textdocument";
import { TextDocuments, TextDocumentSyncKind, type Connection, type Diagnostic as LspDiagnostic } from "vscode-languageserver";
import { defaultStdRoot } from "../dsl/loader.js";
import type { Analysis } from "./analysis.js";
import { completions } from "./completion.js";
import { definition } from "./definition.js";
import { byFile } from "./diagnostics.js";
import { hover } from "./hover.js";
import { pathUri, uriPath } from "./positions.js";
import { documentSymbols } from "./symbols.js";
import { Workspace } from "./workspace.js";

/** Edits this close together are checked once, after the last: a check of ul_small takes ~50 ms, a keystroke less. */
const DEBOUNCE_MS = 100;

export function serve(connection: Connection, stdRoot = defaultStdRoot()): void {
  const documents = new TextDocuments(TextDocument);
  const workspace = new Workspace(documents, stdRoot);
  /** The analysis whose diagnostics each open document shows, and the other files that analysis published to. */
  const published = new Map<string, { analysis: Analysis; others: Set<string> }>();
  let timer: NodeJS.Timeout | undefined;

  connection.onInitialize(() => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      hoverProvider: true,
      definitionProvider: true,
      completionProvider: { triggerCharacters: ["."] },
      documentSymbolProvider: true,
    },
    serverInfo: { name: "ulc" },
  }));

  const send = (uri: string, diagnostics: LspDiagnostic[]) => void connection.sendDiagnostics({ uri, diagnostics });

  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(publishAll, DEBOUNCE_MS);
  };

  /** Checks every open document whose analysis is out of date and publishes what changed. */
  const publishAll = () => {
    for (const doc of documents.all()) {
      try {
        const analysis = workspace.analysis(doc);
        if (analysis && published.get(doc.uri)?.analysis !== analysis) publish(doc.uri, analysis);
      } catch (e) {
        connection.console.error(`ulc: checking ${doc.uri} failed (a bug in ulc): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
    }
  };

  // A document shows the diagnostics of its own check; a file that is not open shows those of the last check
  // of an open document that imports it (an error inside std that a call instantiated, say).
  const publish = (uri: string, analysis: Analysis) => {
    const diagnostics = byFile(analysis.diagnostics);
    const open = new Set(documents.all().map((d) => d.uri));
    const others = new Set([...diagnostics.keys()].map(pathUri).filter((u) => u !== uri && !open.has(u)));
    for (const stale of published.get(uri)?.others ?? []) if (!others.has(stale)) send(stale, []);
    for (const [p, list] of diagnostics) if (others.has(pathUri(p))) send(pathUri(p), list);
    send(uri, diagnostics.get(analysis.root) ?? []);
    published.set(uri, { analysis, others });
    connection.console.log(`ulc: checked ${analysis.root} in ${analysis.elapsedMs.toFixed(0)} ms`);
  };

  documents.onDidChangeContent((e) => {
    const p = uriPath(e.document.uri);
    if (p !== undefined) workspace.changed(p);
    schedule();
  });

  documents.onDidClose((e) => {
    for (const uri of [e.document.uri, ...(published.get(e.document.uri)?.others ?? [])]) send(uri, []);
    published.delete(e.document.uri);
    workspace.closed(e.document.uri);
    // Documents that import it read the file on disk from now on.
    const p = uriPath(e.document.uri);
    if (p !== undefined) workspace.changed(p);
    schedule();
  });

  /** The open document a request names, with its file's path; undefined for a buffer with no file. */
  const opened = (uri: string) => {
    const doc = documents.get(uri);
    const path = uriPath(uri);
    return doc && path !== undefined ? { doc, path } : undefined;
  };

  connection.onHover(({ textDocument, position }) => {
    const o = opened(textDocument.uri);
    const analysis = o && workspace.analysis(o.doc);
    return o && analysis ? hover(analysis, o.path, o.doc.offsetAt(position)) : null;
  });

  connection.onDefinition(({ textDocument, position }) => {
    const o = opened(textDocument.uri);
    const analysis = o && workspace.analysis(o.doc);
    return o && analysis ? definition(analysis, o.path, o.doc.offsetAt(position)) : null;
  });

  connection.onCompletion(({ textDocument, position }) => {
    const o = opened(textDocument.uri);
    if (!o) return [];
    return completions({
      ast: workspace.lastParsed(o.doc)?.files.get(o.path)?.ast,
      offset: o.doc.offsetAt(position),
      lineBefore: o.doc.getText({ start: { line: position.line, character: 0 }, end: position }),
      std: workspace.stdNames(),
    });
  });

  connection.onDocumentSymbol(({ textDocument }) => {
    const o = opened(textDocument.uri);
    const ast = o && workspace.lastParsed(o.doc)?.files.get(o.path)?.ast;
    return ast ? documentSymbols(ast) : [];
  });

  documents.listen(connection);
  connection.listen();
}
