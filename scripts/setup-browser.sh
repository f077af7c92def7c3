#!/usr/bin/env bash
# Installs what the browser tests need: Debian's Chromium (playwright-core drives it; nothing is downloaded by
# npm). Idempotent and instant when Chromium is already there. On Debian as root it runs apt-get; anywhere
# else it says what to install by hand and exits 0 (the browser tests then skip, saying why, unless CI
# requires them).
set -euo pipefail

say() { echo "setup-browser: $*" >&2; }

if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  say "Chromium is missing: install Debian's chromium package (apt-get install chromium) as root, or set CHROMIUM=/path/to/chrome"
  exit 0
fi
say "installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing on a fresh machine; update once if the package is not found.
apt-cache show chromium >/dev/null 2>&1 || apt-get update -qq
apt-get install -y -qq chromium >/dev/null
say "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
