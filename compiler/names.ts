// The graph input and output names a runtime relies on are part of the Program format, defined with it in
// runtime/manifest.ts (which the runtime loads without the compiler); the compiler's passes take them from here.
export { NAMES } from "../runtime/manifest.js";
