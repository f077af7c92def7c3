// Hostile input, as a user (or a damaged disk) would give it: each case is a run directory altered in one way
// (or a hostile file, a second writer, a tensor too large), the command that meets it, and the exit code and
// message it must get. None may end in exit 3 (an internal error). Wrong programs in general are the
// diagnostics corpus in test/errors/. Beside the cases, structure-aware fuzzing of safetensors, PNG and IDX headers: whatever a header says,
// reading it either succeeds or throws the reader's own error with a message, never anything else.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { IdxError, parseIdx } from "../runtime/idx.js";
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from "../runtime/safetensors.js";
import { FASHION_MNIST_DIR, loadImages } from "../train/data.js";
import { decodePng } from "../train/png-decode.js";
import { ulc } from "./support/cli.js";

const SMALL = ["--bind", "Width=32", "--bind", "PriorWidth=16", "--batch", "4"];
const CLEAN = "fn f<N>(x: f32[N]) -> f32[N] { x * 2.0 }\n";
const CHECKPOINT = "checkpoint.safetensors";

/** A safetensors file from a header object and a data section. */
function safetensors(header: unknown, data: Uint8Array = new Uint8Array()): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

/** The header and data section of a safetensors file. */
function parts(bytes: Buffer): { header: Record<string, unknown>; data: Buffer } {
  const n = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + n).toString()), data: bytes.subarray(8 + n) };
}

