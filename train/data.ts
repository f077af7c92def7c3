// Image data sets for training and evaluation: Fashion-MNIST from Debian's dataset-fashion-mnist by default,
// IDX files (gzipped or not) or a folder of PNGs given by path. Every failure names the file and what is wrong
// with it; a missing default data set names the package that installs it.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { IdxError, parseIdx } from "../runtime/idx.js";
import { decodePng } from "./png-decode.js";

export class DataError extends Error {}

export interface ImageSet {
  /** Where it came from, for messages and the run record. */
  readonly source: string;
  readonly count: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  /** count·channels·height·width bytes, NCHW, 0..255. */
  readonly pixels: Uint8Array;
  /** A class per image, when the set has labels. */
  readonly labels?: Uint8Array;
  readonly classes?: number;
}

export type Split = "train" | "test";

/** Where Debian's dataset-fashion-mnist puts the files; ULC_FASHION_MNIST_DIR points elsewhere. */
export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";
const FASHION_FILES = { train: ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"], test: ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] } as const;

/** `--data`: `fashion-mnist` (Debian's package), a folder holding IDX files, an IDX image file, or a folder of PNGs. */
export function loadImages(data: string, split: Split): ImageSet {
  const set = findImages(data, split);
  // Training on nothing would only end in NaN losses, far from the cause.
  if (set.count === 0) throw new DataError(`${set.source}: the data set holds no images`);
  return set;
}

function findImages(data: string, split: Split): ImageSet {
  if (data === "fashion-mnist") {
    const dir = process.env.ULC_FASHION_MNIST_DIR ?? FASHION_MNIST_DIR;
    if (!existsSync(dir))
      throw new DataError(`Fashion-MNIST is not installed (${dir} does not exist). Install it with:\n  sudo apt-get install dataset-fashion-mnist\nor pass --data PATH (IDX files or a folder of PNGs)`);
    return loadIdxPair(dir, split);
  }
  if (!existsSync(data)) throw new DataError(`--data ${data}: no such file or directory (expected fashion-mnist, IDX files, a folder of PNGs, or a .safetensors or .npy file of arrays)`);
  if (statSync(data).isDirectory()) {
    const names = readdirSync(data);
    if (names.some((n) => n.startsWith(FASHION_FILES[split][0]))) return loadIdxPair(data, split);
    const pngs = names.filter((n) => n.toLowerCase().endsWith(".png")).sort();
    if (pngs.length > 0) return loadPngFolder(data, pngs);
    throw new DataError(`--data ${data}: the folder holds neither ${FASHION_FILES[split][0]}[.gz] (IDX) nor PNG files`);
  }
  return readIdxImages(data);
}

function findIdx(dir: string, stem: string): string | undefined {
  return [join(dir, stem), join(dir, `${stem}.gz`)].find((p) => existsSync(p));
}

function loadIdxPair(dir: string, split: Split): ImageSet {
  const [imageStem, labelStem] = FASHION_FILES[split];
  const images = findIdx(dir, imageStem);
  if (!images) throw new DataError(`${dir}: ${imageStem}[.gz] is missing (the ${split} split's images)`);
  const set = readIdxImages(images);
  const labelsPath = findIdx(dir, labelStem);
  if (!labelsPath) return set;
  const labels = readIdx(labelsPath);
  if (labels.dims.length !== 1) throw new DataError(`${labelsPath}: a label file has 1 dimension, this one has ${labels.dims.length}`);
  if (labels.dims[0] !== set.count) throw new DataError(`${labelsPath}: ${labels.dims[0]} labels for ${set.count} images in ${images}`);
  // A loop, not Math.max(...labels): a spread of 10^5 arguments overflows the stack.
  let classes = 0;
  for (const l of labels.data) classes = Math.max(classes, l + 1);
  return { ...set, labels: labels.data, classes };
}

function readIdxImages(path: string): ImageSet {
  const idx = readIdx(path);
  if (idx.dims.length !== 3) throw new DataError(`${path}: an IDX image file has 3 dimensions (count, rows, columns), this one has ${idx.dims.length}`);
  const [count, height, width] = idx.dims as [number, number, number];
  return { source: path, count, channels: 1, height, width, pixels: idx.data };
}

/** An IDX file of unsigned bytes (magic 0x0000 08 NDIM, big-endian dims), gzipped or not. */
function readIdx(path: string): { dims: number[]; data: Uint8Array } {
  let bytes: Uint8Array = readFileSync(path);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new DataError(`${path}: the gzip stream is corrupt (${(e as Error).message})`);
    }
  }
  try {
    return parseIdx(bytes, path);
  } catch (e) {
    if (e instanceof IdxError) throw new DataError(e.message);
    throw e;
  }
}

function loadPngFolder(dir: string, names: readonly string[]): ImageSet {
  const images = names.map((n) => {
    const path = join(dir, n);
    try {
      return { path, image: decodePng(readFileSync(path)) };
    } catch (e) {
      throw new DataError(`${path}: ${(e as Error).message}`);
    }
  });
  const { width, height, channels } = images[0]!.image;
  const pixels = new Uint8Array(images.length * channels * height * width);
  images.forEach(({ path, image }, i) => {
    if (image.width !== width || image.height !== height || image.channels !== channels)
      throw new DataError(`${path} is ${image.width}×${image.height}×${image.channels}, but ${basename(images[0]!.path)} is ${width}×${height}×${channels}: a folder's images must agree`);
    // HWC (PNG) to CHW.
    for (let c = 0; c < channels; c++)
      for (let p = 0; p < width * height; p++) pixels[(i * channels + c) * width * height + p] = image.pixels[p * channels + c]!;
  });
  return { source: dir, count: images.length, channels, height, width, pixels };
}
