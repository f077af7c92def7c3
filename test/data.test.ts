// The pieces of training that need no device: data sets (IDX by its specification, PNG folders, the real
// Fashion-MNIST), batches, the batch order, safetensors (by its specification) and PNG encoding/decoding.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync, gzipSync, inflateSync } from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from "../runtime/safetensors.js";
import type { HostTensor } from "../runtime/session.js";
import { imageGrid, VIEWABLE_SIDE } from "../runtime/pictures/grid.js";
import { encodePng } from "../runtime/pictures/png.js";
import { arrayData, BatchOrder, batchOf, inputLayout } from "../train/batches.js";
import { DataError, FASHION_MNIST_DIR, loadImages } from "../train/data.js";
import { decodePng } from "../train/png-decode.js";
import { parseNpy, readTensorFile, type ExampleArray } from "../train/tensor-file.js";
import { npy } from "./support/npy.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ulc-data-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An IDX file as its specification describes it: 0, 0, type 0x08, ndim, big-endian u32 dims, then data. */
function idx(dims: number[], data: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  return new Uint8Array([...header, ...data]);
}

function folder(name: string, files: Record<string, Uint8Array>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  for (const [f, bytes] of Object.entries(files)) writeFileSync(join(d, f), bytes);
  return d;
}

const pixels = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37) % 256);

describe("IDX data sets", () => {
  test("images and labels load, gzipped or not; the pixels are the file's", () => {
    const images = pixels(3 * 4 * 5);
    for (const [name, wrap] of [["plain", (b: Uint8Array) => b], ["gz", (b: Uint8Array) => gzipSync(b)]] as const) {
      const suffix = name === "gz" ? ".gz" : "";
      const d = folder(`idx-${name}`, {
        [`train-images-idx3-ubyte${suffix}`]: wrap(idx([3, 4, 5], images)),
        [`train-labels-idx1-ubyte${suffix}`]: wrap(idx([3], Uint8Array.of(2, 0, 7))),
      });
      const set = loadImages(d, "train");
      expect([set.count, set.channels, set.height, set.width, set.classes]).toEqual([3, 1, 4, 5, 8]);
      expect([...set.pixels]).toEqual([...images]);
      expect([...set.labels!]).toEqual([2, 0, 7]);
    }
  });

  test("malformed files are refused with the file and the reason", () => {
    const bad = (name: string, files: Record<string, Uint8Array>, message: RegExp) => {
      const d = folder(name, files);
      expect(() => loadImages(d, "train")).toThrowError(DataError);
      expect(() => loadImages(d, "train")).toThrowError(message);
    };
    const good = idx([2, 2, 2], pixels(8));
    bad("truncated", { "train-images-idx3-ubyte": good.subarray(0, good.length - 1) }, /train-images-idx3-ubyte: the header promises 2×2×2 = 8 bytes of data, the file has 7/);
    bad("magic", { "train-images-idx3-ubyte": Uint8Array.of(1, 2, 3, 4, 5) }, /not an IDX file/);
    bad("type", { "train-images-idx3-ubyte": Uint8Array.of(0, 0, 0x0d, 1, 0, 0, 0, 0) }, /element type 0xd is not unsigned bytes/);
    bad("rank", { "train-images-idx3-ubyte": idx([8], pixels(8)) }, /3 dimensions .* this one has 1/);
    bad("gzip", { "train-images-idx3-ubyte.gz": gzipSync(good).subarray(0, 20) }, /gzip stream is corrupt/);
    bad("labels", { "train-images-idx3-ubyte": good, "train-labels-idx1-ubyte": idx([3], pixels(3)) }, /3 labels for 2 images/);
    bad("empty", { "notes.txt": new Uint8Array(1) }, /neither train-images-idx3-ubyte\[\.gz\] \(IDX\) nor PNG files/);
    expect(() => loadImages(join(dir, "nowhere"), "train")).toThrowError(/--data .*nowhere: no such file or directory/);
  });

  test("a missing Fashion-MNIST names the Debian package", () => {
    const saved = process.env.ULC_FASHION_MNIST_DIR;
    process.env.ULC_FASHION_MNIST_DIR = join(dir, "not-installed");
    try {
      expect(() => loadImages("fashion-mnist", "train")).toThrowError(/sudo apt-get install dataset-fashion-mnist/);
    } finally {
      if (saved === undefined) delete process.env.ULC_FASHION_MNIST_DIR;
      else process.env.ULC_FASHION_MNIST_DIR = saved;
    }
  });

  test.skipIf(!existsSync(FASHION_MNIST_DIR))("the real Fashion-MNIST: 60000 + 10000 labelled 28×28 images in 10 classes", () => {
    const train = loadImages("fashion-mnist", "train");
    const test = loadImages("fashion-mnist", "test");
    expect([train.count, train.height, train.width, train.classes]).toEqual([60000, 28, 28, 10]);
    expect([test.count, test.classes]).toEqual([10000, 10]);
    // Balanced classes: 6000 of each in the training split (the data set's documentation).
    const counts = new Array(10).fill(0);
    for (const l of train.labels!) counts[l]++;
    expect(counts).toEqual(new Array(10).fill(6000));
  });
});

