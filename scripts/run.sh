#!/usr/bin/env bash
# The main job: set up, build in release mode, run the engine demo.
# (It becomes the tour notebook, notebooks/00-tour.tb, once the notebook runner exists.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product trickbook
exec .build/release/trickbook demo "$@"
