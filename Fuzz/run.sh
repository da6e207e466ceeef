#!/usr/bin/env bash
# Runs a libFuzzer harness for N seconds (default 60):
#   bash Fuzz/run.sh [--asan] script|files [SECONDS] [libFuzzer options...]
# It starts from the committed seeds in Fuzz/seeds/<name>; what it finds goes to Fuzz/corpus/<name>
# (not committed) and crashes to Fuzz/crashes/ (an input that crashed becomes a test: see README).
# With --asan the harness is built with AddressSanitizer too (in .build-asan), and run in a memory
# cgroup of 8 GiB when this user can make one (the memory guard reads it; RLIMIT_AS cannot be used,
# since ASan reserves terabytes of address space).
set -euo pipefail
cd "$(dirname "$0")"
asan=0
[ "${1:-}" = --asan ] && { asan=1; shift; }
name=${1:?"which harness: script or files"}; shift
seconds=${1:-60}; [ $# -gt 0 ] && shift
case "$name" in script) target=FuzzScript ;; files) target=FuzzFiles ;; *) echo "unknown harness $name" >&2; exit 2 ;; esac
flags=(-Xswiftc -parse-as-library -Xswiftc -use-ld=lld)
if [ $asan = 1 ]; then
  build=.build-asan
  flags+=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZ_ASAN -Xcc -fsanitize=address)
else
  build=.build
  flags+=(-Xswiftc -sanitize=fuzzer)
fi
swift build -c release --scratch-path "$build" --product "$target" "${flags[@]}" >&2
mkdir -p "corpus/$name" crashes
group=""
if [ $asan = 1 ]; then
  v1=/sys/fs/cgroup/memory$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
  v2=/sys/fs/cgroup$(awk -F: '$1 == 0 {print $3}' /proc/self/cgroup)
  if [ -w "$v1" ] && mkdir -p "$v1/trickbook-fuzz-$$" 2>/dev/null; then
    group="$v1/trickbook-fuzz-$$"; echo $((8 << 30)) > "$group/memory.limit_in_bytes"
  elif [ -f "$v2/cgroup.controllers" ] && mkdir -p "$v2/trickbook-fuzz-$$" 2>/dev/null; then
    group="$v2/trickbook-fuzz-$$"; echo $((8 << 30)) > "$group/memory.max"
  fi
  if [ -n "$group" ]; then
    echo $$ > "$group/cgroup.procs"
    echo "in memory cgroup $group (8 GiB)" >&2
  else
    echo "warning: no memory cgroup could be made; the memory guard sees only MemAvailable" >&2
  fi
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
fi
status=0
"$build/release/$target" "$PWD/corpus/$name" "$PWD/seeds/$name" -max_total_time="$seconds" -rss_limit_mb=8192 \
  -timeout=20 -artifact_prefix="$PWD/crashes/" -print_final_stats=1 "$@" || status=$?
if [ $asan = 1 ] && [ -n "$group" ]; then
  echo $$ > "$(dirname "$group")/cgroup.procs" && rmdir "$group" || true
fi
exit $status
