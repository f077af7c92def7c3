// Source text with offset -> line/column mapping. Spans are half-open byte ranges into one file.

export interface Span {
  readonly file: SourceFile;
  readonly start: number;
  readonly end: number;
}

export interface Position {
  readonly line: number; // 1-based
  readonly col: number; // 1-based, in UTF-16 code units
}

export class SourceFile {
  private readonly lineStarts: number[];

  constructor(
    readonly path: string,
    readonly text: string,
  ) {
    this.lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  get lineCount(): number {
    return this.lineStarts.length;
  }

  position(offset: number): Position {
    const at = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: at - this.lineStarts[lo]! + 1 };
  }

  /** The text of a 1-based line, without its line break. */
  lineText(line: number): string {
    const start = this.lineStarts[line - 1] ?? this.text.length;
    const next = this.lineStarts[line];
    const end = next === undefined ? this.text.length : next - 1;
    return this.text.slice(start, end).replace(/\r$/, "");
  }

  span(start: number, end: number): Span {
    return { file: this, start, end: Math.max(start, end) };
  }
}

/** The smallest span covering both. */
export function joinSpans(a: Span, b: Span): Span {
  return { file: a.file, start: Math.min(a.start, b.start), end: Math.max(a.end, b.end) };
}

/** The source text a span covers. */
export function spanText(s: Span): string {
  return s.file.text.slice(s.start, s.end);
}
