#!/usr/bin/env bash
# Runs a libFuzzer harness for N seconds (default 60): bash Fuzz/run.sh script|files [SECONDS] [libFuzzer options...]
# It starts from the committed seeds in Fuzz/seeds/<name>; what it finds goes to Fuzz/corpus/<name>
# (not committed) and crashes to Fuzz/crashes/ (an input that crashed becomes a test: see README).
set -euo pipefail
cd "$(dirname "$0")"
name=${1:?"which harness: script or files"}; shift
seconds=${1:-60}; [ $# -gt 0 ] && shift
case "$name" in script) target=FuzzScript ;; files) target=FuzzFiles ;; *) echo "unknown harness $name" >&2; exit 2 ;; esac
swift build -c release --product "$target" -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -use-ld=lld >&2
mkdir -p "corpus/$name" crashes
exec ".build/release/$target" "$PWD/corpus/$name" "$PWD/seeds/$name" -max_total_time="$seconds" -rss_limit_mb=8192 -timeout=20 \
  -artifact_prefix="$PWD/crashes/" -print_final_stats=1 "$@"
