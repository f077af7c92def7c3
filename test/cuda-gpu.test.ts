// The CUDA target on a GPU: the suites of test/support/native.ts, built by nvcc for GPU 0's architecture.
// Skipped (saying so) where there is no GPU; `npm run test:gpu` sets ULC_REQUIRE_GPU=1, which makes a missing
// GPU a failure instead.
import { describe } from "vitest";
import { detectArch } from "../runtime/cuda/compile.js";
import { cudaTarget } from "./support/cuda.js";
import { nativeSuites } from "./support/native.js";

const arch = detectArch();
if (arch === undefined && process.env.ULC_REQUIRE_GPU === "1") throw new Error("ULC_REQUIRE_GPU=1, but nvidia-smi finds no GPU");

describe.skipIf(arch === undefined)(`on the GPU (${arch ?? "none: skipped"})`, () => nativeSuites(cudaTarget("cuda")));
