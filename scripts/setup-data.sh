#!/usr/bin/env bash
# Installs Fashion-MNIST from Debian (package dataset-fashion-mnist: IDX files, gzipped, under
# /usr/share/datasets/fashion-mnist). Nothing is downloaded at run time; `ulc train --data fashion-mnist`
# reads these files. Idempotent; as a non-root user, or off Debian, it prints what to install and exits 0.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

DIR=/usr/share/datasets/fashion-mnist
say() { echo "setup-data: $*" >&2; }

if [[ -f "$DIR/train-images-idx3-ubyte.gz" && -f "$DIR/t10k-images-idx3-ubyte.gz" ]]; then
  say "ok: Fashion-MNIST in $DIR"
  exit 0
fi
apt_install setup-data "Fashion-MNIST is missing (or pass --data PATH)" dataset-fashion-mnist || true
