#!/usr/bin/env bash
# Installs the Debian packages clipnn needs, only when some are missing.
# Usage: scripts/deps.sh [--check] [--extra PKG...]
#   --check   report what is missing and fail, install nothing
#   --extra   also these packages (e.g. clang for `make fuzz`)
set -u
PKGS="libopenblas-dev libcjson-dev check pkg-config libopenmpi-dev openmpi-bin"
MODE=install
while [ $# -gt 0 ]; do
  case "$1" in
    --check) MODE=check; shift ;;
    --extra) shift; PKGS="$PKGS $*"; break ;;
    *) echo "usage: scripts/deps.sh [--check] [--extra PKG...]" >&2; exit 2 ;;
  esac
done
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
if [ "$MODE" = check ]; then
  echo "clipnn: missing packages:$missing" >&2
  echo "clipnn: run 'make deps' (or: apt-get install -y$missing)" >&2
  exit 1
fi
echo "clipnn: installing missing packages:$missing" >&2
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo"
else
  echo "clipnn: cannot install as this user. Run as root:" >&2
  echo "    apt-get update && apt-get install -y$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2 || { echo "clipnn: apt-get update failed" >&2; exit 1; }
$SUDO apt-get install -y -q $missing >&2 || { echo "clipnn: apt-get install failed:$missing" >&2; exit 1; }
