#!/usr/bin/env bash
# Installs Open MPI for data-parallel training (`ulc train --ranks N`, or `mpirun -np N ulc train ...`):
# openmpi-bin (mpirun) and libopenmpi-dev (mpicc and the headers and library a data-parallel program links).
# Idempotent and fast when nothing is missing; as a non-root user, or off Debian, it prints what to install and
# exits 0 (ulc then says what is missing when it needs it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

say() { echo "setup-mpi: $*" >&2; }

missing=()
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin)
[[ -n $(mpicc --showme:incdirs 2>/dev/null) ]] || missing+=(libopenmpi-dev)
if [[ ${#missing[@]} -eq 0 ]]; then
  say "ok: Open MPI ($(mpirun --version 2>/dev/null | head -1))"
  exit 0
fi
apt_install setup-mpi "data-parallel training needs ${missing[*]}" "${missing[@]}" || true
