// Training images for the page: an IDX image file as Fashion-MNIST ships it (gzip-compressed or not), fetched
// and unpacked in the browser. IDX: two zero bytes, a type byte (0x08: unsigned bytes), the number of dims,
// each dim as a big-endian u32, then the values.

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
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = bytes[3] ?? 0;
  if (bytes.length < 4 || view.getUint16(0) !== 0 || bytes[2] !== 0x08 || (dims !== 3 && dims !== 4))
    throw new Error(`${url} is not an IDX file of unsigned-byte images (N×H×W or N×C×H×W)`);
  const shape = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i));
  const [count, ...image] = shape as [number, ...number[]];
  const [channels, height, width] = (dims === 3 ? [1, ...image] : image) as [number, number, number];
  const start = 4 + 4 * dims;
  if (bytes.length - start !== count * channels * height * width) throw new Error(`${url}: the header says ${shape.join("×")} values, the file has ${bytes.length - start}`);
  return { count, shape: [channels, height, width], pixels: bytes.subarray(start) };
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
