// Data that is not images: named tensors whose first axis runs over the examples, from a safetensors file (one
// tensor per entry input, by the input's name) or a NumPy .npy file (one array, for an entry with one input).
// Sequences, flat vectors, integer class labels: whatever the entry's inputs declare, checked against them.
import { existsSync, readFileSync } from "node:fs";
import { extname } from "node:path";
import type { TensorSpec } from "../compiler/lower.js";
import { decodeSafetensors, SafetensorsError } from "../runtime/safetensors.js";
import { DataError } from "./data.js";

/** One array of examples: `count` rows of `perExample` values. */
export interface ExampleArray {
  readonly dtype: "f32" | "i32";
  /** The shape of one example (the array's shape without its first axis). */
  readonly example: readonly number[];
  readonly count: number;
  readonly data: Float32Array | Int32Array;
}

/** Whether `--data` names a tensor file this module reads. */
export function isTensorFile(path: string): boolean {
  return [".safetensors", ".npy"].includes(extname(path).toLowerCase());
}

/** The arrays of a tensor file, by name (an .npy file's one array is named after the entry's one input). */
export function readTensorFile(path: string, inputs: readonly TensorSpec[]): Map<string, ExampleArray> {
  if (!existsSync(path)) throw new DataError(`--data ${path}: no such file`);
  const bytes = readFileSync(path);
  if (extname(path).toLowerCase() === ".npy") {
    if (inputs.length !== 1) throw new DataError(`${path}: an .npy file holds one array, but the entry takes ${inputs.length} inputs (${inputs.map((i) => i.name).join(", ")}): use a safetensors file with a tensor per input`);
    return new Map([[inputs[0]!.name, parseNpy(bytes, path)]]);
  }
  let tensors;
  try {
    tensors = decodeSafetensors(bytes, path).tensors;
  } catch (e) {
    if (e instanceof SafetensorsError) throw new DataError(e.message);
    throw e;
  }
  return new Map(
    [...tensors].map(([name, t]) => {
      if (t.shape.length === 0) throw new DataError(`${path}: tensor '${name}' is a scalar; data tensors have the examples along their first axis`);
      return [name, { dtype: t.dtype === "i32" ? "i32" : "f32", example: t.shape.slice(1), count: t.shape[0]!, data: t.data as Float32Array | Int32Array }];
    }),
  );
}

const NPY_MAGIC = "\x93NUMPY";
/** The .npy element types ulc reads, little-endian: float32, float64 (rounded to f32), int32, int64 (checked to fit). */
const NPY_TYPES: Record<string, { bytes: number; dtype: "f32" | "i32" }> = {
  "<f4": { bytes: 4, dtype: "f32" },
  "<f8": { bytes: 8, dtype: "f32" },
  "<i4": { bytes: 4, dtype: "i32" },
  "<i8": { bytes: 8, dtype: "i32" },
};

/** An .npy file (format 1.0–3.0): its header's dict (descr, fortran_order, shape), then the C-order data. */
export function parseNpy(bytes: Uint8Array, path: string): ExampleArray {
  const fail = (why: string): never => {
    throw new DataError(`${path}: not a NumPy array file ulc reads: ${why}`);
  };
  if (String.fromCharCode(...bytes.subarray(0, 6)) !== NPY_MAGIC) fail("it does not start with \\x93NUMPY");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  if (major < 1 || major > 3) fail(`format version ${major} is unknown`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1] ?? fail("the header has no descr");
  const type = NPY_TYPES[descr] ?? fail(`element type '${descr}' (ulc reads ${Object.keys(NPY_TYPES).join(", ")})`);
  if (/'fortran_order':\s*True/.test(header)) fail("the array is in Fortran order (save it with np.ascontiguousarray)");
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? fail("the header has no shape");
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (shape.length === 0) fail("the array is a scalar; data arrays have the examples along their first axis");
  const count = shape[0]!;
  const size = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLength;
  if (bytes.byteLength - offset !== size * type.bytes) fail(`the header's shape (${shape.join(", ")}) needs ${size * type.bytes} bytes of data, the file has ${bytes.byteLength - offset}`);
  const at = (i: number) => offset + i * type.bytes;
  let data: Float32Array | Int32Array;
  if (descr === "<f4") data = Float32Array.from({ length: size }, (_, i) => view.getFloat32(at(i), true));
  else if (descr === "<f8") data = Float32Array.from({ length: size }, (_, i) => view.getFloat64(at(i), true));
  else if (descr === "<i4") data = Int32Array.from({ length: size }, (_, i) => view.getInt32(at(i), true));
  else
    data = Int32Array.from({ length: size }, (_, i) => {
      const v = view.getBigInt64(at(i), true);
      if (v < -(2n ** 31n) || v >= 2n ** 31n) fail(`element ${i} (${v}) does not fit an i32`);
      return Number(v);
    });
  return { dtype: type.dtype, example: shape.slice(1), count, data };
}
