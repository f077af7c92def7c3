// The graph input and output names a runtime relies on, beside entry inputs and hypers (which keep their own
// names). A module of its own so that browser bundles of the runtime need nothing else from the compiler.
export const NAMES = {
  step: "optimizer.step",
  arg: (name: string) => `optimizer.${name}`,
  state: (state: string, param: string) => `optimizer.${state}.${param}`,
  newParam: (param: string) => `param:${param}`,
  /** The moving average of a parameter (an input and output of the `ema` graph; a checkpoint tensor). */
  ema: (param: string) => `ema:${param}`,
  emaDecay: "ema.decay",
};
