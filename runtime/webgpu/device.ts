/// <reference types="@webgpu/types" />
// Opening a WebGPU device, in Node and in a browser, and checking up front that it can run a program.
//
// In a browser the device comes from `navigator.gpu`. In Node it comes from Dawn's bindings (the `webgpu` npm
// package), which is imported dynamically so a browser bundle never loads it. Without a GPU, Dawn runs on
// Mesa's software Vulkan driver lavapipe (adapter "llvmpipe"; `scripts/setup-webgpu.sh` installs it); with
// one, `powerPreference: "high-performance"` picks it.
//
// WebGPU hands out its low default limits (8 storage buffers per stage, 16 KiB of workgroup memory, ...) unless
// a device asks for more, so `openDevice` asks for everything the adapter offers on the limits that compute
// work cares about, and for the optional features we can use (`shader-f16`, `timestamp-query`, `subgroups`).
// What a program needs is then checked with `requireFeatures`, which says what is missing and what the
// adapter has, instead of a validation error at the first dispatch.

/** The limits a compute program may depend on; `openDevice` requests the adapter's value of each. */
export const COMPUTE_LIMITS = [
  "maxStorageBuffersPerShaderStage",
  "maxUniformBuffersPerShaderStage",
  "maxStorageBufferBindingSize",
  "maxUniformBufferBindingSize",
  "maxBufferSize",
  "maxBindGroups",
  "maxBindingsPerBindGroup",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxTextureDimension2D",
  "maxTextureArrayLayers",
  "maxStorageTexturesPerShaderStage",
  "minStorageBufferOffsetAlignment",
  "minUniformBufferOffsetAlignment",
] as const;
export type ComputeLimit = (typeof COMPUTE_LIMITS)[number];

/** Storage buffers per shader stage we ask for at most (Dawn grants up to the adapter's value; 16 is plenty). */
export const MAX_STORAGE_BUFFERS_REQUESTED = 16;

/** Features requested when the adapter has them (a program that needs one checks with `requireFeatures`). */
export const OPTIONAL_FEATURES: readonly GPUFeatureName[] = ["shader-f16", "timestamp-query", "subgroups"];

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** One line for tables and logs: the description, else vendor/architecture/device; "unknown adapter" if all are empty. */
  name: string;
  /** A software or otherwise fallback adapter (lavapipe reports true). */
  isFallbackAdapter: boolean;
}

export interface OpenDeviceOptions {
  /** A `GPU` to use instead of `navigator.gpu` or Dawn (for example one from `create([...])` with Dawn options). */
  gpu?: GPU;
  /** Default "high-performance": a discrete GPU when there is one. */
  powerPreference?: GPUPowerPreference;
  /** Node only: options for Dawn's `create` (e.g. `["backend=vulkan"]`, `["adapter=llvmpipe"]`). */
  dawnOptions?: readonly string[];
  /** Features the caller cannot do without: missing ones are a `WebGpuRequirementError` before the device is made. */
  requiredFeatures?: readonly string[];
  /** Limits the caller needs (a minimum for `max*` limits, a maximum for `min*Alignment` ones). */
  requiredLimits?: Partial<Record<ComputeLimit, number>>;
  /** Features to request when available; default `OPTIONAL_FEATURES`. */
  optionalFeatures?: readonly string[];
  label?: string;
}

/** An open device with what it was opened from. */
export interface WebGpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  adapterInfo: AdapterSummary;
  /** Where the `GPU` came from: "navigator.gpu", "webgpu (Dawn)" or "options.gpu". */
  source: string;
}

/** No WebGPU here at all: no `navigator.gpu`, the `webgpu` package does not load, or no adapter. */
export class WebGpuUnavailableError extends Error {
  override name = "WebGpuUnavailableError";
}

export interface LimitShortfall {
  limit: string;
  required: number;
  actual: number;
  /** The adapter's value, when known: if it satisfies `required`, the device simply did not request it. */
  adapter?: number;
}

/** The device (or adapter) lacks features or limits a program needs. */
export class WebGpuRequirementError extends Error {
  override name = "WebGpuRequirementError";
  constructor(
    message: string,
    readonly missingFeatures: readonly string[],
    readonly limits: readonly LimitShortfall[],
  ) {
    super(message);
  }
}

// Typed here rather than through Node's types, which a browser app's type-check does not have.
const isNode = typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === "string";

const dawnInstances = new Map<string, Promise<GPU>>();

