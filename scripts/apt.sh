# Sourced by the setup scripts: installs Debian packages as root, or says what to install.
#
#   apt_install NAME WHY PACKAGE...
#
# installs the packages (apt-get update only when an install fails on stale lists) and says so as NAME; as a
# non-root user or off Debian it says `WHY: install them with 'sudo apt-get install PACKAGE...'` and returns 1.
apt_install() {
  local name=$1 why=$2
  shift 2
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: $why: install them with 'sudo apt-get install $*' (Debian)" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
  echo "$name: ok: installed $*" >&2
}