describe.skipIf(!existsSync(FASHION_MNIST_DIR))("a damaged or foreign run directory gets a clean error", () => {
  let dir: string;
  let run: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ulc-hostile-"));
    run = join(dir, "run");
    const r = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--steps", "2", "--out", run]);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A copy of the trained run with its checkpoint rewritten by `alter`. */
  const altered = (name: string, alter: (bytes: Buffer) => Uint8Array) => {
    const copy = join(dir, name);
    cpSync(run, copy, { recursive: true });
    writeFileSync(join(copy, CHECKPOINT), alter(readFileSync(join(run, CHECKPOINT))));
    return copy;
  };
  const withHeader = (edit: (header: Record<string, unknown>) => void) => (bytes: Buffer) => {
    const { header, data } = parts(bytes);
    edit(header);
    return safetensors(header, data);
  };
  const firstTensor = (header: Record<string, unknown>) => Object.keys(header).find((k) => k !== "__metadata__")!;
  const sample = (copy: string) => ulc(["sample", copy, "--n", "2", "--steps", "2", "-o", join(copy, "s.png")]);
  const resume = (copy: string) => ulc(["train", "models/ul_tiny.ul", "--steps", "3", "--out", copy, "--resume"]);

  test.each([
    ["null metadata", withHeader((h) => (h.__metadata__ = null)), /__metadata__ is not an object of strings/],
    ["a metadata value that is not a string", withHeader((h) => (h.__metadata__ = { step: 2 })), /__metadata__ is not an object of strings/],
    ["a null tensor entry", withHeader((h) => (h[firstTensor(h)] = null)), /tensor '.*' is not described by an object/],
    ["fractional data offsets", withHeader((h) => ((h[firstTensor(h)] as { data_offsets: number[] }).data_offsets[0]! += 0.5)), /malformed data_offsets/],
    ["no step in the metadata", withHeader((h) => (h.__metadata__ = {})), /has no valid step in its metadata/],
  ] as const)("%s: sample and resume exit 2 naming the file", async (_, alter, message) => {
    const copy = altered(_.replace(/\W+/g, "-"), alter);
    for (const r of [await sample(copy), await resume(copy)]) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  }, 120_000);

  test("a checkpoint without the optimizer state (or the moving average) does not resume, naming what it lacks", async () => {
    for (const [name, drop] of [
      ["no-adam", /^optimizer\./],
      ["no-ema", /^ema:/],
    ] as const) {
      const copy = altered(name, withHeader((h) => Object.keys(h).filter((k) => drop.test(k)).forEach((k) => delete h[k])));
      const r = await resume(copy);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/cannot resume the run exactly: it lacks \d+ of the tensors it needs, first '(optimizer|ema)/)]);
    }
  }, 120_000);

  // Another width's checkpoint, made from this one: its first tensor with a dimension of Width's 32 has 48 there
  // (zeros past the old values).
  const widened = (bytes: Buffer) => {
    const { tensors, metadata } = decodeSafetensors(bytes);
    const [name, t] = [...tensors].find(([, x]) => x.shape.includes(32))!;
    const shape = t.shape.map((d) => (d === 32 ? 48 : d));
    const data = new Float32Array(shape.reduce((n, d) => n * d, 1));
    data.set(t.data);
    tensors.set(name, { ...t, shape, data });
    return encodeSafetensors(tensors, metadata);
  };

  test("another model's checkpoint (another width) does not load: exit 2 naming the tensor and both shapes", async () => {
    const copy = altered("foreign", widened);
    const r = await resume(copy);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/is not a checkpoint of this model as it is now: '.*' is f32\[.*48.*\], but model UlTiny declares f32\[.*32.*\]/)]);
    const s = await sample(copy);
    expect([s.code, s.stderr]).toEqual([2, expect.stringMatching(/does not fit .* as it is now/)]);
  }, 120_000);

  test("a write that fails (a file size limit, as a full disk) removes its temporary file and keeps the last good checkpoint", () => {
    const copy = altered("full", (bytes) => bytes);
    const before = readFileSync(join(copy, CHECKPOINT));
    // ulimit -f 100: files past 100 KiB cannot be written, so the next checkpoint (2.7 MB) fails.
    const r = spawnSync("bash", ["-c", `ulimit -f 100; exec node bin/ulc.js train models/ul_tiny.ul --steps 4 --checkpoint-every 1 --out '${copy}' --resume`], { encoding: "utf8" });
    expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(/cannot write .*checkpoint\.safetensors: the file would be larger than this process may write \(ulimit -f\); the last good one is kept/)]);
    expect(readdirSync(copy).filter((f) => f.includes(".tmp-"))).toEqual([]);
    expect(readFileSync(join(copy, CHECKPOINT)).equals(before)).toBe(true);
  }, 120_000);

  test("places that cannot be written: an --out or -o under a file, -o naming a folder, are exit 2 saying so", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "");
    const train = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--steps", "1", "--out", join(file, "run")]);
    expect([train.code, train.stderr]).toEqual([2, expect.stringMatching(/cannot write in .*a-file\/run: a part of the path is a file, not a folder/)]);
    const png = await ulc(["sample", run, "--n", "2", "--steps", "2", "-o", join(file, "grid.png")]);
    expect([png.code, png.stderr]).toEqual([2, expect.stringMatching(/cannot write .*a-file\/grid\.png: a part of the path is a file, not a folder/)]);
    const ir = await ulc(["build", "models/ul_tiny.ul", "--emit", "ir", "--bind", "B=2", "-o", dir]);
    expect([ir.code, ir.stderr]).toEqual([2, expect.stringMatching(/cannot write .*: it is a folder/)]);
  }, 120_000);

  test("eval on a run whose model lacks the entries it needs, or with a --classifier that is not one: exit 2 naming the entry", async () => {
    const model = join(dir, "tiny.ul");
    writeFileSync(
      model,
      [
        "from std.layers import Linear",
        "from std.optim import AdamW",
        "model Tiny {",
        "  layer: Linear<784, 1>",
        "  train fit<B>(x: f32[B, 1, 28, 28]) -> { loss: f32 } minimize loss with AdamW(lr = 1e-3, weight_decay = 0.0) {",
        "    { loss: mean(layer(reshape(x, [B, 784]))) }",
        "  }",
        "}",
        "",
      ].join("\n"),
    );
    const tiny = join(dir, "tiny-run");
    expect((await ulc(["train", model, "--batch", "4", "--steps", "1", "--out", tiny])).code).toBe(0);
    const bare = await ulc(["eval", tiny, "--n", "8", "--batch", "4"]);
    expect([bare.code, bare.stderr]).toEqual([2, expect.stringMatching(/measuring .*tiny-run as a classifier \(a model without decoder_step or reconstruct\) needs an entry that model Tiny lacks: evaluate\(x: f32\[B, C, H, W\]\[, y: f32\[B, K\]\]\) -> \{ NAME: f32, \.\.\. \} is missing \(it has fit;/)]);
    const notClassifier = await ulc(["eval", run, "--classifier", run, "--n", "8", "--recon", "2", "--fd-n", "4", "--steps", "2", "--batch", "4"]);
    expect([notClassifier.code, notClassifier.stderr]).toEqual([2, expect.stringMatching(/--classifier .* \(the Fréchet distance's classifier\) needs an entry that model UlTiny lacks: features\(x: f32\[B, C, H, W\]\) -> f32\[B, F\] is missing/)]);
  }, 120_000);

  test("NaN parameters: sample refuses them, naming the tensor, and writes no picture", async () => {
    const copy = altered("nan", (bytes) => {
      const entry = Object.entries(parts(bytes).header).find(([k]) => k.startsWith("ema:"))![1] as { data_offsets: number[] };
      const out = Buffer.from(bytes);
      out.writeFloatLE(NaN, 8 + Number(bytes.readBigUInt64LE(0)) + entry.data_offsets[0]! + 4 * 3);
      return out;
    });
    const r = await sample(copy);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/holds a non-finite value in 'ema:.*' \(element 3: NaN\)/)]);
    expect(existsSync(join(copy, "s.png"))).toBe(false);
  }, 120_000);
});

