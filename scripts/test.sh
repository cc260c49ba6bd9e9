#!/usr/bin/env bash
# Builds Troupe and runs every test through CTest.
#
#   scripts/test.sh                 the normal build, in build/
#   scripts/test.sh --sanitize      AddressSanitizer + UBSan build, in build-asan/
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

dir=build
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ "${1:-}" == "--sanitize" ]]; then
  dir=build-asan
  flags=(-DCMAKE_BUILD_TYPE=Debug -DTROUPE_SANITIZE=ON -DTROUPE_PERF=OFF)
elif [[ $# -gt 0 ]]; then
  echo "test.sh: unknown argument '$1' (expected nothing or --sanitize)" >&2
  exit 2
fi

"$root/scripts/setup.sh"
# The layers point one way (io ← core ← remote ← cluster ← server): checked
# before the build, so the suite fails on a wrong-way include.
"$root/scripts/check-layers.sh"
cmake -S . -B "$dir" -G Ninja "${flags[@]}"
cmake --build "$dir" -j"$(nproc)"
# Sanitizers: fail on the first report; LeakSanitizer on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$dir" -j"$(nproc)" --output-on-failure --timeout 600
