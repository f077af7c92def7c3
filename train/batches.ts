// Batches for an entry: the images padded (centred, with the background value) to the size the model
// declares and scaled from 0..255 to [-1, 1]; labels where the entry takes them, one-hot (f32[B, classes]) or
// as class indices (i32[B]); or, for data that is not images, rows of named arrays (train/tensor-file.ts). The order is a
// pure function of (seed, step): epoch e visits the set in a Philox-keyed permutation, and step k takes the
// B examples after the first (k − 1)·B, so a resumed run sees exactly the batches an uninterrupted one would.
import type { TensorSpec } from "../compiler/lower.js";
import { uniformAt } from "../runtime/random.js";
import type { InputTensor } from "../runtime/session.js";
import { DataError, type ImageSet } from "./data.js";
import type { ExampleArray } from "./tensor-file.js";

/** The Philox stream the shuffles draw from; graph random streams use small keys (their node ids). */
const SHUFFLE_KEY = 0x5348_0000;

/** How an entry's inputs are filled from a data set: the image input, and the label input if it has one. */
export interface InputLayout {
  readonly image: TensorSpec;
  readonly label?: TensorSpec;
  readonly batch: number;
}

/** Finds the image input ([B, C, H, W]) and label input (f32[B, classes] one-hot, or i32[B]) of an entry and checks the data fits. */
export function inputLayout(entry: { readonly name: string; readonly inputs: readonly TensorSpec[] }, set: ImageSet): InputLayout {
  const image = entry.inputs.find((i) => i.shape.length === 4);
  if (!image) throw new DataError(`entry ${entry.name} takes no image input ([B, C, H, W]): its inputs are ${describe(entry.inputs)}`);
  const label = entry.inputs.find((i) => i !== image);
  const [batch, channels, height, width] = image.shape as [number, number, number, number];
  if (channels !== set.channels) throw new DataError(`entry ${entry.name} takes ${channels}-channel images, but ${set.source} has ${set.channels} channel(s)`);
  if (height < set.height || width < set.width)
    throw new DataError(`entry ${entry.name} takes ${height}×${width} images, smaller than the ${set.height}×${set.width} of ${set.source}`);
  if ((height - set.height) % 2 || (width - set.width) % 2) throw new DataError(`${set.height}×${set.width} images cannot be padded evenly to ${height}×${width}`);
  if (label) {
    const indices = label.dtype === "i32" && label.shape.length === 1;
    if (!indices && (label.dtype !== "f32" || label.shape.length !== 2)) throw new DataError(`entry ${entry.name}'s input '${label.name}' is neither a one-hot label input (f32[B, classes]) nor class indices (i32[B])`);
    if (label.shape[0] !== batch) throw new DataError(`entry ${entry.name}'s input '${label.name}' has ${label.shape[0]} rows for a batch of ${batch}`);
    if (!set.labels) throw new DataError(`entry ${entry.name} needs labels ('${label.name}'), but ${set.source} has none`);
    if (!indices && set.classes! > label.shape[1]!) throw new DataError(`${set.source} has ${set.classes} classes, entry ${entry.name} takes ${label.shape[1]}`);
  }
  if (entry.inputs.length > (label ? 2 : 1)) throw new DataError(`entry ${entry.name} takes inputs a data set cannot fill: ${describe(entry.inputs)}`);
  return { image, batch, ...(label && { label }) };
}

function describe(inputs: readonly TensorSpec[]): string {
  return inputs.map((i) => `${i.name}: ${i.dtype}[${i.shape.join(", ")}]`).join(", ") || "none";
}

/** The inputs for examples `indices` of the set (at most the batch; the rest of the batch repeats the last). */
export function batchOf(set: ImageSet, layout: InputLayout, indices: readonly number[]): Map<string, InputTensor> {
  const [batch, channels, height, width] = layout.image.shape as [number, number, number, number];
  const padY = (height - set.height) / 2, padX = (width - set.width) / 2;
  const x = new Float32Array(batch * channels * height * width).fill(-1);
  const plane = set.height * set.width;
  for (let b = 0; b < batch; b++) {
    const n = indices[Math.min(b, indices.length - 1)]!;
    for (let c = 0; c < channels; c++)
      for (let y = 0; y < set.height; y++)
        for (let xx = 0; xx < set.width; xx++)
          x[((b * channels + c) * height + y + padY) * width + xx + padX] = set.pixels[(n * channels + c) * plane + y * set.width + xx]! / 127.5 - 1;
  }
  const inputs = new Map<string, InputTensor>([[layout.image.name, { dtype: "f32", shape: layout.image.shape, data: x }]]);
  if (layout.label) {
    const classOf = (b: number) => set.labels![indices[Math.min(b, indices.length - 1)]!]!;
    const { name, shape, dtype } = layout.label;
    if (dtype === "i32") inputs.set(name, { dtype, shape, data: Int32Array.from({ length: batch }, (_, b) => classOf(b)) });
    else {
      const classes = shape[1]!;
      const y = new Float32Array(batch * classes);
      for (let b = 0; b < batch; b++) y[b * classes + classOf(b)] = 1;
      inputs.set(name, { dtype: "f32", shape, data: y });
    }
  }
  return inputs;
}

