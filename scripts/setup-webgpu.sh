#!/usr/bin/env bash
# Makes WebGPU usable from Node on a machine without a GPU (DESIGN.md §5): Dawn (the `webgpu` npm package)
# needs a Vulkan driver, and on a GPU-less machine that is Mesa's software driver lavapipe ("llvmpipe").
# Debian 12's own Mesa (22.3) is too old for Dawn; Mesa from bookworm-backports (25.x) works.
#
# Idempotent and fast when nothing is missing (no `apt-get update` then). On Debian 12 as root it installs
#   mesa-vulkan-drivers libvulkan1   from bookworm-backports
# anywhere else it prints what to install by hand and exits 0 (a machine with a real GPU and its own Vulkan
# driver does not need lavapipe at all: Dawn picks the GPU).
#
#   scripts/setup-webgpu.sh            # install if needed
#   scripts/setup-webgpu.sh --check    # only report; exit 1 if lavapipe (Mesa >= 24) is missing
set -euo pipefail

MIN_MESA_MAJOR=24
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.list
BACKPORTS_LINE="deb http://deb.debian.org/debian bookworm-backports main"

say() { echo "setup-webgpu: $*" >&2; }

# The installed version of a Debian package ("" when not installed).
pkg_version() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null | awk '$1 == "installed" { print $2 }' | head -n1
}

# Is lavapipe from Mesa >= MIN_MESA_MAJOR there, with the Vulkan loader? (No vulkaninfo needed: the ICD file
# that registers lavapipe with the loader, the loader library itself, and the Mesa version.)
lavapipe_icd() {
  local d f
  for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
    for f in "$d"/lvp_icd*.json; do
      [[ -f "$f" ]] && { echo "$f"; return 0; }
    done
  done
  return 1
}

vulkan_loader() {
  local f
  for f in /usr/lib/x86_64-linux-gnu/libvulkan.so.1 /usr/lib/aarch64-linux-gnu/libvulkan.so.1 \
    /usr/lib64/libvulkan.so.1 /usr/lib/libvulkan.so.1 /usr/local/lib/libvulkan.so.1; do
    [[ -e "$f" ]] && { echo "$f"; return 0; }
  done
  if command -v ldconfig >/dev/null 2>&1; then
    ldconfig -p 2>/dev/null | awk '/libvulkan\.so\.1 / { print $NF; found = 1; exit } END { exit !found }' && return 0
  fi
  return 1
}

# Mesa's version: from dpkg on Debian, else from the ICD file's library (`strings` is not assumed).
mesa_version() {
  local v
  v="$(pkg_version mesa-vulkan-drivers)"
  if [[ -n "$v" ]]; then echo "$v"; return 0; fi
  return 1
}

mesa_major() { sed -E 's/^([0-9]+:)?([0-9]+).*/\2/' <<<"$1"; }

status_ok() {
  local icd loader version
  icd="$(lavapipe_icd)" || return 1
  loader="$(vulkan_loader)" || return 1
  if version="$(mesa_version)"; then
    (( "$(mesa_major "$version")" >= MIN_MESA_MAJOR )) || return 1
    say "ok: lavapipe from Mesa $version ($icd), Vulkan loader $loader"
  else
    # Not a dpkg system: we cannot read Mesa's version cheaply, so trust the ICD and let the tests tell.
    say "ok: lavapipe ICD $icd and Vulkan loader $loader found (Mesa version unknown: Dawn needs Mesa >= $MIN_MESA_MAJOR)"
  fi
  return 0
}

manual_instructions() {
  cat >&2 <<MSG
setup-webgpu: to run WebGPU without a GPU, install Mesa's software Vulkan driver (lavapipe), Mesa >= $MIN_MESA_MAJOR, and the Vulkan loader:
  Debian 12:      echo '$BACKPORTS_LINE' > $BACKPORTS_LIST
                  apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1
  Debian 13+, Ubuntu 24.10+:  apt-get install mesa-vulkan-drivers libvulkan1
  Fedora:         dnf install mesa-vulkan-drivers vulkan-loader
  Arch:           pacman -S vulkan-swrast vulkan-icd-loader
  macOS/Windows, or a machine with a GPU and its vendor's Vulkan/Metal/D3D12 driver: nothing to do.
MSG
}

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

if status_ok; then exit 0; fi

current="$(mesa_version || true)"
if [[ -n "$current" ]] && (( "$(mesa_major "$current")" < MIN_MESA_MAJOR )); then
  say "lavapipe from Mesa $current is too old for Dawn (needs Mesa >= $MIN_MESA_MAJOR)"
elif ! lavapipe_icd >/dev/null; then
  say "lavapipe (Mesa's software Vulkan driver) is not installed"
else
  say "the Vulkan loader (libvulkan.so.1) is missing"
fi

if (( check_only )); then manual_instructions; exit 1; fi

codename=""
if [[ -r /etc/os-release ]]; then
  # shellcheck disable=SC1091
  codename="$(. /etc/os-release && echo "${ID:-}:${VERSION_CODENAME:-}")"
fi
if [[ "$codename" != "debian:bookworm" ]]; then
  say "not Debian 12 (bookworm) ($codename): not installing anything; WebGPU tests will be skipped unless a GPU or lavapipe is present"
  manual_instructions
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  say "not root: not installing anything; WebGPU tests will be skipped unless a GPU or lavapipe is present"
  manual_instructions
  exit 0
fi

if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
  say "adding $BACKPORTS_LIST"
  echo "$BACKPORTS_LINE" >"$BACKPORTS_LIST"
fi
say "apt-get update"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
say "apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null

if status_ok; then exit 0; fi
say "installed, but lavapipe from Mesa >= $MIN_MESA_MAJOR is still not found"
exit 1
