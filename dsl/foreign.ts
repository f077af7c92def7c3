// Habits from other languages (Python, numpy, PyTorch) that mean something else in .ul, and what .ul writes
// instead: the hints diagnostics give for them.
import { joinSpans, spanText, type Span } from "./source.js";
import type { Value } from "./values.js";

/** Words other languages start a declaration with, and the .ul keyword for each. */
export const FOREIGN_KEYWORDS: ReadonlyMap<string, string> = new Map([
  ["def", "fn"],
  ["function", "fn"],
  ["class", "module"],
]);

export interface CallArg {
  readonly name?: { readonly name: string };
  readonly value: Value;
  readonly span: Span;
}

/** A call that binds its arguments to the wrong parameters: where, and how to write it instead. */
export interface Misuse {
  readonly span: Span;
  readonly message: string;
}

/** `concat(a, b, axis = 1)`: the tensors given one by one instead of as one list. */
function concatOfTensors(args: readonly CallArg[]): Misuse | undefined {
  const n = args.findIndex((a) => a.name !== undefined || a.value.k !== "tensor");
  const tensors = n < 0 ? args : args.slice(0, n);
  if (tensors.length < 2) return undefined;
  const rest = args.slice(tensors.length).map((a) => spanText(a.span));
  const call = [`[${tensors.map((a) => spanText(a.span)).join(", ")}]`, ...(rest.length > 0 ? rest : ["axis"])].join(", ");
  return { span: joinSpans(tensors[0]!.span, tensors[tensors.length - 1]!.span), message: `concat takes one list of tensors, not the tensors one by one: concat(${call})` };
}

/** `max(x, 0.0)`: the element-wise maximum (PyTorch's torch.max(a, b)) written with the reduction; or `min`. */
function ofTwo(reduction: "max" | "min", elementwise: "maximum" | "minimum") {
  return (args: readonly CallArg[]): Misuse | undefined => {
    if (args.length !== 2) return undefined;
    const [x, other] = args as readonly [CallArg, CallArg];
    if (x.name || other.name || (other.value.k !== "tensor" && other.value.k !== "float")) return undefined;
    return {
      span: other.span,
      message: `${reduction} reduces one tensor over an axis, so its second argument is the axis; the element-wise ${elementwise} is ${elementwise}(${spanText(x.span)}, ${spanText(other.span)})`,
    };
  };
}

const MISUSES = new Map<string, (args: readonly CallArg[]) => Misuse | undefined>([
  ["concat", concatOfTensors],
  ["max", ofTwo("max", "maximum")],
  ["min", ofTwo("min", "minimum")],
]);

/** A primitive called the way another library calls its namesake, or undefined. */
export function misusedBuiltin(name: string, args: readonly CallArg[]): Misuse | undefined {
  return MISUSES.get(name)?.(args);
}
