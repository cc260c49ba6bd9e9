#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (in build-fuzz/) and runs each for
# a bounded time.
#
#   scripts/fuzz.sh [SECONDS]     default 60 per target
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${1:-60}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: SECONDS must be a positive integer" >&2; exit 2; }

"$root/scripts/setup.sh"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTROUPE_FUZZ=ON -DTROUPE_TESTS=OFF -DTROUPE_PERF=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target frame_fuzz

# The corpus starts from the checked-in seeds; what the run finds stays in
# a scratch copy.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r tests/fuzz/corpus/frame "$work/frame"
export ASAN_OPTIONS=detect_leaks=1
build-fuzz/frame_fuzz -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 "$work/frame"
echo "fuzz.sh: frame_fuzz ran ${seconds}s without a finding"