describe("PNG", () => {
  /** Rows filtered with each of the five PNG filters in turn (the forward direction, from the specification). */
  function filteredPng(width: number, height: number, channels: 1 | 3, data: Uint8Array): Uint8Array {
    const bpp = channels, stride = width * bpp;
    const at = (x: number, y: number) => (x < 0 || y < 0 ? 0 : data[y * stride + x]!);
    const raw: number[] = [];
    for (let y = 0; y < height; y++) {
      const filter = y % 5;
      raw.push(filter);
      for (let x = 0; x < stride; x++) {
        const a = at(x - bpp, y), b = at(x, y - 1), c = at(x - bpp, y - 1);
        const p = a + b - c;
        const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
        const predicted = [0, a, b, (a + b) >> 1, paeth][filter]!;
        raw.push((at(x, y) - predicted) & 0xff);
      }
    }
    const chunk = (type: string, body: Uint8Array) => {
      const out = Buffer.alloc(12 + body.length);
      out.writeUInt32BE(body.length, 0);
      out.write(type, 4, "latin1");
      Buffer.from(body).copy(out, 8);
      return out; // the decoder does not check CRCs
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8;
    ihdr[9] = channels === 1 ? 0 : 2;
    return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(Uint8Array.from(raw))), chunk("IEND", new Uint8Array(0))]);
  }

  test("the decoder undoes every row filter", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 12 }), fc.constantFrom(1 as const, 3 as const), fc.integer(), (w, h, c, seed) => {
        const data = Uint8Array.from({ length: w * h * c }, (_, i) => (Math.imul(i + 1, seed | 1) >>> 11) & 0xff);
        expect(decodePng(filteredPng(w, h, c, data))).toEqual({ width: w, height: h, channels: c, pixels: data });
      }),
      { numRuns: 60, seed: 3 },
    );
  });

  test("the encoder writes the bytes the specification prescribes (signature, IHDR, zlib rows, CRCs)", async () => {
    const image = { width: 3, height: 2, channels: 1 as const, pixels: Uint8Array.of(0, 128, 255, 1, 2, 3) };
    const png = await encodePng(image);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const buf = Buffer.from(png);
    expect(buf.toString("latin1", 12, 16)).toBe("IHDR");
    expect([buf.readUInt32BE(16), buf.readUInt32BE(20), buf[24], buf[25]]).toEqual([3, 2, 8, 0]);
    // CRC-32 of "IHDR" + data, as zlib computes it (an independent implementation).
    const { crc32 } = await import("node:zlib");
    expect(buf.readUInt32BE(29)).toBe((crc32 as (b: Uint8Array) => number)(buf.subarray(12, 29)));
    const idatLength = buf.readUInt32BE(33);
    expect([...inflateSync(buf.subarray(41, 41 + idatLength))]).toEqual([0, 0, 128, 255, 0, 1, 2, 3]);
    expect(decodePng(png)).toEqual(image);
  });

  test("a grid maps [-1, 1] to 0..255, clamps, and tiles with a white border", () => {
    const grid = imageGrid([-1, 1, 0, 5, -3, 0.5, 0, 0], [2, 1, 2, 2], { columns: 2, scale: 1 });
    expect([grid.width, grid.height]).toEqual([2 * 4 + 2, 4 + 2 + 0]);
    const px = (x: number, y: number) => grid.pixels[y * grid.width + x];
    expect([px(2, 2), px(3, 2), px(2, 3), px(3, 3)]).toEqual([0, 255, 128, 255]);
    expect([px(6, 2), px(7, 2)]).toEqual([0, 191]);
    expect(px(0, 0)).toBe(255);
  });

  test("a grid is scaled up by a whole factor to a viewable size, each value a square of equal pixels", () => {
    // Sixteen 28×28 images: 122×122 at one pixel per value, so 5 pixels per value (610×610).
    const images = Float32Array.from({ length: 16 * 28 * 28 }, (_, i) => Math.sin(i));
    const small = imageGrid(images, [16, 1, 28, 28], { scale: 1 });
    const grid = imageGrid(images, [16, 1, 28, 28]);
    expect([small.width, grid.width, grid.height]).toEqual([122, 610, 610]);
    expect(grid.width).toBeGreaterThanOrEqual(VIEWABLE_SIDE);
    for (let y = 0; y < grid.height; y += 7)
      for (let x = 0; x < grid.width; x += 3) expect(grid.pixels[y * grid.width + x]).toBe(small.pixels[Math.floor(y / 5) * small.width + Math.floor(x / 5)]);
    // RGB keeps its channels together; a grid already large enough stays as it is.
    const rgb = imageGrid([-1, 0, 1], [1, 3, 1, 1], { scale: 2 });
    const rgbAt = (x: number, y: number) => [...rgb.pixels.subarray(3 * (y * rgb.width + x), 3 * (y * rgb.width + x) + 3)];
    expect([rgb.width, rgb.channels, rgbAt(3, 3), rgbAt(4, 4), rgbAt(5, 5), rgbAt(6, 6)]).toEqual([10, 3, [255, 255, 255], [0, 128, 255], [0, 128, 255], [255, 255, 255]]);
    expect(imageGrid(new Float32Array(600 * 600), [1, 1, 600, 600]).width).toBe(604);
  });

  test("a folder of PNGs is a data set; images of different sizes are refused", async () => {
    const a = { width: 4, height: 3, channels: 1 as const, pixels: pixels(12) };
    const d = folder("pngs", { "a.png": await encodePng(a), "b.png": await encodePng({ ...a, pixels: pixels(12).reverse() }) });
    const set = loadImages(d, "train");
    expect([set.count, set.channels, set.height, set.width, set.labels]).toEqual([2, 1, 3, 4, undefined]);
    expect([...set.pixels.subarray(0, 12)]).toEqual([...a.pixels]);
    writeFileSync(join(d, "c.png"), await encodePng({ width: 2, height: 2, channels: 1, pixels: pixels(4) }));
    expect(() => loadImages(d, "train")).toThrowError(/c\.png is 2×2×1, but a\.png is 4×3×1/);
    writeFileSync(join(d, "c.png"), "not a png");
    expect(() => loadImages(d, "train")).toThrowError(/c\.png: not a PNG file/);
  });
});

