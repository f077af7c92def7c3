// The ulc command line: exit codes, output formats and argument errors. Most tests call main() in-process
// with captured streams (no build needed); the last group spawns the real bin/ulc.js against dist/, which the
// global setup builds.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { collectBinding, parseBinding, plural, resolveColor, validateSourceFiles } from "../cli/args.js";
import { centreCrop } from "../cli/eval.js";
import { metricFields, Progress } from "../cli/progress.js";
import { ulc } from "./support/cli.js";
import { npyFloat32 } from "./support/npy.js";
import { readRunConfig, RUN_FORMAT } from "../train/run.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLEAN = "fn f<N>(x: f32[N]) -> f32[N] { x * 2.0 }\n";
const BAD = "fn f<N>(x: f32[N]) -> f32[N] { y }\n";
const BAD_COL = BAD.indexOf("{ y") + 3; // 1-based column of `y`
const ESC = "\x1b[";

let dir: string;
let clean: string;
let clean2: string;
let bad: string;
let bad2: string;
let notUl: string;
let folder: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ulc-cli-"));
  const put = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  clean = put("clean.ul", CLEAN);
  clean2 = put("clean2.ul", CLEAN.replace("fn f", "fn g"));
  bad = put("bad.ul", BAD);
  bad2 = put("bad2.ul", BAD.replace("fn f", "fn h"));
  notUl = put("notes.txt", CLEAN);
  folder = join(dir, "folder.ul");
  mkdirSync(folder);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("eval's centre crop (a padded canvas read by a classifier of the data set's size)", () => {
  test("cuts the same border from every side of every image and channel, and only where it can", () => {
    // Two images of two channels, 6×8, each value naming its (image, channel, row, column).
    const [n, c, H, W] = [2, 2, 6, 8];
    const images = Float32Array.from({ length: n * c * H * W }, (_, i) => i);
    const crop = centreCrop(images, [n, c, H, W], [c, 2, 4])!;
    const want: number[] = [];
    for (let k = 0; k < n * c; k++) for (let y = 2; y < 4; y++) for (let x = 2; x < 6; x++) want.push((k * H + y) * W + x);
    expect(Array.from(crop)).toEqual(want);
    expect(centreCrop(images, [n, c, H, W], [c, 3, 4])).toBeUndefined(); // an odd margin has no centre
    expect(centreCrop(images, [n, c, H, W], [1, 2, 4])).toBeUndefined(); // channels differ
  });
});