describe("safetensors headers, fuzzed", () => {
  const value = fc.oneof(fc.constant(null), fc.boolean(), fc.integer({ min: -3, max: 1 << 20 }), fc.double(), fc.string({ maxLength: 6 }), fc.array(fc.integer({ min: -2, max: 64 }), { maxLength: 4 }));
  const entry = fc.oneof(
    value,
    fc.record(
      {
        dtype: fc.oneof(fc.constantFrom("F32", "I32", "F16", "BF16", ""), value),
        shape: fc.oneof(fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 3 }), value),
        data_offsets: fc.oneof(fc.tuple(fc.integer({ min: -8, max: 256 }), fc.integer({ min: -8, max: 256 })), fc.tuple(fc.double(), fc.double()), value),
      },
      { requiredKeys: [] },
    ),
  );
  const header = fc.dictionary(fc.oneof(fc.constantFrom("__metadata__", "param:a", "ema:a"), fc.string({ maxLength: 5 })), entry, { maxKeys: 4 });

  test("1,000 structured headers over random data: read, or refused with a SafetensorsError", () => {
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 96 }), (h, data) => {
        try {
          decodeSafetensors(safetensors(h, data), "fuzz.safetensors");
        } catch (e) {
          if (!(e instanceof SafetensorsError)) throw e;
          expect(e.message).toMatch(/fuzz\.safetensors/);
        }
      }),
      { numRuns: 1000, seed: 14 },
    );
  });

  test("1,000 byte strings (lengths that lie, truncation, bad UTF-8): read, or refused with a SafetensorsError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.bigInt({ min: 0n, max: 1n << 63n }), (body, length) => {
        const bytes = Buffer.alloc(8 + body.length);
        bytes.writeBigUInt64LE(length);
        bytes.set(body, 8);
        try {
          decodeSafetensors(bytes, "fuzz.safetensors");
        } catch (e) {
          if (!(e instanceof SafetensorsError)) throw e;
        }
      }),
      { numRuns: 1000, seed: 15 },
    );
  });
});

describe("image files, hostile and fuzzed", () => {
  /** A PNG from its IHDR fields and the bytes its IDAT inflates to (CRCs are not checked by the reader). */
  const png = (width: number, height: number, depth: number, colour: number, raw: Uint8Array) => {
    const chunk = (type: string, data: Uint8Array) => {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(data.length);
      head.write(type, 4, "latin1");
      return Buffer.concat([head, data, Buffer.alloc(4)]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = depth;
    ihdr[9] = colour;
    return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
  };

  test("a 0×0 image, and a small file declaring 20000×20000 pixels, are refused before anything is inflated", () => {
    expect(() => decodePng(png(0, 0, 8, 0, new Uint8Array(0)))).toThrow(/IHDR declares a 0×0 image/);
    // 64 KiB of zeros standing for 1.6 GB: refused on the header's word, without inflating.
    expect(() => decodePng(png(20000, 20000, 8, 6, new Uint8Array(1 << 16)))).toThrow(/declares 20000×20000 pixels, more than/);
    // Within the limit, but inflating to more than it declares: stopped at the declared size.
    expect(() => decodePng(png(4, 4, 8, 0, new Uint8Array(1 << 20)))).toThrow(/corrupt image data/);
  });

  test("1,000 PNG headers and bodies: decoded, or refused with a message (the data loader names the file)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }), fc.constantFrom(1, 8, 16), fc.constantFrom(0, 2, 3, 4, 6, 7), fc.uint8Array({ maxLength: 400 }), (w, h, depth, colour, raw) => {
        try {
          const image = decodePng(png(w, h, depth, colour, raw));
          expect(image.pixels.length).toBe(image.width * image.height * image.channels);
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          expect((e as Error).message.length).toBeGreaterThan(0);
          expect(e).not.toBeInstanceOf(TypeError);
        }
      }),
      { numRuns: 1000, seed: 16 },
    );
  });

  test("1,000 IDX headers and bodies: parsed, or refused with an IdxError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 4 }), fc.array(fc.integer({ min: 0, max: 70 }), { maxLength: 4 }), fc.uint8Array({ maxLength: 300 }), (magic, dims, body) => {
        const head = Buffer.alloc(4 + 4 * dims.length);
        head.set([0, 0, 8, dims.length].map((v, i) => magic[i] ?? v));
        dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
        try {
          const { dims: got, data } = parseIdx(Buffer.concat([head, body]), "fuzz.idx");
          expect(data.length).toBe(got.reduce((a, b) => a * b, 1));
        } catch (e) {
          if (!(e instanceof IdxError)) throw e;
        }
      }),
      { numRuns: 1000, seed: 17 },
    );
  });
});

