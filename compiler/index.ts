// The compiler as a library, for tools (`ulc/compiler`): check `.ul` files with every diagnostic, lower a model to
// a Program, and build that for WebGPU as the one file an app loads with `ulc/runtime`. The `ulc` command is
// made of the same calls. It runs in Node: it reads source files and the standard library from disk.
export { emitWgsl, TILINGS, type WgslEmitOptions } from "../backends/wgsl/program.js";
export { checkFiles, type CheckOptions, type CheckResult, type SourceHost } from "../dsl/check.js";
export { diagnosticToJson, renderDiagnostic, type Diagnostic } from "../dsl/diagnostics.js";
export { encodeProgramFile, type WgslBuild } from "../runtime/webgpu/program.js";
export { lowerProgram, type LowerOptions, type Program, type ProgramEntry } from "./lower.js";
