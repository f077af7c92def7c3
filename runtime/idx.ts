// The IDX format (Fashion-MNIST's): two zero bytes, an element type (0x08: unsigned bytes), the number of dims,
// each dim as a big-endian u32, then the values. Parsed here once, for `ulc train` in Node and for the web page;
// decompression (gzip) is the caller's, as Node and browsers do it differently.

export class IdxError extends Error {}

/** The dims and values of an IDX file of unsigned bytes; `what` names it in errors. */
export function parseIdx(bytes: Uint8Array, what: string): { dims: number[]; data: Uint8Array } {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new IdxError(`${what}: not an IDX file (it does not start with the magic 00 00 08 NN)`);
  if (bytes[2] !== 0x08) throw new IdxError(`${what}: IDX element type 0x${bytes[2]!.toString(16)} is not unsigned bytes (0x08)`);
  const ndim = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * ndim) throw new IdxError(`${what}: truncated header`);
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * ndim;
  if (bytes.length - start !== size) throw new IdxError(`${what}: the header promises ${dims.join("×")} = ${size} bytes of data, the file has ${bytes.length - start} (truncated or corrupt)`);
  return { dims, data: bytes.subarray(start) };
}
