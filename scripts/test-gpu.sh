#!/usr/bin/env bash
# The CUDA target on a GPU host (`npm run test:gpu`): the CUDA tests with the GPU required (the suites of the
# emulated tests, now built by nvcc for GPU 0 and run on it; the nvcc builds; the emulation itself), then the
# benchmark against PyTorch, written into docs/benchmarks.md. Needs an NVIDIA GPU and driver, nvcc (CUDA 12
# or later), and for the peer a Python with a CUDA build of PyTorch (ULC_PYTHON, default python3).
#
#   bash scripts/test-gpu.sh [--batch 64] [--steps 50]
set -euo pipefail
cd "$(dirname "$0")/.."

nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv
nvcc --version | tail -n 1
"${ULC_PYTHON:-python3}" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' ||
  echo "no PyTorch: the benchmark will report ulc alone"

npm run build
ULC_PREBUILT=1 ULC_REQUIRE_GPU=1 npx vitest run test/cuda-gpu.test.ts test/cuda-nvcc.test.ts test/cuda-emulated.test.ts
node bench/gpu/bench.mjs --write "$@"
