// The runtime an application imports (`ulc/runtime`): built models on WebGPU, in a browser or in Node (Dawn),
// with their typed bindings' base class, checkpoints, sampling and pictures. Its imports stay inside runtime/
// and name no Node module (test/runtime-alone.test.ts), so a page that runs a model bundles no compiler; the
// compiler is `ulc/compiler` (compiler/index.ts).
export { parseIdx, IdxError } from "./idx.js";
export type { DType, ScalarSpec, TensorSpec, TrainingSpec } from "./manifest.js";
export { imageGrid, VIEWABLE_SIDE, type GridOptions } from "./pictures/grid.js";
export { encodePng, type Image } from "./pictures/png.js";
export { decodeSafetensors, encodeSafetensors, SafetensorsError, type Safetensors } from "./safetensors.js";
export type { Sampler } from "./sampler.js";
export type { HostTensor, InputTensor, Session, TrainingState } from "./session.js";
export { StateMismatchError } from "./training-state.js";
export {
  openDevice,
  requireFeatures,
  WebGpuRequirementError,
  WebGpuUnavailableError,
  type AdapterSummary,
  type OpenDeviceOptions,
  type Requirements,
  type WebGpu,
} from "./webgpu/device.js";
export { BoundModel, tensor, type ModelOptions, type SampleOptions, type Tensor } from "./webgpu/model.js";
export { decodeProgramFile, type ProgramFile, type ProgramManifest, type WgslBuild } from "./webgpu/program.js";
export { WebGpuSession, type WebGpuSessionOptions } from "./webgpu/session.js";