describe("batches", () => {
  const set = { source: "test", count: 5, channels: 1, height: 2, width: 2, pixels: Uint8Array.from({ length: 20 }, (_, i) => i * 12), labels: Uint8Array.of(0, 1, 2, 1, 0), classes: 3 };
  const entry = (h: number, labels = true) => ({
    name: "fit",
    inputs: [{ name: "x", dtype: "f32" as const, shape: [2, 1, h, h] }, ...(labels ? [{ name: "y", dtype: "f32" as const, shape: [2, 4] }] : [])],
  });

  test("pixels scale to [-1, 1], pad centred with -1, and labels are one-hot", () => {
    const layout = inputLayout(entry(4), set);
    const b = batchOf(set, layout, [1, 3]);
    const x = Array.from(b.get("x")!.data);
    expect(x.slice(0, 4)).toEqual([-1, -1, -1, -1]);
    expect(x[5]).toBeCloseTo(48 / 127.5 - 1, 6);
    expect(x[10]).toBeCloseTo(84 / 127.5 - 1, 6);
    expect(Array.from(b.get("y")!.data)).toEqual([0, 1, 0, 0, 0, 1, 0, 0]);
  });

  test("an entry the data cannot fill is refused by name", () => {
    expect(() => inputLayout(entry(1), set)).toThrowError(/takes 1×1 images, smaller than the 2×2/);
    expect(() => inputLayout(entry(3), set)).toThrowError(/cannot be padded evenly/);
    expect(() => inputLayout(entry(2), { ...set, labels: undefined })).toThrowError(/needs labels \('y'\)/);
    expect(() => inputLayout({ name: "f", inputs: [{ name: "z", dtype: "f32", shape: [2, 16] }] }, set)).toThrowError(/takes no image input/);
  });

  test("integer labels (i32[B]) are the class indices; other label inputs are refused", () => {
    const ints = { name: "fit", inputs: [{ name: "x", dtype: "f32" as const, shape: [2, 1, 2, 2] }, { name: "y", dtype: "i32" as const, shape: [2] }] };
    const b = batchOf(set, inputLayout(ints, set), [1, 2]);
    expect(b.get("y")).toEqual({ dtype: "i32", shape: [2], data: Int32Array.of(1, 2) });
    const wrong = (y: { dtype: "f32" | "i32"; shape: number[] }) => ({ name: "fit", inputs: [ints.inputs[0]!, { name: "y", ...y }] });
    expect(() => inputLayout(wrong({ dtype: "f32", shape: [2] }), set)).toThrowError(/'y' is neither a one-hot label input \(f32\[B, classes\]\) nor class indices \(i32\[B\]\)/);
    expect(() => inputLayout(wrong({ dtype: "i32", shape: [3] }), set)).toThrowError(/'y' has 3 rows for a batch of 2/);
  });

  test("every epoch visits every example once, in an order that depends only on the seed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 9 }), fc.nat(), (count, batch, seed) => {
        const order = new BatchOrder(count, batch, seed);
        const steps = Math.ceil((3 * count) / batch);
        const seen = Array.from({ length: steps }, (_, k) => order.indices(k + 1)).flat();
        for (let e = 0; e < 3; e++) expect(seen.slice(e * count, (e + 1) * count).sort((a, b) => a - b)).toEqual([...Array(count).keys()]);
        // A fresh order (a resumed run) asked for a late step first gives the same batch.
        expect(new BatchOrder(count, batch, seed).indices(steps)).toEqual(order.indices(steps));
      }),
      { numRuns: 50, seed: 5 },
    );
    expect(new BatchOrder(100, 10, 1).indices(1)).not.toEqual(new BatchOrder(100, 10, 2).indices(1));
  });
});

