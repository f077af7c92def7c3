// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON header
// mapping each tensor's name to {dtype, shape, data_offsets} (plus an optional string-to-string
// `__metadata__`), then the tensors' bytes, little-endian, back to back. PyTorch, JAX and the CUDA host
// runtime read the same files. Nothing here needs Node.
import type { DType } from "./manifest.js";
import type { HostTensor } from "./session.js";

const STORED: Record<DType, "F32" | "I32"> = { f32: "F32", f16: "F32", bool: "F32", i32: "I32" };

export class SafetensorsError extends Error {}

export interface Safetensors {
  readonly tensors: Map<string, HostTensor>;
  readonly metadata: Record<string, string>;
}

export function encodeSafetensors(tensors: ReadonlyMap<string, HostTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  // Sorted names: the same state always gives the same bytes.
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    const bytes = t.data.length * 4;
    header[name] = { dtype: STORED[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // The header is padded with spaces to a multiple of 8 so the data that follows is aligned.
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(padded - json.length));
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    const data = t.dtype === "i32" ? Int32Array.from(t.data) : Float32Array.from(t.data);
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/** Parses a file, checking every offset; `what` names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, what = "the safetensors file"): Safetensors {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${what} is not a valid safetensors file: ${why}`);
  };
  if (bytes.length < 8) fail(`it has ${bytes.length} bytes, fewer than the 8 of the header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.length) fail(`the header says it is ${headerLength} bytes, but the file has ${bytes.length}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    return fail(`its header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("its header is not a JSON object");
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry) || Object.values(entry).some((v) => typeof v !== "string"))
        fail("its __metadata__ is not an object of strings");
      metadata = entry as Record<string, string>;
      continue;
    }
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) fail(`tensor '${name}' is not described by an object (dtype, shape, data_offsets)`);
    const { dtype, shape, data_offsets: offsets } = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (dtype !== "F32" && dtype !== "I32") fail(`tensor '${name}' has dtype ${String(dtype)}; ulc stores F32 and I32`);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`tensor '${name}' has a malformed shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o))) fail(`tensor '${name}' has malformed data_offsets`);
    const [begin, end] = offsets as number[];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end! - begin! !== count * 4) fail(`tensor '${name}' has ${end! - begin!} bytes for ${count} elements`);
    if (begin! < 0 || dataStart + end! > bytes.length) fail(`tensor '${name}' ends past the end of the file (truncated?)`);
    // Copied out, so the tensor is aligned whatever the header length (and owns its buffer: a Node Buffer's
    // slice() would be a view of the whole file).
    const raw = new Uint8Array(bytes.subarray(dataStart + begin!, dataStart + end!));
    const data = dtype === "I32" ? new Int32Array(raw.buffer) : new Float32Array(raw.buffer);
    tensors.set(name, { dtype: dtype === "I32" ? "i32" : "f32", shape: shape as number[], data });
  }
  return { tensors, metadata };
}
