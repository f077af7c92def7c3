// Checks a TrainingState (runtime/session.ts) against a program before a session imports it: every tensor must
// belong to the program (a parameter, its moving average, or the optimizer state of a trained parameter) with
// the parameter's dtype and shape, and every parameter must be there. Shared by the device runtimes.
import { NAMES, type ProgramManifest, type TrainingSpec } from "./manifest.js";
import type { TrainingState } from "./session.js";

/** What the check reads of a program: a compiled Program (compiler/lower.ts) or a built one's manifest. */
type Interface = Pick<ProgramManifest, "model" | "params"> & { readonly entries: readonly { readonly training?: Pick<TrainingSpec, "params" | "states"> }[] };

/** A state that does not fit the program: the message names the first tensor that does not. */
export class StateMismatchError extends Error {}

/** Throws a StateMismatchError naming the first tensor that does not fit. */
export function checkState(program: Interface, state: TrainingState): void {
  const spec = new Map(program.params.map((p) => [p.name, p]));
  const owners = new Map<string, string>();
  for (const p of program.params) {
    owners.set(NAMES.newParam(p.name), p.name);
    owners.set(NAMES.ema(p.name), p.name);
  }
  for (const e of program.entries) for (const p of e.training?.params ?? []) for (const s of e.training!.states) owners.set(NAMES.state(s, p), p);
  for (const [key, t] of state.tensors) {
    const owner = owners.get(key);
    if (owner === undefined) throw new StateMismatchError(`the state holds '${key}', which model ${program.model} does not have`);
    const want = spec.get(owner)!;
    if (t.dtype !== want.dtype || t.shape.join(",") !== want.shape.join(","))
      throw new StateMismatchError(`'${key}' is ${t.dtype}[${t.shape.join(", ")}], but model ${program.model} declares ${want.dtype}[${want.shape.join(", ")}]`);
  }
  const missing = program.params.filter((p) => !state.tensors.has(NAMES.newParam(p.name)));
  if (missing.length > 0) throw new StateMismatchError(`the state lacks ${missing.length} parameter(s) of model ${program.model}, first '${missing[0]!.name}'`);
}