describe("ulc check: exit codes and text output", () => {
  test("a clean file exits 0 with an ok summary and nothing on stdout", async () => {
    const r = await ulc(["check", clean]);
    expect(r.stderr).toBe("ok: 1 file checked\n");
    expect(r.stdout).toBe("");
    expect(r.code).toBe(0);
  });

  test("several clean files are counted", async () => {
    const r = await ulc(["check", clean, clean2]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("ok: 2 files checked");
  });

  test("an unknown name exits 1 with a located, rendered diagnostic and a summary", async () => {
    const r = await ulc(["check", bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`${bad}:1:${BAD_COL}: error[E0301]`);
    expect(r.stderr).toContain(BAD.trimEnd()); // the source line
    expect(r.stderr).toMatch(/\^/); // the caret
    expect(r.stderr.trimEnd().split("\n").at(-1)).toBe("1 error in 1 file");
  });

  test("errors in two files are summed", async () => {
    const r = await ulc(["check", bad, clean, bad2]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bad}:1:${BAD_COL}`);
    expect(r.stderr).toContain(`${bad2}:1:${BAD_COL}`);
    expect(r.stderr.trimEnd().split("\n").at(-1)).toBe("2 errors in 2 files");
  });

  test("a file named twice is checked once", async () => {
    const r = await ulc(["check", bad, bad]);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split("\n").at(-1)).toBe("1 error in 1 file");
  });
});

describe("ulc check --json", () => {
  test("clean: empty diagnostics, the files, nothing on stderr", async () => {
    const r = await ulc(["check", "--json", clean]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ diagnostics: [], files: [clean] });
  });

  test("errors: each diagnostic has code, severity, message, 1-based location and notes", async () => {
    const r = await ulc(["check", bad, clean, "--json"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout) as { diagnostics: Record<string, unknown>[]; files: string[] };
    expect(Object.keys(out).sort()).toEqual(["diagnostics", "files"]);
    expect(out.files).toEqual([bad, clean]);
    expect(out.diagnostics).toHaveLength(1);
    const d = out.diagnostics[0]!;
    expect(d).toMatchObject({ code: "E0301", severity: "error", file: bad, line: 1, col: BAD_COL, endLine: 1, endCol: BAD_COL + 1 });
    expect(typeof d.message).toBe("string");
    expect(d.message).toContain("y");
    expect(Array.isArray(d.notes)).toBe(true);
  });
});

describe("ulc check --bind", () => {
  test("a well-formed binding is accepted (repeatable) and fixes the dims", async () => {
    const model = join(dir, "bound.ul");
    writeFileSync(model, "model M {\n  entry e<B, C>(x: f32[B, C]) -> f32[B, C] { x * 2.0 }\n  entry half<B>(x: f32[B]) -> f32[B/2] { slice(x, 0, 0, B/2) }\n}\n");
    expect((await ulc(["check", "--bind", "B=64", "--bind", "C=3", model])).code).toBe(0);
    // B = 5 makes B/2 inexact: the binding reached the checker.
    const odd = await ulc(["check", "--bind", "B=5", model]);
    expect(odd.code).toBe(1);
    expect(odd.stderr).toContain("E0407");
  });

  test.each([
    ["Zzz=3", /no model or entry has a generic parameter 'Zzz' \(they have: B\)/],
    ["B=0", /'B' is a dim, so it must be at least 1/],
  ])("--bind %s that no model can take is reported once, as a usage error", async (text, why) => {
    const model = join(dir, "bindable.ul");
    writeFileSync(model, "model M {\n  entry e<B>(x: f32[B]) -> f32[B] { x * 2.0 }\n}\n");
    const r = await ulc(["check", "--bind", text, model]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(why);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  test.each([
    ["B=abc", /must be an integer, got 'abc'/i],
    ["=3", /name before '=' is missing/i],
    ["B", /expected NAME=INT/i],
    ["B=", /value of B is missing/i],
    ["3B=4", /'3B' is not a valid name/i],
    ["B=1.5", /must be an integer/i],
    ["B=99999999999999999999", /too large/i],
  ])("--bind %s is a usage error naming the flag", async (text, why) => {
    const r = await ulc(["check", "--bind", text, clean]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("--bind");
    expect(r.stderr).toContain(`'${text}'`);
    expect(r.stderr).toMatch(why);
  });

  test("binding one name twice is a usage error", async () => {
    const r = await ulc(["check", "--bind", "B=1", "--bind", "B=2", clean]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/B is bound twice/);
  });

  test("--bind with no value is a usage error", async () => {
    const r = await ulc(["check", clean, "--bind"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--bind");
  });
});

describe("ulc check: usage errors (exit 2)", () => {
  test("a file that does not exist", async () => {
    const missing = join(dir, "missing.ul");
    const r = await ulc(["check", clean, missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`file not found: ${missing}`);
    expect(r.stderr).not.toContain("ok:");
  });

  test("a file that is not a .ul file", async () => {
    const r = await ulc(["check", notUl]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${notUl} is not a .ul file`);
  });

  test("a directory", async () => {
    const r = await ulc(["check", folder]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${folder} is a directory`);
  });

  test("every bad file is named", async () => {
    const missing = join(dir, "missing.ul");
    const r = await ulc(["check", missing, notUl]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).toContain(notUl);
  });

  test("no file argument", async () => {
    const r = await ulc(["check"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing required argument 'files'/);
  });

  test("an unknown flag", async () => {
    const r = await ulc(["check", "--frobnicate", clean]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--frobnicate'");
  });

  test("an unknown command", async () => {
    const r = await ulc(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  test("an unknown command is a usage error with a suggestion", async () => {
    const r = await ulc(["trian", clean]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'trian'");
    expect(r.stderr).toContain("train");
  });

  test("no arguments at all: help on stderr", async () => {
    const r = await ulc([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("Usage: ulc");
  });
});

describe("help and version", () => {
  test("--help lists the check command and exits 0", async () => {
    const r = await ulc(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: ulc");
    expect(r.stdout).toMatch(/check.*type-check/);
    expect(r.stdout).toContain("Exit codes");
    expect(r.stderr).toBe("");
  });

  test("help check / check --help describe the flags", async () => {
    for (const argv of [["check", "--help"], ["help", "check"]]) {
      const r = await ulc(argv);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("Usage: ulc check");
      for (const flag of ["--json", "--bind <NAME=INT>", "--color", "--no-color"]) expect(r.stdout).toContain(flag);
    }
  });

  test("--version prints the package version", async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    const r = await ulc(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });
});

describe("colour", () => {
  test("no colour when stderr is not a terminal", async () => {
    const r = await ulc(["check", bad]);
    expect(r.stderr).not.toContain(ESC);
  });

  test("colour on a terminal", async () => {
    const r = await ulc(["check", bad], { tty: true });
    expect(r.stderr).toContain(ESC);
  });

  test("--color forces it, --no-color and NO_COLOR turn it off", async () => {
    expect((await ulc(["check", "--color", bad])).stderr).toContain(ESC);
    expect((await ulc(["check", "--no-color", bad], { tty: true })).stderr).not.toContain(ESC);
    expect((await ulc(["check", bad], { tty: true, env: { NO_COLOR: "1" } })).stderr).not.toContain(ESC);
    expect((await ulc(["check", bad], { env: { FORCE_COLOR: "1" } })).stderr).toContain(ESC);
  });

  test("--json output never has colour", async () => {
    const r = await ulc(["check", "--json", "--color", bad], { tty: true });
    expect(r.stdout).not.toContain(ESC);
  });
});

describe("argument helpers (cli/args.ts)", () => {
  test("parseBinding", () => {
    expect(parseBinding("B=64")).toEqual({ name: "B", value: 64 });
    expect(parseBinding("depth_2=-1")).toEqual({ name: "depth_2", value: -1 });
    expect(parseBinding("_=+7")).toEqual({ name: "_", value: 7 });
    for (const bad of ["", "=", "B", "B=", "=3", "B=x", "B=1e3", "B=0x10", "B = 3", "B=3=4", "a-b=1"]) {
      expect(() => parseBinding(bad), bad).toThrow();
    }
  });

  test("collectBinding accumulates without mutating its input", () => {
    const a = collectBinding("B=2", undefined);
    const b = collectBinding("C=3", a);
    expect(a).toEqual({ B: 2 });
    expect(b).toEqual({ B: 2, C: 3 });
    expect(() => collectBinding("B=5", b)).toThrow(/bound twice/);
    expect(() => collectBinding("constructor=1", {})).not.toThrow();
  });

  test("validateSourceFiles", () => {
    const kinds: Record<string, "file" | "directory"> = { "a.ul": "file", "b.txt": "file", "d.ul": "directory" };
    const probe = { kind: (p: string) => kinds[p] ?? ("missing" as const) };
    expect(validateSourceFiles(["a.ul", "a.ul", "./a.ul"], probe)).toEqual({ files: ["a.ul"], problems: [] });
    const r = validateSourceFiles(["a.ul", "b.txt", "d.ul", "z.ul"], probe);
    expect(r.files).toEqual(["a.ul"]);
    expect(r.problems).toHaveLength(3);
  });

  test("resolveColor and plural", () => {
    expect(resolveColor(undefined, { isTTY: true }, {})).toBe(true);
    expect(resolveColor(undefined, { isTTY: true }, { TERM: "dumb" })).toBe(false);
    expect(resolveColor(undefined, {}, { FORCE_COLOR: "0" })).toBe(false);
    expect(resolveColor(false, { isTTY: true }, { FORCE_COLOR: "1" })).toBe(false);
    expect(resolveColor(true, {}, { NO_COLOR: "1" })).toBe(true);
    expect(plural(1, "file")).toBe("1 file");
    expect(plural(0, "error")).toBe("0 errors");
  });
});

describe("the progress bar's fields (cli/progress.ts)", () => {
  test("a train step's metrics: the minimised one first, then the model's own in its record's order, compactly", () => {
    const metrics = new Map([["psnr", 21.23456], ["elbo", 3.5e-7], ["mse", 0.01], ["total", 0.123456]]);
    expect(metricFields(metrics, "total")).toEqual(["total 0.1235", "psnr 21.23", "elbo 3.5e-7", "mse 0.01"]);
  });

  const lines = (columns: number | undefined, fields: string[]) => {
    let text = "";
    const bar = new Progress({ write: (s: string) => (text += s), isTTY: columns !== undefined, ...(columns && { columns }) }, "train", 10);
    bar.update(10, fields);
    return text.replace(/\r\x1b\[K/g, "").trimEnd();
  };
  const fields = ["loss 0.1235", "psnr 21.23", "mse 0.01", "kl 1.5"];

  test("on a terminal, as many whole fields as fit beside the rate and the ETA", () => {
    const wide = lines(200, fields);
    expect(wide).toMatch(/^train \[=+\] 10\/10 loss 0\.1235 psnr 21\.23 mse 0\.01 kl 1\.5 \| [\d.]+ step\/s ETA 0s$/);
    for (const columns of [80, 90, 100]) {
      const line = lines(columns, fields);
      expect(line.length, line).toBeLessThan(columns);
      expect(line, line).toMatch(/ 10\/10 loss 0\.1235( [a-z]+ [\d.]+)* … \| [\d.]+ step\/s ETA 0s$/);
    }
  });

  test("in a log, every field", () => {
    expect(lines(undefined, fields)).toContain("10/10 loss 0.1235 psnr 21.23 mse 0.01 kl 1.5 | ");
  });
});

describe("ulc train --resume: the run's own flags", () => {
  // A run record by hand: the check runs before anything is built or read, and data that is not there stops a
  // run that passed it (exit 2 with a data error, not a flag error).
  const recorded = () => {
    const run = mkdtempSync(join(dir, "run-"));
    const config = { format: "ulc-run/1", model: join(ROOT, "models/ul_tiny.ul"), entry: "fit", batch: 4, bindings: { Width: 32 }, seed: 0, data: join(run, "no-data"), hypers: {}, optimizer: { lr: 0.001 }, emaDecay: 0.999, target: "cpu" };
    writeFileSync(join(run, "run.json"), JSON.stringify(config));
    return run;
  };
  const resume = (run: string, flags: string[]) => ulc(["train", "models/ul_tiny.ul", "--out", run, "--resume", "--steps", "1", ...flags]);

  test("a flag with the recorded value is accepted", async () => {
    const r = await resume(recorded(), ["--batch", "4", "--bind", "Width=32", "--seed", "0", "--lr", "0.001", "--target", "cpu", "--entry", "fit"]);
    expect(r.stderr).not.toMatch(/--resume:/);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/no-data/)]);
  }, 60_000);

  test("a flag with another value is refused, naming the flag and both values", async () => {
    const run = recorded();
    const batch = await resume(run, ["--batch", "8"]);
    expect([batch.code, batch.stderr]).toEqual([2, `ulc train: --resume: --batch is 8, but ${join(run, "run.json")} records 4; a resumed run keeps its settings (drop the flag, or train a new run)\n`]);
    expect((await resume(run, ["--bind", "Width=16"])).stderr).toMatch(/--bind is Width=16, but .* records Width=32/);
    expect((await resume(run, ["--ema-decay", "0.9"])).stderr).toMatch(/--ema-decay is 0.9, but .* records 0.999/);
    expect((await resume(run, ["--set", "loss_factor=2"])).stderr).toMatch(/--set is loss_factor=2, but .* records none/);
    // A run recorded before --precision existed trained in fp32.
    expect((await resume(run, ["--precision", "tf32"])).stderr).toMatch(/--precision is tf32, but .* records fp32/);
    expect(readFileSync(join(run, "run.json"), "utf8")).toMatch(/"batch":4/);
  });
});

describe("--precision", () => {
  const LINE = `from std.layers import Linear
from std.optim import Sgd
model Line {
  lin: Linear<4, 2>
  train fit<B>(x: f32[B, 4]) -> { loss: f32 } minimize loss with Sgd(lr = 0.1) {
    let y = lin(x)
    { loss: mean(y * y) }
  }
}
`;
  let model: string;
  let data: string;
  beforeAll(() => {
    model = join(dir, "line.ul");
    writeFileSync(model, LINE);
    data = join(dir, "rows.npy");
    writeFileSync(data, npyFloat32(Float32Array.from({ length: 32 }, (_, i) => Math.sin(i + 1)), [8, 4]));
  });

  test("a value other than fp32, tf32 or bf16 is a usage error naming the flag and the choices (exit 2)", async () => {
    for (const command of [["train", model], ["build", model, "--emit", "ir", "--bind", "B=2"]]) {
      const r = await ulc([...command, "--precision", "fp16"]);
      expect([r.code, r.stderr], command[0]).toEqual([2, expect.stringContaining("--precision must be one of fp32, tf32, bf16, got 'fp16'")]);
    }
    // The help says what each does.
    for (const command of ["train", "build"]) expect((await ulc([command, "--help"])).stdout.replace(/\s+/g, " "), command).toContain("bf16 (operands rounded to bfloat16, 8 significant bits, as tensor cores' bf16 mma reads them)");
  });

  test("run.json: each precision ulc knows is read back; another is refused naming them", () => {
    const run = join(dir, "recorded-precision");
    mkdirSync(run, { recursive: true });
    for (const precision of ["fp32", "tf32", "bf16"]) {
      writeFileSync(join(run, "run.json"), JSON.stringify({ format: RUN_FORMAT, precision }));
      expect(readRunConfig(run).precision).toBe(precision);
    }
    writeFileSync(join(run, "run.json"), JSON.stringify({ format: RUN_FORMAT, precision: "fp16" }));
    expect(() => readRunConfig(run)).toThrow(/records the precision "fp16"; ulc knows fp32, tf32, bf16/);
  });

  test("ulc build: tf32 and bf16 round the contractions' operands; the default is tf32 for --target cuda, fp32 otherwise", async () => {
    const ir = async (...flags: string[]) => (await ulc(["build", model, "--emit", "ir", "--bind", "B=2", ...flags])).stdout;
    expect(await ir()).not.toMatch(/round_(tf32|bf16)/);
    expect(await ir("--precision", "tf32")).toMatch(/= round_tf32\(%\d+\)/);
    const bf16 = await ir("--precision", "bf16");
    expect(bf16).toMatch(/= round_bf16\(%\d+\)/);
    expect(bf16).not.toContain("round_tf32");
    for (const [target, flags, want] of [["cuda", [], "tf32"], ["cpu", [], "fp32"], ["cpu", ["--precision", "tf32"], "tf32"], ["cuda", ["--precision", "fp32"], "fp32"], ["cuda", ["--precision", "bf16"], "bf16"], ["cpu", ["--precision", "bf16"], "bf16"]] as const) {
      const out = join(dir, `line-${target}-${want}`);
      const r = await ulc(["build", model, "--target", target, "--bind", "B=2", "-o", out, ...flags]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")).precision, `${target} ${flags.join(" ")}`).toBe(want);
    }
  }, 60_000);

  test("ulc train records it in run.json (the cpu target's default is fp32), and --resume keeps it", async () => {
    const run = join(dir, "line-tf32");
    const flags = ["--data", data, "--batch", "4", "--target", "cpu", "--out", run];
    const r = await ulc(["train", model, ...flags, "--steps", "1", "--precision", "tf32"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/, tf32 contractions\n/);
    expect(JSON.parse(readFileSync(join(run, "run.json"), "utf8")).precision).toBe("tf32");
    const other = await ulc(["train", model, ...flags, "--steps", "2", "--resume", "--precision", "fp32"]);
    expect([other.code, other.stderr]).toEqual([2, `ulc train: --resume: --precision is fp32, but ${join(run, "run.json")} records tf32; a resumed run keeps its settings (drop the flag, or train a new run)\n`]);
    const resumed = await ulc(["train", model, ...flags, "--steps", "2", "--resume"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/, tf32 contractions\n/);
    const plain = await ulc(["train", model, ...flags.slice(0, -1), join(dir, "line-fp32"), "--steps", "1"]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "line-fp32", "run.json"), "utf8")).precision).toBe("fp32");
    // bf16 likewise: recorded, and a resume with another precision refused.
    const bf16 = join(dir, "line-bf16");
    const b = await ulc(["train", model, ...flags.slice(0, -1), bf16, "--steps", "1", "--precision", "bf16"]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/, bf16 contractions\n/);
    expect(JSON.parse(readFileSync(join(bf16, "run.json"), "utf8")).precision).toBe("bf16");
    const refused = await ulc(["train", model, ...flags.slice(0, -1), bf16, "--steps", "2", "--resume", "--precision", "tf32"]);
    expect([refused.code, refused.stderr]).toEqual([2, `ulc train: --resume: --precision is tf32, but ${join(bf16, "run.json")} records bf16; a resumed run keeps its settings (drop the flag, or train a new run)\n`]);
  }, 300_000);
});

describe("ulc train --lr with a learning rate the model computes", () => {
  test("is refused before any data is read, naming the optimizer's run-time arguments and --set for the hypers", async () => {
    const model = join(dir, "scheduled.ul");
    writeFileSync(
      model,
      `from std.layers import Linear
from std.optim import Sgd, cosine_decay
model S {
  hyper base_lr = 0.1
  net: Linear<784, 1>
  train fit<B>(x: f32[B, 1, 28, 28]) -> { loss: f32 } minimize loss with Sgd(lr = base_lr * cosine_decay(train_step(), 100.0, 0.0)) {
    { loss: mean(net(reshape(x, [B, 784]))) }
  }
}
`,
    );
    const r = await ulc(["train", model, "--lr", "1e-3", "--target", "cpu", "--data", join(dir, "no-data"), "--out", join(dir, "scheduled-run"), "--steps", "1"]);
    expect([r.code, r.stderr]).toEqual([
      2,
      "ulc train: --lr: the optimizer Sgd of entry fit has no run-time 'lr' (it has momentum, weight_decay); an argument the model computes, such as a scheduled lr, follows the hypers it reads: --set NAME=X\n",
    ]);
  }, 60_000);
});

describe("the real bin/ulc.js (spawned, against dist/)", () => {
  const bin = join(ROOT, "bin", "ulc.js");
  const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: ROOT, encoding: "utf8" });

  test("the TypeScript build succeeded", () => {
    const buildError = inject("buildError");
    expect(buildError, buildError).toBe("");
    expect(existsSync(join(ROOT, "dist", "cli", "main.js")), "dist/cli/main.js missing: run `npm run build`").toBe(true);
  });

  test("exit codes 0, 1 and 2 reach the shell; --json output arrives whole through a pipe", () => {
    const ok = run(["check", clean]);
    expect(ok.stderr).toContain("ok: 1 file checked");
    expect(ok.status).toBe(0);

    const errs = run(["check", bad, bad2]);
    expect(errs.status).toBe(1);
    expect(errs.stderr).toContain("error[E0301]");
    expect(errs.stderr).toContain("2 errors in 2 files");

    const json = run(["check", "--json", bad, bad2, clean]);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout).diagnostics).toHaveLength(2);

    const usage = run(["check", "--bind", "B=abc", clean]);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain("--bind");
  });

  test("--version and --help", () => {
    const v = run(["--version"]);
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/^\d+\.\d+\.\d+/);
    const h = run(["--help"]);
    expect(h.status).toBe(0);
    expect(h.stdout).toContain("Usage: ulc");
  });
});
