// A scripted LSP client: starts `node bin/ulc.js lsp --stdio` (dist/, which the global setup builds) and speaks
// JSON-RPC to it over the child's stdin and stdout with the protocol's own packages, as an editor would.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  createProtocolConnection,
  DidChangeTextDocumentNotification,
  DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  PublishDiagnosticsNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  type Diagnostic,
  type ProtocolConnection,
  type PublishDiagnosticsParams,
  type TextDocumentContentChangeEvent,
} from "vscode-languageserver-protocol/node";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export class LspClient {
  readonly connection: ProtocolConnection;
  /** Set when the server's process has exited, to its exit code. */
  exitCode: number | null | undefined;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly versions = new Map<string, number>();
  private readonly waiting: { uri: string; resolve: (d: Diagnostic[]) => void }[] = [];
  private stderr = "";

  constructor() {
    this.child = spawn(process.execPath, [`${ROOT}bin/ulc.js`, "lsp", "--stdio"], { cwd: ROOT });
    this.child.stderr.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.child.on("exit", (code) => (this.exitCode = code));
    this.connection = createProtocolConnection(new StreamMessageReader(this.child.stdout), new StreamMessageWriter(this.child.stdin));
    this.connection.onNotification(PublishDiagnosticsNotification.type, (p: PublishDiagnosticsParams) => {
      const i = this.waiting.findIndex((w) => w.uri === p.uri);
      if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(p.diagnostics);
    });
    this.connection.listen();
  }

  async initialize(): Promise<void> {
    await this.connection.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: pathToFileURL(ROOT).href, capabilities: {} });
    await this.connection.sendNotification(InitializedNotification.type, {});
  }

  /** Opens the document and resolves to the first diagnostics the server publishes for it. */
  open(uri: string, text: string): Promise<Diagnostic[]> {
    const published = this.diagnostics(uri);
    this.versions.set(uri, 1);
    void this.connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: "ul", version: 1, text } });
    return published;
  }

  /** Edits the open document and resolves to the next diagnostics published for it. */
  change(uri: string, changes: TextDocumentContentChangeEvent[]): Promise<Diagnostic[]> {
    const published = this.diagnostics(uri);
    const version = (this.versions.get(uri) ?? 0) + 1;
    this.versions.set(uri, version);
    void this.connection.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version }, contentChanges: changes });
    return published;
  }

  closeDocument(uri: string): void {
    void this.connection.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri } });
  }

  /** Shuts the server down as an editor does and resolves to its exit code. */
  async shutdown(): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => (this.exitCode !== undefined ? resolve(this.exitCode) : this.child.on("exit", resolve)));
    await this.connection.sendRequest(ShutdownRequest.type);
    await this.connection.sendNotification(ExitNotification.type);
    const code = await exited;
    this.connection.dispose();
    return code;
  }

  /** What the server wrote on stderr (nothing, when all is well: the protocol is on stdout). */
  get errors(): string {
    return this.stderr;
  }

  /** The next diagnostics the server publishes for `uri` (ask before the edit that causes them). */
  diagnostics(uri: string): Promise<Diagnostic[]> {
    return new Promise((resolve) => this.waiting.push({ uri, resolve }));
  }
}
