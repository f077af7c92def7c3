// A progress bar for long work on stderr: redrawn in place on a terminal; on a pipe or a log file, one plain
// line every tenth of the way or every minute, whichever comes first (and at the end), so logs stay readable.
// Fields (a train entry's metrics) follow the count: on a terminal as many whole fields as its width leaves room
// for beside the bar, the rate and the ETA; in a log, all of them.
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

  /** `done` units finished in all; `fields` are shown after the count, in order (loss terms, say). */
  update(done: number, fields: readonly string[] = []): void {
    const elapsed = (performance.now() - this.started) / 1000;
    const rate = (done - this.first) / Math.max(elapsed, 1e-9);
    const eta = (this.total - done) / rate;
    const width = 24;
    const filled = Math.round((width * done) / this.total);
    const bar = `[${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? (done >= this.total ? "=" : ">") : ""}${" ".repeat(width - filled)}]`;
    const head = `${this.label} ${bar} ${done}/${this.total} `;
    const tail = `${rate.toFixed(rate < 10 ? 2 : 1)} ${this.unit}/s ETA ${formatDuration(eta)}`;
    const cols = this.stream.isTTY ? (this.stream.columns ?? 120) : Infinity;
    const shown = fitting(fields, cols - 1 - head.length - tail.length - " | ".length);
    const line = `${head}${shown}${shown ? " | " : ""}${tail}`;
    if (this.stream.isTTY) {
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

/** As many of `fields` as fit in `room` characters, whole and in order, with "…" when some are left out. */
function fitting(fields: readonly string[], room: number): string {
  let text = fields.join(" ");
  for (let n = fields.length - 1; text.length > room && n >= 0; n--) text = n ? `${fields.slice(0, n).join(" ")} …` : "";
  return text;
}

/** A train step's metrics as progress fields: the minimised one first, then the others in the record's order. */
export function metricFields(metrics: ReadonlyMap<string, number>, loss: string): string[] {
  const names = [loss, ...[...metrics.keys()].filter((k) => k !== loss)].filter((k) => metrics.has(k));
  // Four significant digits without trailing zeros: "0.1234", "3", "1.5e-7".
  return names.map((k) => `${k} ${Number(metrics.get(k)!.toPrecision(4))}`);
}
