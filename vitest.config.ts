import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  // Generated bindings import the runtime by the package's name; in the tests that is this checkout's.
  resolve: { alias: { "ulc/runtime": fileURLToPath(new URL("runtime/index.ts", import.meta.url)) } },
  test: {
    include: ["test/**/*.test.ts"],
    // Builds dist/ once (for the tests that spawn bin/ulc.js); set ULC_PREBUILT=1 to skip when already built.
    globalSetup: ["test/global-setup.ts"],
    // Generous: a few tests spawn node processes, and property/fuzz tests run many cases. A test that needs
    // longer passes its own timeout as the third argument of `test(...)`.
    testTimeout: 60_000,
    // Two files at a time even on two cores (vitest's default leaves one core to itself): most files spend much
    // of their time in a compiler or in a native program while their own process waits.
    maxWorkers: 2,
    hookTimeout: 180_000,
  },
});