describe("arrays of examples (.npy, safetensors)", () => {
  const entry = { name: "fit", inputs: [{ name: "x", dtype: "f32" as const, shape: [2, 3] }, { name: "labels", dtype: "i32" as const, shape: [2] }] };

  test(".npy files of float32, float64, int32 and int64 read as NumPy wrote them", () => {
    expect(parseNpy(npy("<f4", [2, 3], (v, at, i) => v.setFloat32(at, i / 4, true), 4), "a.npy")).toEqual({ dtype: "f32", example: [3], count: 2, data: Float32Array.of(0, 0.25, 0.5, 0.75, 1, 1.25) });
    expect(parseNpy(npy("<f8", [3], (v, at, i) => v.setFloat64(at, 0.1 * i, true), 8), "a.npy").data).toEqual(Float32Array.of(0, 0.1, 0.2));
    expect(parseNpy(npy("<i4", [2], (v, at, i) => v.setInt32(at, -i, true), 4), "a.npy")).toEqual({ dtype: "i32", example: [], count: 2, data: Int32Array.of(0, -1) });
    expect(parseNpy(npy("<i8", [2], (v, at, i) => v.setBigInt64(at, BigInt(i * 7), true), 8), "a.npy").data).toEqual(Int32Array.of(0, 7));
  });

  test("a malformed or unsupported .npy file is refused with the reason", () => {
    const good = npy("<f4", [2], (v, at) => v.setFloat32(at, 1, true), 4);
    expect(() => parseNpy(good.slice(0, good.length - 1), "a.npy")).toThrowError(/a.npy: .*needs 8 bytes of data, the file has 7/);
    expect(() => parseNpy(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), "a.npy")).toThrowError(/does not start with/);
    expect(() => parseNpy(npy("<f4", [2, 2], (v, at) => v.setFloat32(at, 1, true), 4, true), "a.npy")).toThrowError(/Fortran order/);
    expect(() => parseNpy(npy("<u2", [2], () => {}, 2), "a.npy")).toThrowError(/element type '<u2'/);
    expect(() => parseNpy(npy("<i8", [1], (v, at) => v.setBigInt64(at, 2n ** 40n, true), 8), "a.npy")).toThrowError(/does not fit an i32/);
  });

  test("a safetensors file fills each input by name; rows follow the indices", () => {
    const path = join(dir, "xy.safetensors");
    writeFileSync(path, encodeSafetensors(new Map([["x", { dtype: "f32", shape: [3, 3], data: Float32Array.from({ length: 9 }, (_, i) => i) }], ["labels", { dtype: "i32", shape: [3], data: Int32Array.of(5, 6, 7) }]])));
    const data = arrayData(path, readTensorFile(path, entry.inputs), entry);
    expect([data.count, data.batch]).toEqual([3, 2]);
    const b = data.inputs([2, 0]);
    expect(b.get("x")).toEqual({ dtype: "f32", shape: [2, 3], data: Float32Array.of(6, 7, 8, 0, 1, 2) });
    expect(b.get("labels")).toEqual({ dtype: "i32", shape: [2], data: Int32Array.of(7, 5) });
  });

  test("arrays that do not fit the entry are refused by name", () => {
    const x = { dtype: "f32" as const, example: [3], count: 3, data: new Float32Array(9) };
    const labels = { dtype: "i32" as const, example: [], count: 3, data: new Int32Array(3) };
    const data = (arrays: [string, ExampleArray][]) => arrayData("d.safetensors", new Map(arrays), entry);
    expect(() => data([["x", x]])).toThrowError(/d.safetensors has no 'labels' for entry fit's input labels: i32\[2\]/);
    expect(() => data([["x", x], ["labels", labels], ["z", x]])).toThrowError(/'z' is none of entry fit's inputs/);
    expect(() => data([["x", { ...x, example: [4] }], ["labels", labels]])).toThrowError(/'x' holds examples of shape \[4\]; entry fit takes \[3\]/);
    expect(() => data([["x", x], ["labels", { ...labels, dtype: "f32", data: new Float32Array(3) }]])).toThrowError(/'labels' is f32; entry fit takes i32/);
    expect(() => data([["x", x], ["labels", { ...labels, count: 2 }]])).toThrowError(/'labels' has 2 examples, 'x' 3/);
    expect(() => readTensorFile(join(dir, "xy.npy"), entry.inputs)).toThrowError(/no such file/);
    writeFileSync(join(dir, "one.npy"), npy("<f4", [1, 3], () => {}, 4));
    expect(() => readTensorFile(join(dir, "one.npy"), entry.inputs)).toThrowError(/an .npy file holds one array, but the entry takes 2 inputs/);
  });
});

describe("safetensors", () => {
  test("a file built by hand from the specification decodes", () => {
    const header = JSON.stringify({ __metadata__: { step: "3" }, b: { dtype: "I32", shape: [2], data_offsets: [8, 16] }, a: { dtype: "F32", shape: [2, 1], data_offsets: [0, 8] } });
    const data = Buffer.alloc(16);
    data.writeFloatLE(1.5, 0);
    data.writeFloatLE(-2, 4);
    data.writeInt32LE(7, 8);
    data.writeInt32LE(-9, 12);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.length));
    const { tensors, metadata } = decodeSafetensors(Buffer.concat([length, Buffer.from(header), data]));
    expect(metadata).toEqual({ step: "3" });
    expect(tensors.get("a")).toEqual({ dtype: "f32", shape: [2, 1], data: Float32Array.of(1.5, -2) });
    expect(tensors.get("b")).toEqual({ dtype: "i32", shape: [2], data: Int32Array.of(7, -9) });
  });

  test("encoding then decoding gives the tensors back; the header is 8-byte aligned", () => {
    const tensors = new Map<string, HostTensor>([
      ["param:w", { dtype: "f32", shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, Math.fround(0.1)) }],
      ["steps", { dtype: "i32", shape: [1], data: Int32Array.of(-4) }],
      ["empty", { dtype: "f32", shape: [0], data: new Float32Array(0) }],
    ]);
    const bytes = encodeSafetensors(tensors, { model: "m" });
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
    const back = decodeSafetensors(bytes);
    expect(back.tensors).toEqual(tensors);
    expect(back.metadata).toEqual({ model: "m" });
  });

  test("a torn or foreign file is refused with the reason", () => {
    const bytes = encodeSafetensors(new Map([["w", { dtype: "f32", shape: [4], data: new Float32Array(4) }]]));
    expect(() => decodeSafetensors(bytes.subarray(0, bytes.length - 1), "ck")).toThrowError(/ck is not a valid safetensors file: tensor 'w' ends past the end of the file \(truncated\?\)/);
    expect(() => decodeSafetensors(bytes.subarray(0, 5), "ck")).toThrowError(/fewer than the 8 of the header length/);
    expect(() => decodeSafetensors(Uint8Array.of(200, 0, 0, 0, 0, 0, 0, 0, 1), "ck")).toThrowError(/the header says it is 200 bytes/);
    const header = '{"w":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}}';
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.length));
    expect(() => decodeSafetensors(Buffer.concat([length, Buffer.from(header), Buffer.alloc(2)]))).toThrowError(SafetensorsError);
    expect(() => decodeSafetensors(Buffer.concat([length, Buffer.from(header), Buffer.alloc(2)]))).toThrowError(/dtype BF16/);
  });
});
