#!/usr/bin/env bash
# The main job: set up, build in release mode, and run the tour notebook, which trains a
# ResNet-D with the bag of tricks on Fashion-MNIST. Pictures and charts go to out/.
# Extra arguments go to `trickbook run` (for example --quick for the one-minute version).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product trickbook
mkdir -p out
cd out
exec ../.build/release/trickbook run ../notebooks/00-tour.tb "$@"