describe.skipIf(!existsSync(FASHION_MNIST_DIR))("run directories", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "ulc-lock-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const out = (name: string) => join(dir, name);

  test("one writer per run directory: a live owner's lock is refused, a dead one's taken over, and released after", async () => {
    const lock = (name: string, pid: number) => {
      mkdirSync(out(name), { recursive: true });
      writeFileSync(join(out(name), "train.lock"), JSON.stringify({ pid, host: hostname(), started: "then" }));
    };
    lock("held", process.pid);
    const held = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--steps", "1", "--out", out("held")]);
    expect([held.code, held.stderr]).toEqual([2, expect.stringMatching(/is being trained by another ulc train \(pid \d+ on .*\); wait for it, or choose another --out/)]);
    expect(existsSync(join(out("held"), "run.json"))).toBe(false);
    // A process that has exited: its lock is stale.
    const gone = spawnSync(process.execPath, ["-e", "process.exit(0)"]).pid!;
    lock("stale", gone);
    const taken = await ulc(["train", "models/ul_tiny.ul", ...SMALL, "--steps", "1", "--out", out("stale")]);
    expect(taken.code, taken.stderr).toBe(0);
    expect(existsSync(join(out("stale"), "train.lock"))).toBe(false);
  }, 120_000);

});

describe("sources", () => {
  test("a byte-order mark is not part of the text; a file that is not UTF-8 is named as such (E0104)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ulc-utf8-"));
    const bom = join(dir, "bom.ul");
    writeFileSync(bom, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(CLEAN)]));
    expect((await ulc(["check", bom])).code).toBe(0);
    const latin1 = join(dir, "latin1.ul");
    writeFileSync(latin1, Buffer.concat([Buffer.from(CLEAN), Buffer.from("const caf"), Buffer.from([0xe9]), Buffer.from(" = 1\n")]));
    const r = await ulc(["check", latin1]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/latin1\.ul:2:10: error\[E0104\]: the file is not UTF-8 text/)]);
    rmSync(dir, { recursive: true, force: true });
  });

  test("runaway programs: loops nested past the program's budget, and an array of 10^8 modules, are E0409 at check", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ulc-budget-"));
    try {
      const nested = join(dir, "nested.ul");
      writeFileSync(nested, "fn iterate<N>(x: f32[N]) -> f32[N] {\n  var h = x\n  for i in 0..4000 {\n    for j in 0..4000 {\n      h = tanh(h)\n    }\n  }\n  h\n}\n");
      const deep = join(dir, "deep.ul");
      writeFileSync(deep, "from std.layers import Linear\nmodule Deep<D> {\n  layers: [Linear<D, D>; 100000000]\n  fn forward<B>(x: f32[B, D]) -> f32[B, D] { x }\n}\n");
      const r = await ulc(["check", nested, deep]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/nested\.ul:4:17: error\[E0409\]: this loop would take the program past 262144 unrolled iterations in all/);
      expect(r.stderr).toMatch(/deep\.ul:3:26: error\[E0409\]: an array of 100000000 modules; the limit is 4096/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("imports outside the project, or of files that are not .ul, are refused unread (nothing of them is echoed); ULC_IMPORT_PATH widens the project", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ulc-imports-"));
    const project = join(dir, "project");
    mkdirSync(project, { recursive: true });
    const secret = "SECRET-7f3a token";
    writeFileSync(join(dir, "outside.ul"), `${secret} (a syntax error, were it read)\n`);
    writeFileSync(join(project, "notes.txt"), `${secret}\n`);
    const main = join(project, "main.ul");
    writeFileSync(main, ['import "../outside.ul" as a', `import "${join(dir, "outside.ul")}" as b`, 'import "./notes.txt" as c', 'import "/etc/hostname" as d', ""].join("\n"));
    for (const json of [false, true]) {
      const r = await ulc(["check", ...(json ? ["--json"] : []), main]);
      expect(r.code).toBe(1);
      const codes = json ? JSON.parse(r.stdout).diagnostics.map((d: { code: string }) => d.code) : [...r.stderr.matchAll(/E05\d\d/g)].map((m) => m[0]);
      expect(codes.sort()).toEqual(["E0504", "E0504", "E0505", "E0505"]);
      expect(r.stdout + r.stderr).not.toContain("SECRET");
    }
    // ULC_IMPORT_PATH widens the project to a shared folder, and only to it.
    writeFileSync(join(dir, "shared.ul"), "fn twice<N>(x: f32[N]) -> f32[N] { x * 2.0 }\n");
    writeFileSync(main, 'import "../shared.ul" as shared\n');
    expect((await ulc(["check", main])).code).toBe(1);
    process.env.ULC_IMPORT_PATH = dir;
    try {
      expect((await ulc(["check", main])).code).toBe(0);
    } finally {
      delete process.env.ULC_IMPORT_PATH;
      rmSync(dir, { recursive: true, force: true });
    }
  });

});

