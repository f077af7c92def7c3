// Sample grids: a batch of images in [-1, 1] tiled into one picture, scaled up to a size a person can look at
// (sixteen 28×28 images make a grid 122 pixels wide; at one pixel per value that is a thumbnail).
import type { Image } from "./png.js";

/** A grid smaller than this on its longer side is scaled up by a whole factor until it is not. */
export const VIEWABLE_SIDE = 512;

export interface GridOptions {
  /** Images across; default the square root of their count, rounded up. */
  readonly columns?: number;
  /** Pixels per value, each way; default the smallest whole factor that makes the grid `VIEWABLE_SIDE` pixels or more. */
  readonly scale?: number;
}

/**
 * Images in [-1, 1] (NCHW, C = 1 or 3) tiled into one grid image with a 2-pixel border (before scaling).
 * Values are clamped, then mapped to 0..255 as round((v + 1)·127.5).
 */
export function imageGrid(data: ArrayLike<number>, shape: readonly number[], options: GridOptions = {}): Image {
  const [n, c, h, w] = shape as [number, number, number, number];
  if (shape.length !== 4 || (c !== 1 && c !== 3)) throw new Error(`imageGrid: images must be [N, 1 or 3, H, W], got [${shape.join(", ")}]`);
  const columns = options.columns ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / columns);
  const pad = 2;
  const width = columns * (w + pad) + pad;
  const height = rows * (h + pad) + pad;
  const pixels = new Uint8Array(width * height * c).fill(255);
  for (let i = 0; i < n; i++) {
    const x0 = pad + (i % columns) * (w + pad);
    const y0 = pad + Math.floor(i / columns) * (h + pad);
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const v = Math.min(1, Math.max(-1, data[((i * c + ch) * h + y) * w + x]!));
          pixels[((y0 + y) * width + x0 + x) * c + ch] = Math.round((v + 1) * 127.5);
        }
  }
  const scale = options.scale ?? Math.ceil(VIEWABLE_SIDE / Math.max(width, height));
  return upscale({ width, height, channels: c, pixels }, scale);
}

/** `image` with every pixel repeated `factor` times across and down (nearest neighbour: no new values). */
function upscale(image: Image, factor: number): Image {
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`upscale: the factor must be a positive integer, got ${factor}`);
  if (factor === 1) return image;
  const { width, height, channels, pixels } = image;
  const row = width * factor * channels;
  const out = new Uint8Array(row * height * factor);
  for (let y = 0; y < height; y++) {
    const start = y * factor * row;
    for (let x = 0; x < width; x++) {
      const px = pixels.subarray((y * width + x) * channels, (y * width + x + 1) * channels);
      for (let k = 0; k < factor; k++) out.set(px, start + (x * factor + k) * channels);
    }
    // The other rows of this band are copies of its first.
    for (let k = 1; k < factor; k++) out.copyWithin(start + k * row, start, start + row);
  }
  return { width: width * factor, height: height * factor, channels, pixels: out };
}