/** What the training loop draws batches from: `count` examples, `batch` per step. */
export interface TrainingData {
  readonly source: string;
  readonly count: number;
  readonly batch: number;
  inputs(indices: readonly number[]): Map<string, InputTensor>;
}

export function imageData(set: ImageSet, layout: InputLayout): TrainingData {
  return { source: `${set.source} (${set.count} images)`, count: set.count, batch: layout.batch, inputs: (indices) => batchOf(set, layout, indices) };
}

/**
 * An entry's inputs from arrays of examples, one per input by name (a tensor file's, or a stage-1 run's latents):
 * each array holds an example of its input's shape (or as many values, flattened) and the input's dtype.
 */
export function arrayData(source: string, arrays: ReadonlyMap<string, ExampleArray>, entry: { readonly name: string; readonly inputs: readonly TensorSpec[] }): TrainingData {
  const unused = [...arrays.keys()].filter((name) => !entry.inputs.some((i) => i.name === name));
  if (unused.length > 0) throw new DataError(`${source}: '${unused[0]}' is none of entry ${entry.name}'s inputs (${describe(entry.inputs)})`);
  const fills = entry.inputs.map((spec) => {
    const array = arrays.get(spec.name);
    if (!array) throw new DataError(`${source} has no '${spec.name}' for entry ${entry.name}'s input ${spec.name}: ${spec.dtype}[${spec.shape.join(", ")}]`);
    const [, ...example] = spec.shape;
    const per = example.reduce((a, b) => a * b, 1);
    if (array.example.reduce((a, b) => a * b, 1) !== per)
      throw new DataError(`${source}: '${spec.name}' holds examples of shape [${array.example.join(", ")}]; entry ${entry.name} takes [${example.join(", ")}]`);
    if ((spec.dtype === "i32") !== (array.dtype === "i32")) throw new DataError(`${source}: '${spec.name}' is ${array.dtype}; entry ${entry.name} takes ${spec.dtype}`);
    return { spec, array, per };
  });
  const count = fills[0]?.array.count ?? 0;
  const uneven = fills.find((f) => f.array.count !== count);
  if (uneven) throw new DataError(`${source}: '${uneven.spec.name}' has ${uneven.array.count} examples, '${fills[0]!.spec.name}' ${count}`);
  if (count === 0) throw new DataError(`${source} holds no examples`);
  const batch = entry.inputs[0]!.shape[0]!;
  return {
    source: `${source} (${count} examples)`,
    count,
    batch,
    inputs(indices) {
      return new Map(
        fills.map(({ spec, array, per }) => {
          const data = array.dtype === "i32" ? new Int32Array(batch * per) : new Float32Array(batch * per);
          for (let b = 0; b < batch; b++) {
            const n = indices[Math.min(b, indices.length - 1)]!;
            data.set(array.data.subarray(n * per, (n + 1) * per), b * per);
          }
          return [spec.name, { dtype: spec.dtype, shape: spec.shape, data }];
        }),
      );
    },
  };
}

/** The training order: step k's examples, from a per-epoch permutation keyed by the seed. */
export class BatchOrder {
  private epoch = -1;
  private permutation = new Uint32Array(0);

  constructor(
    private readonly count: number,
    private readonly batch: number,
    private readonly seed: number,
  ) {}

  /** The examples of optimizer step `step` (1-based). */
  indices(step: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.batch; i++) {
      const g = (step - 1) * this.batch + i;
      const epoch = Math.floor(g / this.count);
      if (epoch !== this.epoch) this.shuffle(epoch);
      out.push(this.permutation[g % this.count]!);
    }
    return out;
  }

  /** Fisher–Yates with Philox uniforms at (seed, epoch). */
  private shuffle(epoch: number): void {
    const p = Uint32Array.from({ length: this.count }, (_, i) => i);
    const scratch = new Uint32Array(4);
    for (let i = this.count - 1; i > 0; i--) {
      const j = Math.floor(uniformAt(this.seed, epoch, SHUFFLE_KEY, i, scratch) * (i + 1));
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    this.epoch = epoch;
    this.permutation = p;
  }
}
