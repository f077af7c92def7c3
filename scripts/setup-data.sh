#!/usr/bin/env bash
# Installs Fashion-MNIST from Debian (package dataset-fashion-mnist: IDX files, gzipped, under
# /usr/share/datasets/fashion-mnist). Nothing is downloaded at run time; `ulc train --data fashion-mnist`
# reads these files. Idempotent; as a non-root user, or off Debian, it prints what to install and exits 0.
set -euo pipefail

DIR=/usr/share/datasets/fashion-mnist
say() { echo "setup-data: $*" >&2; }

if [[ -f "$DIR/train-images-idx3-ubyte.gz" && -f "$DIR/t10k-images-idx3-ubyte.gz" ]]; then
  say "ok: Fashion-MNIST in $DIR"
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  say "Fashion-MNIST is missing: install it with 'sudo apt-get install dataset-fashion-mnist' (Debian), or pass --data PATH"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }
say "ok: installed dataset-fashion-mnist ($DIR)"
