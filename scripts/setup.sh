#!/usr/bin/env bash
# Installs what trickbook needs on Debian, only when it is missing. Safe to run again.
# Used by both Quick start commands and by CI; --tests adds what only the tests need (headless
# Chromium, which loads the notebook page, and iproute2, whose network namespaces are the hosts of the
# multi-host MPI test); --bench adds the peers of `bench script` (Lua 5.4).
set -euo pipefail

# libopenmpi-dev (with openmpi-bin's mpirun): data-parallel runs; trickbook builds without it, but a
# build made before it was installed has no MPI until rebuilt from clean, so it is installed first.
packages=(libopenblas-dev libdnnl-dev libedit-dev libpng-dev zlib1g-dev dataset-fashion-mnist libopenmpi-dev)
[ "${1:-}" = --tests ] && packages+=(chromium fonts-dejavu-core iproute2)
[ "${1:-}" = --bench ] && packages+=(lua5.4 python3)

if ! command -v swift >/dev/null 2>&1; then
  echo "trickbook needs Swift 6 (swift.org/install); 'swift' is not on PATH." >&2
  exit 1
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "trickbook's set-up knows Debian's packages only. Install the equivalents of: ${packages[*]}" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  run=(sudo -n)
else
  echo "trickbook needs these Debian packages, and installing them needs root:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "trickbook set-up: installing ${missing[*]}" >&2
if ! { "${run[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2; then
  echo "trickbook set-up: apt-get could not install: ${missing[*]}" >&2
  echo "Install them by hand: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
