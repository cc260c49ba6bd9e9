#!/usr/bin/env bash
# Builds Troupe in release mode and runs its demo: a word count spread over
# all shards, which prints what happened and the message rate, then exits.
# Arguments go to the demo (e.g. --shards 2 --lines 500000).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

"$root/scripts/setup.sh"
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)" --target troupe troupe-wordcount >/dev/null
exec build-release/actors/examples/troupe-wordcount "$@"
