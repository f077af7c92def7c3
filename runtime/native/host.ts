// The driver's end of the native host runtimes' protocol (backends/native/cpp/ulc_serve.h, `serve` mode): requests are
// written to the program's stdin, replies read from its stdout, one request at a time. When the program dies
// (a crash, or a device it could not open) the next reply fails with what it wrote on stderr.
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { NativeError } from "./compile.js";

const enum Op {
  INFO = 1,
  ALLOC,
  WRITE,
  READ,
  COPY,
  RUN,
  TIME,
  QUIT,
  RANKS,
  ALLREDUCE,
}

/** A request under construction: little-endian fields. */
class Message {
  private readonly parts: Uint8Array[] = [];

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.parts.push(b);
    return this;
  }

  u64(v: number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.parts.push(b);
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A region of the arena: where and how many bytes. */
export interface Span {
  readonly offset: number;
  readonly bytes: number;
}

/** Bytes to place at an offset of the arena. */
export interface Write {
  readonly offset: number;
  readonly data: Uint8Array;
}

/**
 * Writes as one when they lie close together (inputs the session laid out one after another, aligned): the
 * span from the first to the end of the last, gaps zeroed, so that the device makes one copy instead of one per
 * input. Writes far apart stay as they are.
 */
export function packWrites(writes: readonly Write[], slack: number): Write[] {
  const sorted = [...writes].sort((a, b) => a.offset - b.offset);
  if (sorted.length < 2) return sorted;
  const start = sorted[0]!.offset;
  const end = Math.max(...sorted.map((w) => w.offset + w.data.byteLength));
  const payload = sorted.reduce((n, w) => n + w.data.byteLength, 0);
  if (end - start > payload + slack * sorted.length) return sorted;
  const data = new Uint8Array(end - start);
  for (const w of sorted) data.set(w.data, w.offset - start);
  return [{ offset: start, data }];
}

/** A graph run: the graph, its {seed, step}, where its pinned buffers are, its uploads and read-backs. */
export interface GraphRun {
  readonly graph: number;
  readonly seed: number;
  readonly step: number;
  readonly pinned: readonly number[];
  readonly writes: readonly Write[];
  readonly reads: readonly Span[];
}

export interface DeviceInfo {
  readonly device: string;
  readonly emulated: boolean;
  readonly totalBytes: number;
}

/** The job the program is a rank of (ulc_serve.h's Job): one rank unless it was built for MPI and started by mpirun. */
export interface JobInfo {
  readonly rank: number;
  readonly ranks: number;
  /** How it all-reduces, in words. */
  readonly collective: string;
}

export class HostProcess {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiting: { bytes: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private stderr = "";
  private ended: Error | undefined;
  /** Requests run one after another: each waits for the previous reply. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(binary: string, dir: string) {
    // OpenMP threads that spin between parallel loops starve every other thread of a busy machine (measured:
    // a ul_tiny step 5x slower beside one other process on 2 cores): they sleep unless the user says otherwise.
    const env = { OMP_WAIT_POLICY: "PASSIVE", ...process.env };
    this.child = spawn(binary, ["serve", dir], { stdio: ["pipe", "pipe", "pipe"], env });
    this.child.stdout.on("data", (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      this.deliver();
    });
    this.child.stderr.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.child.stdin.on("error", () => {}); // a dead program: reported by the pending read
    this.child.on("error", (e) => this.end(new NativeError(`cannot start ${binary}: ${e.message}`)));
    this.child.on("close", (code, signal) => {
      const why = this.stderr.trim() || `it exited with ${signal ?? `code ${code}`}`;
      this.end(new NativeError(`the host runtime (${binary}) stopped: ${why}`));
    });
  }

  private end(e: Error): void {
    this.ended ??= e;
    this.deliver();
  }

  private deliver(): void {
    const w = this.waiting;
    if (!w) return;
    if (this.buffered >= w.bytes) {
      const all = Buffer.concat(this.chunks);
      this.chunks = [all.subarray(w.bytes)];
      this.buffered -= w.bytes;
      this.waiting = undefined;
      w.resolve(all.subarray(0, w.bytes));
    } else if (this.ended) {
      this.waiting = undefined;
      w.reject(this.ended);
    }
  }

  private take(bytes: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiting = { bytes, resolve, reject };
      this.deliver();
    });
  }

  /** Sends a request; `reply` reads its result once the status says ok. */
  private request<T>(m: Message, reply: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      if (this.ended) throw this.ended;
      this.child.stdin.write(m.toBuffer());
      const status = (await this.take(4)).readUInt32LE();
      if (status !== 0) throw new NativeError(await this.string());
      return reply();
    });
    this.queue = next.catch(() => {});
    return next;
  }

  private async string(): Promise<string> {
    const n = (await this.take(4)).readUInt32LE();
    return (await this.take(n)).toString();
  }

  info(): Promise<DeviceInfo> {
    return this.request(new Message().u32(Op.INFO), async () => {
      const device = await this.string();
      const rest = await this.take(12);
      return { device, emulated: rest.readUInt32LE(0) === 1, totalBytes: Number(rest.readBigUInt64LE(4)) };
    });
  }

  job(): Promise<JobInfo> {
    return this.request(new Message().u32(Op.RANKS), async () => {
      const ids = await this.take(8);
      return { rank: ids.readUInt32LE(0), ranks: ids.readUInt32LE(4), collective: await this.string() };
    });
  }

  /** Replaces `count` f32 values at `offset` with their mean over the job's ranks (every rank must ask). */
  allReduce(offset: number, count: number): Promise<void> {
    return this.request(new Message().u32(Op.ALLREDUCE).u64(offset).u64(count), async () => {});
  }

  alloc(fixedBytes: number): Promise<void> {
    return this.request(new Message().u32(Op.ALLOC).u64(fixedBytes), async () => {});
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.request(new Message().u32(Op.WRITE).u64(offset).u64(data.byteLength).bytes(data), async () => {});
  }

  read(span: Span): Promise<Buffer> {
    return this.request(new Message().u32(Op.READ).u64(span.offset).u64(span.bytes), () => this.take(span.bytes));
  }

  copy(dst: number, src: number, bytes: number): Promise<void> {
    return this.request(new Message().u32(Op.COPY).u64(dst).u64(src).u64(bytes), async () => {});
  }

  private graphFields(m: Message, graph: number, seed: number, step: number, pinned: readonly number[]): Message {
    m.u32(graph).u32(seed).u32(step).u32(pinned.length);
    for (const o of pinned) m.u64(o);
    return m;
  }

  /**
   * Runs graphs one after another, each after writing its inputs and before reading its outputs, with one
   * synchronisation for them all; returns each run's reads' bytes.
   */
  run(runs: readonly GraphRun[]): Promise<Buffer[][]> {
    const m = new Message().u32(Op.RUN).u32(runs.length);
    for (const r of runs) {
      this.graphFields(m, r.graph, r.seed, r.step, r.pinned).u32(r.writes.length);
      for (const w of r.writes) m.u64(w.offset).u64(w.data.byteLength).bytes(w.data);
      m.u32(r.reads.length);
      for (const span of r.reads) m.u64(span.offset).u64(span.bytes);
    }
    return this.request(m, async () => {
      const all = await this.take(runs.reduce((n, r) => r.reads.reduce((k, span) => k + span.bytes, n), 0));
      let at = 0;
      return runs.map((r) => r.reads.map((span) => all.subarray(at, (at += span.bytes))));
    });
  }

  /** Milliseconds per run of the graph over `repeats` runs, timed by the device (a CUDA Graph's replays, a CPU's clock). */
  time(graph: number, seed: number, step: number, pinned: readonly number[], repeats: number): Promise<number> {
    const m = this.graphFields(new Message().u32(Op.TIME), graph, seed, step, pinned).u32(repeats);
    return this.request(m, async () => (await this.take(8)).readDoubleLE());
  }

  /** The process's peak resident memory in bytes (Linux: VmHWM in /proc), or undefined where it cannot be read. */
  peakResidentBytes(): number | undefined {
    try {
      const kib = /VmHWM:\s*(\d+) kB/.exec(readFileSync(`/proc/${this.child.pid}/status`, "utf8"))?.[1];
      return kib === undefined ? undefined : Number(kib) * 1024;
    } catch {
      return undefined;
    }
  }

  /** Asks the program to exit; the process is killed if it does not. */
  close(): void {
    if (!this.ended) this.child.stdin.end(new Message().u32(Op.QUIT).toBuffer());
    this.child.unref();
    setTimeout(() => this.child.kill(), 2000).unref();
  }
}