/**
 * Dawn's `GPU` in Node, created once per set of Dawn options.
 *
 * Its first `requestAdapter` prints "Warning: maxDynamic{Uniform,Storage}BuffersPerPipelineLayout artificially
 * reduced from 1000000 to 16" on a Vulkan driver that reports more dynamic buffers than Dawn supports (lavapipe
 * reports 1000000, RADV 500000). Dawn clamps the adapter's limits as it discovers the physical device
 * (`NormalizeLimits` in Dawn's Limits.cpp), before any device or limit is requested, and writes the warning with
 * `fprintf(stderr)` whatever its options: no request avoids it, and Node cannot redirect a native write to fd 2.
 */
async function dawnGpu(options: readonly string[]): Promise<GPU> {
  const key = JSON.stringify(options);
  let gpu = dawnInstances.get(key);
  if (gpu === undefined) {
    gpu = (async () => {
      // A variable specifier: bundlers for the browser leave it alone, and browsers never reach this line.
      const specifier = "webgpu";
      let mod: { create(options: string[]): GPU };
      try {
        mod = (await import(/* @vite-ignore */ specifier)) as typeof mod;
      } catch (e) {
        throw new WebGpuUnavailableError(
          `WebGPU: could not load the 'webgpu' package (Dawn's Node bindings): ${(e as Error).message}. ` +
            "Run `npm ci`; Dawn ships prebuilt for linux/macOS/windows on x64 and arm64.",
        );
      }
      return mod.create([...options]);
    })();
    dawnInstances.set(key, gpu);
    gpu.catch(() => dawnInstances.delete(key));
  }
  return gpu;
}

/** The adapter's identity from its `GPUAdapterInfo` (`adapter.info`, or `device.adapterInfo`). */
export function summarize(info: GPUAdapterInfo | undefined): AdapterSummary {
  const vendor = info?.vendor ?? "";
  const architecture = info?.architecture ?? "";
  const device = info?.device ?? "";
  const description = info?.description ?? "";
  const parts = [vendor, architecture, device].filter((s) => s !== "");
  const name = description !== "" ? description : parts.length > 0 ? parts.join(" ") : "unknown adapter";
  const isFallbackAdapter = Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter);
  return { vendor, architecture, device, description, name, isFallbackAdapter };
}

/** The adapter's identity (`adapter.info`, or `requestAdapterInfo()` in older browsers). */
export async function describeAdapter(adapter: GPUAdapter): Promise<AdapterSummary> {
  const legacy = adapter as GPUAdapter & { requestAdapterInfo?: () => Promise<GPUAdapterInfo> };
  const info = adapter.info ?? (legacy.requestAdapterInfo ? await legacy.requestAdapterInfo() : undefined);
  return summarize(info);
}

const NO_ADAPTER_HELP =
  "On a machine without a GPU, WebGPU in Node runs on Mesa's software Vulkan driver (lavapipe, Mesa >= 24): " +
  "run `bash scripts/setup-webgpu.sh` (Debian 12, as root) or see what it prints. With a GPU, install its Vulkan driver.";

/** The `GPU` to use: `options.gpu`, else `navigator.gpu` (browsers), else Dawn's (Node, the `webgpu` package). */
export async function getGpu(options: Pick<OpenDeviceOptions, "gpu" | "dawnOptions"> = {}): Promise<{ gpu: GPU; source: string }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (options.gpu !== undefined) return { gpu: options.gpu, source: "options.gpu" };
  if (nav?.gpu !== undefined) return { gpu: nav.gpu, source: "navigator.gpu" };
  if (isNode) return { gpu: await dawnGpu(options.dawnOptions ?? []), source: "webgpu (Dawn)" };
  throw new WebGpuUnavailableError("WebGPU: this browser has no navigator.gpu (WebGPU is not supported or not enabled).");
}

