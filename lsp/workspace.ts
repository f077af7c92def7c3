// The open documents as the front end sees them: a SourceHost that reads an open document's buffer in place
// of its file, and one Analysis per document, kept until that document or a file its check read changes.
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { TextDocuments } from "vscode-languageserver";
import { diskHost, stdDeclarations, type SourceHost } from "../dsl/loader.js";
import { Analysis } from "./analysis.js";
import { uriPath } from "./positions.js";

export class Workspace {
  private readonly analyses = new Map<string, Analysis>();
  /** The last analysis of each document whose text parsed: completion and symbols while a line is half typed. */
  private readonly parsed = new Map<string, Analysis>();
  private std: ReadonlyMap<string, string> | undefined;

  private readonly host: SourceHost = {
    readFile: (p) => this.openDocument(p)?.getText() ?? diskHost.readFile(p),
    listFolder: diskHost.listFolder,
  };

  constructor(
    private readonly documents: TextDocuments<TextDocument>,
    private readonly stdRoot: string,
  ) {}

  /** The analysis of the document's current text (checked now if it is out of date); undefined for a buffer with no file. */
  analysis(doc: TextDocument): Analysis | undefined {
    const root = uriPath(doc.uri);
    if (root === undefined) return undefined;
    const known = this.analyses.get(doc.uri);
    if (known?.version === doc.version) return known;
    const fresh = new Analysis(root, doc.version, this.host, this.stdRoot);
    this.analyses.set(doc.uri, fresh);
    if (fresh.files.get(root)?.ast) this.parsed.set(doc.uri, fresh);
    return fresh;
  }

  /** The document's analysis if its text parses, else the last one that did. */
  lastParsed(doc: TextDocument): Analysis | undefined {
    this.analysis(doc);
    return this.parsed.get(doc.uri);
  }

  /** The file at `path` changed: every analysis that read it is out of date. */
  changed(path: string): void {
    for (const [uri, a] of this.analyses) if (a.files.has(path)) this.analyses.delete(uri);
  }

  closed(uri: string): void {
    this.analyses.delete(uri);
    this.parsed.delete(uri);
  }

  /** The std module declaring each std name (`Linear` -> `layers`), for completion; read once per server. */
  stdNames(): ReadonlyMap<string, string> {
    return (this.std ??= stdDeclarations(this.host, this.stdRoot));
  }

  private openDocument(p: string): TextDocument | undefined {
    return this.documents.all().find((d) => uriPath(d.uri) === p);
  }
}