describe("tensors past a target's limits", () => {
  test("ulc build for every target refuses a tensor of 2^31 elements or more, naming it (exit 1, no files)", async () => {
    for (const target of ["wgsl", "cuda", "cpu"]) {
      const out = join(tmpdir(), `ulc-big-${target}-${process.pid}`);
      const r = await ulc(["build", "models/ul_tiny.ul", "--target", target, "--bind", "B=3000000", "-o", out]);
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/graph fit: %\d+ \(input\) is f32\[3000000, 1, 28, 28\], 2352000000 elements; kernels index with 32-bit integers/)]);
      expect(existsSync(out)).toBe(false);
    }
  });

  test.skipIf(!existsSync(FASHION_MNIST_DIR))("on WebGPU a buffer past the device's binding limit is exit 5 naming it, before any shader runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ulc-binding-"));
    try {
      // 44000 images of 28×28 floats: 138 MB, past the 128 MiB a storage binding may hold on lavapipe.
      const r = await ulc(["train", "models/ul_tiny.ul", "--target", "webgpu", "--batch", "44000", "--steps", "1", "--out", join(dir, "run")]);
      expect([r.code, r.stderr]).toEqual([5, expect.stringMatching(/the webgpu target cannot run here: graph \w+: .*\[44000, 1, 28, 28\]\) takes 137984000 bytes, past this device's storage binding limit/)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("floods", () => {
  test("500,000 labels load (no spread of them overflows the stack), none is a data error, and 200,000 diagnostics are reported", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ulc-flood-"));
    try {
      const n = 500_000;
      const idx = (dims: number[], data: Uint8Array) => {
        const head = Buffer.alloc(4 + 4 * dims.length);
        head.set([0, 0, 8, dims.length]);
        dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
        return Buffer.concat([head, data]);
      };
      writeFileSync(join(dir, "train-images-idx3-ubyte"), idx([n, 1, 1], new Uint8Array(n)));
      writeFileSync(join(dir, "train-labels-idx1-ubyte"), idx([n], Uint8Array.from({ length: n }, (_, i) => i % 10)));
      const set = loadImages(dir, "train");
      expect([set.count, set.classes]).toEqual([n, 10]);
      // And none at all: a data error, not a run that ends in NaN losses.
      writeFileSync(join(dir, "empty-idx3-ubyte"), idx([0, 28, 28], new Uint8Array(0)));
      expect(() => loadImages(join(dir, "empty-idx3-ubyte"), "train")).toThrow(/the data set holds no images/);

      const flood = join(dir, "flood.ul");
      writeFileSync(flood, "$ ".repeat(200_000));
      const r = await ulc(["check", "--json", flood]);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout).diagnostics.length).toBeGreaterThan(1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
