// A built Program as runtimes read it (manifest.json): per graph (init, ema, each entry) the buffers that exist,
// the kernel launches in order with the buffers each binds (its inputs, then its output) and the graph's
// outputs, beside the model's interface (parameters, hypers, entries) and the names of the graphs' inputs and
// outputs. The backends write it (backends/program.ts); the runtimes run it. It is defined here, dtypes included,
// so that the runtime needs nothing from the compiler: a browser app that runs a built model bundles none of it
// (test/runtime-alone.test.ts).

export const MANIFEST_FORMAT = "ulc-program/1";

/**
 * The graph input and output names a runtime relies on, beside entry inputs and hypers (which keep their own
 * names).
 */
export const NAMES = {
  step: "optimizer.step",
  arg: (name: string) => `optimizer.${name}`,
  state: (state: string, param: string) => `optimizer.${state}.${param}`,
  newParam: (param: string) => `param:${param}`,
  /** The moving average of a parameter (an input and output of the `ema` graph; a checkpoint tensor). */
  ema: (param: string) => `ema:${param}`,
  emaDecay: "ema.decay",
};

/** Element types of tensors. */
export type DType = "f32" | "f16" | "i32" | "bool";

/**
 * How a Program's contractions (matmul, conv2d and its gradients) multiply f32 operands: "fp32" as they are,
 * "tf32" rounded to TF32 first (10 mantissa bits, as tensor cores read them), "bf16" rounded to bfloat16 first
 * (8 significant bits, ties to even, as tensor cores' bf16 mma reads them), the rounding being nodes of the graphs
 * (compiler/passes/precision.ts); fp32 accumulation in every case.
 */
export type ContractionPrecision = "fp32" | "tf32" | "bf16";
export const CONTRACTION_PRECISIONS: readonly ContractionPrecision[] = ["fp32", "tf32", "bf16"];

/** A named tensor of the model's interface: a parameter, or an entry's input. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** A named scalar with its default: a hyperparameter, or an optimizer argument. */
export interface ScalarSpec {
  readonly name: string;
  readonly default: number;
}

/** A train entry's optimizer: the minimised field, the optimizer's arguments and state names, the trained parameters. */
export interface TrainingSpec {
  readonly loss: string;
  readonly optimizer: string;
  readonly args: readonly ScalarSpec[];
  readonly states: readonly string[];
  readonly params: readonly string[];
}

export interface BufferEntry {
  readonly id: number;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly role: "input" | "param" | "output" | "intermediate";
  /** Inputs and params: their name; outputs: the output's name. */
  readonly name?: string;
}

/** What every target's dispatch records: the kernel and its buffers, inputs then the output. */
export interface Dispatch {
  readonly kernel: string;
  /** Its inputs, then its outputs. */
  readonly buffers: readonly number[];
  /** How many of the last buffers it writes, when more than one (a kernel with sibling outputs). */
  readonly outputs?: number;
}

export interface GraphManifest<D extends Dispatch = Dispatch> {
  readonly buffers: readonly BufferEntry[];
  readonly dispatches: readonly D[];
  readonly outputs: readonly { readonly name: string; readonly buffer: number }[];
  readonly memory: { readonly intermediates: number; readonly arena: number };
}

export interface EntryManifest<D extends Dispatch = Dispatch> extends GraphManifest<D> {
  readonly name: string;
  readonly kind: "train" | "plain";
  /** Data inputs (the entry's parameters). Other graph inputs are hypers, optimizer arguments and state. */
  readonly inputs: readonly TensorSpec[];
  /** Result outputs: a record's fields, `result` for a tensor, `result.0`... for a tuple. */
  readonly results: readonly string[];
  readonly training?: TrainingSpec;
  /**
   * A data-parallel train entry: this graph is the step's update, and `gradients` runs first; the host all-reduces
   * the `reduced` outputs (one flat buffer, in this order) and hands them and the `carried` ones to the update
   * as inputs of the same names (compiler/parallel.ts).
   */
  readonly parallel?: { readonly gradients: GraphManifest<D>; readonly reduced: readonly string[]; readonly carried: readonly string[] };
}

/** A Program (compiler/lower.ts) with each graph replaced by its kernels. */
export interface ProgramManifest<T extends string = string, D extends Dispatch = Dispatch> {
  readonly format: typeof MANIFEST_FORMAT;
  readonly target: T;
  readonly model: string;
  readonly bindings: Readonly<Record<string, number>>;
  /** The precision of its contractions, which its graphs already apply (for a runtime to report). */
  readonly precision: ContractionPrecision;
  readonly params: readonly TensorSpec[];
  readonly hypers: readonly ScalarSpec[];
  readonly init: GraphManifest<D>;
  readonly ema: GraphManifest<D>;
  readonly entries: readonly EntryManifest<D>[];
}
