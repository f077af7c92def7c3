// The entries `ulc sample` and `ulc eval` find by name (docs/language.md, "Entries the commands rely on"), with
// the signatures they call them with. A command checks the ones it needs before it does any work, so a model that
// lacks one, or has one of another signature, is told which entry with which signature is needed, and for what,
// instead of failing part-way (or deep in the sampler) on an entry it cannot call.
import type { Node } from "../compiler/ir.js";
import type { Program, ProgramEntry } from "../compiler/lower.js";

/** An input the command feeds: a batch ([B, ...], B shared by every batch input) or an f32 scalar. */
type Input = "batch" | "scalar";

interface Convention {
  /** As the docs write it. */
  readonly signature: string;
  readonly inputs: readonly Input[];
  /** Trailing inputs a model may leave out (`evaluate`'s labels). */
  readonly optional?: number;
  /** One tensor shaped like the first input, one batch tensor, or a record of f32 scalars. */
  readonly result: "like first input" | "batch" | "scalars";
}

const STEP: Omit<Convention, "signature"> = { inputs: ["batch", "scalar", "scalar"], result: "like first input" };
const DECODER_STEP: Omit<Convention, "signature"> = { inputs: ["batch", "batch", "scalar", "scalar"], result: "like first input" };

export const CONVENTIONS = {
  prior_step: { ...STEP, signature: "prior_step(z: f32[B, ...Z], t: f32, s: f32) -> f32[B, ...Z]" },
  prior_ddim_step: { ...STEP, signature: "prior_ddim_step(z: f32[B, ...Z], t: f32, s: f32) -> f32[B, ...Z]" },
  decoder_step: { ...DECODER_STEP, signature: "decoder_step(x: f32[B, ...X], z0: f32[B, ...Z], t: f32, s: f32) -> f32[B, ...X]" },
  decoder_ddim_step: { ...DECODER_STEP, signature: "decoder_ddim_step(x: f32[B, ...X], z0: f32[B, ...Z], t: f32, s: f32) -> f32[B, ...X]" },
  decoder_x_hat: { signature: "decoder_x_hat(x: f32[B, ...X], z0: f32[B, ...Z], t: f32) -> f32[B, ...X]", inputs: ["batch", "batch", "scalar"], result: "like first input" },
  noise_latent: { signature: "noise_latent(z: f32[B, ...Z]) -> f32[B, ...Z]", inputs: ["batch"], result: "like first input" },
  encode: { signature: "encode(x: f32[B, C, H, W]) -> f32[B, ...Z]", inputs: ["batch"], result: "batch" },
  reconstruct: { signature: "reconstruct(x: f32[B, C, H, W]) -> f32[B, C, H, W]", inputs: ["batch"], result: "like first input" },
  evaluate: { signature: "evaluate(x: f32[B, C, H, W][, y: f32[B, K]]) -> { NAME: f32, ... }", inputs: ["batch", "batch"], optional: 1, result: "scalars" },
  features: { signature: "features(x: f32[B, C, H, W]) -> f32[B, F]", inputs: ["batch"], result: "batch" },
} satisfies Record<string, Convention>;

export type ConventionName = keyof typeof CONVENTIONS;

export class EntryError extends Error {}

/**
 * Checks that `program` has each of `names` with its conventional signature; throws an EntryError that says, for
 * `purpose`, which are missing or different and which entries the model has, then `hint`. `optional` ones are
 * checked only when present.
 */
export function requireEntries(program: Program, names: readonly ConventionName[], purpose: string, optional: readonly ConventionName[] = [], hint = ""): void {
  const problems = [...names, ...optional].flatMap((name) => {
    const entry = program.entries.find((e) => e.name === name);
    if (!entry) return optional.includes(name) ? [] : [`${CONVENTIONS[name].signature} is missing`];
    const why = mismatch(entry, CONVENTIONS[name]);
    return why ? [`${name} is ${describeEntry(entry)}, not ${CONVENTIONS[name].signature}: ${why}`] : [];
  });
  if (problems.length === 0) return;
  throw new EntryError(`${purpose} needs ${problems.length === 1 ? "an entry" : "entries"} that model ${program.model} lacks: ${problems.join("; ")} (it has ${program.entries.map((e) => e.name).join(", ")}; docs/language.md, "Entries the commands rely on")${hint}`);
}

/** Why `entry` cannot be called by the convention; undefined when it can. */
function mismatch(entry: ProgramEntry, convention: Convention): string | undefined {
  const { inputs, optional = 0 } = convention;
  const count = entry.inputs.length;
  if (count > inputs.length || count < inputs.length - optional) return `it takes ${count} input${count === 1 ? "" : "s"}, not ${optional ? `${inputs.length - optional} or ${inputs.length}` : inputs.length}`;
  const batch = entry.inputs.find((_, i) => inputs[i] === "batch")?.shape[0];
  for (const [i, spec] of entry.inputs.entries()) {
    if (inputs[i] === "scalar" && spec.shape.length > 0) return `its input ${spec.name} is not a scalar`;
    if (inputs[i] === "batch" && spec.shape[0] !== batch) return `its input ${spec.name} is not a batch of ${batch}`;
  }
  const shapes = entry.results.map((name) => outputNode(entry, name).shape);
  // The commands read a tensor result by its output name `result`, and a record's fields by theirs.
  const tensor = entry.results.length === 1 && entry.results[0] === "result" ? shapes[0] : undefined;
  switch (convention.result) {
    case "scalars":
      return tensor || shapes.some((s) => s.length > 0) ? "its result is not a record of scalars" : undefined;
    case "like first input":
      return tensor?.join() !== entry.inputs[0]!.shape.join() ? `its result is not one tensor shaped like its input ${entry.inputs[0]!.name}` : undefined;
    case "batch":
      return tensor?.[0] !== batch ? `its result is not one tensor, a batch of ${batch}` : undefined;
  }
}

/** An entry's signature at its bound shapes: `encode(x: f32[4, 1, 28, 28]) -> f32[4, 16]`. */
function describeEntry(entry: ProgramEntry): string {
  const type = (dtype: string, shape: readonly number[]) => (shape.length ? `${dtype}[${shape.join(", ")}]` : dtype);
  const output = (name: string) => {
    const n = outputNode(entry, name);
    return type(n.dtype, n.shape);
  };
  const result = entry.results.length === 1 && entry.results[0] === "result" ? output("result") : `{ ${entry.results.map((r) => `${r}: ${output(r)}`).join(", ")} }`;
  return `${entry.name}(${entry.inputs.map((i) => `${i.name}: ${type(i.dtype, i.shape)}`).join(", ")}) -> ${result}`;
}

function outputNode(entry: ProgramEntry, output: string): Node {
  const id = entry.graph.outputs.find((o) => o.name === output)!.node;
  return entry.graph.nodes.find((n) => n.id === id)!;
}
