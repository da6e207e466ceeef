#!/usr/bin/env bash
# Builds trickbook in release mode and installs the one binary:
#   bash scripts/install.sh [PREFIX]     (default ~/.local: the binary goes to PREFIX/bin/trickbook)
# The binary carries its stdlib and its notebook page; it needs the Debian packages scripts/setup.sh
# installs (OpenBLAS, oneDNN, libedit, libpng, zlib) and the Swift runtime it was built with.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-${PREFIX:-$HOME/.local}}
bash scripts/setup.sh
swift build -c release --product trickbook
mkdir -p "$prefix/bin"
# A temporary name, then a rename: a running trickbook is never overwritten in place.
install -m 755 .build/release/trickbook "$prefix/bin/.trickbook.tmp-$$"
mv -f "$prefix/bin/.trickbook.tmp-$$" "$prefix/bin/trickbook"
echo "installed $prefix/bin/trickbook ($("$prefix/bin/trickbook" --version))"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "add $prefix/bin to PATH to run it as 'trickbook'" ;; esac