/** Opens a device on the best adapter, asking for the adapter's compute limits and the optional features it has. */
export async function openDevice(options: OpenDeviceOptions = {}): Promise<WebGpu> {
  const { gpu, source } = await getGpu(options);
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? "high-performance" });
  } catch (e) {
    throw new WebGpuUnavailableError(`WebGPU: requestAdapter failed (${source}): ${(e as Error).message}. ${NO_ADAPTER_HELP}`);
  }
  if (adapter === null) throw new WebGpuUnavailableError(`WebGPU: no adapter (${source}). ${NO_ADAPTER_HELP}`);
  const adapterInfo = await describeAdapter(adapter);

  // What the caller cannot do without: checked against the adapter before asking for a device.
  checkRequirements(
    adapterInfo.name,
    adapter.features,
    adapter.limits,
    { features: options.requiredFeatures ?? [], limits: options.requiredLimits ?? {} },
    undefined,
    "adapter",
  );

  const requiredFeatures = new Set<string>(options.requiredFeatures ?? []);
  for (const f of options.optionalFeatures ?? OPTIONAL_FEATURES) if (adapter.features.has(f)) requiredFeatures.add(f);

  const requiredLimits: Record<string, number> = {};
  for (const name of COMPUTE_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (value === undefined) continue;
    requiredLimits[name] = name === "maxStorageBuffersPerShaderStage" ? Math.min(value, MAX_STORAGE_BUFFERS_REQUESTED) : value;
  }
  // The caller's own requirements (the adapter meets them: checked above) win over the caps.
  for (const [name, value] of Object.entries(options.requiredLimits ?? {})) {
    if (value === undefined) continue;
    const ours = requiredLimits[name];
    requiredLimits[name] = ours === undefined ? value : name.startsWith("min") ? Math.min(ours, value) : Math.max(ours, value);
  }

  const device = await adapter.requestDevice({
    label: options.label ?? "ulc",
    requiredFeatures: [...requiredFeatures] as GPUFeatureName[],
    requiredLimits,
  });
  return { device, adapter, adapterInfo, source };
}

export interface Requirements {
  /** Feature names, e.g. "shader-f16". */
  features?: readonly string[];
  /** Limits: at least this for `max*` limits, at most this for `min*Alignment` limits. */
  limits?: Partial<Record<ComputeLimit | string, number>>;
}

/**
 * Throws a `WebGpuRequirementError` naming every missing feature and short limit, with the device's and (given
 * a `WebGpu` from `openDevice`) the adapter's values, so the message says whether another device could do it.
 */
export function requireFeatures(target: GPUDevice | WebGpu, requirements: Requirements): void {
  const device = "device" in target && "adapter" in target ? target.device : (target as GPUDevice);
  const ctx = target === device ? undefined : (target as WebGpu);
  checkRequirements(
    ctx?.adapterInfo.name ?? device.label ?? "",
    device.features,
    device.limits,
    requirements,
    ctx?.adapter,
    "device",
  );
}

function checkRequirements(
  name: string,
  features: GPUSupportedFeatures,
  limits: GPUSupportedLimits,
  requirements: Requirements,
  adapter: GPUAdapter | undefined,
  what: "device" | "adapter",
): void {
  const missing = (requirements.features ?? []).filter((f) => !features.has(f));
  const shortfalls: LimitShortfall[] = [];
  for (const [limit, required] of Object.entries(requirements.limits ?? {})) {
    if (required === undefined) continue;
    const actual = (limits as unknown as Record<string, number | undefined>)[limit];
    if (actual === undefined) {
      shortfalls.push({ limit, required, actual: NaN });
      continue;
    }
    const isAlignment = limit.startsWith("min");
    if (isAlignment ? actual <= required : actual >= required) continue;
    const adapterValue = adapter ? (adapter.limits as unknown as Record<string, number | undefined>)[limit] : undefined;
    shortfalls.push(adapterValue === undefined ? { limit, required, actual } : { limit, required, actual, adapter: adapterValue });
  }
  if (missing.length === 0 && shortfalls.length === 0) return;

  const lines = [`WebGPU ${what}${name ? ` '${name}'` : ""} cannot run this program:`];
  const has = [...features].sort().join(", ") || "none";
  for (const f of missing) {
    const onAdapter = adapter?.features.has(f);
    const hint =
      onAdapter === true
        ? "the adapter has it, but this device was not opened with it (open it with openDevice, which requests it)"
        : `the ${what} has: ${has}`;
    lines.push(`  - missing feature '${f}' (${hint})`);
  }
  for (const s of shortfalls) {
    if (Number.isNaN(s.actual)) {
      lines.push(`  - unknown limit '${s.limit}' (not a WebGPU limit this implementation reports)`);
      continue;
    }
    const relation = s.limit.startsWith("min") ? "at most" : "at least";
    let hint = "";
    if (s.adapter !== undefined) {
      const adapterOk = s.limit.startsWith("min") ? s.adapter <= s.required : s.adapter >= s.required;
      hint = adapterOk
        ? `; the adapter allows ${s.adapter}: open the device with openDevice, which requests it`
        : `; the adapter's own limit is ${s.adapter}`;
    }
    lines.push(`  - limit ${s.limit}: needs ${relation} ${s.required}, the ${what} has ${s.actual}${hint}`);
  }
  throw new WebGpuRequirementError(lines.join("\n"), missing, shortfalls);
}
