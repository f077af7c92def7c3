// NumPy .npy files (format 1.0) written by the specification: magic, version, header length, a dict padded to
// 64 bytes, then the C-order data. The oracle of train/tensor-file.ts's reader.

/** An array of `shape` in element type `descr`; `write` places element i at byte `at` (`bytes` per element). */
export function npy(descr: string, shape: number[], write: (view: DataView, at: number, i: number) => void, bytes: number, fortran = false): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? "True" : "False"}, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(10 + header.length + size * bytes);
  out.set([0x93, ...new TextEncoder().encode("NUMPY"), 1, 0]);
  const view = new DataView(out.buffer);
  view.setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  for (let i = 0; i < size; i++) write(view, 10 + header.length + i * bytes, i);
  return out;
}

/** float32 values as an .npy array of `shape`. */
export function npyFloat32(values: Float32Array, shape: number[]): Uint8Array {
  return npy("<f4", shape, (view, at, i) => view.setFloat32(at, values[i]!, true), 4);
}
