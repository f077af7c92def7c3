#!/usr/bin/env bash
# Installs what the CPU target (`--target cpu`, runtime/cpu) builds and links its programs with: a C++17
# compiler with OpenMP (Debian's g++, which brings libgomp) and oneDNN (libdnnl-dev: headers and library), which
# runs the matmuls and convolutions. Idempotent and fast when nothing is missing; as a non-root user, or off
# Debian, it prints what to install and exits 0 (ulc then says what is missing when it builds a program).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

say() { echo "setup-cpu: $*" >&2; }

missing=()
command -v "${ULC_CXX:-g++}" >/dev/null 2>&1 || missing+=(g++)
[[ -f /usr/include/dnnl.hpp ]] && ldconfig -p 2>/dev/null | grep -q 'libdnnl\.so ' || missing+=(libdnnl-dev)
if [[ ${#missing[@]} -eq 0 ]]; then
  say "ok: ${ULC_CXX:-g++} and oneDNN"
  exit 0
fi
apt_install setup-cpu "the CPU target needs ${missing[*]} (or use --target webgpu)" "${missing[@]}" || true
