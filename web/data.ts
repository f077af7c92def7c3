// Training images for the page: an IDX image file as Fashion-MNIST ships it (gzip-compressed or not), fetched
// and unpacked in the browser, parsed by runtime/idx.ts.
import { parseIdx } from "ulc/runtime";

export interface Images {
  readonly count: number;
  /** [channels, height, width] of one image. */
  readonly shape: readonly [number, number, number];
  /** count·channels·height·width values, 0..255. */
  readonly pixels: Uint8Array;
}

async function gunzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export async function fetchIdxImages(url: string): Promise<Images> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  let bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await gunzip(bytes);
  const { dims, data } = parseIdx(bytes, url);
  if (dims.length !== 3 && dims.length !== 4) throw new Error(`${url} is not an IDX file of images (N×H×W or N×C×H×W): it has ${dims.length} dims`);
  const [count, ...image] = dims as [number, ...number[]];
  const [channels, height, width] = (dims.length === 3 ? [1, ...image] : image) as [number, number, number];
  return { count, shape: [channels, height, width], pixels: data };
}

/** Batch `k` of `size` images, cycling through the set in order, scaled from 0..255 to [-1, 1] as the models expect. */
export function batch(images: Images, k: number, size: number): Float32Array {
  const per = images.shape[0] * images.shape[1] * images.shape[2];
  const out = new Float32Array(size * per);
  for (let i = 0; i < size; i++) {
    const from = ((k * size + i) % images.count) * per;
    for (let j = 0; j < per; j++) out[i * per + j] = images.pixels[from + j]! / 127.5 - 1;
  }
  return out;
}
