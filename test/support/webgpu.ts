// Opening the WebGPU device for tests. The WebGPU suites skip, with the reason printed, only when WebGPU is
// genuinely unavailable here (no adapter: on a machine without a GPU, lavapipe is not installed; run
// `bash scripts/setup-webgpu.sh`). Set ULC_REQUIRE_WEBGPU=1 (`npm run test:ci` does when CI is set) to make that a
// failure instead of a skip. Any other error opening the device is a failure.
import { openDevice, WebGpuUnavailableError, type WebGpu } from "../../runtime/webgpu/device.js";

export type TestDevice = { gpu: WebGpu; skip?: undefined } | { gpu?: undefined; skip: string };

let opened: Promise<TestDevice> | undefined;

/** The device shared by a test file (one per worker), or why the WebGPU tests skip. */
export function testDevice(): Promise<TestDevice> {
  opened ??= (async (): Promise<TestDevice> => {
    try {
      return { gpu: await openDevice({ label: "ulc tests" }) };
    } catch (e) {
      if (!(e instanceof WebGpuUnavailableError) || ["1", "true"].includes(process.env.ULC_REQUIRE_WEBGPU ?? "")) throw e;
      const skip = `WebGPU tests skipped: ${e.message}`;
      console.warn(skip);
      return { skip };
    }
  })();
  return opened;
}
