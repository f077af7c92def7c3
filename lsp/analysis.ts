// One check of a document, exactly as `ulc check FILE` runs it but reading open documents' unsaved text, that
// keeps what the checker told about each place: the values computed there (one per instantiation of the code
// around it, with the scope that binds its generics) and the declaration a name there resolves to. Hover and
// go-to-definition read these facts.
import { checkFiles } from "../dsl/check.js";
import type { Diagnostic } from "../dsl/diagnostics.js";
import type { LoadedFile, SourceHost } from "../dsl/loader.js";
import type { SourceFile, Span } from "../dsl/source.js";
import type { CheckObserver, Scope, Value } from "../dsl/values.js";
import { spanContains } from "./positions.js";

/** What the checker said about one span. */
export interface Fact {
  readonly span: Span;
  /** Every value computed here, in the order the checker computed them (models first, then generic code). */
  readonly values: Computed[];
  /** Where the name written here is bound. */
  declared?: Span;
}

export interface Computed {
  readonly value: Value;
  readonly scope: Scope;
}

export class Analysis {
  readonly diagnostics: readonly Diagnostic[];
  /** Every file the check read, by absolute path. */
  readonly files: ReadonlyMap<string, LoadedFile>;
  /** How long the check took (the server logs it: an edit should show its diagnostics within 300 ms). */
  readonly elapsedMs: number;
  private readonly facts = new Map<SourceFile, Map<string, Fact>>();

  /** Checks the file at `root` (an absolute path) whose editor buffer is at `version`. */
  constructor(
    readonly root: string,
    readonly version: number,
    host: SourceHost,
    stdRoot: string,
  ) {
    const observer: CheckObserver = {
      value: (span, value, scope) => this.fact(span).values.push({ value, scope }),
      resolved: (use, declared) => void (this.fact(use).declared = declared),
    };
    const started = performance.now();
    const result = checkFiles([root], { host, stdRoot, observer });
    this.elapsedMs = performance.now() - started;
    this.diagnostics = result.diagnostics;
    this.files = result.files;
  }

  /** The innermost span of the file at `path` that the cursor at `offset` is on and that has what `wanted` asks. */
  factAt(path: string, offset: number, wanted: (f: Fact) => boolean): Fact | undefined {
    const source = this.files.get(path)?.source;
    let best: Fact | undefined;
    for (const f of (source && this.facts.get(source)?.values()) ?? []) {
      if (!spanContains(f.span, offset) || !wanted(f)) continue;
      if (!best || f.span.end - f.span.start < best.span.end - best.span.start) best = f;
    }
    return best;
  }

  /** The fact recorded at exactly `span`. */
  factOf(span: Span): Fact | undefined {
    return this.facts.get(span.file)?.get(`${span.start}:${span.end}`);
  }

  private fact(span: Span): Fact {
    let inFile = this.facts.get(span.file);
    if (!inFile) this.facts.set(span.file, (inFile = new Map()));
    const key = `${span.start}:${span.end}`;
    let f = inFile.get(key);
    if (!f) inFile.set(key, (f = { span, values: [] }));
    return f;
  }
}
