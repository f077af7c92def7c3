// A progress bar for long work on stderr: redrawn in place on a terminal; on a pipe or a log file, one plain
// line every tenth of the way or every minute, whichever comes first (and at the end), so logs stay readable.
import type { OutStream } from "./io.js";

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export class Progress {
  private readonly started = performance.now();
  private lastTenth = -1;
  private lastLine = 0;

  constructor(
    private readonly stream: OutStream,
    private readonly label: string,
    /** Units of work in all, counted from `first` (a resumed run starts part-way). */
    private readonly total: number,
    private readonly first = 0,
    private readonly unit = "step",
  ) {}

  /** `done` units finished in all; `fields` are shown after the rate (loss terms, say). */
  update(done: number, fields = ""): void {
    const elapsed = (performance.now() - this.started) / 1000;
    const rate = (done - this.first) / Math.max(elapsed, 1e-9);
    const eta = (this.total - done) / rate;
    const width = 24;
    const filled = Math.round((width * done) / this.total);
    const bar = `[${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? (done >= this.total ? "=" : ">") : ""}${" ".repeat(width - filled)}]`;
    const line = `${this.label} ${bar} ${done}/${this.total} ${fields}${fields ? " | " : ""}${rate.toFixed(rate < 10 ? 2 : 1)} ${this.unit}/s ETA ${formatDuration(eta)}`;
    if (this.stream.isTTY) {
      const cols = this.stream.columns ?? 120;
      this.stream.write(`\r\x1b[K${line.slice(0, cols - 1)}`);
      if (done >= this.total) this.stream.write("\n");
      return;
    }
    const tenth = Math.floor((10 * done) / this.total);
    if (tenth !== this.lastTenth || elapsed - this.lastLine >= 60) {
      this.lastTenth = tenth;
      this.lastLine = elapsed;
      this.stream.write(line + "\n");
    }
  }
}
