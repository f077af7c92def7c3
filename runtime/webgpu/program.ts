// A WGSL Program as the WebGPU runtime loads it: the manifest (runtime/manifest.ts) with WGSL dispatches, the
// kernels by file name, and the one-file form `--emit ts` writes beside the bindings. backends/wgsl/program.ts
// writes it.
import type * as M from "../manifest.js";

export interface DispatchEntry extends M.Dispatch {
  readonly workgroups: readonly [number, number];
  /** Binding 0 is the {seed, step} uniform; bindings 1.. are these buffers, inputs then the output. */
  readonly buffers: readonly number[];
}

export type GraphManifest = M.GraphManifest<DispatchEntry>;
export type EntryManifest = M.EntryManifest<DispatchEntry>;
export type ProgramManifest = M.ProgramManifest<"wgsl", DispatchEntry>;

export interface WgslBuild {
  readonly manifest: ProgramManifest;
  /** Kernel file name -> WGSL source. Identical kernels (same WGSL) share one file. */
  readonly kernels: ReadonlyMap<string, string>;
}

/**
 * The Program in one file, as `--emit ts` writes it beside the bindings: the manifest and every kernel's source.
 * One file, so a bundler ships the Program as one asset (the kernels/ directory of a plain build holds hundreds).
 */
export interface ProgramFile {
  readonly manifest: ProgramManifest;
  readonly kernels: Readonly<Record<string, string>>;
}

export function encodeProgramFile(build: WgslBuild): string {
  const file: ProgramFile = { manifest: build.manifest, kernels: Object.fromEntries(build.kernels) };
  return JSON.stringify(file);
}

export function decodeProgramFile(file: ProgramFile): WgslBuild {
  return { manifest: file.manifest, kernels: new Map(Object.entries(file.kernels)) };
}
