/// <reference types="@webgpu/types" />
// Compute pipelines, created asynchronously (`createComputePipelineAsync`: no stall on the first dispatch) and
// cached per device by their WGSL source, so asking twice for the same kernel compiles it once. A shader that
// does not compile is an error carrying the compiler's messages with line numbers and the offending source
// lines, not a validation warning on the console.

export interface PipelineRequest {
  code: string;
  /** Default "main". */
  entryPoint?: string;
  /** An explicit layout lets kernels of one family share bind groups; default "auto". */
  layout?: GPUPipelineLayout | "auto";
  label?: string;
}

export class ShaderCompileError extends Error {
  override name = "ShaderCompileError";
}

const caches = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();
const layoutIds = new WeakMap<GPUPipelineLayout, number>();
let nextLayoutId = 0;

function layoutKey(layout: GPUPipelineLayout | "auto"): string {
  if (layout === "auto") return "auto";
  let id = layoutIds.get(layout);
  if (id === undefined) layoutIds.set(layout, (id = nextLayoutId++));
  return `layout#${id}`;
}

/** The compute pipeline for `request.code` on `device`, compiled once. */
export function computePipeline(device: GPUDevice, request: PipelineRequest): Promise<GPUComputePipeline> {
  let cache = caches.get(device);
  if (cache === undefined) caches.set(device, (cache = new Map()));
  const entryPoint = request.entryPoint ?? "main";
  const layout = request.layout ?? "auto";
  const key = `${layoutKey(layout)}\u0000${entryPoint}\u0000${request.code}`;
  let pipeline = cache.get(key);
  if (pipeline === undefined) {
    pipeline = compile(device, request.code, entryPoint, layout, request.label);
    cache.set(key, pipeline);
    // A failed compile is not cached: the error is reported to this caller, and a later call tries again.
    pipeline.catch(() => cache.delete(key));
  }
  return pipeline;
}

async function compile(
  device: GPUDevice,
  code: string,
  entryPoint: string,
  layout: GPUPipelineLayout | "auto",
  label: string | undefined,
): Promise<GPUComputePipeline> {
  // In an error scope, so a shader that does not compile is reported here (below) and not also logged by the
  // implementation as an uncaptured error.
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code, label });
  const info = await module.getCompilationInfo();
  const scoped = await device.popErrorScope();
  const errors = info.messages.filter((m) => m.type === "error");
  if (errors.length > 0) throw new ShaderCompileError(formatMessages(label ?? "shader", code, errors));
  if (scoped !== null) throw new ShaderCompileError(`${label ?? "shader"}: ${scoped.message}`);
  try {
    return await device.createComputePipelineAsync({ label, layout, compute: { module, entryPoint } });
  } catch (e) {
    throw new ShaderCompileError(`${label ?? "shader"}: creating the compute pipeline failed: ${(e as Error).message}`);
  }
}

function formatMessages(label: string, code: string, messages: readonly GPUCompilationMessage[]): string {
  const lines = code.split("\n");
  const out = [`${label}: WGSL does not compile (${messages.length} error${messages.length === 1 ? "" : "s"}):`];
  for (const m of messages) {
    out.push(`  ${m.lineNum}:${m.linePos}: ${m.message}`);
    const src = lines[m.lineNum - 1];
    if (src !== undefined) out.push(`    ${src}`, `    ${" ".repeat(Math.max(0, m.linePos - 1))}^`);
  }
  return out.join("\n");
}
