// PNG decoding for image folders: 8-bit gray, gray+alpha, RGB or RGBA, non-interlaced, all five row filters.
// Alpha is dropped (training images are opaque); palettes, 16-bit and interlacing are refused by name.
import { inflateSync } from "node:zlib";
import type { Image } from "../runtime/pictures/png.js";

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** The most pixels an image may declare: far past any training image, and a bound on what a PNG may inflate to. */
export const MAX_PIXELS = 1 << 24;
/** Samples per pixel by colour type. */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

export function decodePng(bytes: Uint8Array): Image {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error("not a PNG file (bad signature)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let width = 0, height = 0, colour = -1;
  const idat: Uint8Array[] = [];
  while (at + 8 <= bytes.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (data.length !== length) throw new Error(`truncated ${type} chunk`);
    if (type === "IHDR") {
      if (length !== 13) throw new Error(`IHDR chunk has ${length} bytes, 13 expected`);
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      if (width === 0 || height === 0) throw new Error(`IHDR declares a ${width}×${height} image`);
      if (width * height > MAX_PIXELS) throw new Error(`IHDR declares ${width}×${height} pixels, more than the ${MAX_PIXELS} ulc reads`);
      const depth = data[8]!;
      colour = data[9]!;
      if (depth !== 8 || SAMPLES[colour] === undefined) throw new Error(`unsupported PNG: bit depth ${depth}, colour type ${colour} (8-bit gray, RGB, with or without alpha, are read)`);
      if (data[12] !== 0) throw new Error("unsupported PNG: interlaced");
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    at += 12 + length;
  }
  if (colour < 0) throw new Error("no IHDR chunk");
  if (idat.length === 0) throw new Error("no image data (IDAT)");
  const bpp = SAMPLES[colour]!;
  const stride = width * bpp;
  let raw: Uint8Array;
  try {
    // Never more than the declared image: a small file that inflates to gigabytes stops here.
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: height * (stride + 1) + 1 });
  } catch (e) {
    throw new Error(`corrupt image data (${(e as Error).message})`);
  }
  if (raw.length !== height * (stride + 1)) throw new Error(`image data has ${raw.length} bytes, ${height * (stride + 1)} expected`);
  const rows = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? rows[y * stride + x - bpp]! : 0;
      const b = y > 0 ? rows[(y - 1) * stride + x]! : 0;
      const c = x >= bpp && y > 0 ? rows[(y - 1) * stride + x - bpp]! : 0;
      rows[y * stride + x] = (line[x]! + unfilter(filter, a, b, c)) & 0xff;
    }
  }
  const channels = colour === 0 || colour === 4 ? 1 : 3;
  const pixels = new Uint8Array(width * height * channels);
  for (let p = 0; p < width * height; p++) for (let c = 0; c < channels; c++) pixels[p * channels + c] = rows[p * bpp + c]!;
  return { width, height, channels, pixels };
}

/** What a row filter adds back, from the left (a), above (b) and upper-left (c) neighbours. */
function unfilter(filter: number, a: number, b: number, c: number): number {
  switch (filter) {
    case 0:
      return 0;
    case 1:
      return a;
    case 2:
      return b;
    case 3:
      return (a + b) >> 1;
    case 4: {
      const p = a + b - c;
      const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
    default:
      throw new Error(`unknown row filter ${filter}`);
  }
}
